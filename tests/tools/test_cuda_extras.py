"""Defect 3 of [trt-contact]: a CUDA-12 and a CUDA-13 stack as extras, and doctor's advice between them.

``cuda-python>=12.6`` alone resolves to 13.x, whose runtime bindings are linked against the CUDA 13
runtime (cuda-bindings 13.0.3 notes): on JetPack 6 (CUDA 12.6) and drivers before R580 the first cudart
call fails. ``[cuda12]`` must resolve to cuda-python 12.x (checked with pip's resolver, ``--dry-run``).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from dcpose_trt.doctor import cuda_stack_advice

REPO = Path(__file__).resolve().parents[2]


def _extras() -> dict[str, list[str]]:
    """``extras_require`` of setup.py, evaluated from its source (module-level lists and the dict)."""
    tree = ast.parse((REPO / "setup.py").read_text())
    env: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                env[node.targets[0].id] = eval(compile(ast.Expression(node.value), "setup.py", "eval"), {}, env)
            except NameError:
                continue
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    extras = next(k.value for k in call.keywords if k.arg == "extras_require")
    return eval(compile(ast.Expression(extras), "setup.py", "eval"), {}, env)


def _pins(extra: list[str]) -> dict[str, Requirement]:
    return {Requirement(r).name: Requirement(r) for r in extra}


def test_cuda_stacks_are_pinned_to_one_cuda_major():
    extras = _extras()
    for extra, major in (("cuda12", 12), ("cuda13", 13)):
        pins = _pins(extras[extra])
        assert set(pins) == {"cuda-python", f"tensorrt-cu{major}", f"tensorrt-lean-cu{major}"}, pins
        spec = pins["cuda-python"].specifier
        assert spec.contains(f"{major}.9.1") and not spec.contains(f"{major + 1}.0.0")
        assert not spec.contains("12.6.0")  # no cuda.bindings in 12.6.0
    for extra in ("trt", "cuda", "lean"):  # still there, still install what their names say
        assert extras[extra]
    assert "tensorrt-lean" in _pins(extras["lean"]) and "tensorrt" in _pins(extras["trt"])


def test_dry_run_of_cuda12_extra_picks_cuda_python_12(tmp_path):
    req = next(r for r in _extras()["cuda12"] if r.startswith("cuda-python"))
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--disable-pip-version-check", "--only-binary=:all:", "--report", str(report), req],
        capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        if "No matching distribution" in proc.stderr or "Could not find a version" in proc.stderr:
            pytest.skip(f"the package index has no version for {req!r}: {proc.stderr.strip()[-300:]}")
        if "Network is unreachable" in proc.stderr or "Failed to establish" in proc.stderr:
            pytest.skip(f"no package index reachable: {proc.stderr.strip()[-300:]}")
        pytest.fail(proc.stderr[-2000:])
    installs = json.loads(report.read_text())["install"]
    picked = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installs}
    assert picked["cuda-python"].startswith("12."), picked
    if "cuda-bindings" in picked:  # cuda-python >= 12.8 is a meta-package over cuda-bindings
        assert picked["cuda-bindings"].startswith("12."), picked


@pytest.mark.parametrize(("driver", "bindings", "trt", "extra"), [
    ("12.6", "13.0.3", None, "cuda12"),           # JetPack 6 / pre-R580 driver with the CUDA 13 stack
    ("12.8", "12.9.1", "tensorrt-cu13", "cuda12"),
    ("13.0", "13.0.3", "tensorrt-cu13", None),    # matching stack: no advice
    ("13.1", "12.9.1", "tensorrt-cu12", None),    # older stack on a newer driver works
    (None, "13.0.3", None, None),                 # no driver: nothing to compare
])
def test_doctor_advises_the_matching_extra(driver, bindings, trt, extra):
    advice = cuda_stack_advice(driver, bindings, trt)
    if extra is None:
        assert advice is None
    else:
        assert f"pip install -e '.[{extra}]'" in advice and driver in advice and "JetPack" in advice


def test_jetson_extras_pin_the_jetpack_cuda_minor():
    """Issue 23 finding 3: JetPack 6 is CUDA 12.6 and L4T has no minor-version compatibility, so
    ``cuda-python>=12.6.2,<13`` (which resolves to 12.9.x) fails there; the Jetson extras pin the minor."""
    extras = _extras()
    for extra, ok, too_new in (("jetson6", "12.6.2", "12.9.1"), ("jetson7", "13.0.3", "13.1.0")):
        pins = _pins(extras[extra])
        assert set(pins) == {"cuda-python"}  # TensorRT comes with JetPack (apt)
        spec = pins["cuda-python"].specifier
        assert spec.contains(ok) and not spec.contains(too_new)


@pytest.mark.parametrize(("driver", "bindings", "advice"), [
    ("12.6", "12.9.1", "must be 12.6.x: pip install -e '.[jetson6]'"),   # the field report: 12.9 on JetPack 6
    ("12.6", "12.6.2", None),
    ("13.0", "13.1.0", "must be 13.0.x: pip install -e '.[jetson7]'"),
    ("13.0", "12.6.2", None),
])
def test_doctor_compares_major_minor_on_jetson(driver, bindings, advice):
    got = cuda_stack_advice(driver, bindings, None, jetson=True)
    if advice is None:
        assert got is None
    else:
        assert advice in got and "Jetson" in got
    assert cuda_stack_advice(driver, bindings, None) is None  # off Jetson: minor-version compatible
