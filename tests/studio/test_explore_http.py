"""`bigcppn explore` over HTTP: who may ask what (Host, token, Origin), what it refuses (bad configs, paths
out of the output folder, a full queue), and jobs that write what `bigcppn render` writes."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import pyvips

from bigcppn import cli
from bigcppn.config import config_to_dict, dump_toml
from bigcppn.studio.app import TOKEN_HEADER
from bigcppn.studio.run import make_explore_server
from bigcppn.studio.views import PAGE_SEEDS, decode_config, encode_config

from conftest import small_config

CFG = small_config(120, 80, seed=5)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    out = tmp_path_factory.mktemp("explore") / "out"
    srv = make_explore_server(CFG, port=0, out=out)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown(10)
    srv.server_close()
    srv.close()
    t.join(10)


def ask(srv, method: str, path: str, headers: dict | None = None, token: bool = True):
    h = {TOKEN_HEADER: srv.token} if token else {}
    h.update(headers or {})
    c = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=60)
    try:
        c.request(method, path, headers=h)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def enc(**sets) -> str:
    d = config_to_dict(CFG)
    for dotted, v in sets.items():
        node = d
        *head, last = dotted.split("__")
        for k in head:
            node = node[k]
        node[last] = v
    return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")


def wait_jobs(srv, ids, timeout=120) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        jobs = {j["id"]: j for j in json.loads(ask(srv, "GET", "/api/jobs")[2])["jobs"]}
        if all(jobs[i]["state"] not in ("queued", "running") for i in ids):
            return jobs
        time.sleep(0.1)
    raise AssertionError(f"jobs {ids} still running after {timeout} s")


def test_page_carries_the_token_and_the_config(server):
    status, headers, body = ask(server, "GET", "/", token=False)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    text = body.decode()
    assert server.token in text and '"seed": 5' in text
    assert "cdn" not in text.lower() and "https://" not in text  # nothing from the internet
    for name in ("explore.js", "explore.css"):
        assert ask(server, "GET", f"/static/{name}", token=False)[0] == 200


@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1:1", "localhost.evil.example:{port}",
                                  "127.0.0.1.nip.io:{port}"])
def test_a_foreign_host_is_refused(server, host):
    host = host.format(port=server.server_address[1])
    for path in ("/", "/api/jobs", "/static/explore.js"):
        status, _h, body = ask(server, "GET", path, {"Host": host})
        assert status == 403, (host, path)
        assert server.token not in body.decode()
    assert ask(server, "GET", "/", {"Host": f"localhost:{server.server_address[1]}"}, token=False)[0] == 200


def test_the_api_needs_the_token(server):
    c = enc()
    for method, path in [("GET", "/api/jobs"), ("GET", f"/api/view?c={c}"), ("GET", f"/api/sheet?c={c}"),
                         ("POST", f"/api/jobs/print?c={c}&width=8&height=8&format=png"),
                         ("GET", "/live/0123456789abcdef/image_files/0/0_0.jpeg")]:
        for headers in ({}, {TOKEN_HEADER: "x" * len(server.token)}):
            status, _h, body = ask(server, method, path, headers, token=False)
            assert status == 403, (method, path, headers)
            assert "token" in json.loads(body)["error"]
    assert not any(server.out.iterdir())


def test_a_job_from_another_origin_cannot_start(server):
    status, _h, body = ask(server, "POST", f"/api/jobs/print?c={enc()}&width=8&height=8&format=png",
                           {"Origin": "http://evil.example"})
    assert status == 403 and "another site" in json.loads(body)["error"]
    # and a cross-site preflight is given nothing that would let the browser send the token
    status, headers, _b = ask(server, "OPTIONS", "/api/jobs/print", {"Origin": "http://evil.example",
                                                                     "Access-Control-Request-Method": "POST"})
    assert not any(k.lower().startswith("access-control-allow") for k in headers)
    assert ask(server, "POST", "/", token=True)[0] == 405
    assert ask(server, "PUT", "/api/jobs/print")[0] == 405
    assert not any(server.out.iterdir())


@pytest.mark.parametrize("path", ["/out/../x", "/out/%2e%2e/x", "/out/..%2fx", "/out//etc/passwd",
                                  "/out/.hidden", "/out/a\\..\\b", "/out/", "/static/../app.py",
                                  "/out/link/secret.txt", "/openseadragon/../../x"])
def test_downloads_come_only_from_the_output_folder(server, path, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (server.out / "link").unlink(missing_ok=True)
    (server.out / "link").symlink_to(tmp_path)
    try:
        status, _h, body = ask(server, "GET", path.replace("\\", "%5c") if "\\" in path else path)
    finally:
        (server.out / "link").unlink()
    assert status in (400, 404), path
    assert b"secret" not in body


def test_a_bad_config_is_one_line_beside_its_control(server):
    for sets, key in [({"network__weight_scale": 1e9}, "network.weight_scale"),
                      ({"network__hidden": [16, 0]}, "network.hidden"),
                      ({"view__zoom": -1}, "view.zoom"), ({"network__activation": "nope"}, "network.activation")]:
        status, _h, body = ask(server, "GET", f"/api/view?c={enc(**sets)}")
        err = json.loads(body)
        assert status == 400 and err["key"] == key and "\n" not in err["error"] and "Traceback" not in err["error"]
    # a network that overflows (NaN) is refused before any rendering
    status, _h, body = ask(server, "GET", f"/api/preview?c={enc(network__weight_scale=1e6, network__hidden=[64] * 40, network__activation='identity')}")
    assert status == 400, body
    for junk in ("%%%", "bm90IGpzb24", "W10"):
        status, _h, body = ask(server, "GET", f"/api/view?c={junk}")
        assert status == 400 and "reload" in json.loads(body)["error"]


def test_view_preview_sheet_and_live_tiles(server):
    status, _h, body = ask(server, "GET", f"/api/view?c={enc(network__weight_scale=2.0)}")
    v = json.loads(body)
    assert status == 200 and v["base"] == [120, 80] and "weight_scale = 2.0" in v["toml"]
    assert decode_config(v["encoded"]).network.weight_scale == 2.0
    level = 7  # the base level of a 120 px wide canvas (DeepZoom level 7: 2**7 >= 120); extra levels follow
    status, h, tile = ask(server, "GET", f"/live/{v['tag']}/image_files/{level}/0_0.jpeg")
    assert status == 200 and h["Content-Type"] == "image/jpeg"
    assert pyvips.Image.new_from_buffer(tile, "").width == 120
    status, _h, jpg = ask(server, "GET", f"/api/preview?c={enc()}&size=60")
    img = pyvips.Image.new_from_buffer(jpg, "")
    assert status == 200 and (img.width, img.height) == (60, 40)
    status, _h, jpg = ask(server, "GET", f"/api/sheet?c={enc()}&page=1&cell=48")
    img = pyvips.Image.new_from_buffer(jpg, "")
    assert status == 200 and (img.width, img.height) == (6 * 48, PAGE_SEEDS // 6 * 32)
    # the thumbnail of seed 24 + 3 is that seed's picture
    from bigcppn import render_array

    ref = render_array(small_config(48, 32, seed=PAGE_SEEDS + 3)).astype(float)
    cell = img.numpy()[0:32, 3 * 48:4 * 48].astype(float)
    a, b = cell.ravel() - cell.mean(), ref.ravel() - ref.mean()
    assert np.abs(cell - ref).mean() < 10 and a @ b / np.sqrt((a @ a) * (b @ b)) > 0.95  # a JPEG of it


def test_parse_a_pasted_toml(server):
    from urllib.parse import quote

    text = dump_toml(small_config(64, 64, seed=9))
    status, _h, body = ask(server, "GET", f"/api/parse?toml={quote(text)}")
    assert status == 200 and json.loads(body)["config"]["seed"] == 9
    bad = quote("[network]\nhidden = [0]")
    status, _h, body = ask(server, "GET", f"/api/parse?toml={bad}")
    assert status == 400 and json.loads(body)["key"] == "network.hidden"


def test_a_print_job_writes_what_bigcppn_render_writes(server, tmp_path):
    status, _h, body = ask(server, "GET", f"/api/plan?c={enc()}&width=90&height=60&format=png")
    plan = json.loads(body)
    assert status == 200 and (plan["width"], plan["height"]) == (90, 60) and plan["bytes"] > 0
    status, _h, body = ask(server, "POST", f"/api/jobs/print?c={enc()}&width=90&height=60&format=png")
    assert status == 200, body
    job = json.loads(body)
    done = wait_jobs(server, [job["id"]])[job["id"]]
    assert done["state"] == "done", done
    out = server.out / done["result"]
    assert out.parent == server.out and out.suffix == ".png"
    toml = tmp_path / "c.toml"
    toml.write_text(dump_toml(CFG))
    ref = tmp_path / "ref.png"
    assert cli.main(["render", str(toml), "--width", "90", "--height", "60", "-o", str(ref), "-q"]) == 0
    a, b = pyvips.Image.new_from_file(str(out)), pyvips.Image.new_from_file(str(ref))
    assert (a.width, a.height, a.bands) == (90, 60, 3)
    assert np.array_equal(a.numpy(), b.numpy())
    status, h, data = ask(server, "GET", f"/out/{done['result']}", token=False)
    assert status == 200 and data == out.read_bytes() and "attachment" not in h.get("Content-Disposition", "")


def test_jobs_queue_bounded_and_cancelling_leaves_nothing(server):
    before = set(server.out.iterdir())
    big = f"/api/jobs/print?c={enc()}&width=3000&height=3000&format=tif"
    first = json.loads(ask(server, "POST", big)[2])
    waiting = [json.loads(ask(server, "POST", f"/api/jobs/pyramid?c={enc()}&size=2000")[2]) for _ in range(8)]
    status, _h, body = ask(server, "POST", big)
    assert status == 429 and "waiting" in json.loads(body)["error"]
    end = time.monotonic() + 30
    while json.loads(ask(server, "GET", "/api/jobs")[2])["jobs"][-9]["state"] == "queued" and time.monotonic() < end:
        time.sleep(0.05)
    for j in [first, *waiting]:
        assert ask(server, "POST", f"/api/jobs/{j['id']}/cancel")[0] == 200
    jobs = wait_jobs(server, [j["id"] for j in [first, *waiting]])
    assert all(jobs[j["id"]]["state"] in ("cancelled", "done") for j in [first, *waiting])
    assert jobs[first["id"]]["state"] == "cancelled"
    left = set(server.out.iterdir()) - before
    assert not left, left  # no file, no temporary, no pyramid folder


def _cancel_once_running(server, url):
    """Start the job ``url`` asks for, cancel it once it has done some work: it ends cancelled, and the
    output folder holds what it held before."""
    before = set(server.out.iterdir())
    job = json.loads(ask(server, "POST", url)[2])
    end = time.monotonic() + 60
    while time.monotonic() < end:
        j = {x["id"]: x for x in json.loads(ask(server, "GET", "/api/jobs")[2])["jobs"]}[job["id"]]
        if j["state"] == "running" and j["done"] > 0:
            break
        time.sleep(0.05)
    assert ask(server, "POST", f"/api/jobs/{job['id']}/cancel")[0] == 200
    assert wait_jobs(server, [job["id"]])[job["id"]]["state"] == "cancelled"
    assert set(server.out.iterdir()) == before


def test_a_cancelled_pyramid_leaves_nothing(server):
    _cancel_once_running(server, f"/api/jobs/pyramid?c={enc()}&size=6000")


def test_cli_explore_bad_input(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert cli.main(["explore", "--out", str(f), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err
    assert cli.main(["explore", "--port", "70000"]) == 2
    assert cli.main(["explore", "--set", "network.hidden=[0]", "--port", "0"]) == 2


def test_cli_explore_serves_until_sigterm(tmp_path):
    import os
    import re
    import signal
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "bigcppn", "explore", "--port", "0", "--out", str(tmp_path / "o"),
                             "--seed", "3", "--set", "canvas.width=64", "--set", "canvas.height=48"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()  # bounded: the process exits on its own if it cannot start
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, (line, proc.stderr.read() if proc.poll() is not None else "")
        c = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=30)
        c.request("GET", "/")
        r = c.getresponse()
        assert r.status == 200 and b'"seed": 3' in r.read()
        c.close()
        assert (tmp_path / "o").is_dir()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 143
        assert "stopped after" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_a_video_job_writes_a_clip_and_bad_motions_are_refused(server):
    av = pytest.importorskip("av")
    status, _h, body = ask(server, "POST", f"/api/jobs/video?c={enc()}&format=mp4&seconds=10.5")
    assert status == 400 and "at most 10" in json.loads(body)["error"]
    status, _h, body = ask(server, "POST", f"/api/jobs/video?c={enc()}&format=mp4&seconds=1&zoom=banana")
    assert status == 400 and "\n" not in json.loads(body)["error"]
    status, _h, body = ask(server, "POST", f"/api/jobs/video?c={enc()}&format=mp4&seconds=0.5&fps=10&size=64&zoom=1:4")
    assert status == 200, body
    job = json.loads(body)
    done = wait_jobs(server, [job["id"]])[job["id"]]
    assert done["state"] == "done", done
    with av.open(str(server.out / done["result"])) as f:
        s = f.streams.video[0]
        assert (s.codec_context.width, s.codec_context.height) == (64, 42)  # 120x80 made even
        assert sum(1 for _ in f.decode(video=0)) == 5


def test_a_cancelled_video_leaves_nothing(server):
    pytest.importorskip("av")
    _cancel_once_running(server, f"/api/jobs/video?c={enc()}&format=mp4&seconds=10&fps=30&size=480")
