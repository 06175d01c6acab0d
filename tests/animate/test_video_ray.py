"""Segments of a clip on Ray's actors: the same clip as this machine renders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is the video extra: pip install -e .[video]")

import bigcppn  # noqa: E402
from bigcppn.animate.api import timeline_for  # noqa: E402
from tests.animate.test_video import decoded  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.ray
def test_segments_on_two_actors_give_the_same_clip(tmp_path, local_ray, monkeypatch):
    from bigcppn.animate import segments

    monkeypatch.setattr(segments, "SEGMENT_SECONDS", 0.4)
    t = timeline_for(None, width=64, height=48, seconds=1.2, fps=10, zoom="4:6", device="cpu")
    bigcppn.render_video(t, tmp_path / "here.mp4")
    seen = []
    bigcppn.render_video(t, tmp_path / "ray.mp4", executor="ray", workers=2, progress=lambda d, n: seen.append(d))
    here, there = decoded(tmp_path / "here.mp4"), decoded(tmp_path / "ray.mp4")
    assert here[0] == there[0] and len(there[1]) == 12
    assert all(np.array_equal(a, b) for a, b in zip(here[1], there[1]))
    assert seen[-1] == 12
    with pytest.raises(bigcppn.UserError, match="cannot be cut into segments"):
        bigcppn.render_video(t, tmp_path / "c.gif", executor="ray", workers=2)
