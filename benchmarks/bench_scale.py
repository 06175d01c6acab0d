"""The same pyramid, TIFF and DeepZoom file on the local executor, Ray with 1 actor and with 2 actors, in one run.

    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 python benchmarks/bench_scale.py [--size 8192] [--tiff-size 8192]
        [--dzi-size 8192] [--only pyramid,tiff,dzi]

The pyramid is ``bigcppn pyramid`` (every level from the network); the TIFF
and the DeepZoom file (``render -o X.dzi``, JPEG tiles, the levels shrunk
from the full image) are single files, rendered on Ray in bands.

For each output: local (threads on every core), then a local Ray started with
one CPU and ``--workers 1``, then one started with two CPUs and ``--workers 2``
(one core per actor, as one GPU per actor on a cluster). It prints wall time,
the actors' start-up (process, imports, network) within it, MPix/s of the base
canvas with and without that start-up, speed-up over one actor, the driver's
CPU seconds per MPix (this process, Ray's in-process threads included), the
actors' CPU seconds, the CPU of Ray's own processes (raylet, GCS, idle workers,
the actors' imports), and the bytes of jobs and results per pixel (what goes
through Ray's object store or inline in its RPCs). Every Ray output is checked
against the local one, byte for byte. ``cores got`` is the CPU all of it
received per second of wall time, and ``load`` the machine's load average
before the run: on a shared machine they tell contention from scaling.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from machine import machine  # noqa: E402  (benchmarks/machine.py, beside this script)


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _descendant_ticks() -> dict[int, int]:
    """CPU ticks of every live process descended from this one (Ray's raylet, GCS and workers)."""
    parent, ticks = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d)] = int(fields[1])
        ticks[int(d)] = int(fields[11]) + int(fields[12])
    mine, grew = {os.getpid()}, True
    while grew:
        new = {p for p, pp in parent.items() if pp in mine and p not in mine}
        mine |= new
        grew = bool(new)
    mine.discard(os.getpid())
    return {p: ticks[p] for p in mine}


class RayCPU:
    """CPU seconds of this process' descendants during a run, sampled twice a second (actors die at its end).

    ``own`` is the sampler's own CPU time, to take out of the driver's.
    """

    def __init__(self) -> None:
        self.before = _descendant_ticks()
        self.seen = dict(self.before)
        self.own = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        for pid, t in _descendant_ticks().items():
            self.seen[pid] = max(t, self.seen.get(pid, 0))

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            t = time.thread_time()
            self._sample()
            self.own += time.thread_time() - t

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self._sample()
        grown = sum(t - self.before.get(pid, 0) for pid, t in self.seen.items())
        return grown / os.sysconf("SC_CLK_TCK")


