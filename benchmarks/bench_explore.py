"""`bigcppn explore`: how fast the page fills and answers, against doing the same work one picture at a time.

    python benchmarks/bench_explore.py [--play 60] [--no-browser]

Over HTTP, on a server in this process (127.0.0.1):
- 24 thumbnails of 192 px: one /api/sheet request (the 24 seeds in one batched pass, JPEG), against the
  baseline of 24 render_array calls, one seed each, in the same run; ratio printed;
- a coarse preview (/api/preview, 192 px) and the sharp view (the 512x512 canvas' base-level tiles,
  rendered live), after a setting changed, against render_array of the 512x512 picture;
- the server's RSS before and after ``--play`` seconds of scripted slider play (a new weight scale every
  100 ms: view, preview and the base tiles of each, the older ones superseded);
and, with chromium and tests/browser's npm packages, in the browser: the grid on screen after opening the
page, and a slider change's preview and sharp view (tests/browser/explore.mjs).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machine import machine  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--play", type=float, default=60.0, help="seconds of scripted slider play (default 60)")
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()

    import torch

    import bigcppn
    from bigcppn.config import config_to_dict
    from bigcppn.studio.app import TOKEN_HEADER
    from bigcppn.studio.run import make_explore_server

    print(machine(torch.device("cpu")))
    cfg = bigcppn.load_config(None, ["canvas.width=512", "canvas.height=512", "render.device=cpu"])
    out = Path(tempfile.mkdtemp(prefix="bench-explore-"))
    srv = make_explore_server(cfg, port=0, out=out)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]

    def get(path: str) -> bytes:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request("GET", path, headers={TOKEN_HEADER: srv.token})
        r = c.getresponse()
        body = r.read()
        c.close()
        assert r.status == 200, (path[:80], r.status, body[:200])
        return body

    def enc(scale: float) -> str:
        d = config_to_dict(cfg)
        d["network"]["weight_scale"] = scale
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    def timed(fn, repeat: int = 3) -> float:
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        return best

    get(f"/api/sheet?c={enc(1.0)}&page=0&cell=32")  # warm up torch
    t = time.perf_counter()
    get(f"/api/sheet?c={enc(1.0)}&page=1&cell=192")
    first = time.perf_counter() - t
    sheet = timed(lambda: get(f"/api/sheet?c={enc(1.0)}&page=2&cell=192"))
    one = timed(lambda: [bigcppn.render_array(cfg, width=192, height=192, seed=s) for s in range(24)], 1)
    print(f"24 thumbnails of 192 px: {sheet:.3f} s batched over HTTP (first page {first:.3f} s), "
          f"{one:.3f} s as 24 render_array calls; ratio {one / sheet:.2f}x")

    scale = iter(range(10_000))

    def preview() -> None:
        get(f"/api/preview?c={enc(1.0 + next(scale) * 1e-3)}&size=192")

    def sharp() -> None:
        v = json.loads(get(f"/api/view?c={enc(1.0 + next(scale) * 1e-3)}"))
        level = 9  # the base level of 512 px
        for col in range(3):
            for row in range(3):
                try:
                    get(f"/live/{v['tag']}/image_files/{level}/{col}_{row}.jpeg")
                except AssertionError:  # 512 px = 2 full tiles and a 4 px one; no third where absent
                    pass

    tp, ts = timed(preview, 5), timed(sharp, 3)
    full = timed(lambda: bigcppn.render_array(cfg), 3)
    print(f"after a change: coarse preview {tp * 1000:.0f} ms, sharp 512x512 view (live tiles) {ts * 1000:.0f} ms; "
          f"render_array 512x512 {full * 1000:.0f} ms (sharp/render_array {ts / full:.2f}x)")

    if args.play > 0:
        r0, samples = rss_mb(), []
        start = time.monotonic()
        end, n, next_sample = start + args.play, 0, start + args.play / 8
        while time.monotonic() < end:
            sharp() if n % 5 == 0 else preview()
            n += 1
            time.sleep(0.1)
            if time.monotonic() >= next_sample:
                samples.append(f"{rss_mb():.0f}")
                next_sample += args.play / 8
        print(f"{args.play:.0f} s of slider play ({n} changes): RSS {r0:.0f} MB before, then every "
              f"{args.play / 8:.0f} s: {' '.join(samples)} MB")

    if not args.no_browser:
        browser(srv.url, out)
    srv.shutdown(10)
    srv.server_close()
    srv.close()
    shutil.rmtree(out, ignore_errors=True)


def browser(url: str, out: Path) -> None:
    chromium, node = shutil.which("chromium"), shutil.which("node")
    mjs = ROOT / "tests" / "browser" / "explore.mjs"
    if not chromium or not node or not (mjs.parent / "node_modules" / "playwright-core").is_dir():
        print("browser: skipped (needs chromium, node and tests/browser's npm packages)")
        return
    job = out / "job.json"
    job.write_text(json.dumps({"chromium": chromium, "out": str(out), "url": url, "slider": "weight_scale",
                               "value": 2.5}))
    p = subprocess.run([node, str(mjs), str(job)], capture_output=True, text=True, timeout=300, cwd=mjs.parent)
    r = json.loads(p.stdout)
    e = r["stages"][0]["explore"]
    print(f"browser: 24 thumbnails on screen {e['gridMs']:.0f} ms after the page was asked for, live view sharp "
          f"{e['sharpMs']:.0f} ms; a slider change: preview {r['previewMs']} ms, sharp {r['sharpMs']} ms "
          f"(including the test's 500 ms settle wait)")


if __name__ == "__main__":
    os.environ.setdefault("BIGCPPN_OPENSEADRAGON", str(ROOT / "tests" / "browser" / "node_modules" / "openseadragon"))
    main()
