"""What :mod:`bigcppn.server.httpd`'s event loop works with: request heads read strictly, answers written,
the state of a connection, limits, the listening socket.

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
import selectors
import socket
from concurrent.futures import Future
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Callable
from urllib.parse import urlsplit

__all__ = ["Request", "Response", "Pending", "PendingBook", "read_while_waiting", "Limits", "Counters", "Reject", "Connection", "Waker", "parse_head",
           "encode_head", "error_response", "is_loopback", "raise_fd_limit", "connection_cap", "listen",
           "READ", "BUSY", "WRITE", "LINGER", "CLOSED"]

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

    @property
    def keep_alive(self) -> bool:
        """Whether the client keeps the connection open after the answer (HTTP/1.1 unless it says close)."""
        tokens = {t.strip() for t in self.headers.get("connection", "").lower().split(",")}
        return ("close" not in tokens) if self.version == "HTTP/1.1" else ("keep-alive" in tokens)


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
    cancel: Callable[[], None] | None = None  # the client went away before its answer: drop work not begun


@dataclass
class Limits:
    idle_timeout: float = 10.0  # seconds to send a whole request head, from connecting or the last answer
    max_connections: int | None = None  # None: 10,000, or fewer if the descriptor limit is lower
    min_evict_age: float = 1.0  # at the cap, connections idle this long make room for new ones
    linger: float = 2.0  # after a closing answer, seconds to read what the client still sends
    max_line: int = 8192
    max_head: int = 16384
    max_headers: int = 64
    # methods answered; others get 405 (known) or 501. An application that changes state (bigcppn explore)
    # adds POST; request bodies stay refused, so its parameters travel in the query string.
    methods: tuple[str, ...] = ("GET", "HEAD", "OPTIONS")
    # requests waiting for an answer (a tile being rendered): from one client address, and in all
    max_pending_per_client: int = 64
    max_pending: int = 1024


def error_response(status: int, why: str, headers: list | None = None) -> Response:
    """A plain-text answer that says what went wrong, closing the connection."""
    s = HTTPStatus(status)
    return Response(status, f"{s.value} {s.phrase}: {why}\n".encode(),
                    [("Content-Type", "text/plain; charset=utf-8"), *(headers or [])], close=True)


def encode_head(resp: Response, server: str, close: bool, keep_alive: bool = False) -> bytes:
    """The status line and header fields of ``resp``; ``keep_alive``: say so (to an HTTP/1.0 client)."""
    status = HTTPStatus(resp.status)
    lines = [f"HTTP/1.1 {status.value} {status.phrase}", f"Server: {server}", f"Date: {formatdate(usegmt=True)}"]
    if resp.status not in (204, 304):
        lines.append(f"Content-Length: {len(resp.body)}")
    lines += [f"{k}: {v}" for k, v in resp.headers]
    if close:
        lines.append("Connection: close")
    elif keep_alive:
        lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Reject(Exception):
    """Bytes that cannot be the start of an HTTP/1.x request; ``status`` is the answer."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status

    def response(self) -> Response:
        allow = [("Allow", "GET, HEAD, OPTIONS")] if self.status in (405, 501) else []
        return error_response(self.status, str(self), allow)


# What a connection is doing: waiting for a request, answering it, sending the answer, draining after a
# closing answer, closed.
READ, BUSY, WRITE, LINGER, CLOSED = range(5)


class Connection:
    """One client's socket and where the loop is with it."""

    __slots__ = ("sock", "peer", "address", "state", "events", "inbuf", "out", "since", "deadline", "keep", "req",
                 "t0", "close_after", "__weakref__")

    def __init__(self, sock: socket.socket, addr: tuple) -> None:
        self.sock = sock
        self.peer = f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"
        self.address = addr[0]
        self.state, self.events = READ, 0
        self.inbuf = bytearray()
        self.out = memoryview(b"")
        self.since = self.deadline = self.t0 = 0.0
        self.keep = self.close_after = False
        self.req: Request | None = None

    def watch(self, sel: selectors.BaseSelector, events: int) -> None:
        """Have ``sel`` report ``events`` of this socket (0: none)."""
        if events == self.events:
            return
        if self.events == 0:
            sel.register(self.sock, events, self)
        elif events == 0:
            sel.unregister(self.sock)
        else:
            sel.modify(self.sock, events, self)
        self.events = events

    def close(self, sel: selectors.BaseSelector) -> None:
        """Close the socket (once), no longer watched by ``sel``."""
        if self.state == CLOSED:
            return
        if self.events:
            try:
                sel.unregister(self.sock)
            except (KeyError, ValueError):
                pass
        self.events = 0
        self.state = CLOSED
        self.sock.close()


