"""The stateless half of :mod:`bigcppn.server.httpd`: request heads read strictly, limits, the listening socket.

:func:`parse_head` looks at the bytes as they arrive and refuses them (:class:`Reject`, with the status to
answer) as soon as they cannot be the start of an HTTP/1.0 or 1.1 request: a TLS hello or other binary
opening at the first byte, a method that is not a token, HTTP/0.9's two-word line, another version, control
characters or NUL bytes in the target or a field, folded or malformed fields, more than one Host or
Content-Length, a request line or head over its limit, a request body (none is accepted).
"""

from __future__ import annotations

import ipaddress
import re
import resource
import socket
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

__all__ = ["Request", "Response", "Pending", "Limits", "Counters", "Reject", "parse_head", "is_loopback",
           "raise_fd_limit", "connection_cap", "listen"]

_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_VERSION = re.compile(rb"HTTP/(\d)\.(\d)")
_KNOWN = frozenset({"POST", "PUT", "DELETE", "PATCH", "CONNECT", "TRACE"})  # 405; other methods 501


@dataclass
class Request:
    method: str
    target: str  # origin form: /path?query
    version: str
    headers: dict[str, str]  # lower-case names
    peer: str = ""


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list = field(default_factory=list)  # (name, value) pairs
    close: bool = False


@dataclass
class Pending:
    """An answer still being made: ``then(future)`` builds the response, on the loop's thread."""

    future: Future
    then: Callable[[Future], Response]


@dataclass
class Limits:
    idle_timeout: float = 10.0  # seconds to send a whole request head, from connecting or the last answer
    max_connections: int | None = None  # None: 10,000, or fewer if the descriptor limit is lower
    min_evict_age: float = 1.0  # at the cap, connections idle this long make room for new ones
    linger: float = 2.0  # after a closing answer, seconds to read what the client still sends
    max_line: int = 8192
    max_head: int = 16384
    max_headers: int = 64


class Reject(Exception):
    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


def parse_head(buf: bytearray, lim: Limits) -> tuple[Request, int] | None:
    """(request, bytes used) once ``buf`` holds a whole request head; None while more is needed.

    Raises Reject as soon as the bytes cannot be the start of an HTTP/1.x request."""
    i = 0
    while i < len(buf) and buf[i] in b"\r\n":  # empty lines before a request are allowed
        i += 1
    if i > 8:
        raise Reject(400, "not an HTTP request")
    first = buf.find(b" ", i, i + 33)
    head = bytes(buf[i:first if first >= 0 else i + 33])
    if any(c not in _TOKEN for c in head.split(b"\r")[0].split(b"\n")[0]) or (first < 0 and len(buf) - i > 32):
        raise Reject(400, "not an HTTP request")
    nl = buf.find(b"\n", i)
    if nl < 0 or nl - i > lim.max_line:
        if len(buf) - i > lim.max_line:
            raise Reject(414, "request line too long")
        return None
    method, target, version = _request_line(bytes(buf[i:nl]).removesuffix(b"\r"))
    ends = [e for e in (buf.find(b"\n\r\n", nl), buf.find(b"\n\n", nl)) if e >= 0]
    if not ends:
        if len(buf) - i > lim.max_head:
            raise Reject(431, "request head too large")
        return None
    end = min(ends)
    if end - i > lim.max_head:
        raise Reject(431, "request head too large")
    headers = _header_lines(bytes(buf[nl + 1:end]), lim)
    _check(method, version, headers)
    used = end + (3 if buf.startswith(b"\n\r\n", end) else 2)
    return Request(method, target, version, headers), used


def _request_line(line: bytes) -> tuple[str, str, str]:
    parts = line.split(b" ")
    if len(parts) == 2:
        raise Reject(400, "HTTP/0.9 requests are not served")
    if len(parts) != 3 or not all(parts):
        raise Reject(400, "malformed request line")
    method, target, version = parts
    if not _VERSION.fullmatch(version):
        raise Reject(400, "malformed request line")
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise Reject(505, "only HTTP/1.0 and HTTP/1.1 are served")
    if any(c < 0x21 or c > 0x7E for c in target):
        raise Reject(400, "malformed request target")
    text = target.decode("ascii")
    if text.startswith(("http://", "https://")):  # absolute form: the path is what is asked for
        u = urlsplit(text)
        text = (u.path or "/") + (f"?{u.query}" if u.query else "")
    elif not (text.startswith("/") or text == "*"):
        raise Reject(400, "malformed request target")
    return method.decode("ascii"), text, version.decode("ascii")


def _header_lines(block: bytes, lim: Limits) -> dict[str, str]:
    headers: dict[str, str] = {}
    lines = [ln.removesuffix(b"\r") for ln in block.split(b"\n")] if block else []
    if len(lines) > lim.max_headers:
        raise Reject(431, "too many header fields")
    for ln in lines:
        name, sep, value = ln.partition(b":")
        if not sep or not name or any(c not in _TOKEN for c in name):
            raise Reject(400, "malformed header field")
        value = value.strip(b" \t")
        if any((c < 0x20 and c != 9) or c == 0x7F for c in value):
            raise Reject(400, "control characters in a header field")
        key = name.decode("ascii").lower()
        if key in headers:
            if key in ("host", "content-length", "transfer-encoding"):
                raise Reject(400, f"more than one {key} field")
            headers[key] += ", " + value.decode("latin-1")
        else:
            headers[key] = value.decode("latin-1")
    return headers


def _check(method: str, version: str, headers: dict[str, str]) -> None:
    if method in _KNOWN:
        raise Reject(405, f"{method} is not served here")
    if method not in ("GET", "HEAD", "OPTIONS"):
        raise Reject(501, f"{method[:32]} is not a method served here")
    if version == "HTTP/1.1" and "host" not in headers:
        raise Reject(400, "HTTP/1.1 requests need a Host field")
    length = headers.get("content-length", "0")
    if "transfer-encoding" in headers or not length.isdigit() or int(length):
        raise Reject(400, "request bodies are not accepted")


@dataclass
class Counters:
    accepted: int = 0
    answered: int = 0
    bad: int = 0  # malformed openings, answered 4xx/5xx and closed
    refused: int = 0  # 503: at the cap
    evicted: int = 0  # idle connections closed to make room
    timed_out: int = 0
    gone: int = 0  # clients that went away mid-request or mid-answer
    peak_open: int = 0


def is_loopback(address: str) -> bool:
    """Whether an address is this machine only: 127.0.0.0/8, ::1 (or ::ffff:127.x.y.z)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def raise_fd_limit() -> int:
    """Raise this process' soft limit on open files to its hard limit; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return soft if soft != resource.RLIM_INFINITY else 1 << 20
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        return want
    except (ValueError, OSError):
        return soft


def connection_cap(requested: int | None, fd_limit: int) -> int:
    """The connections allowed open: what was asked (10,000 by default), kept below the descriptor limit."""
    spare = max(64, fd_limit // 8)  # for the files, pipes and pools the rest of the process uses
    return max(8, min(requested or 10_000, fd_limit - spare))


def listen(address: tuple[str, int], backlog: int = 1024) -> socket.socket:
    host, port = address
    family, kind, proto, _n, sockaddr = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                           flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
