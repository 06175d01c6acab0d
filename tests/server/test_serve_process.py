"""`bigcppn serve` as a real process (`python3 -m bigcppn serve --port 0`) against hostile clients:
the descriptor limit, SIGTERM with tiles in flight, and a soak under load (slow) whose RSS must stay flat.

Figures for docs/reliability.md: run with `-s` (and `-m slow` for the soak); lines start "figure:".
"""

import http.client
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import pyvips

from bigcppn.server.httpbase import raise_fd_limit

from test_serve_hostile import MALFORMED, status_of


def serve_process(*args, fd_limit: int | None = None) -> tuple[subprocess.Popen, int]:
    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    proc = subprocess.Popen([sys.executable, "-m", "bigcppn", "serve", "--port", "0", "--seed", "2", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=limit if fd_limit else None)
    line = proc.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not m:
        proc.kill()
        raise AssertionError(line + proc.stderr.read())
    return proc, int(m.group(1))


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_at_the_descriptor_limit_it_neither_spins_nor_stops_answering():
    """The adversary's case: more half-open connections than the server has descriptors (here 256)."""
    if raise_fd_limit() < 600:
        pytest.skip("not enough file descriptors here for the client side")
    proc, port = serve_process("--width", "128", "--height", "96", fd_limit=256)
    socks = []
    try:
        socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(300)]
        time.sleep(1.5)  # all accepted or refused; the oldest are now old enough to make room
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(2.0)
        busy = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/image_files/7/0_0.jpeg")
        r = conn.getresponse()
        assert r.status == 200 and r.read()[:2] == b"\xff\xd8"
        conn.close()
        refused = 0
        for s in socks:
            s.setblocking(False)
            try:
                refused += s.recv(100).startswith(b"HTTP/1.1 503 ")
            except (BlockingIOError, ConnectionResetError):
                pass
        print(f"\nfigure: 300 connections against 256 descriptors: {refused} answered 503, CPU {busy:.0%} "
              "while held, a tile answered after")
        assert refused > 0 and busy < 0.5, f"{busy:.0%} of a core while the connections are held"
    finally:
        for s in socks:
            s.close()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in err, err


def read_answer(s: socket.socket) -> tuple[int, bytes]:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    head, _sep, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    assert len(body) == length, (len(body), length)
    return status_of(head), body


def test_sigterm_finishes_the_tiles_being_rendered_drops_the_rest_and_exits_143():
    proc, port = serve_process("--width", "256", "--height", "192", "--tile", "1024")
    socks = []
    try:
        for col, row in [(0, 0), (1, 0), (0, 1), (1, 1)]:  # level 11: 2048x1536, four 1 MPix tiles
            s = socket.create_connection(("127.0.0.1", port), timeout=60)
            s.sendall(f"GET /image_files/11/{col}_{row}.jpeg HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            socks.append(s)
        time.sleep(0.3)  # read by the server, being rendered
        proc.send_signal(signal.SIGTERM)
        statuses = []
        for s in socks:  # the batch being rendered is finished; tiles not begun are dropped (503)
            status, body = read_answer(s)
            statuses.append(status)
            if status == 503:
                assert b"the server is stopping" in body
                continue
            assert status == 200 and body[:2] == b"\xff\xd8" and body[-2:] == b"\xff\xd9"
            assert pyvips.Image.new_from_buffer(body, "").width == 1025
        assert 200 in statuses, statuses
    finally:
        for s in socks:
            s.close()
        try:
            _out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 143, err
    assert "stopped after 4 requests" in err and "Traceback" not in err, err


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def soak_tiles(port: int, until: float, seed: int, counts: dict) -> None:
    """Deep tiles at random (base 256x192 is level 8): nearly every one a fresh render; the cache churns."""
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while time.monotonic() < until:
        level = rng.randrange(8, 24)
        cols, rows = -(-(256 << (level - 8)) // 254), -(-(192 << (level - 8)) // 254)
        conn.request("GET", f"/image_files/{level}/{rng.randrange(cols)}_{rng.randrange(rows)}.jpeg")
        r = conn.getresponse()
        body = r.read()
        counts["ok" if r.status == 200 and body[:2] == b"\xff\xd8" else "bad"] += 1
    conn.close()


def soak_hostile(port: int, until: float, counts: dict) -> None:
    """Crowds of half-open connections and malformed openings, over and over."""
    while time.monotonic() < until:
        socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(100)]
        for s, (_n, data, _status) in zip(socks, MALFORMED * 3):
            try:
                s.sendall(data)
            except OSError:
                pass
        time.sleep(0.5)
        for s in socks:
            s.close()
        counts["hostile"] += len(socks)


@pytest.mark.slow
def test_soak_memory_stays_flat_under_load():
    duration = float(os.environ.get("BIGCPPN_SOAK_S", "180"))
    proc, port = serve_process("--width", "256", "--height", "192", "--cache-mb", "16")
    counts = {"ok": 0, "bad": 0, "hostile": 0}
    until = time.monotonic() + duration
    threads = [threading.Thread(target=soak_tiles, args=(port, until, i, counts)) for i in range(3)]
    threads.append(threading.Thread(target=soak_hostile, args=(port, until, counts)))
    samples = []
    try:
        for t in threads:
            t.start()
        while time.monotonic() < until:
            samples.append((duration - (until - time.monotonic()), rss_kib(proc.pid)))
            time.sleep(2)
        for t in threads:
            t.join(120)
        samples.append((duration, rss_kib(proc.pid)))
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    warm = [kib for t, kib in samples if t >= duration / 4]  # after the cache has filled
    base, end, peak = warm[0], samples[-1][1], max(warm)
    growth = end / base - 1
    print(f"\nfigure: soak {duration:.0f} s: {counts['ok']} tiles, {counts['hostile']} hostile connections, "
          f"RSS {base / 1024:.0f} MiB at {duration / 4:.0f} s -> {end / 1024:.0f} MiB at the end "
          f"(peak {peak / 1024:.0f} MiB), growth {growth:+.1%}; every 30 s: "
          + " ".join(f"{kib / 1024:.0f}" for t, kib in samples if int(t) % 30 < 2))
    assert counts["bad"] == 0 and counts["ok"] > 0, counts
    assert growth < 0.10 and proc.returncode == 143 and "Traceback" not in err, err
