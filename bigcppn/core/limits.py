"""Limits on untrusted input, checked before anything is rendered.

Everything bigcppn reads from a person or from an earlier output passes
through here: config files, sidecars and embedded configs are read with a
bounded size (:data:`MAX_TEXT_BYTES`), parsed with a bounded nesting depth
(:data:`MAX_DEPTH`), and refused with one line when they are not what they
should be; a network must fit the machine's memory; an output name must be one
the file system can encode and hold. Every refusal is a :class:`UserError`.

Nothing here uses a regular expression: untrusted text is scanned with
``str.find`` and the standard parsers only.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import tomllib
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UserError

__all__ = [
    "MAX_TEXT_BYTES", "MAX_DEPTH", "DPI_RANGE", "MAX_HIDDEN_WIDTH", "MAX_LAYERS", "MAX_Z_SIZE", "MAX_BATCH",
    "MAX_SCALE", "MAX_ZOOM", "MAX_CENTER", "describe", "read_bounded", "read_zip_entry", "decode_text",
    "check_tree", "parse_failure", "parse_toml", "parse_json", "physical_memory", "network_bytes",
    "check_network_memory", "check_output_name", "name_max", "check_name_lengths", "partial_prefix", "size_text",
]

# A config file, a sidecar or a config embedded in an image: bigcppn writes a few kilobytes.
MAX_TEXT_BYTES = 1_000_000
# Lists and tables inside one another: a config needs 3.
MAX_DEPTH = 32
# Print resolution, dots per inch.
DPI_RANGE = (1.0, 100000.0)
# The network: widths, layers and the latent vector (memory is checked as well, see check_network_memory).
MAX_HIDDEN_WIDTH = 1 << 20
MAX_LAYERS = 1024
MAX_Z_SIZE = 1 << 16
MAX_BATCH = 1 << 31
# Weight and bias scales, so float32 layers stay finite.
MAX_SCALE = 1e6
# The view: beyond these float64 coordinates no longer tell neighbouring pixels apart, or overflow.
MAX_ZOOM = 1e15
MAX_CENTER = 1e9

# The resident size of a Python process with torch, numpy and pyvips loaded.
BASE_PROCESS_BYTES = 260 * 1024**2


def size_text(n: float) -> str:
    """Bytes in words: 512 B, 1.5 MB, 80.0 GB."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _over(n: int, limit: int) -> str:
    """``n`` bytes against ``limit``, in words: "2.1 MB, over the 1.0 MB bigcppn reads"."""
    amount = size_text(n) if n > limit * 1.1 else f"{n:,} bytes"
    return f"{amount}, over the {size_text(limit)} bigcppn reads"


def describe(value: Any, limit: int = 60) -> str:
    """A short, one-line ``repr`` of an untrusted value, for an error message."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    if isinstance(value, (list, tuple, dict)) and len(value) > limit:
        return f"a {type(value).__name__} of {len(value)} items"
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- bounded reads


def read_bounded(path: str | Path, what: str, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; UserError for anything else.

    Opened without blocking (a FIFO does not hang) and checked on the open
    descriptor, so a device such as /dev/zero, a directory or a socket is
    refused before a byte is read, and at most ``limit + 1`` bytes are read.
    """
    p = Path(path)
    if "\0" in str(p):
        raise ConfigError(f"{what} {str(p)!r} has a NUL byte in its name; give a file's path")
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ConfigError(f"{what} '{p}' does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} '{p}': {exc.strerror or exc.__class__.__name__}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{what} '{p}' is a directory; give a file")
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{what} '{p}' is not a regular file; give a file")
        if st.st_size > limit:
            raise ConfigError(f"{what} '{p}' is {_over(st.st_size, limit)}; give the right file")
        chunks, left = [], limit + 1
        while left > 0:
            try:
                chunk = os.read(fd, min(left, 1 << 20))
            except OSError as exc:
                raise ConfigError(f"cannot read {what} '{p}': {exc.strerror or exc.__class__.__name__}") from None
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:  # it grew while being read
        raise ConfigError(f"{what} '{p}' is over the {size_text(limit)} bigcppn reads; give the right file")
    return data


