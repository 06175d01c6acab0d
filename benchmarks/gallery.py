"""Render every config in configs/article/ as a thumbnail and write docs/gallery.md.

    python benchmarks/gallery.py                 # 192 px thumbnails, each config's own seed
    python benchmarks/gallery.py --size 256 --seed 3

Each thumbnail is made with the command line, exactly as a user would:
``bigcppn render CONFIG -o docs/gallery/NAME.png --width S --height S -q``.
A width/height override keeps the view fixed in plane units, so a thumbnail
shows the same picture as the config's own canvas, only sampled at S pixels;
that holds for uniform-100-raw too, whose view (raw pixel coordinates 0..128)
is tied to its 128 px canvas.

The page lists, for each experiment, the thumbnail, the config, the setting it
resolves to and the article's sentence, quoted from the config's header.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs" / "article"
DOCS = ROOT / "docs"

# The article's order.
ORDER = (
    "grey-goo",
    "uniform-100-raw",
    "uniform-100-normalized",
    "mondrian",
    "uniform-3",
    "normal",
    "hidden-0",
    "hidden-1",
    "hidden-16",
    "width-32",
    "pollock",
    "halving",
)


def article_quote(path: Path) -> str:
    """The header comment up to its first blank comment line, with the leading 'Article: ' dropped."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line[1:].strip()
        if not text:
            break
        lines.append(text)
    quote = " ".join(lines)
    return quote.removeprefix("Article:").strip()


def _layers(hidden: tuple[int, ...]) -> str:
    if not hidden:
        return "no hidden layers"
    if len(set(hidden)) == 1:
        return f"{len(hidden)} × {hidden[0]}"
    return "[" + ", ".join(map(str, hidden)) + "]"


def _init(kind: str, scale: float, what: str) -> str:
    if kind == "default":
        return f"{what} ±1/√fan_in"
    if kind == "uniform":
        return f"{what} U(±{scale:g})"
    return f"{what} N(0, {scale:g}²)" if scale != 1 else f"{what} N(0, 1)"


def setting(path: Path) -> str:
    """A one-line summary of what the config resolves to."""
    from bigcppn.config import load_config

    cfg = load_config(path)
    net, view = cfg.network, cfg.view
    parts = [_layers(net.hidden), _init(net.weight_init, net.weight_scale, "weights")]
    if net.bias == "first":
        parts.append(_init(net.bias_init, net.bias_scale, "first-layer bias"))
    else:
        parts.append(_init(net.bias_init, net.bias_scale, "biases") if net.bias else "no biases")
    if view.zoom == 1 and view.center == (0.0, 0.0):
        parts.append("inputs x/size − 0.5")
    elif view.center == (0.0, 0.0):
        parts.append(f"inputs (x/size − 0.5) / {view.zoom:g} (zoom {view.zoom:g})")
    else:
        span = 1 / view.zoom
        parts.append(f"view centre ({view.center[0]:g}, {view.center[1]:g}), shorter side {span:g} units")
    parts.append(f"seed {cfg.seed}; config canvas {cfg.canvas.width}×{cfg.canvas.height}")
    return "; ".join(parts)


def render(path: Path, out: Path, size: int, seed: int | None) -> float:
    cmd = [sys.executable, "-m", "bigcppn", "render", str(path), "-o", str(out),
           "--width", str(size), "--height", str(size), "-q"]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=192, help="thumbnail side in pixels (default 192)")
    p.add_argument("--seed", type=int, default=None, help="override every config's seed")
    p.add_argument("--out", type=Path, default=DOCS / "gallery.md", help="the page (default docs/gallery.md)")
    args = p.parse_args(argv)

    page = args.out.resolve()
    images = page.parent / page.stem
    images.mkdir(parents=True, exist_ok=True)
    found = sorted(CONFIGS.glob("*.toml"))
    names = [n for n in ORDER if (CONFIGS / f"{n}.toml").exists()]
    names += [f.stem for f in found if f.stem not in ORDER]

    rows = []
    for name in names:
        cfg_path = CONFIGS / f"{name}.toml"
        png = images / f"{name}.png"
        seconds = render(cfg_path, png, args.size, args.seed)
        print(f"{name:24s} {seconds:5.1f} s  {png}", file=sys.stderr)
        rel_png = png.relative_to(page.parent).as_posix()
        rel_cfg = Path(os.path.relpath(cfg_path, page.parent)).as_posix()
        quote = article_quote(cfg_path).replace("|", "\\|")
        rows.append(f"| ![{name}]({rel_png}) | [`{name}`]({rel_cfg}) | {setting(cfg_path)} | {quote} |")

    seed_note = f"seed {args.seed} for every picture" if args.seed is not None else "each config's own seed"
    text = "\n".join([
        "# The article's experiments",
        "",
        "Thumbnails of every config in `configs/article/`, one per experiment in Paras Chopra's",
        "*Making deep neural networks paint to understand how they work*, in the article's order.",
        f"Rendered at {args.size}×{args.size} px ({seed_note}) by `python benchmarks/gallery.py`;",
        "each is `bigcppn render CONFIG --width S --height S`, which keeps the config's view, so a",
        "thumbnail is the config's picture sampled at fewer pixels. Every config's header says",
        "which details the article leaves open and what was chosen.",
        "",
        "| picture | config | setting | article |",
        "|---|---|---|---|",
        *rows,
        "",
    ])
    page.write_text(text, encoding="utf-8")
    print(f"wrote {page}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
