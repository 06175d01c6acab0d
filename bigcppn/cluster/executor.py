"""Ray: joining or starting a cluster, placing the actors, and the executor that runs on them.

One actor per GPU (``num_gpus=1``), or one per CPU-only node holding all its
cores (``--workers N`` asks for N actors instead, sharing each node's cores).
Every actor is pinned to its node, restarted up to :data:`RESTARTS` times when
its process dies, and the tasks it had not finished are run again on the
restarted actor (``max_task_retries``): pyramid tiles and TIFF bands are pure
functions of the config and the job, so running one twice writes the same
bytes. Anything else a worker raises ends the run with one line
(:func:`failure`).
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

from ..errors import BigCPPNError, RenderError, UserError
from .signals import finishing, init_keeping_handlers

try:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
except ImportError:  # the optional extra is not installed
    ray = None

__all__ = ["Node", "ActorSpec", "place_actors", "RaySession", "RayExecutor", "failure", "require_ray", "RESTARTS"]

T = TypeVar("T")
R = TypeVar("R")

# How often an actor whose process died is restarted, and its unfinished tasks retried.
RESTARTS = 4
# Tasks queued on each actor: one running, one waiting, so an actor never idles between jobs.
DEPTH = 2
# Seconds for every actor to start (a process, torch imported, the network built) before giving up.
START_TIMEOUT = 300.0
# Seconds a failed run waits for the jobs still running before it stops their actors.
DRAIN_TIMEOUT = 30.0


def require_ray() -> None:
    if ray is None:
        raise UserError('--executor ray needs Ray: pip install "bigcppn[ray]" (or pip install ray)')


@dataclass(frozen=True)
class Node:
    """A live node of the cluster: its id, address, CPUs and GPUs (Ray's resources)."""

    id: str
    address: str
    cpus: int
    gpus: int


@dataclass(frozen=True)
class ActorSpec:
    """Where one actor runs and what it holds: a node, cores, and 0 or 1 GPU."""

    node: str
    cpus: int
    gpus: int


def place_actors(nodes: list[Node], workers: int | None = None) -> list[ActorSpec]:
    """The actors to start: one per GPU, or one per CPU-only node; ``workers`` asks for that many.

    With GPUs in the cluster, actors go to GPUs (each with its node's cores
    shared among its GPUs) and ``workers`` may not exceed the GPUs; on a CPU-only
    cluster ``workers`` actors are spread over the nodes in proportion to their
    cores, each node's cores shared among its actors. UserError when the
    cluster cannot hold them.
    """
    nodes = [n for n in nodes if n.cpus >= 1 or n.gpus >= 1]
    if not nodes:
        raise UserError("the Ray cluster has no node with a CPU or GPU to run on; add nodes with `ray start`")
    gpus = sum(n.gpus for n in nodes)
    if gpus:
        slots = [(n, max(1, n.cpus // n.gpus) if n.cpus else 0) for n in nodes for _ in range(n.gpus)]
        if workers is not None and workers > len(slots):
            raise UserError(f"--workers {workers} asks for more actors than the cluster's {len(slots)} GPUs")
        chosen = _spread(slots, workers or len(slots))
        return [ActorSpec(n.id, cpus, 1) for n, cpus in chosen]
    cores = sum(n.cpus for n in nodes)
    want = workers or len(nodes)
    if want > cores:
        raise UserError(f"--workers {want} asks for more actors than the cluster's {cores} CPU cores")
    if workers is None:
        return [ActorSpec(n.id, n.cpus, 0) for n in nodes]
    count = {n.id: 0 for n in nodes}
    for _ in range(want):  # the node with the most cores per actor takes the next one
        best = max(nodes, key=lambda n: (n.cpus / (count[n.id] + 1), -nodes.index(n)))
        count[best.id] += 1
    specs = []
    for n in nodes:
        k = count[n.id]
        specs += [ActorSpec(n.id, n.cpus // k + (1 if i < n.cpus % k else 0), 0) for i in range(k)]
    return specs


def _spread(slots: list, k: int) -> list:
    """``k`` of the slots, taking one node's slots in turn with the others' (round robin over nodes)."""
    by_node: dict[str, list] = {}
    for s in slots:
        by_node.setdefault(s[0].id, []).append(s)
    out, queues = [], list(by_node.values())
    while len(out) < k:
        for q in queues:
            if q and len(out) < k:
                out.append(q.pop(0))
    return out


class RaySession:
    """Ray for one render: the caller's running session, or one joined or started here (and left after).

    ``address`` None starts or joins a local Ray (``ray.init()``), ``"auto"``
    joins the cluster this machine belongs to, anything else is a cluster's
    address (``HOST:PORT`` or ``ray://HOST:PORT``).
    """

    def __init__(self, address: str | None = None, **init_options) -> None:
        require_ray()
        self.address = address
        self.init_options = init_options
        self.owned = False

    def __enter__(self) -> "RaySession":
        if ray.is_initialized():
            return self
        if self.address not in (None, "auto", "local"):
            _reachable(self.address)
        saved = os.environ.get("PYTHONPATH")
        try:
            # A Ray started here hands its environment to its workers: they import this bigcppn.
            os.environ["PYTHONPATH"] = _worker_path()
            # Ray's own warnings (token authentication, ...) would be lines besides bigcppn's one line.
            init_keeping_handlers(address=self.address, log_to_driver=False, logging_level=logging.ERROR,
                                   include_dashboard=False, configure_logging=True, **self.init_options)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = f"the Ray cluster at '{self.address}'" if self.address else "a local Ray"
            raise UserError(f"cannot reach or start {where}: {_first_line(exc)}; start one with "
                            "`ray start --head`, or leave out --ray-address") from None
        finally:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved
        self.owned = True
        return self

    def __exit__(self, *exc) -> None:
        if self.owned:
            with finishing():
                ray.shutdown()
            self.owned = False

    @staticmethod
    def nodes() -> list[Node]:
        out = []
        for n in ray.nodes():
            if not n.get("Alive"):
                continue
            res = n.get("Resources", {})
            out.append(Node(n["NodeID"], n.get("NodeManagerAddress", "?"), int(res.get("CPU", 0)),
                            int(res.get("GPU", 0))))
        return sorted(out, key=lambda n: (n.address, n.id))


def _reachable(address: str, timeout: float = 10.0) -> None:
    """UserError unless something listens at ``[ray://]HOST:PORT`` (ray.init would wait for it for ever)."""
    import socket

    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--ray-address '{address}' is not HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UserError(f"cannot reach the Ray cluster at '{address}' ({exc.strerror or exc}); is `ray start "
                        "--head` running there, and is the port open?") from None


class _Runner:
    """The actor: runs picklable callables on items, with this process' own state (see :mod:`.tasks`)."""

    def __init__(self, cores: int) -> None:
        from . import tasks

        tasks.configure(cores)

    def pid(self) -> int:
        return os.getpid()

    def call(self, fn: Callable, item) -> tuple[object, float, int]:
        """``fn(item)``, the CPU seconds this process spent on it, and the bytes of the result."""
        t0 = time.process_time()
        result = fn(item)
        nbytes = getattr(result, "nbytes", None)
        if nbytes is None:
            nbytes = len(pickle.dumps(result, protocol=5))
        return result, time.process_time() - t0, nbytes


def _worker_path() -> str:
    """PYTHONPATH for workers of a Ray started here: the driver's own bigcppn first (a source checkout too).

    A cluster joined by address runs the bigcppn installed on its nodes; the
    version check at the start (:func:`bigcppn.cluster.pyramid.check_workers`) compares them.
    """
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the bigcppn package
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    return os.pathsep.join([root, *rest])


class RayExecutor:
    """An :class:`~bigcppn.core.execute.Executor` on Ray actors placed by :func:`place_actors`.

    ``map_ordered`` hands each item to the actor with the fewest tasks queued
    (at most :data:`DEPTH` each) and yields results in the items' order.
    ``worker_cpu`` adds up the workers' CPU seconds, ``sent``/``received``
    the bytes of items and results.
    """

    def __init__(self, specs: list[ActorSpec], restarts: int = RESTARTS) -> None:
        require_ray()
        cls = ray.remote(_Runner)
        self.actors = [
            cls.options(num_cpus=s.cpus, num_gpus=s.gpus, max_restarts=restarts, max_task_retries=restarts,
                        scheduling_strategy=NodeAffinitySchedulingStrategy(s.node, soft=False)).remote(max(1, s.cpus))
            for s in specs
        ]
        self.specs = specs
        self.workers = len(self.actors)
        self.worker_cpu = 0.0
        self.sent = 0
        self.received = 0
        # Results never asked for (a run that failed): collected at close, so that Ray does not print
        # them as "unhandled errors" after bigcppn's own line; the variable covers any it still finds.
        self._unretrieved: set = set()
        self._quiet = "RAY_IGNORE_UNHANDLED_ERRORS" not in os.environ
        if self._quiet:
            os.environ["RAY_IGNORE_UNHANDLED_ERRORS"] = "1"

    def pids(self) -> list[int]:
        return ray.get([a.pid.remote() for a in self.actors])

    def broadcast(self, fn: Callable[[object], R], timeout: float = START_TIMEOUT) -> list[R]:
        """``fn(None)`` on every actor once, the results in actor order; UserError if they do not start in time."""
        ref = ray.put(fn)
        refs = [a.call.remote(ref, None) for a in self.actors]
        self._unretrieved.update(refs)
        try:
            results = [self._unwrap(r) for r in ray.get(refs, timeout=timeout)]
            self._unretrieved.difference_update(refs)
            return results
        except ray.exceptions.GetTimeoutError:
            raise UserError(f"the {self.workers} Ray actors did not all start within {timeout:.0f} s: are the "
                            "cluster's CPUs or GPUs taken by other jobs? (ray status shows them)") from None
        except Exception as exc:
            raise failure(exc) from exc

    def _unwrap(self, res: tuple[object, float, int]):
        result, cpu, nbytes = res
        self.worker_cpu += cpu
        self.received += nbytes
        return result

    def map_ordered(self, fn: Callable[[T], R], items: Iterable[T], lookahead: int) -> Iterator[tuple[T, R]]:
        fn_ref = ray.put(fn)
        self.sent += len(pickle.dumps(fn, protocol=5)) * self.workers
        pending: deque = deque()  # (item, ref)
        busy: dict = {}  # ref -> actor index, for tasks not yet seen finished
        load = [0] * self.workers

        def settle(block: bool) -> None:
            ready, _ = ray.wait(list(busy), num_returns=1 if block else len(busy), timeout=None if block else 0,
                                fetch_local=False)
            for r in ready:
                load[busy.pop(r)] -= 1

        def result(ref):
            if ref in busy:
                load[busy.pop(ref)] -= 1
            try:
                return self._unwrap(ray.get(ref))
            except Exception as exc:
                raise failure(exc) from exc

        try:
            for item in items:
                if busy:
                    settle(block=min(load) >= DEPTH)
                i = min(range(self.workers), key=lambda j: (load[j], j))
                self.sent += len(pickle.dumps(item, protocol=5))
                ref = self.actors[i].call.remote(fn_ref, item)
                busy[ref] = i
                load[i] += 1
                pending.append((item, ref))
                if len(pending) > lookahead:
                    it, ref = pending.popleft()
                    yield it, result(ref)
            while pending:
                it, ref = pending.popleft()
                yield it, result(ref)
        finally:
            for _it, ref in pending:
                self._unretrieved.add(ref)
                try:
                    ray.cancel(ref)
                except Exception:  # already finished, or its actor gone: nothing to stop
                    pass

    def close(self, cancel: bool = False) -> None:
        """Stop the actors: after the jobs still running finish (at most DRAIN_TIMEOUT), or at once (``cancel``)."""
        left = list(self._unretrieved)
        if left and not cancel:
            ray.wait(left, num_returns=len(left), timeout=DRAIN_TIMEOUT, fetch_local=False)
        for a in self.actors:
            ray.kill(a, no_restart=True)
        self.actors = []
        for ref in left:  # each is an error or a result nobody wants now: asked for, and dropped
            try:
                ray.get(ref, timeout=10)
            except Exception:
                pass
        self._unretrieved.clear()
        if self._quiet:
            os.environ.pop("RAY_IGNORE_UNHANDLED_ERRORS", None)
            self._quiet = False

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        self.close(cancel=kind is not None and issubclass(kind, KeyboardInterrupt))


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def failure(exc: BaseException) -> BigCPPNError:
    """A worker's failure as one line: the worker's own error, or why the worker is gone."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BigCPPNError):
        return cause
    if cause is not None and not isinstance(cause, ray.exceptions.RayError):
        return RenderError(f"a Ray worker failed: {type(cause).__name__}: {_first_line(cause)}")
    if isinstance(exc, ray.exceptions.ActorDiedError | ray.exceptions.RayActorError):
        inner = getattr(exc, "creation_task_error", None) or cause
        if inner is not None and getattr(inner, "cause", None) is not None:
            return failure(inner)
        return RenderError(f"a Ray worker died and was not restarted (after {RESTARTS} restarts, or its node "
                           "is gone)")
    return RenderError(f"the Ray cluster failed: {type(exc).__name__}: {_first_line(exc)}")
