"""Signals on a Ray driver: ``ray.init`` takes SIGTERM from its caller, and this gives it back.

``ray.init`` sets its own SIGTERM handler in Python (``sys.exit``), and the
driver's core worker installs a C++ failure handler for SIGTERM that prints six
lines of stack and aborts. :func:`init_keeping_handlers` sets the caller's
Python handlers again once Ray is up, which takes the signal back from both: a
SIGTERM then ends a Ray run as it ends a local one (the CLI's handler: one
line, exit 143; the actors stopped and Ray shut down on the way out).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

__all__ = ["init_keeping_handlers", "finishing"]


def init_keeping_handlers(**options) -> None:
    """``ray.init(**options)``, the caller's SIGTERM and SIGINT handlers kept (see :func:`_restore`).

    A SIGTERM during ``ray.init`` meets Ray's own handler, which exits
    (``SystemExit``): Ray is shut down and the signal sent again, to the
    caller's handler. A Ray left half started by any other exception is shut
    down too.
    """
    import ray

    handlers = _signal_handlers()
    try:
        ray.init(**options)
    except SystemExit:
        _restore(handlers)
        ray.shutdown()
        if handlers:
            os.kill(os.getpid(), signal.SIGTERM)
        raise
    except BaseException:
        _restore(handlers)
        ray.shutdown()
        raise
    _restore(handlers)


@contextlib.contextmanager
def finishing():
    """Around ``ray.shutdown`` once the work is over: a first SIGTERM or Ctrl-C is noted and dropped (the
    process ends in a moment anyway, its output already whole and committed; reported as terminated, it would
    say "no file was written"), a second one goes to the caller's handler as usual."""
    handlers = _signal_handlers()
    seen: list[int] = []

    def note(signum, _frame) -> None:
        if seen:  # a second: the caller's own handler, at once
            _restore(handlers)
            os.kill(os.getpid(), signum)
        seen.append(signum)

    for sig in handlers:
        signal.signal(sig, note)
    try:
        yield seen
    finally:
        _restore(handlers)


def _signal_handlers() -> dict:
    """The Python handlers of SIGTERM and SIGINT now (none off the main thread, where they cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore(handlers: dict) -> None:
    """Put back the caller's handlers that ``ray.init`` replaced (setting one again in Python takes the
    signal back from Ray's C++ handler too)."""
    for sig, handler in handlers.items():
        if handler is not None:  # None: set outside Python, nothing of ours to put back
            signal.signal(sig, handler)
