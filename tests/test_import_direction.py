"""Dependencies flow one way (docs/architecture.md): model ← data ← export ← engine ← runtime ← cli.

``eval`` and ``train`` sit beside ``export``/``runtime`` and are imported by nothing below them;
``runtime`` imports neither ``train`` nor ``export``. The bottom modules (``errors``, ``_deps``,
``_atomic``, ``_env``, ``contract``, ``schemas`` (the file formats' JSON Schemas) and the package root) may
be imported from anywhere. The check reads the source with :mod:`ast` (nothing is imported), so it sees
module-level *and* function-level imports.
"""

from __future__ import annotations

import ast
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
