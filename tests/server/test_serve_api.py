"""``bigcppn.serve``: the live server as a library call, started on a free port and stopped from another thread."""

import http.client
import threading

import pytest

import bigcppn
from bigcppn.formats.tiles import tile_codec

from conftest import small_config


def test_serve_answers_a_tile_with_its_codecs_content_type_and_stops_when_drained():
    ready: list = []
    listening = threading.Event()
    result: dict = {}

    def on_ready(server):
        ready.append(server)
        listening.set()

    def run():
        result["r"] = bigcppn.serve(small_config(96, 64, seed=3), host="127.0.0.1", port=0,
                                    extra_levels=1, on_ready=on_ready)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert listening.wait(120), "the server did not start listening"
        server = ready[0]
        host, port = server.server_address[:2]
        conn = http.client.HTTPConnection(host, port, timeout=60)
        try:
            conn.request("GET", "/image_files/7/0_0.jpeg")
            r = conn.getresponse()
            body = r.read()
        finally:
            conn.close()
        assert r.status == 200
        codec = server.service.pyramid.codec
        assert codec == tile_codec("jpeg")
        assert r.getheader("Content-Type") == codec.mime == "image/jpeg"
        assert body[:2] == b"\xff\xd8"
    finally:
        if ready:
            ready[0].drain(5)
        thread.join(60)
    assert not thread.is_alive(), "serve did not return once drained"
    r = result["r"]
    assert r.status == 0 and r.url == server.url
    assert r.requests == 1 and r.tiles_rendered == 1


@pytest.mark.parametrize("kwargs,message", [
    (dict(port=70000), "--port must be between"),
    (dict(quality=0), "--quality must be between"),
    (dict(tile=5000), "is too large for a live server"),
    (dict(supersample=17), "is more than needed"),
])
def test_serve_refuses_bad_settings_before_listening(kwargs, message):
    with pytest.raises(bigcppn.UserError, match=message):
        bigcppn.serve(small_config(64, 64, seed=3), **kwargs)
