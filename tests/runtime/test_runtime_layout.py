"""Issue 20 item 1: the runtime's import graph has no cycle (module-level and function-level imports, the
registry's backend imports included: they are real imports, not "module:function" strings), no runtime
file is over 400 lines, and ``auto`` is decided in one place.

Cycles anywhere in the package are reported; the assertion covers every cycle that touches the runtime or
the scale-out stage (the other stages have their own owners).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "dcpose_trt"


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks (imports for annotations only, never run)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def import_graph() -> dict[str, set[str]]:
    """``module -> modules of dcpose_trt it imports`` (``from pkg import sub`` counts as importing ``pkg.sub``)."""
    files = {_module(p): p for p in PACKAGE.rglob("*.py") if "assets" not in p.parts}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        here = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        for node in ast.walk(tree):
            if getattr(node, "lineno", 0) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else [])) \
                    if node.level else (node.module or "")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for t in targets:
                while t and t not in files:
                    t = t.rpartition(".")[0]
                if t and t != mod:
                    graph[mod].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_through_the_runtime():
    graph = import_graph()
    # The registry's arrows are real imports: the checker sees every backend module from it.
    reg = graph["dcpose_trt.runtime.backends.registry"]
    assert {"dcpose_trt.runtime.backends.ort_backend", "dcpose_trt.runtime.backends.ov_backend",
            "dcpose_trt.runtime.backends.torch_backend", "dcpose_trt.runtime.tensorrt.trt_backend"} <= reg
    bad = [c for c in cycles(graph) if any(m.startswith(("dcpose_trt.runtime", "dcpose_trt.scale")) for m in c)]
    assert not bad, f"import cycles: {bad}"


def test_no_runtime_file_over_400_lines():
    long = {str(p.relative_to(REPO)): n for p in (PACKAGE / "runtime").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, long


def test_auto_is_decided_in_one_place():
    """Only autoselect.resolve_backend turns ``auto`` into a backend name (it was decided in 5 places)."""
    files = list((PACKAGE / "runtime").rglob("*.py")) + list((PACKAGE / "scale").rglob("*.py"))
    deciders = [f"{p.relative_to(REPO)}:{node.lineno}" for p in files
                for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
                if isinstance(node, ast.Compare)
                and any(isinstance(c, ast.Constant) and c.value == "auto" for c in node.comparators)]
    # TensorRTBackend(path, backend="auto") is the class's own "do not check the builder" value (the sidecar
    # names it either way), not a choice between backends.
    # ray_connect compares Ray's own address keyword ("--ray-address auto"), which names no backend.
    others = [d for d in deciders if "backends/autoselect.py" not in d and "tensorrt/trt_backend.py" not in d
              and "scale/ray_connect.py" not in d]
    assert not others and any("backends/autoselect.py" in d for d in deciders), deciders
