"""The HTTP side of ``bigcppn serve``: every connection on one event loop, no thread per connection.

One thread waits on every socket at once (:mod:`selectors`: epoll on Linux), reads and parses each
request head itself and hands the request to an application callback, which answers with a
:class:`Response` at once or with a :class:`Pending` (a future another thread finishes: the loop is
woken and sends the answer). What it promises:

- an idle or slow connection costs a socket, not a thread: each must send a whole request head
  within ``idle_timeout`` seconds of connecting (or of its previous answer), or it is closed;
- at most ``max_connections`` are open, kept below the file-descriptor limit (whose soft value is
  raised to the hard one). Past it the connection that has waited longest for a request (at least
  ``min_evict_age`` s) is closed to make room; when there is none, the newcomer gets 503 with
  Retry-After. Running out of descriptors anyway pauses accepting for a moment, never spins;
- whatever is not an HTTP/1.x request head (a TLS hello, HTTP/0.9, garbage, NUL bytes, over-long lines
  or heads, request bodies) is answered 400/405/414/431/501/505 as soon as it is seen, then closed;
- a client that goes away is one line in the log when verbose, never a traceback; one that leaves while its
  answer is made takes its request back (``Pending.cancel``); past a cap of waiting requests, 503;
- :meth:`EventServer.drain`: stop accepting, close idle connections, finish the requests in progress.
"""

from __future__ import annotations

import errno
import selectors
import socket
import sys
import threading
import time
from collections import OrderedDict, deque
from http import HTTPStatus
from typing import Callable

from .httpbase import (BUSY, LINGER, READ, WRITE, Connection, Counters, Limits, Pending, PendingBook, Reject, Request,
                       Response, Waker, connection_cap, encode_head, error_response, listen, parse_head,
                       raise_fd_limit, read_while_waiting)

__all__ = ["EventServer"]


