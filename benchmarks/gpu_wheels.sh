#!/usr/bin/env bash
# Fills ./.whl with what the accelerator machine lacks: ../shared/gpu/wheels.sh (pyvips, libvips, cffi)
# plus imagecodecs (the parallel TIFF writer's codecs), for its Python 3.12. About 34 MB to carry.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
bash ../shared/gpu/wheels.sh >/dev/null
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "imagecodecs>=2024.1.1"
du -sh .whl && ls .whl
