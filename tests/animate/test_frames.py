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
