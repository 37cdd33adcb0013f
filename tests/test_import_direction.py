"""Dependencies flow one way (docs/architecture.md): model ← data ← export ← engine ← runtime ← cli.

``eval`` and ``train`` sit beside ``export``/``runtime`` and are imported by nothing below them;
``runtime`` imports neither ``train`` nor ``export``. The bottom modules (``errors``, ``_deps``,
``_atomic``, ``_env``, ``contract``, ``schemas`` (the file formats' JSON Schemas) and the package root) may
be imported from anywhere. The check reads the source with :mod:`ast` (nothing is imported), so it sees
module-level *and* function-level imports.

More structure rules (issue 20): no import cycle among the modules of ``dcpose_trt/`` and
``benchmarks/`` (function-level and ``TYPE_CHECKING`` imports count: a cycle that only a lazy import
hides is still a knot for a reader), no file in ``dcpose_trt/`` over :data:`MAX_LINES` lines, and every
install command the code prints comes from ``dcpose_trt._env.install_hint``.
"""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "dcpose_trt"

#: Anyone may import these (``""`` is the package root: ``__version__``, ``DcposeTrtError``).
BOTTOM = frozenset({"", "errors", "_deps", "_atomic", "_env", "contract", "schemas"})

#: What each stage package may import besides itself and BOTTOM. ``plugins`` (the DCN op and its
#: TensorRT plugin) sits beside ``data``, on the model, under export/engine/runtime.
ALLOWED: dict[str, frozenset[str]] = {
    "model": frozenset(),
    "data": frozenset({"model"}),
    "plugins": frozenset({"model"}),
    "export": frozenset({"model", "data", "plugins"}),
    "train": frozenset({"model", "data"}),
    "engine": frozenset({"model", "data", "plugins", "export"}),
    "runtime": frozenset({"model", "data", "plugins", "engine"}),
    "eval": frozenset({"model", "data", "plugins", "engine", "runtime"}),
    # scale-out (Ray): runs the eval stage's per-video prediction on many workers.
    "scale": frozenset({"model", "data", "plugins", "engine", "runtime", "eval"}),
    "serve": frozenset({"model", "data", "plugins", "engine", "runtime"}),  # Triton serving
}
#: Front ends: may import anything in the package; nothing in a stage may import them.
TOP = frozenset({"cli", "doctor", "demo", "__main__"})

#: Names that have one home: importing them from anywhere else is a violation even where the layer
#: rule allows the package (``load_model`` lives in ``dcpose_trt.model``).
HOME = {"load_model": "dcpose_trt.model"}

#: Known violations as (importing module, imported module). The lead empties this list as the branches
#: of the [seams] issue (#13) are merged; the test fails when an entry no longer occurs, so it only
#: shrinks. Do not add to it: fix the import instead.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset({
})  # fmt: skip


#: Structure failures in files that other branches of issue 20 rewrite (the runtime/ split, engine/builder.py
#: and plugins/deform_conv/aot.py): ``"cycle: <module> ..."`` (the modules of one cycle, sorted),
#: ``"lines: <path>"`` or ``"hint: <path>"`` (an install command written by hand). The integrator empties
#: this list as those branches are merged; the tests fail when an entry no longer occurs, so it only
#: shrinks. Do not add to it: split the file, break the cycle, or call install_hint.
PENDING_MERGE: frozenset[str] = frozenset({
})  # fmt: skip

#: No file in dcpose_trt/ may be longer (issue 20: one concern per file).
MAX_LINES = 400


def _module_name(path: Path, repo: Path) -> str:
    parts = list(path.relative_to(repo).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, repo: Path) -> list[tuple[str, str | None]]:
    """Every ``(module, name)`` imported anywhere in ``path`` (``name`` None for ``import module``)."""
    mod = _module_name(path, repo)
    here = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out += [(target, a.name) for a in node.names]
    return out


