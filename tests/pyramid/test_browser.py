"""In a real browser: headless Chromium (Debian's) opens the pyramids and the live server in OpenSeadragon.

Needs chromium, node and the npm packages of tests/browser (OpenSeadragon, playwright-core; `npm ci` there),
which .ci/run installs. Without them the test skips with the reason, except under CI, where it fails.
"""

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import pyvips
import torch

from bigcppn import cli
from bigcppn.network.strips import renderer_for
from bigcppn.server.app import make_server

from conftest import small_config

pytestmark = pytest.mark.browser

BROWSER_DIR = Path(__file__).resolve().parents[1] / "browser"
W, H, SEED = 1000, 700, 7
LIVE_W, LIVE_H = 400, 300


def browser_tools() -> tuple[str, str]:
    """(chromium, node), or skip with the reason (fail instead under CI, where .ci/run installs them)."""
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    node = shutil.which("node")
    missing = []
    if chromium is None:
        missing.append("chromium (apt-get install chromium chromium-driver)")
    if node is None:
        missing.append("node (Node.js)")
    for pkg in ("playwright-core", "openseadragon"):
        if not (BROWSER_DIR / "node_modules" / pkg / "package.json").is_file():
            missing.append(f"{pkg} (npm ci --prefix tests/browser)")
    if missing:
        reason = "the browser test needs " + ", ".join(missing) + "; .ci/run installs them"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI is set, so this is a failure, not a skip)")
        pytest.skip(reason)
    return chromium, node


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def static_server(root: Path) -> http.server.ThreadingHTTPServer:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv


def load_png(path: str) -> np.ndarray:
    return pyvips.Image.new_from_file(path).numpy()[..., :3].astype(np.float64)


def image_part(stage: dict, shot: np.ndarray) -> np.ndarray:
    """The middle of the picture in a screenshot (away from the buttons, navigator and caption)."""
    x, y, w, h = stage["rect"]
    cw, ch = stage["container"]
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(cw, x + w), min(ch, y + h)
    mx, my = (x1 - x0) * 0.2, (y1 - y0) * 0.2
    return shot[int(y0 + my) : int(y1 - my), int(x0 + mx) : int(x1 - mx)]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def reference(stage: dict, full: np.ndarray, shot_part: np.ndarray) -> np.ndarray:
    """The same middle part cut from the full-resolution picture, resized to the screenshot's."""
    x, y, w, h = stage["rect"]
    cw, ch = stage["container"]
    sx, sy = full.shape[1] / w, full.shape[0] / h
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(cw, x + w), min(ch, y + h)
    mx, my = (x1 - x0) * 0.2, (y1 - y0) * 0.2
    crop = full[int((y0 + my - y) * sy) : int((y1 - my - y) * sy), int((x0 + mx - x) * sx) : int((x1 - mx - x) * sx)]
    img = pyvips.Image.new_from_array(np.ascontiguousarray(crop))
    img = img.resize(shot_part.shape[1] / img.width, vscale=shot_part.shape[0] / img.height, kernel="linear")
    return img.numpy()[: shot_part.shape[0], : shot_part.shape[1]].astype(np.float64)


def run_check(chromium: str, node: str, out: Path, pages: list[dict]) -> list[dict]:
    job = out / "job.json"
    job.write_text(json.dumps({"chromium": chromium, "out": str(out), "pages": pages}))
    proc = subprocess.run([node, str(BROWSER_DIR / "check.mjs"), str(job)], capture_output=True, text=True,
                          timeout=600, cwd=BROWSER_DIR)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


TILE_LEVEL = {
    "dz": re.compile(r"/p_files/(\d+)/\d+_\d+\.jpeg$"),
    "iiif3": re.compile(r"/p/(full|\d+,\d+,\d+,\d+)/(max|\d+,\d+)/0/default\.jpg$"),
    "zoomify": re.compile(r"/TileGroup\d+/(\d+)-\d+-\d+\.jpg$"),
    "zoomify-edge": re.compile(r"/TileGroup\d+/(\d+)-\d+-\d+\.jpg$"),
    "google": re.compile(r"/g/(\d+)/\d+/\d+\.jpg$"),
    "live": re.compile(r"/image_files/(\d+)/\d+_\d+\.jpeg$"),
}


