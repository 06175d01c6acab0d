"""Clips end to end: every format decoded (PyAV, Pillow for animated WebP), frames against render_array."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av", reason="PyAV is the video extra: pip install -e .[video]")

import bigcppn  # noqa: E402
from bigcppn.animate.api import timeline_for  # noqa: E402
from tests.conftest import psnr  # noqa: E402

W, H = 128, 96
Z = ['network.inputs=["x","y","r","z"]']


def clip(**kw):
    # zoomed in (4 to 6): zoomed out, at this size the whole view is detail that 4:2:0 chroma cannot hold
    # (24 dB through yuv420p alone, before any encoding)
    values = dict(width=W, height=H, seconds=1, fps=10, device="cpu", overrides=Z, z_loop=0, zoom="4:6")
    values.update(kw)
    return timeline_for(None, **values)


def stills(t):
    return [bigcppn.render_array(t.config_at(i)) for i in range(t.frames)]


def shown(frame):
    """A decoded frame as RGB, its chroma upsampled bilinearly, as players show it. FFmpeg's own quick
    yuv420p->rgb24 (to_ndarray) repeats each chroma sample over its 2x2 block instead, which alone costs these
    saturated CPPN frames 2-4 dB (34-35 dB where players show 37-38)."""
    from av.video.reformatter import Interpolation

    how = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
    return frame.reformat(format="rgb24", interpolation=how).to_ndarray()


def decoded(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        info = (s.codec_context.name, s.codec_context.pix_fmt, s.average_rate, s.width, s.height)
        return info, [shown(f) for f in c.decode(video=0)]


def through_yuv420(rgb):
    return shown(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p", interpolation="AREA"))


@pytest.fixture(scope="module")
def timeline():
    return clip()


@pytest.fixture(scope="module")
def refs(timeline):
    return stills(timeline)


@pytest.mark.parametrize("ext, codec", [("mp4", "h264"), ("webm", "vp9")])
def test_mp4_and_webm_decode_to_the_stills(tmp_path, timeline, refs, ext, codec):
    out = tmp_path / f"c.{ext}"
    done = []
    r = bigcppn.render_video(timeline, out, progress=lambda d, n: done.append((d, n)))
    (name, pix, rate, w, h), frames = decoded(out)
    assert (name, pix, rate, w, h) == (codec, "yuv420p", 10, W, H)
    assert len(frames) == timeline.frames == r.frames == 10 and done[-1] == (10, 10)
    # Every frame against its still: 35 dB at least (37-38 dB the worst frame here). The 4:2:0 chroma alone
    # takes these frames to 42-53 dB; the encoder, against the stills through yuv420p, to 39-49 dB.
    assert min(psnr(f, g) for f, g in zip(frames, refs)) >= 35
    assert min(psnr(f, through_yuv420(g)) for f, g in zip(frames, refs)) >= 38
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # nothing left beside it
    if ext == "mp4":  # faststart: the index (moov) before the media data, so a player starts at once
        data = out.read_bytes()
        assert 0 < data.find(b"moov") < data.find(b"mdat")


def x264_settings(path: Path) -> str:
    """The options x264 wrote into the stream (its SEI message)."""
    data = path.read_bytes()
    start = data.index(b"x264 - core")
    return data[start : data.index(b"\0", start)].decode("ascii", "replace")


def test_mp4_preset_and_threads(tmp_path, timeline):
    """Default: x264's superfast with the CRF shifted +2 (quality 90 -> 20, the PSNR 'faster' gave at 18), one
    encoder thread beside a renderer on every core; --preset faster gives back CRF 18."""
    bigcppn.render_video(timeline, tmp_path / "d.mp4")
    bigcppn.render_video(timeline, tmp_path / "f.mp4", preset="faster")
    default, faster = x264_settings(tmp_path / "d.mp4"), x264_settings(tmp_path / "f.mp4")
    assert "crf=20.0" in default and " threads=1 " in default and "mbtree=0" in default  # superfast: no mb-tree
    assert "crf=18.0" in faster and "mbtree=1" in faster


def test_webm_preset_and_threads(tmp_path, timeline, refs, monkeypatch):
    """Default: libvpx's realtime deadline at its fastest speed with the CRF 2 lower (quality 90 -> 18), one
    encoder thread beside a renderer on every core; --preset good is the slower setting (CRF 20). Both keep
    every frame at 35 dB or more."""
    from bigcppn.formats.video import codecs

    opened = []

    class Spy(codecs.PyAVWriter):
        def __init__(self, *a, **kw):
            opened.append(kw["options"])
            super().__init__(*a, **kw)

    monkeypatch.setattr(codecs, "PyAVWriter", Spy)
    for name, preset in (("d.webm", None), ("g.webm", "good")):
        bigcppn.render_video(timeline, tmp_path / name, preset=preset)
        assert min(psnr(f, g) for f, g in zip(decoded(tmp_path / name)[1], refs)) >= 35
    default, good = opened
    assert (default["deadline"], default["cpu-used"], default["crf"], default["threads"]) == ("realtime", "8", "18", "1")
    assert (good["deadline"], good["cpu-used"], good["crf"]) == ("good", "4", "20")


@pytest.mark.parametrize("name, options, words", [("c.mp4", {"preset": "warp"}, "ultrafast, superfast"),
                                                  ("c.gif", {"preset": "fast"}, "no encoder preset"),
                                                  ("c.webm", {"preset": "fast"}, "choose one of realtime, good"),
                                                  ("c.mp4", {"palette": "clip"}, "no palette; leave --palette"),
                                                  ("c.gif", {"palette": "global"}, "choose one of frame, clip")])
def test_a_wrong_preset_or_palette_is_refused_before_rendering(tmp_path, timeline, name, options, words):
    with pytest.raises(bigcppn.UserError, match=words):
        bigcppn.render_video(timeline, tmp_path / name, **options)
    assert list(tmp_path.iterdir()) == []


def test_png_sequence_is_exact_and_each_frame_carries_its_config(tmp_path, timeline, refs):
    bigcppn.render_video(timeline, tmp_path / "f-{frame}.png")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"f-{i}.png" for i in range(10)] + ["f-frames.png.bigcppn.json"]
    import pyvips

    for i in (0, 7):
        img = pyvips.Image.new_from_file(str(tmp_path / f"f-{i}.png"))
        assert np.array_equal(img.numpy(), refs[i])
        again = bigcppn.load_config(None, base=None)  # noqa: F841  (the still's own config comes next)
        from bigcppn.formats.registry import read_config_from

        assert read_config_from(tmp_path / f"f-{i}.png") == timeline.config_at(i)


def test_gif_has_every_frame_at_its_rate(tmp_path, timeline, refs):
    out = tmp_path / "c.gif"
    bigcppn.render_video(timeline, out)
    (name, _pix, rate, w, h), frames = decoded(out)
    assert (name, rate, w, h, len(frames)) == ("gif", 10, W, H, 10)
    assert min(psnr(f, g) for f, g in zip(frames, refs)) >= 25  # 256 colours a frame, dithered
    assert (tmp_path / "c.gif.bigcppn.json").is_file()


def gif_colour_tables(path: Path) -> tuple[bytes | None, list[bytes | None]]:
    """The GIF's global colour table and each image's local one (None where it has none), read block by block."""
    data = path.read_bytes()
    assert data[:6] in (b"GIF87a", b"GIF89a")

    def table(flags: int, at: int) -> tuple[bytes | None, int]:
        if not flags & 0x80:
            return None, at
        n = 3 * 2 ** ((flags & 7) + 1)
        return data[at : at + n], at + n

    def skip_sub_blocks(at: int) -> int:
        while data[at]:
            at += data[at] + 1
        return at + 1

    glob, i = table(data[10], 13)
    local = []
    while data[i] != 0x3B:  # the trailer
        if data[i] == 0x21:  # an extension: its label, then sub-blocks
            i = skip_sub_blocks(i + 2)
        else:
            assert data[i] == 0x2C, f"unexpected block {data[i]:#x} at {i}"
            lt, i = table(data[i + 9], i + 10)
            local.append(lt)
            i = skip_sub_blocks(i + 1)  # the LZW minimum code size, then the image data
    return glob, local


def test_a_gif_with_one_palette_for_the_clip(tmp_path, timeline, refs):
    """--palette clip: one global colour table and no local one, made from frames spread over the clip; each
    frame dithered to it still looks like its still. The default keeps a palette a frame."""
    clip_gif, frame_gif = tmp_path / "clip.gif", tmp_path / "frame.gif"
    bigcppn.render_video(timeline, clip_gif, palette="clip")
    bigcppn.render_video(timeline, frame_gif)
    glob, local = gif_colour_tables(clip_gif)
    assert glob is not None and len(local) == 10 and all(t is None for t in local)
    _, per_frame = gif_colour_tables(frame_gif)
    assert len({t for t in per_frame if t is not None}) > 5  # the default: a palette of its own a frame
    frames = decoded(clip_gif)[1]
    assert len(frames) == 10 and min(psnr(f, g) for f, g in zip(frames, refs)) >= 25  # 28 dB here, 36 a frame
    colours = {tuple(c) for f in frames for c in f.reshape(-1, 3)}
    assert len(colours) <= 256  # every frame from the same 256 colours


def test_lossless_animated_webp_is_exact(tmp_path, timeline, refs):
    Image = pytest.importorskip("PIL.Image")
    out = tmp_path / "c.webp"
    bigcppn.render_video(timeline, out, quality=100)
    with Image.open(out) as im:
        assert im.n_frames == 10 and im.size == (W, H)
        for i in range(10):
            im.seek(i)
            assert np.array_equal(np.asarray(im.convert("RGB")), refs[i])
            assert im.info["duration"] == 100


def test_render_from_a_clip_frame_is_that_frame(tmp_path, timeline, refs):
    out = tmp_path / "c.mp4"
    bigcppn.render_video(timeline, out)
    still = tmp_path / "s.png"
    cmd = [sys.executable, "-m", "bigcppn", "render", "--from", str(out), "--frame", "7", "--width", str(W),
           "-o", str(still), "-q"]
    subprocess.run(cmd, check=True, capture_output=True)
    import pyvips

    assert np.array_equal(pyvips.Image.new_from_file(str(still)).numpy(), refs[7])
    from bigcppn.animate.clip import read_clip

    assert read_clip(out).to_dict() == timeline.to_dict()


def test_a_z_loop_closes_as_smoothly_as_it_runs(refs):
    d = [float(np.abs(a.astype(int) - b).mean()) for a, b in zip(refs, refs[1:] + refs[:1])]
    assert d[-1] <= 1.15 * max(d[:-1])  # last -> first, as close as neighbours


def test_zoom_frames_scale_by_a_constant_factor():
    t = timeline_for(None, width=W, height=H, seconds=0.5, fps=10, device="cpu", zoom="1:4")  # zoom 1, 1.41, 2 ...
    assert t.frames == 5 and t.value(2, "view.zoom") == 2.0
    twice = bigcppn.render_array(t.config_at(0), width=2 * W, height=2 * H)
    crop = twice[H // 2 : H // 2 + H, W // 2 : W // 2 + W]
    frame2 = next(bigcppn.frames(t, start=2, stop=3))
    assert np.abs(crop.astype(int) - frame2).max() <= 1  # frame 2 is frame 0's middle, twice as large


def test_large_frames_render_in_strips_as_posters(monkeypatch):
    from bigcppn.animate import frames as mod

    monkeypatch.setattr(mod, "SMALL_FRAME", 10)  # every frame "large"
    t = clip(seconds=0.3)
    assert all(np.array_equal(a, b) for a, b in zip(mod.frame_arrays(t), stills(t)))


def test_ctrl_c_leaves_nothing_under_the_name(tmp_path, timeline):
    def stop(done, total):
        if done == 4:
            raise KeyboardInterrupt

    out = tmp_path / "c.mp4"
    with pytest.raises(KeyboardInterrupt):
        bigcppn.render_video(timeline, out, progress=stop)
    assert list(tmp_path.iterdir()) == []


def bigcppn_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "bigcppn", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("args, words", [
    (["--seconds", "0", "-o", "a.mp4"], "--seconds must be a positive"),
    (["--fps", "-2", "-o", "a.mp4"], "--fps must be a positive"),
    (["--width", "65", "-o", "a.mp4"], "even width and height"),
    (["--tween", "network.color=1:2", "-o", "a.mp4"], "not a number"),
    (["--z-loop", "-o", "a.mp4"], "add it: --set"),
    (["-o", "a.avi"], "extension '.avi'"),
    (["--fps", "60", "--seconds", "1000", "-o", "a.gif"], "over its budget"),
    (["-o", "exists.mp4"], "already exists; add --overwrite"),
    (["-o", "f-{frame}.jpg"], "frame sequence is written as PNG"),
])
def test_bad_input_is_one_line_and_exit_2_before_rendering(tmp_path, args, words):
    (tmp_path / "exists.mp4").write_bytes(b"old")
    r = bigcppn_cli("animate", "--width", "64", "--height", "48", *args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert words in r.stderr and r.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.mp4"]


def test_cli_writes_a_clip_and_dry_run_writes_nothing(tmp_path):
    r = bigcppn_cli("animate", "--width", "64", "--height", "48", "--seconds", "0.5", "--fps", "10", "--zoom",
                    "1:3", "-o", "a.mp4", "--dry-run", cwd=tmp_path)
    assert r.returncode == 0 and "frames:  5 of 64x48" in r.stdout and list(tmp_path.iterdir()) == []
    r = bigcppn_cli("animate", "--width", "64", "--height", "48", "--seconds", "0.5", "--fps", "10", "--zoom",
                    "1:3", "-o", "a.mp4", cwd=tmp_path)
    assert r.returncode == 0 and "wrote a.mp4 (5 frames of 64x48" in r.stderr


def test_sigint_mid_clip_exits_130_and_leaves_nothing(tmp_path):
    """A real Ctrl-C (SIGINT) while frames are being encoded: status 130, no clip, no temporary left."""
    import signal
    import time

    # (one segment: a longer clip keeps its finished segments, see the resume test)
    cmd = [sys.executable, "-m", "bigcppn", "animate", "--width", "640", "--height", "360", "--seconds", "9.9",
           "--fps", "10", "--zoom", "1:9", "--device", "cpu", "-o", "c.mp4"]
    p = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(q.name.startswith(".c.mp4.partial") for q in tmp_path.iterdir()):
            time.sleep(0.1)
        time.sleep(1.0)  # some frames encoded
        p.send_signal(signal.SIGINT)
        _out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def short_segments(monkeypatch):
    from bigcppn.animate import segments

    monkeypatch.setattr(segments, "SEGMENT_SECONDS", 0.4)  # 4 frames at 10 fps: 10 frames are 3 segments
    return segments


@pytest.mark.parametrize("ext", ["mp4", "webm"])
def test_long_clips_are_segments_remuxed_into_one_stream(tmp_path, timeline, refs, short_segments, ext):
    out = tmp_path / f"c.{ext}"
    bigcppn.render_video(timeline, out)
    (name, pix, rate, w, h), frames = decoded(out)
    assert (pix, rate, w, h, len(frames)) == ("yuv420p", 10, W, H, 10)
    assert min(psnr(f, g) for f, g in zip(frames, refs)) >= 35
    with av.open(str(out)) as c:
        keys = [p.pts for p in c.demux(video=0) if p.dts is not None and p.is_keyframe]
        step = c.streams.video[0].time_base
    assert [round(k * step * 10) for k in keys] == [0, 4, 8]  # a GOP a segment, each starting a keyframe
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # the segments folder is gone
    from bigcppn.animate.clip import read_clip

    assert read_clip(out).to_dict() == timeline.to_dict()


def test_an_interrupted_frame_sequence_resumes_after_its_finished_frames(tmp_path, timeline, refs, monkeypatch):
    out = tmp_path / "f-{frame}.png"

    def stop(done, total):
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bigcppn.render_video(timeline, out, progress=stop)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [".f-frames.png.bigcppn.json.writing", "f-0.png", "f-1.png", "f-2.png", "f-3.png"]
    from bigcppn.animate import video

    rendered, seen = [], []
    real = video.frame_arrays
    monkeypatch.setattr(video, "frame_arrays", lambda t, start, **kw: (rendered.append(start), real(t, start, **kw))[1])
    bigcppn.render_video(timeline, out, progress=lambda d, n: seen.append(d))  # no --overwrite needed: a resume
    assert rendered == [4] and seen[0] == 4 and seen[-1] == 10  # only the missing frames
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"f-{i}.png" for i in range(10)] + ["f-frames.png.bigcppn.json"]  # the stamp is gone
    import pyvips

    for i in (0, 3, 4, 9):
        assert np.array_equal(pyvips.Image.new_from_file(str(tmp_path / f"f-{i}.png")).numpy(), refs[i])
    # a finished sequence is not resumed: it is there, so without --overwrite it is refused
    with pytest.raises(bigcppn.UserError, match="already exists"):
        bigcppn.render_video(timeline, out)
    # another clip's frames under the same names are not kept
    (tmp_path / "f-frames.png.bigcppn.json").unlink()
    other = clip(zoom="4:5")
    rendered.clear()
    bigcppn.render_video(other, out, overwrite=True)
    assert rendered == [0]


def test_a_frame_sequence_resume_keeps_no_frame_of_another_clip(tmp_path, timeline, refs):
    """An --overwrite run of clip B over clip A's frames, interrupted after 3: a rerun of B must not keep A's
    frames 3.. (they are there, under B's names, but carry A's configs)."""
    out = tmp_path / "f-{frame}.png"
    bigcppn.render_video(clip(zoom="1:2"), out)

    def stop(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bigcppn.render_video(timeline, out, overwrite=True, progress=stop)
    result = bigcppn.render_video(timeline, out)  # the resume
    assert result.rendered == timeline.frames - 3
    import pyvips

    for i in range(timeline.frames):
        assert np.array_equal(pyvips.Image.new_from_file(str(tmp_path / f"f-{i}.png")).numpy(), refs[i]), i


def test_an_interrupted_clip_resumes_from_its_finished_segments(tmp_path, timeline, short_segments, monkeypatch):
    whole = tmp_path / "whole.mp4"
    bigcppn.render_video(timeline, whole)
    out = tmp_path / "c.mp4"

    def stop(done, total):
        if done == 6:  # in the second segment
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bigcppn.render_video(timeline, out, progress=stop)
    assert not out.exists()
    kept = sorted(p.name for p in short_segments.segment_folder(out).iterdir())
    assert kept == ["clip.json", "seg-00000.mp4"]  # the finished segment; the second one's partial is gone
    rendered = []
    real = short_segments.frame_arrays
    monkeypatch.setattr(short_segments, "frame_arrays",
                        lambda t, start, stop, **kw: (rendered.append((start, stop)), real(t, start, stop, **kw))[1])
    bigcppn.render_video(timeline, out)
    assert rendered == [(4, 8), (8, 10)]  # only the missing segments
    assert all(np.array_equal(a, b) for a, b in zip(decoded(out)[1], decoded(whole)[1]))
    assert len(decoded(out)[1]) == 10 and not short_segments.segment_folder(out).exists()


@pytest.mark.parametrize("preset, again", [("realtime", [(4, 8), (8, 10)]), ("good", [(0, 4), (4, 8), (8, 10)])])
def test_a_webm_resumes_only_at_the_same_preset(tmp_path, timeline, short_segments, monkeypatch, preset, again):
    """The segments' stamp names the preset: the default (realtime) given by name keeps them; good, another
    encoder setting, renders the clip again rather than join segments of two settings."""
    out = tmp_path / "c.webm"

    def stop(done, total):
        if done == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bigcppn.render_video(timeline, out, progress=stop)
    assert '"preset": "realtime"' in (short_segments.segment_folder(out) / "clip.json").read_text()
    rendered = []
    real = short_segments.frame_arrays
    monkeypatch.setattr(short_segments, "frame_arrays",
                        lambda t, start, stop, **kw: (rendered.append((start, stop)), real(t, start, stop, **kw))[1])
    bigcppn.render_video(timeline, out, preset=preset)
    assert rendered == again and len(decoded(out)[1]) == 10