def read_zip_entry(z, name: str, what: str, limit: int = MAX_TEXT_BYTES) -> bytes:
    """At most ``limit`` bytes of one entry of an open ``zipfile.ZipFile``, however far it would inflate."""
    info = z.getinfo(name)
    if info.file_size > limit:
        raise ConfigError(f"{what} is {_over(info.file_size, limit)} unpacked; it is not a bigcppn config")
    with z.open(info) as f:
        data = f.read(limit + 1)  # the header's size may lie: read one byte past the limit, no more
    if len(data) > limit:
        raise ConfigError(f"{what} unpacks to over {size_text(limit)}; it is not a bigcppn config")
    return data


def decode_text(data: bytes | str, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """UTF-8 text of at most ``limit`` bytes (metadata, a sidecar), or a UserError."""
    if isinstance(data, str):
        if len(data) > limit:
            raise ConfigError(f"{what} is over the {size_text(limit)} bigcppn reads; it is not a bigcppn config")
        return data
    if len(data) > limit:
        raise ConfigError(f"{what} is {_over(len(data), limit)}; it is not a bigcppn config")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


# --------------------------------------------------------------------------- parsing


def check_tree(value: Any, what: str, limit: int = MAX_DEPTH) -> None:
    """Refuse lists and tables nested deeper than ``limit`` (walked without recursion)."""
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            items = v.values()
        elif isinstance(v, (list, tuple)):
            items = v
        else:
            continue
        if depth >= limit:
            raise ConfigError(f"{what} has lists or tables nested more than {limit} deep; a config needs 3")
        stack.extend((x, depth + 1) for x in items)


def parse_failure(exc: BaseException) -> str:
    """What a parser's exception means, in words (Python's own messages give the wrong advice)."""
    if isinstance(exc, RecursionError):
        return f"lists or tables nested too deeply (a config needs 3, bigcppn reads {MAX_DEPTH})"
    text = str(exc)
    if "digits" in text and not isinstance(exc, json.JSONDecodeError):  # the limit on converting long integers
        return f"a number with more than {sys.get_int_max_str_digits()} digits"
    return text.splitlines()[0] if text.strip() else exc.__class__.__name__


def parse_toml(text: str, what: str) -> dict:
    """A TOML document as a dict, with bounded nesting; ConfigError when it is not valid TOML."""
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{what} is not valid TOML: {parse_failure(exc)}") from None
    check_tree(data, what)
    return data


def parse_json(text: str, what: str) -> Any:
    """A JSON document, with bounded nesting; ConfigError when it is not valid JSON."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{what} is not valid JSON: {parse_failure(exc)}") from None
    check_tree(data, what)
    return data


# --------------------------------------------------------------------------- memory


def physical_memory() -> int:
    """Bytes of memory this process may use: physical RAM, or a smaller cgroup limit."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = 1 << 62
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            total = int(text)
    return total


def _widths(net) -> list[int]:
    """Layer widths from the input to the output."""
    return [net.input_count, *net.hidden, net.bands]


def network_bytes(net) -> tuple[int, int, int]:
    """(parameters, bytes while built, bytes per evaluated pixel) of a network config.

    Built on the host in float64 and kept as float64/float32 copies for the
    reference and fast passes: about 32 bytes a parameter at the peak, 16 after.
    A pixel's activations: float64 coordinates, the first layer in float64 and
    float32, then two float32 layers alive at a time.
    """
    w = _widths(net)
    params = sum(a * b + b for a, b in zip(w, w[1:]))
    first = w[1] if len(w) > 1 else 0
    pairs = max((a + b for a, b in zip(w[1:], w[2:])), default=0)
    per_pixel = 8 * 5 + max(12 * first, 4 * pairs)
    return params, 32 * params, per_pixel


def check_network_memory(net, host_pixels: int, copies: int = 1, available: int | None = None,
                         device_memory: int | None = None) -> int:
    """Refuse a network whose weights and activations would not fit this machine; return the estimate.

    ``host_pixels`` is how many pixels have their activations in this
    machine's memory at once (every worker's together; 0 when they live on a
    GPU), ``copies`` how many networks are held (a contact sheet holds one per
    seed). The weights are always built here, on the host; on a GPU
    (``device_memory`` bytes) they are copied there, and the activations live
    there too, in batches that halve when they do not fit.
    """
    params, build, per_pixel = network_bytes(net)
    resident = 16 * params * copies
    acts = per_pixel * host_pixels
    need = BASE_PROCESS_BYTES + max(build + 16 * params * (copies - 1), resident + acts)
    have = physical_memory() if available is None else available
    hint = "use fewer or narrower layers" + (" or a smaller network.z_size" if "z" in net.inputs else "")
    if need > have:
        detail = f"{params:,} weights" + (f", {size_text(acts)} of activations" if acts else "")
        raise ConfigError(f"the network needs about {size_text(need)} of memory ({detail}), more than this "
                          f"machine's {size_text(have)}; {hint}")
    if device_memory is not None and 8 * params * copies > device_memory:
        raise ConfigError(f"the network's {params:,} weights need about {size_text(8 * params * copies)} on the "
                          f"GPU, more than its {size_text(device_memory)}; {hint}")
    return need


# --------------------------------------------------------------------------- output names


def check_output_name(path: str | Path) -> None:
    """Refuse an output path the file system's encoding cannot write (a stray byte in a UTF-8 name)."""
    text = str(path)
    try:
        raw = os.fsencode(text)
        ok = raw.decode(sys.getfilesystemencoding(), "strict") == text
    except (UnicodeError, ValueError):
        ok = False
    if "\x00" in text:
        raise UserError("the output name contains a NUL character; choose another name")
    if not ok:
        try:
            shown = os.fsencode(text).decode("ascii", "backslashreplace")
        except (UnicodeError, ValueError):
            shown = ascii(text)[1:-1]
        raise UserError(f"the output name '{shown}' is not valid {sys.getfilesystemencoding()} text; "
                        "choose a name without stray bytes")


def name_max(folder: str | Path) -> int:
    """The longest file name, in bytes, the file system under ``folder`` holds (255 when unknown)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def check_name_lengths(path: Path, names: list[str], longest_path: Path | None = None) -> None:
    """Refuse ``path`` when one of the file names it implies is too long for its folder.

    ``names`` are the names written beside it (the output's own name first, then
    its companions and temporary siblings); ``longest_path`` the deepest path written.
    """
    folder = path.parent if str(path.parent) else Path(".")
    most = name_max(folder)
    for name in names:
        n = len(os.fsencode(name))
        if n > most:
            what = "it is" if name == path.name else "a file it writes beside it would be"
            raise UserError(f"the output name '{path.name}' is too long for this file system: {what} {n} bytes "
                            f"where at most {most} fit; choose a shorter -o")
    if longest_path is not None:
        try:
            limit = int(os.pathconf(folder, "PC_PATH_MAX"))
        except (OSError, ValueError, AttributeError):
            limit = 4096
        if len(os.fsencode(str(longest_path))) >= limit:
            raise UserError(f"the output path '{path}' is too long for this file system (at most {limit} bytes "
                            "with the temporary folder bigcppn writes first); choose a shorter -o")


# Room left in a temporary sibling's name for the PID (Linux's pid_max is at most 4194304).
PID_DIGITS = 10


def partial_prefix(path: Path) -> str:
    """The start of the name of ``path``'s temporary sibling, up to the PID: ``.NAME.partial-``.

    Where that would not fit the file system with a PID after it, it is
    ``.HEAD~HASH.partial-``: the name cut short (at a character boundary) and a
    hash of the whole name, so different long names keep different folders.
    """
    name = path.name
    prefix = f".{name}.partial-"
    room = name_max(path.parent if str(path.parent) else ".") - PID_DIGITS
    if len(os.fsencode(prefix)) <= room:
        return prefix
    raw = os.fsencode(name)
    digest = hashlib.sha256(raw).hexdigest()[:12]
    head = raw[: max(0, room - len(f".~{digest}.partial-"))].decode(sys.getfilesystemencoding(), "ignore")
    return f".{head}~{digest}.partial-"
