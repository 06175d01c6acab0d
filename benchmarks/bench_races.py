"""`render --overwrite` against `pyramid --overwrite` on one .dzi, N times: is every final output whole and one run's?

Issue #21's target: 0 lost or mixed outputs over 100 races. Each race starts
from a render of seed 1 at NAME.dzi, then two processes write the same name at
once, their starts a random 0-0.4 s apart (which starts first alternates):

* ``render --seed 2 --overwrite -o NAME.dzi`` (a DeepZoom output: tiles, sidecar, descriptor);
* ``pyramid --seed 3 --overwrite -o NAME.dzi`` (a pyramid: tiles, manifest, descriptor, page).

The final visible files (the viewer page aside) must equal, byte for byte, a
clean run of one of them, or the seed-1 output when both were refused. Anything
else counts as lost or mixed. The two writers are long-lived processes that run
``bigcppn.cli.main`` on request, so a race costs the render, not Python's and
torch's start (about 2 s each): the owner lock and the commit are the real ones,
between real processes.

    python3 benchmarks/bench_races.py            # 100 races
    python3 benchmarks/bench_races.py --races 20
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE = ["--width", "640", "--height", "480"]
RENDER = ["render", *SIZE, "--seed", "2", "-q", "--overwrite"]
PYRAMID = ["pyramid", *SIZE, "--tile", "64", "--seed", "3", "-q", "--overwrite"]

WORKER = """
import contextlib, io, json, sys, time
from bigcppn import cli
for line in sys.stdin:
    job = json.loads(line)
    time.sleep(job["delay"])
    err = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err):
        try:
            rc = cli.main(job["argv"])
        except BaseException as exc:  # a traceback the CLI let through: reported, counted
            import traceback
            traceback.print_exc(file=err)
            rc = -1
    print(json.dumps({"rc": rc, "err": err.getvalue(), "s": time.perf_counter() - t0}), flush=True)
"""


class Writer:
    """A process that imports bigcppn once and runs ``cli.main(argv)`` for each job it is sent."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def send(self, argv: list[str], delay: float) -> None:
        self.proc.stdin.write(json.dumps({"argv": argv, "delay": delay}) + "\n")
        self.proc.stdin.flush()

    def result(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("a writer process died")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def visible(folder: Path) -> dict[str, bytes]:
    """Every file a viewer or a later run sees (hidden work files, the viewer page and its script aside)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(s.startswith(".") for s in p.relative_to(folder).parts)
            and "openseadragon" not in p.parts and p.suffix != ".html"}


def reference(work: Path, name: str, argv: list[str]) -> dict[str, bytes]:
    from bigcppn import cli

    d = work / name
    d.mkdir()
    with contextlib.redirect_stderr(io.StringIO()):
        assert cli.main([*argv, "-o", str(d / "a.dzi")]) == 0
    return visible(d)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--races", type=int, default=100)
    ap.add_argument("--seed", type=int, default=21, help="seed of the random start offsets")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="races-"))
    try:
        old = reference(work, "old", ["render", *SIZE, "--seed", "1", "-q"])
        refs = {"render": reference(work, "render", RENDER), "pyramid": reference(work, "pyramid", PYRAMID),
                "old (both refused)": old}
        writers = {"render": Writer(), "pyramid": Writer()}
        outcomes, codes, tracebacks, leftovers, secs = Counter(), Counter(), 0, 0, []
        t0 = time.perf_counter()
        for i in range(args.races):
            site = work / f"race{i}"
            shutil.copytree(work / "old", site)
            first, gap = ("render", "pyramid")[i % 2], rng.uniform(0.0, 0.4)
            for who, argv in (("render", RENDER), ("pyramid", PYRAMID)):
                writers[who].send([*argv, "-o", str(site / "a.dzi")], 0.0 if who == first else gap)
            res = {who: w.result() for who, w in writers.items()}
            final = visible(site)
            won = next((k for k, v in refs.items() if v == final), "LOST OR MIXED")
            outcomes[won] += 1
            codes[f"render {res['render']['rc']}, pyramid {res['pyramid']['rc']}"] += 1
            tracebacks += sum("Traceback" in r["err"] for r in res.values())
            leftovers += sum(1 for p in site.iterdir() if p.name.startswith(".") and "lock" not in p.name)
            secs += [r["s"] for r in res.values()]
            if won == "LOST OR MIXED":
                print(f"race {i}: LOST OR MIXED ({first} first, gap {gap:.2f} s): {res}", file=sys.stderr)
            shutil.rmtree(site)
        wall = time.perf_counter() - t0
        for w in writers.values():
            w.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bad = outcomes.get("LOST OR MIXED", 0)
    print(f"{args.races} races of render --overwrite against pyramid --overwrite on one .dzi, {wall:.0f} s "
          f"(a run {min(secs):.2f}-{max(secs):.2f} s)")
    for k, v in sorted(outcomes.items()):
        print(f"  final output = {k}: {v}")
    for k, v in sorted(codes.items()):
        print(f"  exit codes {k}: {v}")
    print(f"  tracebacks: {tracebacks}; hidden work files left beside the output: {leftovers}")
    print(f"lost or mixed: {bad} of {args.races}")
    return 1 if bad or tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
