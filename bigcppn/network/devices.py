"""The device policy: every difference between evaluating the network on a CPU and on CUDA.

One :class:`DevicePolicy` per ``torch.device.type`` (:class:`CpuPolicy`,
:class:`CudaPolicy`), registered with :func:`register_policy` and found with
:func:`policy_for`; :func:`pick_device` turns ``render.device`` into a
``torch.device``. What a caller would otherwise decide by the device's name it
asks the policy instead:

* how much at once: pixels per device call of a window (:attr:`~DevicePolicy.chunk`)
  and of pyramid levels, per contact-sheet pass, per pyramid job, per live-server
  batch, the default render batch;
* threads: strip workers, torch's threads, tiles rendered side by side;
* how a strip's rows reach host memory (:meth:`~DevicePolicy.render_rows`): window
  by window on a CPU; on CUDA into a device buffer on each worker's own stream,
  then into pinned host memory, synchronised once a strip;
* out-of-memory: which error halves a batch, and giving the cached memory back;
* the fused Triton kernel: whether Triton compiles it for the device (and it is
  used by default) or only its interpreter runs it;
* TF32 off on CUDA;
* memory: whether the network's activations live in host memory, the device's own memory;
* estimates: whether the network shares the cores with the writer (a CPU) or runs beside it (a GPU).

Torch is imported inside the methods only, so :mod:`bigcppn.estimate.plan` asks
a policy without loading it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Sequence

from ..core.system import available_cores
from ..errors import UserError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from ..core.geometry import Window

__all__ = ["DevicePolicy", "CpuPolicy", "CudaPolicy", "register_policy", "policy_for", "pick_device",
           "CPU_CHUNK", "CPU_BATCH", "CPU_JOB_SAMPLES"]

# On a CPU the network is bound by its activations; chunks that keep a layer's
# activations in L2 cache run fastest (measured: 8192 rows of 16 floats).
CPU_CHUNK = 8192
CPU_BATCH = 65536
# Samples (pixels x K²) evaluated in one pyramid job on a CPU; a GPU takes the render's batch.
CPU_JOB_SAMPLES = 1 << 18


class DevicePolicy:
    """What one kind of device decides about evaluating the network (stateless: one instance a kind).

    A subclass sets the attributes below and overrides what differs; the
    methods' defaults serve a device with its own memory, one strip worker and
    no setup, whose rows are rendered window by window.
    """

    name: str  # the torch.device.type it serves
    chunk: int  # pixels per device call of a canvas window (out-of-memory halves it)
    level_chunk: int  # samples per device call of pyramid levels
    sheet_pixels: int  # pixels per batched pass of a contact sheet, shared by its networks
    gather_samples: int  # samples the live server gathers into one batch
    compiles_kernel: bool  # Triton compiles the fused kernel for it (used by default); else only its interpreter
    shares_cores_with_writer: bool  # the network and the writer share the cores (else they run side by side)
    renders_whole_strips: bool  # a strip is one piece of device work (what plan's timing measures)
    unavailable: str = ""  # the UserError when it was asked for and is missing

    def available(self) -> bool:
        """Whether this machine has the device."""
        return True

    def configure(self) -> None:
        """Set torch up before a network moves to the device."""

    def strip_workers(self, requested: int = 0) -> int:
        """How many strip workers to run (``requested``, or the device's own number)."""
        return 1

    def threads_for_one_pass(self, workers: int = 0) -> None:
        """Let torch thread one big batched pass itself (the contact sheet)."""

    def tile_workers(self) -> int:
        """Tiles the live server renders side by side, or 0: it batches them."""
        return 0

    def default_batch(self, device: torch.device, max_width: int) -> int:
        """Pixels per device batch of a render whose widest layer is ``max_width``."""
        return CPU_BATCH

    def job_samples(self, batch_pixels: int) -> int:
        """Network samples per pyramid job, for a render of ``batch_pixels`` a batch."""
        return batch_pixels

    def host_pixels(self, pixels: int, workers: int = 0) -> int:
        """Pixels whose activations live in host memory at once, ``pixels`` a worker (see
        :func:`bigcppn.core.limits.check_network_memory`)."""
        return 0

    def device_memory(self, device: torch.device) -> int | None:
        """Bytes of the device's own memory, or None: the device is the host."""
        return None

    def out_of_memory(self) -> tuple[type[BaseException], ...]:
        """The errors that halve a batch and retry it.

        CUDA's, on every device: a CPU never raises it, and the tests simulate it there.
        """
        import torch

        return (torch.cuda.OutOfMemoryError,)

    def free_memory(self) -> None:
        """Give the memory of a failed batch back (a no-op where CUDA never started)."""
        import torch

        torch.cuda.empty_cache()

    def render_rows(self, backend, win: Window, batches: Sequence[Window],
                    stop: threading.Event | None = None) -> np.ndarray:
        """Full-width rows ``win`` of ``backend`` (a :class:`~bigcppn.network.backend.Backend`) as a host
        array: here :meth:`~bigcppn.network.backend.Backend.render_batches`, window by window."""
        return backend.render_batches(win, batches, stop)


class CpuPolicy(DevicePolicy):
    """A CPU: cache-sized chunks, a strip worker a core with one torch thread each."""

    name = "cpu"
    chunk = CPU_CHUNK
    level_chunk = CPU_CHUNK
    sheet_pixels = CPU_CHUNK
    gather_samples = 1 << 20
    compiles_kernel = False
    shares_cores_with_writer = True
    renders_whole_strips = False

    def strip_workers(self, requested: int = 0) -> int:
        """One a core, each with one torch thread.

        Measured on a 2-core machine: one torch thread per worker, a worker per
        core, beats torch's own intra-op threads, which spin against the encoder.
        """
        import torch

        cores = available_cores()
        torch.set_num_threads(1)
        return max(1, requested or cores)

    def threads_for_one_pass(self, workers: int = 0) -> None:
        """One torch thread a core."""
        import torch

        torch.set_num_threads(self.strip_workers(workers))

    def tile_workers(self) -> int:
        """One a core, one torch thread each."""
        return self.strip_workers()

    def job_samples(self, batch_pixels: int) -> int:
        """Cache-sized: :data:`CPU_JOB_SAMPLES`."""
        return CPU_JOB_SAMPLES

    def host_pixels(self, pixels: int, workers: int = 0) -> int:
        """Every worker's (``workers``, 0: one a core)."""
        return pixels * (workers or available_cores())


class CudaPolicy(DevicePolicy):
    """A CUDA GPU: batches sized from its free memory, two workers double-buffering on their own streams."""

    name = "cuda"
    chunk = 2**62  # a window in one piece, until out-of-memory halves it
    level_chunk = 1 << 22
    sheet_pixels = 2**22
    gather_samples = 1 << 24
    compiles_kernel = True
    shares_cores_with_writer = False
    renders_whole_strips = True
    unavailable = "--device cuda was asked for but no CUDA device is available; use --device cpu or auto"

    def available(self) -> bool:
        import torch

        return torch.cuda.is_available()

    def configure(self) -> None:
        """TF32 off: it keeps 10 mantissa bits, never enough here."""
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def strip_workers(self, requested: int = 0) -> int:
        """Two: double buffering, each worker with its own stream and device buffer, so one strip is
        computed while the previous one is copied to the host."""
        return max(1, requested or 2)

    def default_batch(self, device: torch.device, max_width: int) -> int:
        """A share of the free memory."""
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        # float64 x, y, features; two float32 activations of the widest layer; output.
        per_pixel = 8 * 5 + 4 * (2 * max(max_width, 3) + 4)
        return int(max(2**20, min(2**26, free // 4 // per_pixel)))

    def device_memory(self, device: torch.device) -> int | None:
        import torch

        return torch.cuda.get_device_properties(device).total_memory

    def render_rows(self, backend, win: Window, batches: Sequence[Window],
                    stop: threading.Event | None = None) -> np.ndarray:
        """Into a device buffer on this thread's stream, then into pinned host memory (``stop`` unused).

        Each worker thread has its own stream and buffer (``backend.per_thread``,
        see :meth:`strip_workers`), so one strip is computed while another is
        copied; the host arrays come from torch's caching pinned allocator and
        return to it when the encoder drops them.
        """
        import torch

        local = backend.per_thread
        dtype = backend.device_dtype
        if not hasattr(local, "stream"):
            local.stream = torch.cuda.Stream(backend.device)
            local.buffer = torch.empty(0, dtype=dtype, device=backend.device)
        shape = (win.height, win.width, backend.bands)
        n = win.pixels * backend.bands
        with torch.cuda.stream(local.stream):
            if local.buffer.numel() < n:
                local.buffer = None
                local.buffer = torch.empty(n, dtype=dtype, device=backend.device)
            dev = local.buffer[:n].view(shape)
            if backend.fused is not None:
                backend.fill(dev, win)  # the whole strip in one launch
            else:
                for b in batches:
                    backend.fill(dev[:, b.x - win.x : b.x - win.x + b.width], b)
            host = torch.empty(shape, dtype=dtype, pin_memory=True)
            host.copy_(dev, non_blocking=True)
            local.stream.synchronize()
        arr = host.numpy()
        return arr if arr.dtype == backend.dtype else arr.astype(backend.dtype)


_POLICIES: dict[str, DevicePolicy] = {}
_AUTO_ORDER: list[str] = []  # what "auto" tries, best first


def register_policy(policy: DevicePolicy, auto: bool = False) -> DevicePolicy:
    """Make ``policy`` the one for its ``torch.device.type``; ``auto``: ``render.device=auto`` tries it,
    before those registered earlier."""
    _POLICIES[policy.name] = policy
    if auto:
        _AUTO_ORDER.insert(0, policy.name)
    return policy


def policy_for(device: torch.device | str) -> DevicePolicy:
    """The policy of ``device`` (a ``torch.device``, or its type's name such as ``cuda``)."""
    kind = device if isinstance(device, str) else device.type
    try:
        return _POLICIES[kind.partition(":")[0]]
    except KeyError:
        raise ValueError(f"no device policy for {kind!r}; known: {', '.join(_POLICIES)}") from None


def pick_device(name: str) -> torch.device:
    """``auto`` is the best device present (CUDA, else the CPU); asking for a missing one is a user error."""
    import torch

    if name == "auto":
        return torch.device(next(n for n in _AUTO_ORDER if _POLICIES[n].available()))
    policy = policy_for(name)
    if not policy.available():
        raise UserError(policy.unavailable)
    return torch.device(name)


register_policy(CpuPolicy(), auto=True)
register_policy(CudaPolicy(), auto=True)
