"""`bigcppn serve` against hostile and heavy clients: malformed openings, timeouts, pipelining, crowds of
idle connections, the connection cap, load, early disconnects, loopback, caching headers. Every test is bounded in
connections and time; latency targets are asserted with generous margins (the machine is shared).

Figures for docs/reliability.md: run with `-s` (and `-m slow` for the 1,000-connection case); lines start
"figure:". The real-process cases (descriptor limit, SIGTERM, soak) are in test_serve_process.py.
"""

import http.client
import re
import socket
import threading
import time

import pytest
import torch

from bigcppn import cli
from bigcppn.server.httpbase import Limits, connection_cap, is_loopback, raise_fd_limit
from bigcppn.pyramid.images import encode_tile
from bigcppn.server.app import config_tag, exposure_note, make_server

from conftest import small_config

W, H = 300, 200


def start(limits=None, **kw):
    srv = make_server(small_config(W, H, seed=5), port=0, device=torch.device("cpu"), limits=limits, **kw)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv


def stop(srv):
    srv.shutdown(grace=5)
    srv.server_close()
    srv.service.stop()


@pytest.fixture(scope="module")
def server():
    srv = start(Limits(idle_timeout=2.0))
    yield srv
    stop(srv)


def get(srv, path, headers=None, timeout=60):
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def raw(srv, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send bytes on a fresh connection; (what came back up to the end of the head, closed by the server)."""
    with socket.create_connection(srv.server_address[:2], timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        got = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError, socket.timeout):
                return got, True
            if not chunk:
                return got, True
            got += chunk
            if b"\r\n\r\n" in got and b"Connection: close" not in got.split(b"\r\n\r\n")[0]:
                return got, False
        raise AssertionError(f"no answer and not closed within {timeout} s: {got[:200]!r}")


def status_of(reply: bytes) -> int | None:
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", reply)
    return int(m.group(1)) if m else None


TLS_HELLO = bytes.fromhex("16030100a5010000a10303") + bytes(range(32)) + bytes.fromhex(
    "000020c02bc02fc02cc030cca9cca8c013c014009c009d002f0035c012000a0100005800000018001600001365"
    "78616d706c652e756c666865696d2e6e6574")
HOST = b"Host: x\r\n"
MALFORMED = [
    ("tls hello", TLS_HELLO, 400),
    ("http/0.9", b"GET /\r\n", 400),
    ("http/0.9 blank", b"GET /\r\n\r\n", 400),
    ("binary garbage", bytes([0xFF, 0xFE, 0x00, 0x01]) * 16, 400),
    ("only empty lines", b"\r\n" * 20, 400),
    ("lower-case method", b"get / HTTP/1.1\r\n" + HOST + b"\r\n", 501),
    ("unknown method", b"BREW / HTTP/1.1\r\n" + HOST + b"\r\n", 501),
    ("long method", b"A" * 100 + b" / HTTP/1.1\r\n\r\n", 400),
    ("post with body", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\n\r\nabc", 405),
    ("delete", b"DELETE /image.dzi HTTP/1.1\r\n" + HOST + b"\r\n", 405),
    ("connect", b"CONNECT example.com:443 HTTP/1.1\r\n" + HOST + b"\r\n", 400),  # authority form
    ("http/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    ("http/9.9", b"GET / HTTP/9.9\r\n" + HOST + b"\r\n", 505),
    ("not http", b"GET / HTTPS/1.1\r\n" + HOST + b"\r\n", 400),
    ("double space", b"GET  / HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("four words", b"GET / HTTP/1.1 x\r\n" + HOST + b"\r\n", 400),
    ("huge request line", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", 414),
    ("200 headers", b"GET / HTTP/1.1\r\n" + HOST + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n", 431),
    ("20 kB header", b"GET / HTTP/1.1\r\n" + HOST + b"X-Big: " + b"y" * 20000 + b"\r\n\r\n", 431),
    ("NUL in path", b"GET /\x00 HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("NUL in a field", b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\x00b\r\n\r\n", 400),
    ("field without colon", b"GET / HTTP/1.1\r\n" + HOST + b"nonsense\r\n\r\n", 400),
    ("folded field", b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\r\n  b\r\n\r\n", 400),
    ("no host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two hosts", b"GET / HTTP/1.1\r\n" + HOST + HOST + b"\r\n", 400),
    ("chunked get", b"GET / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("negative length", b"GET / HTTP/1.1\r\n" + HOST + b"Content-Length: -1\r\n\r\n", 400),
    ("dot dot", b"GET /../../../etc/passwd HTTP/1.1\r\n" + HOST + b"\r\n", 404),
    ("encoded dot dot", b"GET /image_files/..%2f..%2fetc%2fpasswd HTTP/1.1\r\n" + HOST + b"\r\n", 404),
    ("absolute form dot dot", b"GET http://x/../../etc/passwd HTTP/1.1\r\n" + HOST + b"\r\n", 404),
    ("absurd level", b"GET /image_files/99999999999999999999999/0_0.jpeg HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("absurd column", b"GET /image_files/12/99999999999999999999_0.jpeg HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("level past the deepest", b"GET /image_files/999/0_0.jpeg HTTP/1.1\r\n" + HOST + b"\r\n", 404),
    ("negative column", b"GET /image_files/12/-1_0.jpeg HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("another image's version", b"GET /v/0123456789abcdef/image.dzi HTTP/1.1\r\n" + HOST + b"\r\n", 404),
]


# well-formed HTTP asking for what does not exist: answered, and the connection may serve more
READABLE = {"dot dot", "encoded dot dot", "absolute form dot dot", "absurd level", "absurd column",
            "level past the deepest", "negative column", "another image's version"}


@pytest.mark.parametrize("data,expected,readable", [pytest.param(d, s, n in READABLE, id=n) for n, d, s in MALFORMED])
def test_malformed_openings_are_answered_at_once_and_the_server_goes_on(server, data, expected, readable):
    reply, closed = raw(server, data)
    assert status_of(reply) == expected, reply[:200]
    assert b"root:" not in reply
    assert closed != readable, "a request that could not be read ends its connection"
    assert get(server, "/image.dzi")[0] == 200


def test_idle_and_slow_connections_are_closed_after_the_timeout(server):
    with socket.create_connection(server.server_address[:2], timeout=20) as idle:
        assert idle.recv(10) == b"", "an idle connection is closed (idle_timeout 2 s here)"
    with socket.create_connection(server.server_address[:2], timeout=20) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            while time.monotonic() - t0 < 20:  # a header every 0.2 s does not buy more time
                slow.sendall(b"X-Drip: 1\r\n")
                time.sleep(0.2)
                slow.setblocking(False)
                try:
                    if slow.recv(10) == b"":
                        raise ConnectionResetError("closed")
                except BlockingIOError:
                    pass
                slow.setblocking(True)
    assert server.counters.timed_out >= 2


def test_requests_on_one_connection_and_pipelined(server):
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(b"GET /image.dzi HTTP/1.1\r\nHost: x\r\n\r\nHEAD /image.dzi HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /image_files/0/0_0.jpeg HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)] == [200, 200, 200]
    assert data.count(b"<?xml") == 1 and data.endswith(b"\xff\xd9")
    n = 3000  # a long pipeline is answered in order, without recursion or a stall
    with socket.create_connection((host, port), timeout=30) as s:
        sender = threading.Thread(target=s.sendall, args=(b"HEAD /image.dzi HTTP/1.1\r\nHost: x\r\n\r\n" * n
                                                          + b"GET / HTTP/1.0\r\n\r\n",))
        sender.start()
        data = b""
        while chunk := s.recv(1 << 16):
            data += chunk
        sender.join(30)
    assert data.count(b"HTTP/1.1 200 OK\r\n") == n + 1 and data.endswith(b"</html>\n")


def flood(srv, n: int, partial: bool = True) -> list[socket.socket]:
    socks = []
    for i in range(n):
        s = socket.create_connection(srv.server_address[:2], timeout=30)
        if partial and i % 2:
            s.sendall(b"GET /image.dzi HTTP/1.1\r\nHost: x\r\n")  # a head never finished
        socks.append(s)
    return socks


def wait_for(cond, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


@pytest.mark.parametrize("n,bound", [(300, 10.0), pytest.param(1000, 1.0, marks=pytest.mark.slow)])
def test_a_tile_is_answered_among_half_open_connections(n, bound):
    if raise_fd_limit() < 2 * n + 200:
        pytest.skip("not enough file descriptors here for both ends of the flood")
    srv = start(Limits(idle_timeout=60))
    socks = []
    try:
        socks = flood(srv, n)
        assert wait_for(lambda: srv.counters.peak_open >= n), srv.counters
        t0 = time.monotonic()
        status, headers, body = get(srv, "/image_files/12/3_2.jpeg", timeout=30)
        elapsed = time.monotonic() - t0
        assert status == 200 and body[:2] == b"\xff\xd8"
        held = len(srv._conns)
        print(f"\nfigure: {n} half-open connections held ({held} open), a fresh tile answered in "
              f"{elapsed * 1000:.0f} ms")
        assert held >= n and srv.counters.evicted == 0
        assert elapsed < bound
    finally:
        for s in socks:
            s.close()
        stop(srv)


def test_at_the_cap_the_oldest_idle_makes_room_else_503():
    srv = start(Limits(max_connections=10, min_evict_age=30))
    socks = []
    try:
        socks = flood(srv, 10, partial=False)
        assert wait_for(lambda: srv.counters.accepted >= 10)
        reply, closed = raw(srv, b"GET /image.dzi HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(reply) == 503 and b"Retry-After: 1" in reply and closed
        srv.limits.min_evict_age = 0.0  # now the idle ones are old enough to go
        assert get(srv, "/image.dzi", timeout=30)[0] == 200
        assert srv.counters.evicted >= 1 and srv.counters.refused == 1
    finally:
        for s in socks:
            s.close()
        stop(srv)
    assert connection_cap(None, 1024) < 1024 and connection_cap(None, 1 << 20) == 10_000
    assert connection_cap(50_000, 20_000) < 20_000


def test_load_every_answer_is_200_and_the_right_tile(server):
    svc = server.service
    base = svc.pyramid.base_level.index
    paths = {f"/image_files/{lv}/{c}_{r}.jpeg": (lv, c, r) for lv in (base, base + 1, base + 2)
             for c in range(3) for r in range(2)
             if c < svc.pyramid.level(lv).cols and r < svc.pyramid.level(lv).rows}
    keys = list(paths)
    answers, latencies, failures = [], [], []

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
        try:
            for j in range(20):
                path = keys[(i * 7 + j) % len(keys)]
                t0 = time.monotonic()
                conn.request("GET", path)
                r = conn.getresponse()
                answers.append((path, r.status, r.read()))
                latencies.append(time.monotonic() - t0)
        except Exception as exc:  # reported below
            failures.append(repr(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not failures and len(answers) == 400, failures[:3]
    assert all(status == 200 for _p, status, _b in answers), {(p, s, b[:120]) for p, s, b in answers if s != 200}
    expected = {}
    for path, (lv, c, r) in paths.items():  # each tile rendered again on its own, encoded the same way
        t = svc.pyramid.tile_at(lv, c, r)
        arr = svc.sampler.render_many([(t.shift, t.x, t.y, t.width, t.height)], svc._k(t))[0]
        expected[path] = encode_tile(arr, svc.pyramid.codec, svc.quality)
    assert all(body == expected[path] for path, _s, body in answers), "a tile went to the wrong request"
    lat = sorted(latencies)
    print(f"\nfigure: load 20 clients x 20 requests: {len(answers)} answers, {len(paths)} distinct tiles, "
          f"p50 {lat[len(lat) // 2] * 1000:.0f} ms, p99 {lat[int(len(lat) * 0.99)] * 1000:.0f} ms")


def test_a_client_that_goes_away_is_one_line_at_verbose_only(capfd):
    errs = []
    for verbose in (False, True):
        srv = make_server(small_config(W, H, seed=5), port=0, device=torch.device("cpu"), verbose=verbose,
                          start=False)  # the device thread waits: the tile stays in flight
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        try:
            s = socket.create_connection(srv.server_address[:2], timeout=10)
            s.sendall(b"GET /image_files/14/9_7.jpeg HTTP/1.1\r\nHost: x\r\n\r\n")
            assert wait_for(lambda: srv.service.stats.requests == 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()  # a reset, before the tile is sent
            srv.service.start()
            assert wait_for(lambda: srv.counters.gone == 1), srv.counters
        finally:
            stop(srv)
        errs.append(capfd.readouterr().err)
    assert errs[0] == ""
    assert "Traceback" not in errs[1]
    gone = [ln for ln in errs[1].splitlines() if "went away" in ln]
    assert len(gone) == 1 and "/image_files/14/9_7.jpeg" in gone[0], errs[1]


def test_loopback_is_any_127_address_or_ipv6_one():
    for a in ("127.0.0.1", "127.1.2.3", "127.255.255.254", "::1", "::ffff:127.0.0.1"):
        assert is_loopback(a), a
    for a in ("0.0.0.0", "::", "10.0.0.1", "192.168.1.20", "128.0.0.1", "::ffff:10.0.0.1", "localhost", ""):
        assert not is_loopback(a), a
    srv = make_server(small_config(64, 64), host="127.1", port=0, device=torch.device("cpu"), start=False)
    try:  # `--host 127.1` is 127.0.0.1: no warning
        assert srv.server_address[0] == "127.0.0.1" and exposure_note(srv) is None
    finally:
        srv.server_close()
        srv.service.stop()


def test_tiles_are_cached_as_immutable_at_the_config_address_with_cors():
    srv = start(cors=True)
    try:
        tag = srv.etag
        status, h, body = get(srv, f"/v/{tag}/image_files/9/0_0.jpeg")
        assert status == 200 and h["Cache-Control"] == "public, max-age=31536000, immutable"
        assert h["ETag"] == f'"{tag}-9-0-0"' and h["Access-Control-Allow-Origin"] == "*"
        status, h2, body2 = get(srv, "/image_files/9/0_0.jpeg")  # the address another config may take
        assert status == 200 and body2 == body and h2["Cache-Control"] == "no-cache" and h2["ETag"] == h["ETag"]
        status, h3, body3 = get(srv, f"/v/{tag}/image_files/9/0_0.jpeg", {"If-None-Match": h["ETag"]})
        assert status == 304 and body3 == b"" and "immutable" in h3["Cache-Control"]
        status, hd, _b = get(srv, f"/v/{tag}/image.dzi")
        assert status == 200 and "immutable" in hd["Cache-Control"] and hd["Access-Control-Allow-Origin"] == "*"
        assert get(srv, f"/v/{tag}/index.html")[0] == 404
    finally:
        stop(srv)
    cfg = small_config(W, H, seed=5)
    extra = {"tile": 254, "overlap": 1, "extra": 40, "k": 2, "q": 90, "v": "x"}
    assert config_tag(cfg, extra) == config_tag(small_config(W, H, seed=5), extra)
    assert config_tag(cfg, extra) != config_tag(small_config(W, H, seed=6), extra)
    assert config_tag(cfg, extra) != config_tag(cfg, {**extra, "q": 91})
    assert cli.build_parser().parse_args(["serve", "--cors"]).cors


def test_without_cors_no_cors_header(server):
    status, h, _b = get(server, "/image.dzi")
    assert status == 200 and "Access-Control-Allow-Origin" not in h
