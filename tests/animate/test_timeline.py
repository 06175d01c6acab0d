"""The timeline is pure: frame i's config from the motions, property-tested (no rendering)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigcppn.animate.motions import MotionSpec, build_timeline, frame_count
from bigcppn.animate.timeline import Pan, Timeline, Tween, Zoom, ease, motion_from_dict
from bigcppn.config import load_config
from bigcppn.errors import UserError

BASE = load_config(None, ["canvas.width=64", "canvas.height=48", 'network.inputs=["x","y","r","z"]', "seed=5"])
zooms = st.floats(min_value=0.01, max_value=1e6, allow_nan=False)


@given(st.integers(2, 400), zooms, zooms)
@settings(max_examples=60, deadline=None)
def test_zoom_scales_by_one_factor_a_frame(n, a, b):
    t = Timeline(BASE, n, 30, (Zoom(a, b),))
    zs = [t.value(i, "view.zoom") for i in range(n)]
    assert zs[0] == pytest.approx(a) and zs[-1] == b
    ratios = [zs[i + 1] / zs[i] for i in range(n - 1)]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-9)
    assert ratios[0] == pytest.approx((b / a) ** (1 / (n - 1)), rel=1e-9)


@given(st.integers(1, 300), st.sampled_from(["linear", "smooth"]),
       st.tuples(st.floats(-5, 5), st.floats(-5, 5)), st.tuples(st.floats(-5, 5), st.floats(-5, 5)))
@settings(max_examples=60, deadline=None)
def test_open_motions_run_from_first_to_last_value_monotonically(n, easing, p0, p1):
    t = Timeline(BASE, n, 24, (Pan(p0, p1), Tween("network.weight_scale", 0.5, 2.0)), easing)
    assert t.value(0, "view.center") == pytest.approx(list(p0))
    if n > 1:
        assert t.value(n - 1, "view.center") == list(p1)
        assert t.value(n - 1, "network.weight_scale") == 2.0
    ws = [t.value(i, "network.weight_scale") for i in range(n)]
    assert all(a <= b for a, b in zip(ws, ws[1:]))


@given(st.floats(0, 1))
def test_eases_keep_their_ends(u):
    for name in ("linear", "smooth"):
        assert 0.0 <= ease(name, u) <= 1.0
    assert ease("smooth", 0.0) == 0.0 and ease("smooth", 1.0) == 1.0


@given(st.integers(3, 200), st.floats(0.05, 3))
@settings(max_examples=30, deadline=None)
def test_z_loop_is_a_circle_that_closes(n, radius):
    t = build_timeline(BASE, n, 30, MotionSpec(z_loop=radius))
    loop = t.motions[0]
    zs = [t.value(i, "network.z") for i in range(n)]
    # every frame at the radius from the config's z, every step the same length, the last step back to frame 0
    for z in zs:
        assert math.dist(z, loop.center) == pytest.approx(radius, rel=1e-9)
    steps = [math.dist(zs[i], zs[(i + 1) % n]) for i in range(n)]
    assert max(steps) == pytest.approx(min(steps), rel=1e-6)


def test_the_loop_goes_round_the_config_s_own_z():
    from bigcppn.network.model import CPPN

    t = build_timeline(BASE, 8, 30, MotionSpec(z_loop=0))
    assert t.motions[0].center == pytest.approx(CPPN(BASE.network, BASE.seed).z.tolist())
    assert t.motions[0].radius == 0.5


def test_z_walk_passes_through_each_seed_s_z():
    from bigcppn.network.model import CPPN

    t = build_timeline(BASE, 9, 30, MotionSpec(z_walk="3:7:3"))
    z3, z7 = (CPPN(BASE.network, s).z.tolist() for s in (3, 7))
    assert t.value(0, "network.z") == pytest.approx(z3)
    assert t.value(4, "network.z") == pytest.approx(z7)
    assert t.value(8, "network.z") == pytest.approx(z3)


def test_motions_round_trip_through_dicts():
    t = build_timeline(BASE, 10, 25, MotionSpec(z_loop=0.3, zoom="1:8", pan="0,0:0.1,0.2",
                                                tween=("network.weight_scale=0.5:2",), ease="smooth"))
    again = Timeline.from_dict(BASE, t.to_dict())
    assert [again.config_at(i) for i in range(10)] == [t.config_at(i) for i in range(10)]
    with pytest.raises(UserError):
        motion_from_dict({"kind": "spin"})


@pytest.mark.parametrize("spec, words", [
    (MotionSpec(tween=("network.activation=1:2",)), "not a number"),
    (MotionSpec(tween=("network.nope=1:2",)), "no such config key"),
    (MotionSpec(tween=("canvas.width=10:20",)), "only the picture"),
    (MotionSpec(tween=("network.weight_scale=1:-2",)), "weight_scale"),
    (MotionSpec(zoom="0:4"), "positive"),
    (MotionSpec(zoom="2"), "2 numbers"),
    (MotionSpec(pan="0,0"), "X0,Y0:X1,Y1"),
    (MotionSpec(z_walk="4"), "two or more seeds"),
    (MotionSpec(z_loop=0, z_walk="1:2"), "one of them"),
    (MotionSpec(zoom="1:2", tween=("view.zoom=1:3",)), "both move view.zoom"),
    (MotionSpec(ease="bouncy"), "--ease"),
])
def test_bad_motions_are_refused_in_one_line(spec, words):
    with pytest.raises(UserError, match=words) as info:
        build_timeline(BASE, 10, 30, spec)
    assert "\n" not in str(info.value)


def test_z_motions_need_z_and_say_how_to_add_it():
    with pytest.raises(UserError, match=r"add it: --set 'network.inputs=\[\"x\",\"y\",\"z\"\]'"):
        build_timeline(load_config(None), 10, 30, MotionSpec(z_loop=0))


@pytest.mark.parametrize("seconds, fps", [(0, 30), (-1, 30), (2, 0), (2, -5), (float("nan"), 30), (0.001, 1)])
def test_frame_counts_refuse_no_time(seconds, fps):
    with pytest.raises(UserError):
        frame_count(seconds, fps)
    assert frame_count(2, 30) == 60 and frame_count(1.5, 24) == 36
