"""`bigcppn serve`: tiles on demand, batched and cached, levels past the base, float64 deep zoom, bad requests."""

import http.client
import re
import signal
import socket
import subprocess
import sys
import threading
from fractions import Fraction

import numpy as np
import pytest
import pyvips
import torch

from bigcppn import cli
from bigcppn.network.model import _ACTIVATIONS_
from bigcppn.pyramid.grid import max_extra_levels
from bigcppn.network.strips import renderer_for
from bigcppn.server.app import TileCache, make_server
from bigcppn.pyramid.viewer import find_openseadragon

from conftest import psnr, small_config

W, H = 300, 200


@pytest.fixture(scope="module")
def server():
    srv = make_server(small_config(W, H, seed=5), port=0, device=torch.device("cpu"))
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    srv.service.stop()


def get(srv, path, method="GET", headers=None):
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def decode(data: bytes) -> np.ndarray:
    return pyvips.Image.new_from_buffer(data, "").numpy()


def test_page_and_description(server):
    status, headers, body = get(server, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert f'"/v/{server.etag}/image.dzi"' in page, "the page asks for the address that is cached as immutable"
    if find_openseadragon() is not None:  # served from memory, from the npm copy
        assert 'src="/openseadragon/openseadragon.min.js"' in page
        status, headers, body = get(server, "/openseadragon/openseadragon.min.js")
        assert status == 200 and b"OpenSeadragon" in body[:5000] and "javascript" in headers["Content-Type"]
        assert get(server, "/openseadragon/images/home_rest.png")[0] == 200
    else:
        assert "openseadragon.min.js" in page
    status, headers, body = get(server, "/image.dzi")
    assert status == 200 and "xml" in headers["Content-Type"]
    p = server.service.pyramid
    extra = max_extra_levels(W, H, 0.0, 0.0, 1 / H)
    assert p.extra == extra >= 30, "by default the server zooms on as far as float64 resolves"
    text = body.decode()
    assert f'Width="{W << extra}"' in text and f'Height="{H << extra}"' in text
    assert 'TileSize="254"' in text and 'Overlap="1"' in text and 'Format="jpeg"' in text


def test_tiles_below_at_and_past_the_base(server, tmp_path):
    p = server.service.pyramid
    base = p.base_level.index
    # at and below the base: the tiles `bigcppn pyramid` writes (same sampling, JPEG both times)
    assert cli.main(["pyramid", "-o", str(tmp_path / "s.dzi"), "--width", str(W), "--height", str(H),
                     "--seed", "5", "-q"]) == 0
    for level in (base, base - 1, base - 3, 0):
        lv = p.level(level)
        for col, row in {(0, 0), (lv.cols - 1, lv.rows - 1)}:
            status, headers, body = get(server, f"/image_files/{level}/{col}_{row}.jpeg")
            assert status == 200 and headers["Content-Type"] == "image/jpeg"
            ours = decode(body)
            static = decode((tmp_path / f"s_files/{level}/{col}_{row}.jpeg").read_bytes())
            assert ours.shape == static.shape
            assert psnr(ours, static) >= 45, f"level {level} tile {col},{row}"
    # past the base, level base+3 is an 8× larger render of the same view
    r, _plan = renderer_for(small_config(8 * W, 8 * H, seed=5), torch.device("cpu"))
    lv = p.level(base + 3)
    t = p.tile_at(base + 3, 3, 2)
    status, _h, body = get(server, f"/image_files/{base + 3}/3_2.jpeg")
    assert status == 200
    from bigcppn.core.geometry import Window

    big = r.render_window(Window(t.x, t.y, t.width, t.height))
    assert decode(body).shape == big.shape
    assert psnr(decode(body), big) >= 40
    exact = server.service.sampler.render_many([(t.shift, t.x, t.y, t.width, t.height)])[0]
    assert np.abs(exact.astype(int) - big.astype(int)).max() <= 1
    assert (lv.width, lv.height) == (8 * W, 8 * H)


def test_deepest_level_is_served(server):
    p = server.service.pyramid
    deepest = p.levels[-1]
    col, row = deepest.cols // 3, deepest.rows // 2
    status, _h, body = get(server, f"/image_files/{deepest.index}/{col}_{row}.jpeg")
    assert status == 200 and decode(body).shape == (256, 256, 3)
    assert deepest.cols > 10**9


def _float64_reference(model, xs, ys):
    """The network evaluated in float64 throughout (the same weights), at the given coordinates."""
    f = model.features(xs, ys)
    h = f @ model.ref_w[0].t().double() + model.ref_b[0].double()
    for i, act in enumerate(model.acts):
        h = _ACTIVATIONS_[act](h)
        h = h @ model.ref_w[i + 1].double().t() + model.ref_b[i + 1].double()
    return model._finish(h)


def test_a_tile_zoomed_a_million_times_is_smooth_against_float64(server):
    """Level base+20 (2^20 ≈ 10^6 × the base): coordinates, first layer and pixels against exact float64."""
    svc = server.service
    p, sampler = svc.pyramid, svc.sampler
    level = p.base_level.index + 20
    # a tile away from the origin and from binary fractions
    col = int((0.3173 * H + W / 2) * 2**20) // 254
    row = int((-0.2111 * H + H / 2) * 2**20) // 254
    t = p.tile_at(level, col, row)
    assert t.shift == -20 and (t.width, t.height) == (256, 256)
    xs = sampler.sampling.axis(t.x, t.width, True, sampler.device, t.shift, 1)
    ys = sampler.sampling.axis(t.y, t.height, False, sampler.device, t.shift, 1)
    pitch = Fraction(1, H)

    def exact(i, size):
        return float((Fraction(2 * i + 1, 2 ** 21) - Fraction(size, 2)) * pitch)

    ex = torch.tensor([exact(i, W) for i in range(t.x, t.x + t.width)], dtype=torch.float64)
    ey = torch.tensor([exact(j, H) for j in range(t.y, t.y + t.height)], dtype=torch.float64)
    # coordinates: within an ulp of the exact values, every pixel distinct and evenly spaced
    assert (xs - ex).abs().max() <= 2 * float(np.spacing(float(ex.abs().max())))
    step = xs.diff()
    assert (step > 0).all() and (step / (1 / H / 2**20) - 1).abs().max() < 1e-3
    assert torch.unique(xs.float()).numel() < 64, "control: float32 coordinates would repeat in blocks here"
    # the first layer, in float64: distinct pre-activations for every pixel, as the exact ones
    model = sampler.model
    x, y = xs.repeat(t.height), ys.repeat_interleave(t.width)
    h1 = torch.addmm(model.ref_b[0], model.features(x, y), model.ref_w[0].t())
    h1_exact = torch.addmm(model.ref_b[0], model.features(ex.repeat(t.height), ey.repeat_interleave(t.width)),
                           model.ref_w[0].t())
    assert ((h1 - h1_exact).abs() / h1_exact.abs().clamp(min=1e-3)).max() < 1e-9
    row0 = h1[: t.width]
    assert (row0.diff(dim=0).abs() > 0).all(), "every pixel moves every first-layer unit"
    # the pixels the server sends: equal to the float64 reference, and smooth
    ours = sampler.render_many([(t.shift, t.x, t.y, t.width, t.height)])[0].astype(int)
    with torch.no_grad():
        ref = _float64_reference(model, ex.repeat(t.height), ey.repeat_interleave(t.width))
    ref = (ref * 255 + 0.5).floor().numpy().astype(int).reshape(ours.shape)
    assert np.abs(ours - ref).max() <= 1 and (ours == ref).mean() >= 0.99
    assert np.abs(np.diff(ours, axis=0)).max() <= 1 and np.abs(np.diff(ours, axis=1)).max() <= 1
    status, _h, body = get(server, f"/image_files/{level}/{col}_{row}.jpeg")
    assert status == 200 and np.abs(decode(body).astype(int) - ref).max() <= 3


def test_cache_and_conditional_requests(server):
    svc = server.service
    p = svc.pyramid
    path = f"/image_files/{p.base_level.index - 1}/0_0.jpeg"
    status, headers, first = get(server, path)
    rendered = svc.stats.tiles_rendered
    status2, _h, second = get(server, path)
    assert status == status2 == 200 and first == second
    assert svc.stats.tiles_rendered == rendered, "the second request is answered from the cache"
    status, h304, body = get(server, path, headers={"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""
    status, hhead, body = get(server, path, method="HEAD")
    assert status == 200 and body == b"" and int(hhead["Content-Length"]) == len(first)


def test_requests_arriving_together_are_batched():
    srv = make_server(small_config(W, H, seed=5), port=0, device=torch.device("cpu"), start=False)
    svc = srv.service
    try:
        base = svc.pyramid.base_level.index
        keys = [(base, c, r) for c in range(2) for r in range(1)] + [(base - 1, 0, 0), (base + 2, 4, 3),
                                                                       (base + 2, 4, 2), (base + 9, 100, 7)]
        futures = [svc.request(*k) for k in keys]
        again = svc.request(*keys[0])
        assert again is futures[0], "a tile asked for while pending is rendered once"
        svc.start()
        data = [f.result(60) for f in futures]
        assert all(d[:2] == b"\xff\xd8" for d in data)
        assert svc.stats.batches == 1 and svc.stats.largest_batch == len(keys)
        assert svc.stats.tiles_rendered == len(keys)
    finally:
        srv.server_close()
        svc.stop()


def test_lru_cache_is_bounded_in_bytes():
    c = TileCache(100)
    c.put("a", b"x" * 40)
    c.put("b", b"x" * 40)
    assert c.get("a") is not None  # a is now the most recent
    c.put("c", b"x" * 40)
    assert "b" not in c and "a" in c and "c" in c and c.bytes == 80
    c.put("huge", b"x" * 101)
    assert "huge" not in c
    assert c.hits == 1


@pytest.mark.parametrize("path,status", [
    ("/image_files/abc/0_0.jpeg", 400),
    ("/image_files/3/0-0.jpeg", 400),
    ("/image_files/3/0_0.png", 400),
    ("/image_files/03/0_0.jpeg", 400),
    ("/image_files/3/-1_0.jpeg", 400),
    ("/image_files/3/0_0.jpeg/x", 400),
    ("/image_files/3/", 400),
    ("/image_files/1234567/0_0.jpeg", 400),
    ("/image_files/999999/0_0.jpeg", 404),
    ("/image_files/0/1_0.jpeg", 404),
    ("/image_files/0/0_1.jpeg", 404),
    ("/image_files/8/99999999999_0.jpeg", 404),
    ("/../../../../etc/passwd", 404),
    ("/image_files/../../../../etc/passwd", 404),
    ("/image_files/..%2f..%2f..%2fetc%2fpasswd", 404),
    ("/%2e%2e/%2e%2e/%2e%2e/etc/passwd", 404),
    ("/openseadragon/../../../../etc/passwd", 404),
    ("/openseadragon/%2e%2e/%2e%2e/pyproject.toml", 404),
    ("/openseadragon/openseadragon.js", 404),
    ("/openseadragon/images/../../openseadragon.js", 404),
    ("//etc/passwd", 404),
    ("/etc/passwd", 404),
    ("/pyproject.toml", 404),
    ("/bigcppn/serve.py", 404),
    ("/image.dzi/..", 404),
    ("/index.html\\..\\..\\pyproject.toml", 404),
])
def test_bad_requests_get_400_or_404_and_nothing_from_disk(server, path, status):
    got, _h, body = get(server, path)
    assert got == status
    assert b"root:" not in body and b"[project]" not in body and b"import " not in body
    # and the server keeps serving
    assert get(server, "/image_files/0/0_0.jpeg")[0] == 200


def test_garbage_on_the_socket_and_other_methods(server):
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        reply = s.recv(100)
    assert reply.startswith(b"HTTP/1.") and b" 400 " in reply[:20]
    assert get(server, "/", method="POST")[0] == 405
    assert get(server, "/", method="BREW")[0] == 501
    assert get(server, "/image.dzi")[0] == 200


def test_levels_past_the_base_are_limited_by_float64(capsys):
    assert cli.main(["serve", "--width", "64", "--height", "64", "--extra-levels", "60", "--port", "0"]) == 2
    assert "float64 resolves at most" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["-o", "x.dzi"], "serve writes no file"),
    (["--port", "70000"], "--port must be between"),
    (["--quality", "101"], "--quality must be between"),
    (["--set", 'output.cmyk="cmyk"'], "leave out output.cmyk"),  # (issue 21, 5.3: both were accepted)
    (["--host", ""], "--host '' would listen on every interface"),
])
def test_serve_bad_input(capsys, args, message):
    assert cli.main(["serve", "--width", "64", "--height", "64", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_port_in_use(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert cli.main(["serve", "--width", "64", "--height", "64", "--port", str(port)]) == 2
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err


def test_the_command_binds_loopback_answers_and_stops_on_ctrl_c():
    proc = subprocess.Popen([sys.executable, "-m", "bigcppn", "serve", "--width", "128", "--height", "96",
                             "--port", "0", "--seed", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, line + proc.stderr.read()
        conn = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=60)
        conn.request("GET", "/image_files/7/0_0.jpeg")
        r = conn.getresponse()
        assert r.status == 200 and r.read()[:2] == b"\xff\xd8"
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err  # like every other subcommand (issue 21, 5.2: it was 0)
    assert "stopped after" in err
