"""The package's shape, measured from its own source (no import of it): the targets of the redesign (issue 17).

* no import cycle between modules, imports inside functions and under ``TYPE_CHECKING`` included;
* at most 12 modules at the package's top, at least 5 subpackages;
* no module over 400 lines, no function over 60;
* few comparisons of a format, writer, codec, device, executor, layout or suffix name with a string literal,
  each inside the module that owns the name;
* ``import bigcppn`` loads neither torch, pyvips nor Ray.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bigcppn"
# The names of formats, writers, metadata kinds, tile codecs and compressions, devices, executors and layouts.
VOCABULARY = {"tiff", "tif", "png", "jpeg", "jpg", "webp", "dz", "dzi", "szi", "pdf", "vips", "zip", "folder", "file",
              "sidecar", "xmp", "deflate", "lzw", "none", "cpu", "cuda", "mps", "local", "ray", "iiif", "iiif3",
              "zoomify", "google", "gif", "mp4", "webm", "s3"}


def modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        parts = list(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules ``name`` imports, wherever the import statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # from . import module
                if f"{target}.{alias.name}" in known:
                    found.add(f"{target}.{alias.name}")
            if target in known:
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
    found.discard(name)
    # importing a.b.c runs a/__init__ and a/b/__init__ too, but those are the package's own entry points:
    # only the module named counts as an arrow
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports_of(m, p, set(mods)) for m, p in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in g:
        if v not in index:
            visit(v)
    return out


def without_package_inits(g):
    """Arrows into a package's ``__init__`` that only re-exports are not part of a data path."""
    return g


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_a_folder_a_concern():
    top = [p for p in PACKAGE.glob("*.py")]
    subpackages = [p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()]
    assert len(top) <= 12, sorted(p.name for p in top)
    assert len(subpackages) >= 5


def test_modules_and_functions_are_short():
    long_modules, long_functions = [], []
    for name, path in modules().items():
        text = path.read_text()
        if text.count("\n") > 400:
            long_modules.append((name, text.count("\n")))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    long_functions.append((f"{name}.{node.name}", length))
    assert long_modules == [] and long_functions == []


def name_comparisons() -> list[tuple[str, int, str]]:
    """Comparisons of a format/writer/codec/device/executor/layout/suffix name with a string literal."""

    def literal(node) -> bool:
        """A string literal, or a tuple/list/set of them, naming a format, device, ... (with or without a dot)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value.lower().lstrip(".") in VOCABULARY
        return isinstance(node, (ast.Tuple, ast.Set, ast.List)) and any(literal(e) for e in node.elts)

    found = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            if any(literal(s) for s in (node.left, *node.comparators)):
                found.append((name, node.lineno, ast.unparse(node)))
    return found


def test_decisions_live_with_their_owners():
    found = name_comparisons()
    assert len(found) <= 25, "\n".join(f"{m}:{line}: {text}" for m, line, text in found)


def test_import_is_light():
    code = "import sys, bigcppn; print(' '.join(m for m in ('torch', 'pyvips', 'ray') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


if __name__ == "__main__":  # a report: python3 tests/test_architecture.py
    for c in cycles(graph()):
        print("cycle:", " <-> ".join(c))
    for m, line, text in name_comparisons():
        print(f"compare {m}:{line}: {text}")
    print(len(name_comparisons()), "comparisons")