def check_page(entry: dict, full: np.ndarray | None, min_corr: float = 0.9) -> list[str]:
    """Returns the tile URLs; asserts no errors, every tile 200, pictures not blank and right."""
    name = entry["name"]
    # a failed load is reported with its URL below, from the responses (the browser asks for /favicon.ico)
    errors = [e for e in entry["errors"] if not e.startswith("Failed to load resource")]
    assert not errors, f"{name}: {errors}"
    assert not entry["failed"], f"{name}: failed requests {entry['failed'][:5]}"
    tiles = [r for r in entry["responses"] if TILE_LEVEL[name].search(r["url"])]
    assert tiles, f"{name}: no tile was requested"
    bad = [r for r in tiles if r["status"] != 200]
    assert not bad, f"{name}: tile requests that did not return 200: {bad[:5]}"
    others = [r for r in entry["responses"] if r["status"] not in (200, 304) and not r["url"].endswith("/favicon.ico")]
    assert not others, f"{name}: {others}"
    assert len(entry["stages"]) >= 3, f"{name}: stages {entry['stages']}"
    zooms = [s["imageZoom"] for s in entry["stages"]]
    assert all(b > a * 1.2 for a, b in zip(zooms, zooms[1:])), f"{name}: zoom did not increase: {zooms}"
    for s in entry["stages"]:
        shot = load_png(s["screenshot"])
        part = image_part(s, shot)
        assert part.size, f"{name} {s['label']}: the picture is not on screen ({s['rect']})"
        assert part.std() > 8, f"{name} {s['label']}: the canvas is blank (std {part.std():.1f})"
        assert (np.abs(part).sum(axis=2) < 6).mean() < 0.05, f"{name} {s['label']}: black holes in the picture"
    if full is not None:
        home = entry["stages"][0]
        part = image_part(home, load_png(home["screenshot"]))
        corr = correlation(part, reference(home, full, part))
        assert corr > min_corr, f"{name}: the screenshot does not look like the render (correlation {corr:.2f})"
    return [r["url"] for r in tiles]


def test_pyramids_and_live_server_in_chromium(tmp_path):
    chromium, node = browser_tools()
    env_osd = os.environ.get("BIGCPPN_OPENSEADRAGON")
    os.environ["BIGCPPN_OPENSEADRAGON"] = str(BROWSER_DIR / "node_modules" / "openseadragon")
    try:
        site = tmp_path / "site"
        site.mkdir()
        common = ["--width", W, "--height", H, "--seed", SEED, "-q"]
        assert cli.main([str(a) for a in ["pyramid", "-o", site / "p.dzi", *common]]) == 0
        for layout in ("iiif3", "zoomify", "google"):
            (site / layout).mkdir()
            out = site / layout / ("g" if layout == "google" else "p")
            assert cli.main([str(a) for a in ["pyramid", "-o", out, "--layout", layout, *common]]) == 0
        # Zoomify tiers past OpenSeadragon's rounding (1025 px: 4 tiers, OpenSeadragon would count 3)
        (site / "edge").mkdir()
        assert cli.main([str(a) for a in ["pyramid", "-o", site / "edge" / "p", "--layout", "zoomify",
                                          "--width", 1025, "--height", 300, "--seed", SEED, "-q"]]) == 0
    finally:
        if env_osd is None:
            os.environ.pop("BIGCPPN_OPENSEADRAGON", None)
        else:
            os.environ["BIGCPPN_OPENSEADRAGON"] = env_osd
    for page in [site / "p.html", *(site / d / n / "index.html" for d, n in
                                         [("iiif3", "p"), ("zoomify", "p"), ("google", "g"), ("edge", "p")])]:
        html = page.read_text()
        assert 'src="openseadragon/openseadragon.min.js"' in html, "the page must use the local npm copy"

    static = static_server(site)
    live = make_server(small_config(LIVE_W, LIVE_H, seed=SEED), port=0, device=torch.device("cpu"))
    threading.Thread(target=live.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{static.server_address[1]}"
        extra = live.service.pyramid.extra
        pages = [
            {"name": "dz", "url": f"{base}/p.html", "zooms": [2, 2]},
            {"name": "iiif3", "url": f"{base}/iiif3/p/index.html", "zooms": [2, 2]},
            {"name": "zoomify", "url": f"{base}/zoomify/p/index.html", "zooms": [2, 2]},
            {"name": "zoomify-edge", "url": f"{base}/edge/p/index.html", "zooms": [2, 2]},
            {"name": "google", "url": f"{base}/google/g/index.html", "zooms": [2, 2]},
            # live: the base is half the window; zooming in twice goes three levels past it
            {"name": "live", "url": live.url + "?drawer=canvas", "zooms": [2, 2]},
        ]
        report = {e["name"]: e for e in run_check(chromium, node, tmp_path, pages)}
        (tmp_path / "report.json").write_text(json.dumps(report, indent=1))
    finally:
        static.shutdown()
        live.shutdown()
        live.server_close()
        live.service.stop()

    r, plan = renderer_for(small_config(W, H, seed=SEED), torch.device("cpu"))
    full = r.render(plan).astype(np.float64)
    for name in ("dz", "iiif3", "zoomify", "google"):
        urls = check_page(report[name], full)
        if name == "dz":  # zooming in asked for finer levels
            levels = [int(TILE_LEVEL[name].search(u).group(1)) for u in urls]
            assert max(levels) > min(levels)
    check_page(report["zoomify-edge"], None)
    r, plan = renderer_for(small_config(LIVE_W, LIVE_H, seed=SEED), torch.device("cpu"))
    urls = check_page(report["live"], r.render(plan).astype(np.float64), min_corr=0.85)
    p = live.service.pyramid
    levels = {int(TILE_LEVEL["live"].search(u).group(1)) for u in urls}
    assert max(levels) >= p.base_level.index + 3, f"not far past the base level {p.base_level.index}: {levels}"
    assert report["live"]["stages"][-1]["imageZoom"] * 2**extra >= 4, "4 screen pixels per base pixel or more"
    shot = Path(os.environ.get("BIGCPPN_SCREENSHOT", tmp_path / "pyramid-browser.png"))
    shutil.copyfile(report["dz"]["stages"][0]["screenshot"], shot)
