"""Lazy imports stay lazy (Polygraphy-style): with the heavy optional packages hidden, every module of
``dcpose_trt`` imports and every ``dcpose-trt ... --help`` works.

A subprocess hides the packages the way an install without them looks: each finder on ``sys.meta_path``
is wrapped so that it does not find them (``importlib.util.find_spec`` returns None, ``import`` raises
:class:`ModuleNotFoundError`). The probe records which ``dcpose_trt`` module *tried* to import a hidden
package while being imported or while a ``--help`` ran, even when it caught the ImportError: such an
import is not lazy, whatever it does on failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: The optional heavy packages (see docs/architecture.md: imported inside the module that needs them).
HIDDEN = ("tensorrt", "tensorrt_rtx", "onnx", "onnxruntime", "triton", "openvino", "ray", "cuda")

#: Modules whose whole content is code for one optional package (``@triton.jit`` kernels): they need it
#: at import time by nature. That every *other* module imports without it shows they are imported
#: lazily, only by the functions that launch the kernels.
KERNEL_MODULES: dict[str, set[str]] = {
    "dcpose_trt.plugins.deform_conv.kernels": {"triton"},
    "dcpose_trt.runtime.tensorrt.gpu_kernels": {"triton"},
}

#: Modules known to import a hidden package at import time, as ``module: hidden packages``. Each entry
#: is a lazy import to make (``dcpose_trt._deps.require`` inside the function that needs it); the test
#: fails when an entry is no longer true, so the list only shrinks. Do not add to it.
KNOWN_EAGER: dict[str, set[str]] = {}

PROBE = r"""
import argparse, contextlib, importlib, io, json, os, sys, traceback
from pathlib import Path

HIDDEN = set(sys.argv[1].split(","))
REPO = Path(sys.argv[2])
attempts = {}  # importing module -> hidden packages it asked for


def _importer():
    # The first frame outside the import machinery is the one executing the import statement.
    f = sys._getframe(2)
    while f is not None and ("importlib" in f.f_code.co_filename or f.f_code.co_filename.startswith("<frozen")):
        f = f.f_back
    return f.f_globals.get("__name__", "?") if f is not None else "?"


class Hide:
    # Wraps one meta-path finder: hidden packages are not found, everything else is.
    def __init__(self, inner):
        self.inner = inner

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            who = _importer()
            if who.startswith(("dcpose_trt", "benchmarks")):
                attempts.setdefault(who, set()).add(name.partition(".")[0])
            return None
        find = getattr(self.inner, "find_spec", None)
        return find(name, path, target) if find else None

    def invalidate_caches(self):
        if hasattr(self.inner, "invalidate_caches"):
            self.inner.invalidate_caches()


for name in list(sys.modules):
    if name.partition(".")[0] in HIDDEN:
        del sys.modules[name]
sys.meta_path[:] = [Hide(f) for f in sys.meta_path]


def _err(exc):
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


modules = []
for p in sorted((REPO / "dcpose_trt").rglob("*.py")):
    parts = list(p.relative_to(REPO).with_suffix("").parts)
    if "assets" in parts or parts[-1] == "__main__":
        continue
    if parts[-1] == "__init__":
        parts.pop()
    modules.append(".".join(parts))
import_errors = {}
for m in modules:
    try:
        importlib.import_module(m)
    except Exception as exc:  # noqa: BLE001 - every failure is reported by name
        import_errors[m] = _err(exc)

from dcpose_trt.cli import build_parser, main


def commands(parser, prefix=()):
    # Every verb and nested subcommand, depth first.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from commands(sub, (*prefix, name))


help_errors = {}
try:
    cmds = list(commands(build_parser()))
except Exception as exc:  # noqa: BLE001
    cmds, help_errors["(building the parser)"] = [], _err(exc)
for cmd in cmds:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            main([*cmd, "--help"])
        help_errors[" ".join(cmd)] = "returned instead of printing help"
    except SystemExit as exc:
        if exc.code != 0 or "usage: dcpose-trt" not in out.getvalue():
            help_errors[" ".join(cmd)] = f"exit {exc.code}: {out.getvalue()[-300:]}"
    except Exception as exc:  # noqa: BLE001
        help_errors[" ".join(cmd)] = _err(exc)

