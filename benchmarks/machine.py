"""One line describing the machine a benchmark ran on, for the figures in docs/benchmarks.md."""

from __future__ import annotations

import platform


def machine(device=None) -> str:
    """GPU (or none), CPU model, usable cores, torch, and triton and libvips where installed."""
    import torch

    from bigcppn.core.system import available_cores

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU used"
    extra = ""
    try:
        import pyvips

        extra += f", libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"
        import triton

        extra += f", triton {triton.__version__}"
    except Exception:
        pass
    return f"{gpu}; {cpu}, {available_cores()} cores; torch {torch.__version__}{extra}"
