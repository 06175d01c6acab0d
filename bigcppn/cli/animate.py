"""``bigcppn animate``: a clip (MP4, WebM, GIF, animated WebP or PNG frames) of a moving CPPN, with a progress bar."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..estimate.plan import human_duration, human_size
from .common import (LazyBar, add_config_options, add_executor_options, add_overwrite_option, executor_kwargs,
                     positive_int)

HELP = "render an animation: latent loops and walks, zooms, pans, tweens"
DESCRIPTION = """\
Render a clip of the config's CPPN in motion. Frame i is shown at i/FPS seconds and is exactly the still
'bigcppn render --from CLIP --frame i' renders. Motions combine; open ones (zoom, pan, tween, z-walk) run
from their first value on the first frame to their last on the last frame, a z-loop goes round once so the
clip loops seamlessly.

  bigcppn animate --set 'network.inputs=["x","y","r","z"]' --z-loop -o loop.gif --width 320 --height 320
  bigcppn animate --zoom 1:50 --center 0.1,0.05 --size 4k --seconds 10 -o zoom.mp4
  bigcppn animate --tween network.weight_scale=0.5:2 --ease smooth -o sweep.webm

The extension picks the format: .mp4 (H.264 yuv420p, even sizes), .webm (VP9), .gif (a dithered palette a
frame, or one for the clip with --palette clip; at most 150 MPix of frames), .webp (animated; --quality 100
is lossless), or a frame sequence -o frames/f-{frame}.png (exact pixels, each PNG carrying its frame's config)."""

SIZES = ("360p", "720p", "1080p", "1440p", "4k", "8k")


def add_parser(sub) -> None:
    p = sub.add_parser("animate", help=HELP, description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_options(p, "the clip: .mp4, .webm, .gif, .webp or frames/f-{frame}.png (required)")
    add_clip_options(p)
    p.add_argument("--quality", dest="out_quality", type=int, metavar="Q",
                   help="1-100 (default 90): H.264 CRF (90 = CRF 20 at the default preset), VP9 CRF (90 = 18 "
                        "at the default preset), WebP quality (100 = lossless)")
    add_overwrite_option(p, "OUT when it exists (the old one stays until the new one is complete)")
    add_executor_options(p)
    p.add_argument("--dry-run", action="store_true",
                   help="print frames, size and time (a few frames rendered and encoded to measure them; the same "
                        "as bigcppn plan -o OUT with these options), write nothing")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def add_clip_options(p: argparse.ArgumentParser, sizes: bool = True) -> None:
    """The clip's time, size, motions and encoder preset: ``animate``'s, and ``plan``'s for a clip (``sizes``:
    also --width/--height/--size, which ``plan`` has already)."""
    t = p.add_argument_group("time and size" if sizes else "clips (plan -o clip.mp4 ...; --size takes 1080p etc.)")
    t.add_argument("--seconds", type=float, metavar="S", help="length of the clip (default 4)")
    t.add_argument("--fps", type=float, metavar="F", help="frames per second (default 30)")
    if sizes:
        t.add_argument("--width", type=positive_int, metavar="W", help="frame width in pixels")
        t.add_argument("--height", type=positive_int, metavar="H",
                       help="frame height (with one of --width/--height the config's aspect is kept)")
        t.add_argument("--size", type=str.lower, choices=SIZES, help="frame size by name (default 1080p)")
    m = p.add_argument_group("motions (combine them)")
    m.add_argument("--z-loop", nargs="?", type=float, const=0.0, metavar="RADIUS",
                   help="a closed loop through the latent z around the config's z (default radius: half of "
                        "network.z_scale); needs z among network.inputs")
    m.add_argument("--z-walk", metavar="SEED_A:SEED_B:...", help="through the latent z of these seeds in turn")
    m.add_argument("--zoom", metavar="FROM:TO", help="view.zoom from FROM to TO, by the same factor every frame")
    m.add_argument("--center", metavar="X,Y", help="the view's centre, where a zoom closes in (view.center)")
    m.add_argument("--pan", metavar="X0,Y0:X1,Y1",
                   help="move view.center in a straight line (a negative first number: --pan=-0.5,0:0.5,0)")
    m.add_argument("--tween", action="append", default=[], metavar="KEY=A:B",
                   help="any number of network.* or view.* from A to B, e.g. network.weight_scale=0.5:2 (the "
                        "same weights, scaled; repeatable)")
    m.add_argument("--ease", choices=("linear", "smooth"),
                   help="linear: constant speed (default); smooth: start and stop gently (a z-loop stays even)")
    e = p.add_argument_group("encoder")
    e.add_argument("--preset", metavar="NAME",
                   help=".mp4: x264's speed preset, ultrafast ... veryslow (default superfast: a third of the CPU "
                        "of faster, about 25-60%% more bytes at the same PSNR; the quality's CRF is shifted per "
                        "preset to keep the PSNR); .webm: VP9's, realtime (default: libvpx's realtime deadline at "
                        "its fastest speed: a quarter to a half of the CPU of good, about 35-130%% more bytes at "
                        "the same PSNR, up to 3x on a steady zoom) or good (smaller files, slower)")
    e.add_argument("--palette", choices=("frame", "clip"),
                   help=".gif: a palette a frame (default: truer colours in each frame, which may flicker), or one "
                        "for the whole clip, made from up to 16 frames spread over it, 4 at 1080p (steady colours, one "
                        "colour table)")


# the options only a clip takes (``render`` has none of them), and what a still takes instead
CLIP_ONLY = ("seconds", "fps", "z_loop", "z_walk", "zoom", "center", "pan", "tween", "ease", "preset", "palette")
STILL_INSTEAD = {"center": "; a still's centre is --set view.center=[X,Y]"}


def wants_clip(args: argparse.Namespace) -> bool:
    """Whether ``plan``'s arguments ask about a clip: an output only a clip can be, or a clip option with an
    output that may be a clip (.webp: an animated one) or none. A clip option with a still's output (-o x.png
    --center 0.1,0.2) is refused in one line."""
    from ..formats.video.registry import FRAME_FIELD, clip_format

    given = [k for k in CLIP_ONLY if getattr(args, k) not in (None, [])]
    out = args.output or ""
    if FRAME_FIELD in out or (clip_format(out) is not None and not out.lower().endswith(".webp")):
        return True
    if given and clip_format(out) is None and _still_format(out) is not None:
        flag = "--" + given[0].replace("_", "-")
        hint = STILL_INSTEAD.get(given[0], "")
        raise UserError(f"{flag} is a clip's option and '{out}' is a still ({_still_format(out).label}): leave "
                        f"{flag} out, or plan a clip (-o clip.mp4, .webm, .gif, .webp or frames/f-{{frame}}.png)"
                        f"{hint}")
    return bool(given)


def _still_format(out: str):
    """The still format ``out`` names, or None (no output, a folder, an unknown extension)."""
    from ..formats.registry import format_for

    try:
        return format_for(out) if out else None
    except UserError:
        return None


def timeline_from(args: argparse.Namespace):
    """The clip's :class:`~bigcppn.animate.timeline.Timeline` from ``animate``'s (or ``plan``'s) arguments."""
    from ..animate.api import timeline_for

    if not args.output:
        raise UserError("give the clip's name with -o, e.g. -o clip.mp4")
    return timeline_for(args.config, seconds=4.0 if args.seconds is None else args.seconds,
                        fps=30.0 if args.fps is None else args.fps, width=args.width, height=args.height,
                        size=args.size, seed=args.seed, overrides=args.overrides, device=args.device,
                        center=args.center, z_loop=args.z_loop, z_walk=args.z_walk, zoom=args.zoom,
                        pan=args.pan, tween=args.tween, ease=args.ease or "linear", from_image=args.from_image)


def run(args: argparse.Namespace) -> int:
    from ..animate.api import plan_video, render_video

    timeline = timeline_from(args)
    if args.dry_run:
        print(plan_video(timeline, args.output, quality=args.out_quality, preset=args.preset, palette=args.palette))
        return 0
    bar = LazyBar(disable=args.quiet, desc=Path(args.output).name, unit="frame")
    try:
        try:
            result = render_video(timeline, args.output, quality=args.out_quality, overwrite=args.overwrite,
                                  progress=bar.progress, preset=args.preset, palette=args.palette,
                                  **executor_kwargs(args))
        finally:
            bar.close()
    except KeyboardInterrupt as exc:
        return _interrupted(Path(args.output), exc, timeline)
    if not args.quiet:
        bar.write(f"wrote {result.path} ({result.frames} frames of {result.width}x{result.height} at "
                  f"{result.fps:g} fps, {human_size(result.bytes)}, {result.frames_per_s:.1f} frames/s rendered, "
                  f"{human_duration(result.seconds)})")
    return 0


def _interrupted(out: Path, exc: KeyboardInterrupt, timeline) -> int:
    """Ctrl-C (130) or SIGTERM (143): nothing under the clip's name; finished segments (or the finished frames
    of a frame sequence) are kept to resume."""
    import sys

    from ..animate.clip import clip_text, frame_text
    from ..animate.segments import segment_folder
    from ..formats.video.registry import video_format_for
    from .common import stopped_by

    folder = segment_folder(out)
    done = sorted(folder.glob("seg-*")) if folder.is_dir() else []
    what, status = stopped_by(exc)
    frames = video_format_for(out).finished_frames(out, timeline.frames, clip_text(timeline),
                                                   lambda i: frame_text(timeline, i))
    if frames:
        print(f"bigcppn: {what}; {out} has {frames} of its {timeline.frames} frames: run the same command again "
              "to render the rest", file=sys.stderr)
    elif done:
        print(f"bigcppn: {what}; {out} was not written, its {len(done)} finished segment(s) are kept in {folder}: "
              "run the same command again to resume", file=sys.stderr)
    else:
        print(f"bigcppn: {what}; no file was written", file=sys.stderr)
    return status