class EventServer:
    """An HTTP/1.1 server on one event loop; ``app(request)`` gives a Response or a Pending."""

    def __init__(self, address, app: Callable[[Request], Response | Pending], limits: Limits | None = None,
                 verbose: bool = False, name: str = "bigcppn") -> None:
        self.app, self.limits, self.verbose, self.name = app, limits or Limits(), verbose, name
        self.fd_limit = raise_fd_limit()
        self.max_connections = connection_cap(self.limits.max_connections, self.fd_limit)
        self.socket = listen(address)
        self.server_address = self.socket.getsockname()
        self.counters = Counters()
        self._sel = selectors.DefaultSelector()
        self._waker = Waker()
        self._conns: set[Connection] = set()
        self._reading: OrderedDict[Connection, None] = OrderedDict()  # oldest first
        self._other: set[Connection] = set()  # writing or lingering: deadlines swept
        self._done: deque = deque()  # (connection, Pending) finished by other threads
        self._book = PendingBook(self.limits)  # connections waiting for a Pending answer
        self._again: deque = deque()  # connections holding a request sent behind the last one
        self._accepting = False
        self._resume_at = 0.0
        self._drain_asked = self._stop_asked = False
        self._drain_by: float | None = None
        self._grace = 30.0
        self._idle = threading.Event()
        self._idle.set()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"bigcppn: {message}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ control, from any thread

    def wake(self) -> None:
        self._waker.wake()

    def drain(self, grace: float = 30.0) -> None:
        """Stop accepting, close idle connections, finish what is in progress (at most ``grace`` s)."""
        self._grace = grace
        self._drain_asked = True
        self.wake()

    def stop_now(self) -> None:
        self._stop_asked = True
        self.wake()

    def shutdown(self, grace: float = 10.0) -> None:
        """Drain and wait for :meth:`serve_forever` to return (from another thread)."""
        self.drain(grace)
        self._idle.wait()

    def server_close(self) -> None:
        self._sel_unregister(self.socket)
        self.socket.close()
        if self._idle.is_set():
            for conn in list(self._conns):
                self._close(conn)
            self._waker.close()

    # ------------------------------------------------------------------ the loop

    def serve_forever(self, poll_interval: float = 0.25) -> None:
        self._idle.clear()
        try:
            self._sel.register(self._waker.receiver, selectors.EVENT_READ, None)
            self._listen_on()
            while not self._stop_asked:
                if self._drain_asked and self._drain_by is None:
                    self._begin_drain()
                if self._drain_by is not None and (not self._conns or time.monotonic() > self._drain_by):
                    break
                for key, mask in self._sel.select(min(poll_interval, 0.25)):
                    self._guarded(self._event, key.data, key, mask)
                self._finish_pending()
                self._sweep(time.monotonic())
        finally:
            for conn in list(self._conns):
                self._close(conn)
            self._sel_unregister(self._waker.receiver)
            self._sel_unregister(self.socket)
            self._idle.set()

    def _guarded(self, fn, conn: Connection | None, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # a bug: one line, that connection closed, the others go on
            print(f"bigcppn: internal error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            if conn is not None:
                self._close(conn)

    def _event(self, key, mask: int) -> None:
        if key.fileobj is self._waker.receiver:
            self._waker.clear()
        elif key.fileobj is self.socket:
            self._accept()
        else:
            conn = key.data
            if conn.state == READ:
                self._read(conn)
            elif conn.state == WRITE:
                self._write(conn)
            elif conn.state == LINGER:
                self._linger_read(conn)
            elif conn.state == BUSY and not read_while_waiting(conn, self._sel, self.limits.max_head):
                self._gone(conn, None, "before its answer")

    def _listen_on(self) -> None:
        if not self._accepting and self.socket.fileno() >= 0 and self._drain_by is None:
            self._sel.register(self.socket, selectors.EVENT_READ, None)
            self._accepting = True

    def _sel_unregister(self, sock: socket.socket) -> None:
        try:
            self._sel.unregister(sock)
        except (KeyError, ValueError, OSError):
            pass
        if sock is self.socket:
            self._accepting = False

    def _begin_drain(self) -> None:
        self._drain_by = time.monotonic() + self._grace
        self._sel_unregister(self.socket)
        for conn in list(self._conns):
            if conn.state in (READ, LINGER):
                self._close(conn)

    def _sweep(self, now: float) -> None:
        while self._reading:
            conn = next(iter(self._reading))
            if conn.deadline > now:
                break
            self.counters.timed_out += 1
            self.log(f"{conn.peer}: no complete request within {self.limits.idle_timeout:g} s; closed")
            self._close(conn)
        for conn in [c for c in self._other if c.deadline <= now]:
            if conn.state == WRITE:
                self.counters.timed_out += 1
                self.log(f"{conn.peer}: stopped reading its answer; closed")
            self._close(conn)
        if not self._accepting and self._resume_at and now >= self._resume_at:
            self._resume_at = 0.0
            self._listen_on()

    # ------------------------------------------------------------------ connections

    def _accept(self) -> None:
        for _ in range(256):
            try:
                sock, addr = self.socket.accept()
            except BlockingIOError:
                return
            except (InterruptedError, ConnectionAbortedError):
                continue
            except OSError as exc:  # out of descriptors or memory: pause, make room, never spin
                self._sel_unregister(self.socket)
                self._resume_at = time.monotonic() + 0.1
                self._evict(time.monotonic(), force=exc.errno in (errno.EMFILE, errno.ENFILE))
                self.log(f"cannot accept connections for now ({exc.strerror or exc}); pausing")
                return
            sock.setblocking(False)
            conn = Connection(sock, addr)
            self.counters.accepted += 1
            if len(self._conns) >= self.max_connections and not self._evict(time.monotonic()):
                self._refuse(conn)
                continue
            self._conns.add(conn)
            self.counters.peak_open = max(self.counters.peak_open, len(self._conns))
            self._to_read(conn)

    def _evict(self, now: float, force: bool = False) -> bool:
        """Close the connection that has waited longest for a request, if it waited long enough."""
        if not self._reading:
            return False
        conn = next(iter(self._reading))
        if not force and now - conn.since < self.limits.min_evict_age:
            return False
        self.counters.evicted += 1
        self.log(f"{conn.peer}: closed to make room for a new connection (idle {now - conn.since:.1f} s)")
        self._close(conn)
        return True

    def _refuse(self, conn: Connection) -> None:
        self.counters.refused += 1
        if len(self._conns) >= self.max_connections + 64:  # even refusals are bounded
            conn.sock.close()
            return
        self._conns.add(conn)
        self.log(f"{conn.peer}: {len(self._conns) - 1} connections open, at the limit; answered 503")
        self._respond(conn, error_response(503, "too many connections; retry shortly", [("Retry-After", "1")]))

    def _to_read(self, conn: Connection) -> None:
        now = time.monotonic()
        conn.state, conn.since, conn.deadline, conn.req = READ, now, now + self.limits.idle_timeout, None
        self._other.discard(conn)
        self._reading[conn] = None
        conn.watch(self._sel, selectors.EVENT_READ)
        if conn.inbuf:  # a request sent behind the last one: read by the loop, not here (no recursion)
            self._again.append(conn)

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._gone(conn, exc, "while sending a request")
            return
        if not data:
            if conn.inbuf.strip():
                self._gone(conn, None, "in the middle of a request")
            else:
                self._close(conn)
            return
        conn.inbuf += data
        self._try_request(conn)

    def _try_request(self, conn: Connection) -> None:
        try:
            got = parse_head(conn.inbuf, self.limits)
        except Reject as r:
            self.counters.bad += 1
            status = HTTPStatus(r.status)
            self.log(f"{conn.peer}: {status.value} {status.phrase}: {r}")
            conn.inbuf.clear()
            conn.keep = False
            self._reading.pop(conn, None)
            self._respond(conn, r.response())
            return
        if got is None:
            return
        req, used = got
        del conn.inbuf[:used]
        req.peer = conn.peer
        self._dispatch(conn, req)

    def _dispatch(self, conn: Connection, req: Request) -> None:
        self._reading.pop(conn, None)
        conn.watch(self._sel, 0)
        conn.state, conn.req, conn.t0 = BUSY, req, time.monotonic()
        conn.keep = req.keep_alive
        refusal = self._book.refusal(conn.address, self.counters, self._sel,
                                     lambda left: self._gone(left, None, "before its answer"))
        if refusal is not None:  # a crowd of requests from this client, or in all: it asks again later
            self._respond(conn, refusal)
            return
        try:
            out = self.app(req)
        except Exception as exc:  # a bug: answered 500, logged in one line, the server goes on
            out = self._internal_error(req, exc)
        if isinstance(out, Pending):
            if out.future.done():
                self._respond(conn, self._then(out))
            else:  # watched meanwhile: a client that closes its connection takes its request back
                self._book.add(conn, out)
                conn.watch(self._sel, selectors.EVENT_READ)
                out.future.add_done_callback(lambda _f, c=conn, p=out: self._post(c, p))
        else:
            self._respond(conn, out)

    def _post(self, conn: Connection, pending: Pending) -> None:  # any thread
        self._done.append((conn, pending))
        self.wake()

    def _finish_pending(self) -> None:
        while self._done or self._again:
            while self._done:
                conn, pending = self._done.popleft()
                if conn.state == BUSY:
                    self._guarded(lambda: self._respond(conn, self._then(pending)), conn)
            while self._again:
                conn = self._again.popleft()
                if conn.state == READ and conn.inbuf:
                    self._guarded(self._try_request, conn, conn)

    def _then(self, pending: Pending) -> Response:
        try:
            return pending.then(pending.future)
        except Exception as exc:
            return self._internal_error(None, exc)

    def _internal_error(self, req: Request | None, exc: BaseException) -> Response:
        what = f" for {req.target[:200]}" if req is not None else ""
        print(f"bigcppn: error{what}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return error_response(500, type(exc).__name__)

    def _respond(self, conn: Connection, resp: Response) -> None:
        self._book.done(conn)
        req = conn.req
        close = resp.close or not conn.keep or self._drain_by is not None or self._drain_asked
        head = encode_head(resp, self.name, close, keep_alive=req is not None and req.version == "HTTP/1.0")
        with_body = resp.status not in (204, 304) and (req is None or req.method != "HEAD")
        conn.out = memoryview(head + resp.body if with_body else head)
        conn.state, conn.close_after = WRITE, close
        conn.deadline = time.monotonic() + self.limits.idle_timeout
        self._other.add(conn)
        self.counters.answered += 1
        if req is not None and self.verbose:
            ms = (time.monotonic() - conn.t0) * 1000
            self.log(f'{conn.peer} "{req.method} {req.target[:200]} {req.version}" {resp.status} '
                     f"{len(resp.body)} {ms:.0f} ms")
        self._write(conn)

    def _write(self, conn: Connection) -> None:
        while conn.out:
            try:
                n = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                conn.watch(self._sel, selectors.EVENT_WRITE)
                return
            except OSError as exc:
                self._gone(conn, exc, "before its answer was sent")
                return
            conn.out = conn.out[n:]
            conn.deadline = time.monotonic() + self.limits.idle_timeout
        if not conn.close_after:
            self._to_read(conn)
        elif self._drain_by is not None:
            self._close(conn)
        else:
            self._linger(conn)

    def _linger(self, conn: Connection) -> None:
        """After a closing answer: no more writes, read and drop what still comes, so no reset loses the answer."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.state, conn.deadline = LINGER, time.monotonic() + self.limits.linger
        conn.inbuf = bytearray()
        conn.watch(self._sel, selectors.EVENT_READ)

    def _linger_read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)

    def _gone(self, conn: Connection, exc: BaseException | None, when: str) -> None:
        self.counters.gone += 1
        self.counters.abandoned += conn.state == BUSY  # closed while it waited: its work is dropped (in _close)
        why = f" ({type(exc).__name__})" if exc is not None else ""
        what = f' "{conn.req.method} {conn.req.target[:200]}"' if conn.req is not None else ""
        self.log(f"{conn.peer}: the client went away {when}{what}{why}")
        self._close(conn)

    def _close(self, conn: Connection) -> None:
        self._book.done(conn, cancel=True)
        conn.close(self._sel)
        self._conns.discard(conn)
        self._reading.pop(conn, None)
        self._other.discard(conn)