hidden_loaded = sorted(m for m in sys.modules if m.partition(".")[0] in HIDDEN)
print(json.dumps({
    "modules": modules,
    "import_errors": import_errors,
    "attempts": {k: sorted(v) for k, v in attempts.items()},
    "commands": [" ".join(c) for c in cmds],
    "help_errors": help_errors,
    "hidden_loaded": hidden_loaded,
}))
"""


def _probe() -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", PROBE, ",".join(HIDDEN), str(REPO)], capture_output=True,
                          text=True, timeout=600, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_everything_imports_and_helps_without_the_heavy_packages():
    r = _probe()
    # The probe really walked the package and the CLI.
    assert "dcpose_trt.runtime.tensorrt.trt_backend" in r["modules"] and "dcpose_trt.engine.builder" in r["modules"]
    assert r["hidden_loaded"] == []
    kernels = {m: e for m, e in r["import_errors"].items() if m in KERNEL_MODULES}
    assert set(kernels) == set(KERNEL_MODULES), f"kernel modules that no longer need their package: {kernels}"
    for m, e in kernels.items():
        assert any(f"'{n}'" in e for n in KERNEL_MODULES[m]), (m, e)
    errors = {m: e for m, e in r["import_errors"].items() if m not in KERNEL_MODULES}
    assert errors == {}, "modules that cannot be imported without the optional packages:\n" + "\n".join(
        f"  {m}: {e}" for m, e in sorted(errors.items()))
    assert r["help_errors"] == {}, "\n".join(
        f"  dcpose-trt {c} --help: {e}" for c, e in sorted(r["help_errors"].items()))
    assert {"export", "build", "run", "bench", "doctor"} <= set(r["commands"])
    allowed = {m: KNOWN_EAGER.get(m, set()) | KERNEL_MODULES.get(m, set()) for m in r["attempts"]}
    eager = {m: set(names) - allowed[m] for m, names in r["attempts"].items()}
    eager = {m: names for m, names in eager.items() if names}
    assert not eager, "modules that import an optional package at import time (make it lazy):\n" + "\n".join(
        f"  {m}: {', '.join(sorted(n))}" for m, n in sorted(eager.items()))
    stale = {m: names - set(r["attempts"].get(m, ())) for m, names in KNOWN_EAGER.items()}
    assert not any(stale.values()), f"now lazy: remove from KNOWN_EAGER: {stale}"


def test_install_hints_work_from_a_checkout():
    # dcpose-trt is not on the package index: the hint installs the extra from the checkout, and the extra
    # it names exists in setup.py.
    import ast

    from dcpose_trt._deps import require
    from dcpose_trt._env import EXTRAS, TRT_BUILDERS, TRT_FLAVOURS, install_hint
    from dcpose_trt.errors import MissingDependencyError

    assert install_hint("tensorrt_rtx") == "pip install -e '.[rtx]' (run in the dcpose-trt checkout)"
    assert install_hint(extra="cuda12") == "pip install -e '.[cuda12]' (run in the dcpose-trt checkout)"
    assert install_hint("numpy") == "" and install_hint("no_such_module") == ""
    setup = ast.parse((REPO / "setup.py").read_text())
    declared = next(kw.value for node in ast.walk(setup) if isinstance(node, ast.Call)
                    for kw in node.keywords if kw.arg == "extras_require")
    extras = {k.value for k in declared.keys}  # type: ignore[attr-defined]
    assert {e for e in EXTRAS.values() if e} <= extras
    # Every TensorRT flavour is installable by an extra, and loads the plans of a flavour that builds.
    assert all(f.extra in extras and f.loads in TRT_BUILDERS for f in TRT_FLAVOURS.values())
    try:
        require("dcpose_trt_no_such_module", "onnx", "a test")
    except MissingDependencyError as exc:
        assert str(exc).endswith("install it with: pip install -e '.[onnx]' (run in the dcpose-trt checkout)")
    else:  # pragma: no cover - the module does not exist
        raise AssertionError("require() imported a module that does not exist")
