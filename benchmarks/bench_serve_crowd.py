"""`bigcppn serve` against a crowd that leaves, and how fast it stops (issue #21's server targets).

Three measurements on a real `python3 -m bigcppn serve --port 0` on 127.0.0.1:

1. **stop time**: one tile answered, then SIGINT (Ctrl-C): seconds until the process has exited
   (3 servers; the issue measured 2.4 s);
2. **a normal tile after an abandoned crowd**: N connections (default 3,000) each ask for a different deep
   tile (a fresh render each) and close at once; then one normal client asks for a tile nobody asked for.
   Its latency against the same tile's on an idle server of the same run (the baseline). Target: under 1 s;
3. **SIGTERM after the crowd**: seconds until the server has exited (target: under 5 s).

    python3 benchmarks/bench_serve_crowd.py
    python3 benchmarks/bench_serve_crowd.py --crowd 1000 --stops 1
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--width", "1024", "--height", "768", "--seed", "2"]
BASE_LEVEL = 10  # 1024 px across: level 10; deeper levels are the zoom past the base


def start() -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "bigcppn", "serve", "--port", "0", *ARGS], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not m:
        proc.kill()
        raise SystemExit(f"the server did not start: {line}{proc.stderr.read()}")
    return proc, int(m.group(1))


def get(port: int, path: str) -> float:
    """Seconds to GET ``path`` (a 200 JPEG, else SystemExit)."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    if r.status != 200 or body[:2] != b"\xff\xd8":
        raise SystemExit(f"{path}: {r.status}")
    return time.perf_counter() - t0


def stop(proc: subprocess.Popen, sig: int) -> tuple[float, int, str]:
    """Send ``sig``; the seconds until the process exited, its status and its stderr."""
    t0 = time.perf_counter()
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=120)
    return time.perf_counter() - t0, proc.returncode, err


def crowd(port: int, n: int) -> float:
    """``n`` clients that connect, ask for a different deep tile each, and close without reading; seconds."""
    t0 = time.perf_counter()
    level = BASE_LEVEL + 8
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(f"GET /image_files/{level}/{i % 1000}_{100 + i // 1000}.jpeg HTTP/1.1\r\n"
                  "Host: x\r\n\r\n".encode())
        s.close()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crowd", type=int, default=3000, help="abandoned requests (default 3000)")
    ap.add_argument("--stops", type=int, default=3, help="servers started and stopped by Ctrl-C (default 3)")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")

    stops = []
    for _ in range(args.stops):
        proc, port = start()
        get(port, f"/image_files/{BASE_LEVEL - 2}/0_0.jpeg")
        secs, status, err = stop(proc, signal.SIGINT)
        stops.append(secs)
        print(f"Ctrl-C: stopped in {secs:.2f} s, exit {status}; stderr: {err.strip().splitlines()[-1:]}")

    proc, port = start()
    try:
        probe = f"/image_files/{BASE_LEVEL + 6}/100_100.jpeg"
        get(port, f"/image_files/{BASE_LEVEL + 6}/101_100.jpeg")  # warm: the first deep tile's set-up
        idle = get(port, probe.replace("100_100", "102_100"))
        effort = crowd(port, args.crowd)
        after = get(port, probe)
    finally:
        secs, status, err = stop(proc, signal.SIGTERM)
    last = err.strip().splitlines()[-1:] if err.strip() else []
    print(f"{args.crowd} abandoned requests sent in {effort:.2f} s")
    print(f"a normal tile: idle {idle * 1000:.0f} ms, right after the crowd {after * 1000:.0f} ms "
          f"({after / idle:.1f}x idle; target under 1 s)")
    print(f"SIGTERM after the crowd: exited in {secs:.2f} s with {status} (target under 5 s); stderr: {last}")
    if stops:
        print(f"Ctrl-C stop: median {sorted(stops)[len(stops) // 2]:.2f} s over {len(stops)} servers "
              f"(was 2.4 s in the issue)")
    print(f"machine after: load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