def _part(module: str) -> str | None:
    """The package part of a ``dcpose_trt`` module (``"model"``, ``"cli"``, ``""`` for the root)."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    return parts[1] if len(parts) > 1 else ""


def _sources(repo: Path) -> list[Path]:
    files = sorted((repo / PACKAGE).rglob("*.py")) + sorted((repo / "benchmarks").rglob("*.py"))
    return [f for f in files if "assets" not in f.relative_to(repo).parts]


def _violations(repo: Path = REPO) -> dict[tuple[str, str], str]:
    """``{(importing module, imported module): why}`` for every import against the rules above."""
    found: dict[tuple[str, str], str] = {}
    for path in _sources(repo):
        importer = _module_name(path, repo)
        src = _part(importer)  # None: a front end outside the package (benchmarks)
        for target, name in _imports(path, repo):
            if _part(target) is None:
                continue
            # ``from dcpose_trt import model`` / ``from dcpose_trt.export import cli``: the submodule counts.
            sub = repo / Path(*f"{target}.{name}".split(".")) if name else None
            full = f"{target}.{name}" if sub and (sub.is_dir() or sub.with_suffix(".py").is_file()) else target
            dst = _part(full)
            why = None
            if name in HOME and not full.startswith(HOME[name]) and not importer.startswith(HOME[name]):
                why = f"{name} is imported from {full}; its home is {HOME[name]}"
            elif name and name.startswith("_") and not name.startswith("__") and src not in (None, dst) \
                    and dst not in BOTTOM:
                why = f"the private {name} of {full} is used from another package"
            elif src is None or src in TOP or src == dst or dst in BOTTOM:
                continue
            elif dst in TOP:
                why = f"{src} imports the front end {dst}"
            elif src in BOTTOM:
                why = f"the bottom module {src} imports {dst}"
            elif dst not in ALLOWED.get(src, frozenset()):
                why = f"{src} may import {sorted(ALLOWED.get(src, ())) or 'nothing'} but imports {dst}"
            if why:
                found.setdefault((importer, full), why)
    return found


def test_layers_cover_every_package():
    # A new package or top-level module must be given its place.
    parts = {p.stem if p.is_file() else p.name for p in (REPO / PACKAGE).iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").is_file())}
    parts.discard("__init__")
    assert parts <= set(ALLOWED) | TOP | BOTTOM, parts - (set(ALLOWED) | TOP | BOTTOM)


def test_the_checker_sees_each_kind_of_import(tmp_path):
    # Function-level, relative, submodule-as-name and private-name imports are all found; allowed ones
    # (a lower layer, the bottom modules, a front end importing a stage) are not reported.
    files = {
        "model/__init__.py": "",
        "model/x.py": "def f():\n    from dcpose_trt.runtime import thing\n",
        "data/__init__.py": "from ..export import other\nfrom dcpose_trt import train\n",
        "data/y.py": "from dcpose_trt.model import x\nfrom dcpose_trt.errors import DataError\n",
        "runtime/__init__.py": "import dcpose_trt.export.z\n",
        "engine/__init__.py": "from dcpose_trt.data.y import _hidden\nfrom dcpose_trt.export import load_model\n",
        "export/__init__.py": "",
        "export/z.py": "",
        "train/__init__.py": "",
        "cli.py": "from dcpose_trt import runtime, train\n",
        "__init__.py": "",
        "errors.py": "",
    }
    for name, text in files.items():
        (tmp_path / PACKAGE / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / PACKAGE / name).write_text(text)
    assert set(_violations(tmp_path)) == {
        ("dcpose_trt.model.x", "dcpose_trt.runtime"),
        ("dcpose_trt.data", "dcpose_trt.export"),
        ("dcpose_trt.data", "dcpose_trt.train"),
        ("dcpose_trt.runtime", "dcpose_trt.export.z"),
        ("dcpose_trt.engine", "dcpose_trt.data.y"),
        ("dcpose_trt.engine", "dcpose_trt.export"),
    }


def test_no_upward_imports():
    found = _violations()
    new = {k: v for k, v in found.items() if k not in KNOWN_VIOLATIONS}
    assert not new, "upward imports (see docs/architecture.md):\n" + "\n".join(
        f"  {a} -> {b}: {why}" for (a, b), why in sorted(new.items()))


def test_known_violations_still_exist():
    # Once an import is fixed its entry must go, so the allow-list only shrinks.
    stale = KNOWN_VIOLATIONS - set(_violations())
    assert not stale, f"fixed: remove from KNOWN_VIOLATIONS: {sorted(stale)}"


# %% import cycles and file sizes ---------------------------------------------------------------------


def _import_graph(repo: Path) -> dict[str, set[str]]:
    """``{module: the modules of dcpose_trt/ and benchmarks/ it imports}``, from the source (any depth).

    ``from package import name`` points at the submodule ``package.name`` when there is one, else at the
    package itself (its ``__init__``); an import does not point at the parents of its target, since a
    package ``__init__`` that lists its submodules' public API is not a cycle with them.
    """
    modules = {_module_name(p, repo) for p in _sources(repo)}
    graph: dict[str, set[str]] = {}
    for path in _sources(repo):
        importer = _module_name(path, repo)
        targets = set()
        for target, name in _imports(path, repo):
            full = f"{target}.{name}" if name else target
            if full in modules:
                targets.add(full)
            elif target in modules:
                targets.add(target)
        targets.discard(importer)
        graph[importer] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """``{"cycle: <sorted modules>": one shortest cycle through them as a path}``, one per strongly
    connected component of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        components.append(sorted(comp))
    return {"cycle: " + " ".join(c): _shortest_cycle(graph, c) for c in components}


