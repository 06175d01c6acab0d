"""A crowded server (issue 21, 5.1): requests of clients that left are not rendered, a crowd gets 503, and
stopping finishes only the batch being rendered.

The device thread is held at its first batch (an Event, never a timing) while the crowd comes.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import torch

from bigcppn.server.app import make_server
from bigcppn.server.httpbase import Limits

from conftest import small_config


@pytest.fixture
def held():
    """A serving server whose device thread blocks in its first batch until ``gate`` is set."""
    srv = make_server(small_config(300, 200, seed=5), port=0, device=torch.device("cpu"),
                      limits=Limits(max_pending_per_client=20))
    svc, gate, entered = srv.service, threading.Event(), threading.Event()
    real = svc.sampler.render_many

    def render_many(*args, **kw):
        entered.set()
        assert gate.wait(60)
        return real(*args, **kw)

    svc.sampler.render_many = render_many
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv, gate, entered
    gate.set()
    srv.shutdown(5)
    srv.server_close()
    svc.stop()


def tile(srv, n: int) -> str:
    level = srv.service.pyramid.base_level.index + 9  # (600 columns)
    return f"/image_files/{level}/{n}_1.{srv.service.pyramid.ext}"


def ask(srv, path: str) -> socket.socket:
    s = socket.create_connection(srv.server_address[:2], timeout=60)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    return s


def status(s: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    s.close()
    return int(head.split()[1])


def until(cond, what: str) -> None:
    deadline = time.monotonic() + 60
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_requests_whose_clients_closed_are_dropped_not_rendered(held):
    srv, gate, entered = held
    srv.limits.max_pending_per_client = 1000
    first = ask(srv, tile(srv, 0))
    assert entered.wait(60)  # the device thread is in its first batch
    n = 60
    for i in range(1, n + 1):  # connect, ask, close
        ask(srv, tile(srv, i)).close()
    until(lambda: srv.counters.abandoned == n, "the server saw every client leave")
    gate.set()
    assert status(first) == 200
    assert status(ask(srv, tile(srv, 500))) == 200  # a normal tile after the crowd
    stats = srv.service.stats
    assert stats.dropped == n and stats.tiles_rendered == 2, stats


def test_a_crowd_from_one_client_gets_503_with_retry_after(held):
    srv, gate, entered = held
    waiting = [ask(srv, tile(srv, i)) for i in range(20)]  # the cap per client
    assert entered.wait(60)
    until(lambda: len(srv._book.waiting) == 20, "all twenty wait")
    extra = ask(srv, tile(srv, 50))
    head = extra.recv(4096)
    assert head.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in head and b"of this client" in head
    gate.set()
    assert [status(s) for s in waiting] == [200] * 20


def test_stopping_finishes_the_batch_in_progress_and_drops_the_rest(held):
    srv, gate, entered = held
    first = ask(srv, tile(srv, 0))
    assert entered.wait(60)
    queued = [ask(srv, tile(srv, i)) for i in range(1, 11)]
    until(lambda: len(srv._book.waiting) == 11, "all eleven wait")
    srv.drain(5)  # what SIGTERM does
    until(lambda: srv._drain_by is not None, "the drain began")
    gate.set()
    assert status(first) == 200
    assert [status(s) for s in queued] == [503] * 10
    assert srv.service.stats.tiles_rendered == 1


def test_at_the_cap_requests_whose_clients_left_make_room():
    """The loop may not have read a crowd's closes yet when the same client asks again: the cap counts only
    requests still awaited, so a normal tile right after 3,000 abandoned ones is answered, not refused."""
    import selectors
    from concurrent.futures import Future

    from bigcppn.server.httpbase import Connection, Counters, Pending, PendingBook

    book, sel, counters = PendingBook(Limits(max_pending_per_client=4)), selectors.DefaultSelector(), Counters()
    pairs = [socket.socketpair() for _ in range(4)]
    conns = []
    for i, (ours, _theirs) in enumerate(pairs):
        ours.setblocking(False)
        conns.append(Connection(ours, ("127.0.0.1", 40000 + i)))
        book.add(conns[-1], Pending(Future(), lambda f: None))
    assert book.refusal("127.0.0.1", counters, sel, lambda c: None) is not None  # four awaited: 503
    pairs[0][1].close()
    pairs[2][1].close()  # two clients leave; the loop has not read it
    left = []
    gone = lambda c: (left.append(c), book.done(c, cancel=True))  # noqa: E731 (what the loop does)
    assert book.refusal("127.0.0.1", counters, sel, gone) is None
    assert left == [conns[0], conns[2]] and len(book.waiting) == 2
    assert book.refusal("127.0.0.2", counters, sel, gone) is None and len(left) == 2  # another client's: no read
    for ours, theirs in pairs:
        ours.close()
        theirs.close()


def test_a_crowd_of_503s_keeps_a_waiting_clients_input_bounded():
    """Each 503 at the per-client cap reads that client's waiting connections to find those closed: one that
    keeps sending while it waits must not have all of it kept (it grew 64 KiB a refusal, without bound): past
    a head's worth it is only peeked at, as the loop stops reading it there."""
    import selectors
    from concurrent.futures import Future

    from bigcppn.server.httpbase import Connection, Counters, Pending, PendingBook

    limits = Limits(max_pending_per_client=1)
    book, sel, counters = PendingBook(limits), selectors.DefaultSelector(), Counters()
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    conn = Connection(ours, ("127.0.0.1", 40000))
    book.add(conn, Pending(Future(), lambda f: None))
    try:
        for _ in range(64):
            try:
                theirs.send(b"x" * 65536)
            except BlockingIOError:
                pass
            assert book.refusal("127.0.0.1", counters, sel, lambda c: None) is not None  # still there: 503
        assert len(conn.inbuf) <= limits.max_head + 65536
        assert list(book.waiting) == [conn]
    finally:
        ours.close()
        theirs.close()