class Waker:
    """A socket pair another thread writes a byte to, so that a selector waiting on ``receiver`` wakes."""

    def __init__(self) -> None:
        self.receiver, self.sender = socket.socketpair()
        self.receiver.setblocking(False)
        self.sender.setblocking(False)

    def wake(self) -> None:
        try:
            self.sender.send(b"\0")
        except OSError:  # full (already woken) or closed
            pass

    def clear(self) -> None:
        try:
            while self.receiver.recv(4096):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self.receiver.close()
        self.sender.close()


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
    _check(method, version, headers, lim.methods)
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


def _check(method: str, version: str, headers: dict[str, str], methods: tuple[str, ...]) -> None:
    if method in methods:
        pass
    elif method in _KNOWN:
        raise Reject(405, f"{method} is not served here")
    elif method not in ("GET", "HEAD", "OPTIONS"):
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
    abandoned: int = 0  # of which went away while their answer was being made (its work dropped)
    busy: int = 0  # 503: too many requests waiting, from the client or in all
    peak_open: int = 0


class PendingBook:
    """The connections waiting for a :class:`Pending` answer, counted by client address and in all."""

    def __init__(self, limits: "Limits") -> None:
        self.limits = limits
        self.waiting: dict = {}  # Connection -> Pending
        self.by_address: dict[str, int] = {}

    def refusal(self, address: str, counters: "Counters", sel=None, gone=None) -> Response | None:
        """The 503 for a new request from ``address`` when too many wait for their answer, or None. At a
        cap, ``gone(conn)`` first drops the waiting connections whose clients closed them (the loop may not
        have read a crowd's closes yet): only requests still awaited count."""
        mine = self.by_address.get(address, 0) >= self.limits.max_pending_per_client
        if gone is not None and (mine or len(self.waiting) >= self.limits.max_pending):
            for c in [c for c in self.waiting if not mine or c.address == address]:
                if not read_while_waiting(c, sel, self.limits.max_head):
                    gone(c)
        if self.by_address.get(address, 0) >= self.limits.max_pending_per_client:
            why = f"{self.limits.max_pending_per_client} requests of this client are still being answered"
        elif len(self.waiting) >= self.limits.max_pending:
            why = f"{self.limits.max_pending} requests are still being answered"
        else:
            return None
        counters.busy += 1
        return error_response(503, f"{why}; retry later", [("Retry-After", "1")])

    def add(self, conn: "Connection", pending: Pending) -> None:
        self.waiting[conn] = pending
        self.by_address[conn.address] = self.by_address.get(conn.address, 0) + 1

    def done(self, conn: "Connection", cancel: bool = False) -> None:
        """``conn``'s answer is no longer awaited: given, or (``cancel``) the connection closed before it."""
        pending = self.waiting.pop(conn, None)
        if pending is not None and cancel and pending.cancel is not None:
            pending.cancel()
        if pending is not None:
            left = self.by_address[conn.address] - 1
            if left:
                self.by_address[conn.address] = left
            else:
                del self.by_address[conn.address]


def read_while_waiting(conn: "Connection", sel: selectors.BaseSelector, max_head: int) -> bool:
    """Read a connection that waits for its answer; False when its client closed it (or it failed). What the
    client sends meanwhile (a request behind this one) is kept for later, up to one head's worth; past that the
    socket is no longer watched, and only peeked at here (a crowd's 503s ask each waiting connection)."""
    try:
        if len(conn.inbuf) > max_head:
            return bool(conn.sock.recv(1, socket.MSG_PEEK))
        data = conn.sock.recv(65536)
    except (BlockingIOError, InterruptedError):
        return True
    except OSError:
        return False
    if data:
        conn.inbuf += data
        if len(conn.inbuf) > max_head:
            conn.watch(sel, 0)
    return bool(data)


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