def _shortest_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """The shortest import path from ``component[0]`` back to itself inside the component (BFS)."""
    start, inside = component[0], set(component)
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node] & inside):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"{component} is not a cycle")  # pragma: no cover - Tarjan gave a component


def _long_files(repo: Path = REPO) -> dict[str, int]:
    """``{"lines: <path>": line count}`` for every ``.py`` file in ``dcpose_trt/`` over :data:`MAX_LINES`."""
    out = {}
    for path in sorted((repo / PACKAGE).rglob("*.py")):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            out[f"lines: {path.relative_to(repo).as_posix()}"] = n
    return out


def test_the_cycle_finder_sees_function_level_and_type_checking_imports(tmp_path):
    files = {
        "__init__.py": "",
        "a/__init__.py": "from dcpose_trt.a.x import f\n",  # a package listing its API: no cycle
        "a/x.py": "from dcpose_trt.a.y import g\n",
        "a/y.py": "def g():\n    from dcpose_trt.a import x\n",  # function level, closes a.x -> a.y -> a.x
        "b/__init__.py": "",
        "b/p.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from dcpose_trt.b.q import Q\n",
        "b/q.py": "from ..b import p\n",  # relative, closes b.p -> b.q -> b.p
        "b/r.py": "from dcpose_trt.b import p\nimport dcpose_trt.a.x\n",  # imports into cycles, not part of one
    }
    for name, text in files.items():
        (tmp_path / PACKAGE / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / PACKAGE / name).write_text(text)
    assert _cycles(_import_graph(tmp_path)) == {
        "cycle: dcpose_trt.a.x dcpose_trt.a.y": ["dcpose_trt.a.x", "dcpose_trt.a.y", "dcpose_trt.a.x"],
        "cycle: dcpose_trt.b.p dcpose_trt.b.q": ["dcpose_trt.b.p", "dcpose_trt.b.q", "dcpose_trt.b.p"],
    }


def test_no_import_cycles():
    found = _cycles(_import_graph(REPO))
    new = {k: v for k, v in found.items() if k not in PENDING_MERGE}
    assert not new, "import cycles (break them: move the shared name down a layer):\n" + "\n".join(
        "  " + " -> ".join(path) for path in new.values())


def test_no_file_over_the_line_limit(tmp_path):
    (tmp_path / PACKAGE / "sub").mkdir(parents=True)
    (tmp_path / PACKAGE / "sub" / "big.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / PACKAGE / "ok.py").write_text("x = 1\n" * MAX_LINES)
    assert _long_files(tmp_path) == {f"lines: {PACKAGE}/sub/big.py": MAX_LINES + 1}
    new = {k: n for k, n in _long_files().items() if k not in PENDING_MERGE}
    assert not new, f"files over {MAX_LINES} lines (split them by concern): " + ", ".join(
        f"{k[len('lines: '):]} ({n})" for k, n in sorted(new.items()))


def _handwritten_hints(repo: Path = REPO) -> dict[str, str]:
    """``{"hint: <path>": the string}`` for string constants (f-string parts and docstrings included) that
    write an install command by hand: ``pip install -e '.[...]'`` or the ``dcpose-trt[...]`` form, which
    does not work (the package is not on the index). Only ``_env.install_hint`` may write them."""
    out = {}
    for path in _sources(repo):
        if path.name == "_env.py" and path.parent.name == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    ("dcpose-trt[" in node.value or "install -e '.[" in node.value):
                out.setdefault(f"hint: {path.relative_to(repo).as_posix()}", node.value.strip())
    return out


def test_install_hints_come_from_one_function(tmp_path):
    (tmp_path / PACKAGE).mkdir()
    (tmp_path / PACKAGE / "_env.py").write_text("H = \"pip install -e '.[x]'\"\n")  # the one place: allowed
    (tmp_path / PACKAGE / "a.py").write_text("def f(e):\n    return f\"install 'dcpose-trt[{e}]' first\"\n")
    (tmp_path / PACKAGE / "b.py").write_text("# pip install 'dcpose-trt[x]' in a comment is not printed\n")
    assert set(_handwritten_hints(tmp_path)) == {f"hint: {PACKAGE}/a.py"}
    new = {k: v for k, v in _handwritten_hints().items() if k not in PENDING_MERGE}
    assert not new, "install commands written by hand (use dcpose_trt._env.install_hint): " + "; ".join(
        f"{k[len('hint: '):]}: {v!r}" for k, v in sorted(new.items()))


def test_pending_merge_entries_still_occur():
    # Once a cycle is broken, a file split or a hint routed through install_hint, its entry must go, so the
    # list only shrinks.
    stale = PENDING_MERGE - set(_cycles(_import_graph(REPO))) - set(_long_files()) - set(_handwritten_hints())
    assert not stale, f"fixed: remove from PENDING_MERGE: {sorted(stale)}"
