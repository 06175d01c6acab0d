"""Transient errors (503 Slow Down) between bigcppn and a real bucket: retried with backoff, counted at -v."""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bigcppn import cli
from s3helpers import objects


class Flaky(BaseHTTPRequestHandler):
    """Forwards every request to the S3 server, but answers every third PUT with 503 SlowDown itself."""

    upstream = ""
    puts = 0
    lock = threading.Lock()
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.command == "PUT":
            with Flaky.lock:
                Flaky.puts += 1
                refuse = Flaky.puts % 3 == 0
            if refuse:
                msg = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
                self.send_response(503)
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)
                return
        u = urllib.parse.urlsplit(Flaky.upstream)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.request(self.command, self.path, body=body, headers=dict(self.headers))
        r = conn.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    def log_message(self, *args) -> None:
        pass


def test_throttled_puts_are_retried_and_counted_at_v(weed, bucket, monkeypatch, capsys):
    Flaky.upstream, Flaky.puts = weed.endpoint, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("BIGCPPN_STORAGE_RETRY_S", "20")
        assert cli.main(["pyramid", "--width", "300", "--height", "200", "--device", "cpu", "-v",
                         "-o", f"s3://{bucket}/flaky/x.dzi"]) == 0
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    retried = int(err.split(" transient errors retried")[0].rsplit(" ", 1)[1])
    assert retried >= Flaky.puts // 3 - 1 > 0
    assert "x.dzi" in objects(weed, bucket, "flaky")
