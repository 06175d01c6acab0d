"""What a finished render returns: where the output is, its size, and how long it took.

Below the API and the engines (both build them), so neither imports the other for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RenderResult", "PyramidResult", "CompletedInterrupt", "size_of"]


class CompletedInterrupt(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) that came after the output was complete; ``result`` says what was written."""

    def __init__(self, result: "RenderResult") -> None:
        super().__init__(f"interrupted after {result.path} was complete")
        self.result = result


@dataclass(frozen=True)
class RenderResult:
    """A finished render: where it is, its size in pixels and on disk, and how long it took."""

    path: Path
    width: int
    height: int
    bytes: int
    seconds: float
    worker_cpu: float = 0.0  # CPU seconds of the cluster's workers (executor="ray"; 0 locally)
    transfer_bytes: int = 0  # bytes of jobs and results between driver and workers (executor="ray")
    requests: dict | None = None  # to a bucket (-o s3://...): the puts, gets, lists, deletes and bytes_up it made

    @property
    def mpix_per_s(self) -> float:
        return self.width * self.height / 1e6 / max(self.seconds, 1e-9)


@dataclass(frozen=True)
class PyramidResult:
    """A finished pyramid: its descriptor (or folder), levels, tiles written and skipped, and the page."""

    path: Path
    width: int
    height: int
    levels: int
    tiles: int
    written: int
    skipped: int
    pixels: int
    page: Path
    seconds: float
    viewer_local: bool = False  # OpenSeadragon copied beside the page; else the page loads it from a CDN
    replaced: bool = False  # another render's pyramid was removed first (overwrite)
    worker_cpu: float = 0.0  # CPU seconds of the cluster's workers (executor="ray"; 0 locally)
    transfer_bytes: int = 0  # bytes of jobs and results between driver and workers (executor="ray")
    requests: dict | None = None  # a bucket's requests made by this process (puts, gets, lists, deletes, bytes_up)

    @property
    def remote(self) -> bool:
        """Whether the pyramid is in a bucket (``path`` and ``page`` are then URLs)."""
        return self.requests is not None

    @property
    def tiles_per_s(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0

    @property
    def mpix_per_s(self) -> float:
        return self.pixels / 1e6 / max(self.seconds, 1e-9)


def size_of(p: Path) -> int:
    """Bytes under ``p``: a file's size, a folder's files' sizes added up, 0 when it is missing."""
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size if p.exists() else 0
