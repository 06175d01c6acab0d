"""`bigcppn explore` in a real browser: headless Chromium (Debian's) driven by playwright-core.

Needs what tests/pyramid/test_browser.py needs (chromium, node, tests/browser's npm packages; .ci/run
installs them); skips with the reason without them, except under CI, where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import pyvips

from bigcppn import render_array
from bigcppn.studio.run import make_explore_server
from bigcppn.studio.views import decode_config

from conftest import small_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pyramid"))
from test_browser import BROWSER_DIR, browser_tools, correlation, load_png  # noqa: E402

pytestmark = pytest.mark.browser


def viewer_part(stage: dict, shot: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The middle of the picture as the viewer draws it, and that part as fractions of the picture."""
    x, y, w, h = stage["rect"]
    cx, cy, cw, ch = stage["container"]
    x0, y0, x1, y1 = max(x, cx), max(y, cy), min(x + w, cx + cw), min(y + h, cy + ch)
    mx, my = (x1 - x0) * 0.2, (y1 - y0) * 0.2
    box = (x0 + mx, y0 + my, x1 - mx, y1 - my)
    part = shot[int(box[1]):int(box[3]), int(box[0]):int(box[2])]
    return part, ((box[0] - x) / w, (box[1] - y) / h, (box[2] - x) / w, (box[3] - y) / h)


def matches_render(stage: dict) -> float:
    """Correlation of the viewer's picture with render_array of the config the page's URL holds."""
    cfg = decode_config(stage["hash"].split("c=", 1)[1].split("&", 1)[0])
    shot = load_png(stage["screenshot"])
    part, (fx0, fy0, fx1, fy1) = viewer_part(stage, shot)
    full = render_array(cfg).astype(np.float64)
    H, W = full.shape[:2]
    crop = full[int(fy0 * H):int(fy1 * H), int(fx0 * W):int(fx1 * W)]
    img = pyvips.Image.new_from_array(np.ascontiguousarray(crop))
    img = img.resize(part.shape[1] / img.width, vscale=part.shape[0] / img.height, kernel="linear")
    ref = img.numpy()[: part.shape[0], : part.shape[1]].astype(np.float64)
    return correlation(part[: ref.shape[0], : ref.shape[1]], ref)


def test_explore_page_in_chromium(tmp_path):
    chromium, node = browser_tools()
    env_osd = os.environ.get("BIGCPPN_OPENSEADRAGON")
    os.environ["BIGCPPN_OPENSEADRAGON"] = str(BROWSER_DIR / "node_modules" / "openseadragon")
    try:
        srv = make_explore_server(small_config(600, 400, seed=3), port=0, out=tmp_path / "out")
    finally:
        if env_osd is None:
            os.environ.pop("BIGCPPN_OPENSEADRAGON", None)
        else:
            os.environ["BIGCPPN_OPENSEADRAGON"] = env_osd
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        job = {"chromium": chromium, "out": str(tmp_path), "url": srv.url, "slider": "weight_scale", "value": 2.5,
               "screenshot": str(tmp_path / "page.png"), "print": {"width": 96, "height": 64, "format": "png"}, "useView": True}
        (tmp_path / "job.json").write_text(json.dumps(job))
        proc = subprocess.run([node, str(BROWSER_DIR / "explore.mjs"), str(tmp_path / "job.json")],
                              capture_output=True, text=True, timeout=400, cwd=BROWSER_DIR)
    finally:
        srv.shutdown(10)
        srv.server_close()
        srv.close()
        t.join(10)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    (tmp_path / "report.json").write_text(json.dumps(report, indent=1))
    assert not report["errors"], report["errors"]
    bad = [r for r in report["responses"] if r["status"] not in (200, 304, 409)]
    assert not bad, bad[:5]
    home, moved, again, zoomed, used = report["stages"]
    assert home["cells"] >= 24 and home["explore"]["gridLoads"] >= 1
    # the slider changed the picture, and the view settled to the render of the config the page shows
    a, b = load_png(home["screenshot"]), load_png(moved["screenshot"])
    pa, _ = viewer_part(home, a)
    pb, _ = viewer_part(moved, b)
    assert np.abs(pa - pb).mean() > 10, "moving the slider did not change the picture"
    assert "weight_scale = 2.5" in moved["toml"] and "weight_scale = 1.0" in home["toml"]
    for s in (home, moved):
        assert matches_render(s) > 0.9, s["label"]
    # history goes back and forward; a favourite is kept; the print panel plans, then its job writes the file
    assert "weight_scale = 1.0" in report["backToml"] and report["forwardToml"] == moved["toml"]
    assert report["favourites"] > 0
    assert report["plan"].startswith("96×64 px"), report["plan"]
    made = srv.out / report["download"].removeprefix("/out/")
    assert made.parent == srv.out and pyvips.Image.new_from_file(str(made)).width == 96
    # the permalink reopens the same picture
    assert again["hash"] == moved["hash"] and again["toml"] == moved["toml"]
    pc, _ = viewer_part(again, load_png(again["screenshot"]))
    assert pc.shape == pb.shape and np.abs(pc - pb).mean() < 2
    # "use the viewer's view": the new config's picture is what the viewer showed, where it showed it
    assert "zoom = 2.0" in used["toml"] or "zoom = 1.99" in used["toml"] or "zoom = 2.00" in used["toml"], used["toml"]
    assert matches_render(used) > 0.9
    za, ua = load_png(zoomed["screenshot"]), load_png(used["screenshot"])
    part, _ = viewer_part(used, ua)
    x, y, w, h = used["rect"]
    cx, cy, cw, ch = used["container"]
    x0, y0 = max(x, cx), max(y, cy)
    mx, my = (min(x + w, cx + cw) - x0) * 0.2, (min(y + h, cy + ch) - y0) * 0.2
    same = za[int(y0 + my):int(y0 + my) + part.shape[0], int(x0 + mx):int(x0 + mx) + part.shape[1]]
    assert correlation(part, same) > 0.9
    shot = os.environ.get("BIGCPPN_EXPLORE_SCREENSHOT")
    if shot:
        shutil.copyfile(tmp_path / "page.png", shot)