def digest(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file() and "openseadragon" not in p.parts) \
        if path.is_dir() else [path]
    for p in files:
        if path.is_dir():
            h.update(str(p.relative_to(path)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def run_pyramid(size: int, out: Path, executor: str, workers: int | None) -> dict:
    import bigcppn

    marks = {}
    cfg = bigcppn.load_config(None, [], {"canvas.width": size, "canvas.height": size, "seed": 7})
    out.mkdir()
    load = os.getloadavg()[0]
    procs, c0, t0 = RayCPU(), cpu_self(), time.perf_counter()
    r = bigcppn.render_pyramid(cfg, out / "p.dzi", executor=executor, workers=workers,
                               on_start=lambda *_: marks.setdefault("start", time.perf_counter()))
    seconds = time.perf_counter() - t0
    ray_cpu = procs.stop()
    return {"seconds": seconds, "startup": marks["start"] - t0 if executor == "ray" else 0.0,
            "driver_cpu": cpu_self() - c0 - procs.own, "ray_cpu": ray_cpu, "worker_cpu": r.worker_cpu,
            "transfer": r.transfer_bytes, "digest": digest(out), "tiles": r.written, "load": load}


def run_single(size: int, folder: Path, name: str, executor: str, workers: int | None) -> dict:
    """``render -o folder/name`` (a TIFF or a .dzi); the digest covers everything written in ``folder``."""
    from bigcppn import api
    from bigcppn.cluster.pyramid import RayOptions
    from bigcppn.cluster.single import render_single
    from bigcppn.formats.deepzoom.writer import dz_sizes
    from bigcppn.job import resolve_job
    from bigcppn.network.devices import CPU_BATCH
    from bigcppn.formats.target import OutputTarget
    from bigcppn.formats.tiff.tile import pyramid_sizes

    cfg = api.as_config(None, seed=7, overrides=[f"canvas.width={size}", f"canvas.height={size}"])
    folder.mkdir()
    out = folder / name
    marks = {}
    load = os.getloadavg()[0]
    procs, c0, t0 = RayCPU(), cpu_self(), time.perf_counter()
    if executor == "local":
        api.render_file(cfg, out)
        info = {"worker_cpu": 0.0, "transfer_bytes": 0}
    else:
        job = resolve_job(cfg, out)
        info = render_single(job, OutputTarget(job.output, job.fmt), RayOptions(workers=workers), CPU_BATCH,
                             on_workers=lambda ex: (ex.pids(), marks.setdefault("start", time.perf_counter())))
    seconds = time.perf_counter() - t0
    ray_cpu = procs.stop()
    t = 254 if out.suffix == ".dzi" else 256
    sizes = dz_sizes(size, size) if out.suffix == ".dzi" else pyramid_sizes(size, size, t)
    return {"seconds": seconds, "startup": marks.get("start", t0) - t0, "driver_cpu": cpu_self() - c0 - procs.own,
            "ray_cpu": ray_cpu, "worker_cpu": info["worker_cpu"], "transfer": info["transfer_bytes"],
            "load": load, "digest": digest(folder), "tiles": sum(-(-w // t) * -(-h // t) for w, h in sizes)}


def report(name: str, size: int, rows: dict[str, dict]) -> None:
    mpix = size * size / 1e6
    one = rows["ray, 1 actor"]
    print(f"\n{name}, {size}x{size} ({mpix:.1f} MPix of base canvas)")
    print(f"{'executor':<14}{'wall s':>8}{'start s':>8}{'MPix/s':>8}{'w/o start':>10}{'vs 1 actor':>11}"
          f"{'drv CPU s/MPix':>15}{'actors CPU s':>13}{'Ray procs CPU s':>16}{'drv/actors':>11}{'B/px':>8}"
          f"{'identical':>10}{'cores got':>10}{'load':>6}")
    for mode, r in rows.items():
        work = r["seconds"] - r["startup"]
        speed = (one["seconds"] - one["startup"]) / work
        share = f"{r['driver_cpu'] / r['worker_cpu']:.1%}" if r["worker_cpu"] else "-"
        same = "yes" if r["digest"] == rows["local"]["digest"] else "NO"
        print(f"{mode:<14}{r['seconds']:>8.1f}{r['startup']:>8.1f}{mpix / r['seconds']:>8.2f}{mpix / work:>10.2f}"
              f"{speed:>10.2f}x{r['driver_cpu'] / mpix:>15.3f}{r['worker_cpu']:>13.1f}{r['ray_cpu']:>16.1f}"
              f"{share:>11}{r['transfer'] / (size * size):>8.3f}{same:>10}"
              f"{(r['driver_cpu'] + r['ray_cpu']) / r['seconds']:>10.2f}{r['load']:>6.1f}")
    print(f"per tile ({rows['local']['tiles']} tiles): " + "; ".join(
        f"{mode}: actors {1e3 * r['worker_cpu'] / r['tiles']:.2f} ms CPU, driver {1e3 * r['driver_cpu'] / r['tiles']:.3f} "
        f"ms CPU, {r['transfer'] / r['tiles'] / 1e3:.2f} kB moved" for mode, r in rows.items() if mode != "local"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=8192, help="pyramid base canvas side (default 8192)")
    ap.add_argument("--tiff-size", type=int, default=8192, help="TIFF canvas side (default 8192)")
    ap.add_argument("--dzi-size", type=int, default=8192, help="DeepZoom file's canvas side (default 8192)")
    ap.add_argument("--only", default="pyramid,tiff,dzi", help="which outputs, comma-separated (default all three)")
    args = ap.parse_args()
    only = set(args.only.split(","))
    import ray

    print(machine())
    print(f"ray {ray.__version__}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    rt = tempfile.mkdtemp(prefix="rb-", dir="/tmp")
    pyr, tif, dzi = {}, {}, {}

    def run_all(mode: str, tag: str, executor: str, workers: int | None) -> None:
        if "pyramid" in only:
            pyr[mode] = run_pyramid(args.size, tmp / f"pyr-{tag}", executor, workers)
        if "tiff" in only:
            tif[mode] = run_single(args.tiff_size, tmp / f"tif-{tag}", "p.tif", executor, workers)
        if "dzi" in only:
            dzi[mode] = run_single(args.dzi_size, tmp / f"dzi-{tag}", "p.dzi", executor, workers)

    try:
        run_all("local", "local", "local", None)
        for cpus in (1, 2):
            name = f"ray, {cpus} actor" + ("s" if cpus > 1 else "")
            t = time.perf_counter()
            ray.init(num_cpus=cpus, _temp_dir=rt, include_dashboard=False, log_to_driver=False)
            print(f"ray.init(num_cpus={cpus}): {time.perf_counter() - t:.1f} s (not counted below)")
            try:
                run_all(name, f"ray{cpus}", "ray", cpus)
            finally:
                ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(rt, ignore_errors=True)
    if pyr:
        report("DeepZoom pyramid, JPEG tiles, every level from the network (supersample 2)", args.size, pyr)
    if tif:
        report("Tiled pyramidal TIFF, deflate", args.tiff_size, tif)
    if dzi:
        report("DeepZoom file (render -o X.dzi), JPEG tiles, levels shrunk from the full image", args.dzi_size, dzi)


if __name__ == "__main__":
    main()
