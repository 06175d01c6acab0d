"""Batched small frames: networks built once a (network, seed), batches shared evenly by the workers."""

from __future__ import annotations

import numpy as np
import pytest

import bigcppn
from bigcppn.animate import frames as frames_mod
from bigcppn.animate.api import timeline_for


def test_a_zoom_builds_its_network_once_and_frames_equal_the_stills(monkeypatch):
    import bigcppn.network.model as model

    built = []
    real = model.CPPN

    def counting(net, seed):
        built.append(seed)
        return real(net, seed)

    t = timeline_for(None, width=40, height=30, seconds=1, fps=8, zoom="1:3", device="cpu")
    monkeypatch.setattr(model, "CPPN", counting)
    got = list(frames_mod.frame_arrays(t))
    assert len(built) == 1  # every frame has the same network; only the coordinates move
    monkeypatch.undo()
    for i in (0, 5, 7):
        assert np.array_equal(got[i], bigcppn.render_array(t.config_at(i)))


def test_a_tween_still_builds_a_network_a_frame():
    t = timeline_for(None, width=40, height=30, seconds=1, fps=6, tween=["network.weight_scale=0.5:2"], device="cpu")
    got = list(frames_mod.frame_arrays(t))
    assert all(np.array_equal(got[i], bigcppn.render_array(t.config_at(i))) for i in (0, 3, 5))
    assert not np.array_equal(got[0], got[5])


@pytest.mark.parametrize("frames, workers", [(60, 2), (300, 2), (7, 2), (1, 4), (100, 3), (64, 1)])
def test_batches_are_shared_evenly_by_the_workers(frames, workers):
    pixels = 320 * 180
    per = frames_mod._batch_size(frames, pixels, workers)
    count = -(-frames // per)
    assert per * pixels <= max(pixels, frames_mod.BATCH_PIXELS) and per <= frames_mod.MAX_BATCH_FRAMES
    # no worker idles at the end while another renders a full batch: the batches are as many as needed, in
    # whole rounds of the workers where there are frames enough, and the last one is not much shorter
    assert count % workers == 0 or count == frames or count < workers
    assert frames - (count - 1) * per >= per - count


def test_a_network_shared_by_two_batches_is_on_the_device_for_both(monkeypatch):
    """A z-walk back to its first seed (1:2:1) gives its last frame the first frame's network, built once and
    shared. A batch that moved it to the device in place (a GPU's, here the 'meta' device as a stand-in) left the
    last batch stacking it beside networks still on the host: 'Tensor on device meta is not on the expected
    device cpu'. Every batch must get as far as its passes (sheet_chunk)."""
    import torch

    import bigcppn.network.backend as backend

    class Reached(Exception):
        pass

    def passes(*_):
        raise Reached

    monkeypatch.setattr(backend, "sheet_chunk", passes)
    monkeypatch.setattr(torch, "equal", lambda a, b: a.shape == b.shape and a.device == b.device)  # (no meta kernel)
    t = timeline_for(None, width=32, height=18, seconds=1, fps=10, z_walk="1:2:1", device="cpu",
                     overrides=['network.inputs=["x","y","r","z"]'])
    key = lambda cf: (cf.network, cf.seed)  # noqa: E731
    assert key(t.config_at(0)) == key(t.config_at(t.frames - 1))
    meta = torch.device("meta")
    built = frames_mod._Models(meta)  # as _batches makes it for its device
    for frames in (range(0, 1), range(t.frames - 2, t.frames)):
        with pytest.raises(Reached):
            frames_mod._batch(t, frames, meta, built)
