#!/usr/bin/env bash
# The one prepared GPU check (see ../shared/gpu/README.md): the CUDA and interpreter tests, the renderer
# tests on CUDA, then benchmarks/bench_gpu.py at 32768². Everything it reports lands in $OUT (4 files).
#
# On the accelerator machine, from the project's root, after benchmarks/gpu_wheels.sh filled .whl/ here:
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=570)
# Tried on a CPU first with:  DEVICE=cpu SIZE=1024 OUT=/tmp/gpu-check bash benchmarks/gpu_check.sh
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
DEVICE=${DEVICE:-cuda}
SIZE=${SIZE:-32768}
mkdir -p "$OUT"

# pyvips and imagecodecs are not installed there: the carried wheels go to /tmp/site (the package itself
# runs from here).
if ! python3 -c "import pyvips, imagecodecs" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=$PWD:/tmp/site
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv 2>&1 || true
  nproc
  python3 -c "import torch, pyvips; print('torch', torch.__version__, 'cuda', torch.version.cuda); \
print('libvips', pyvips.version(0), pyvips.version(1), pyvips.version(2)); \
import triton; print('triton', triton.__version__)" 2>&1
} > "$OUT/env.txt"

t0=$(date +%s)
{
  echo "== the kernel tests: CUDA (gpu) and Triton's interpreter (triton, in a child process)"
  timeout 240 python3 -m pytest -q -p no:cacheprovider -m "gpu or triton" --device "$DEVICE" -rs \
    tests/network/test_kernel.py tests/network/test_gpu_kernel.py 2>&1 | tail -40
  echo "== the renderer, CLI and writer tests on $DEVICE (the fused kernel by default on CUDA)"
  timeout 150 python3 -m pytest -q -p no:cacheprovider --device "$DEVICE" -rs \
    tests/network/test_render.py tests/cli/test_cli.py tests/formats/test_tiffwriter.py tests/formats/test_dzwriter.py 2>&1 | tail -25
  echo "tests took $(( $(date +%s) - t0 )) s"
} > "$OUT/tests.txt" 2>&1

# The benchmark rewrites bench_gpu.json after every measurement, so a timeout still leaves figures.
left=$(( 540 - ($(date +%s) - t0) ))
timeout "$(( left > 60 ? left : 60 ))" python3 benchmarks/bench_gpu.py --device "$DEVICE" --size "$SIZE" \
  --json "$OUT/bench_gpu.json" > "$OUT/bench_gpu.txt" 2>&1
echo "bench exit $? after $(( $(date +%s) - t0 )) s" >> "$OUT/bench_gpu.txt"
tail -5 "$OUT/tests.txt"; tail -25 "$OUT/bench_gpu.txt"
