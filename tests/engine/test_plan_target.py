"""``check-plan --tensorrt VERSION``: does a plan fit another machine's TensorRT (a Triton container's)?

Real plans built by the TensorRT-RTX builder without a GPU, their sidecars edited to record a TensorRT
build; no TensorRT is installed here and no GPU is needed (the target's GPU is not checked).
"""

from __future__ import annotations

import json

import pytest

from dcpose_trt.cli import main
from dcpose_trt.engine import check, sidecar_path


def _record(plan, version: str, version_compatible: bool = False) -> None:
    """Make the sidecar say: built by TensorRT ``version`` on an L4."""
    meta = json.loads(sidecar_path(plan).read_text())
    meta["backend"] = {"name": "tensorrt", "version": version}
    meta["target"].update(version_compatible=version_compatible, compute_capabilities=[],
                          gpu={"name": "NVIDIA L4", "compute_capability": "8.9"})
    sidecar_path(plan).write_text(json.dumps(meta))


def _check_plan(plan, *args, capsys) -> tuple[int, str, str]:
    code = main(["check-plan", str(plan), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_same_release_fits_without_a_gpu(plan, capsys):
    _record(plan, "10.8.0")
    code, out, err = _check_plan(plan, "--tensorrt", "10.8.0", capsys=capsys)
    assert code == 0, out + err
    assert out.splitlines()[0] == f"{plan}: fits TensorRT 10.8.0"
    assert "note: the target's GPU is not checked: the plan needs a NVIDIA L4 (compute capability 8.9)" in out
    # tensorrt.__version__ has a fourth (build) number: compared only when both sides give one.
    _record(plan, "10.8.0.43")
    assert check(plan, tensorrt="10.8.0").ok and check(plan, tensorrt="10.8.0.43").ok
    assert not check(plan, tensorrt="10.8.0.44").ok


def test_other_release_does_not_fit(plan, capsys):
    _record(plan, "10.8.0")
    code, out, err = _check_plan(plan, "--tensorrt", "10.9.0", capsys=capsys)
    assert code == 1 and err == ""
    line = out.splitlines()[0]
    assert line.startswith(f"{plan} does not fit TensorRT 10.9.0: it was built with TensorRT 10.8.0 but the "
                           "target has TensorRT 10.9.0")
    assert "rebuild with: dcpose-trt build --onnx " in line and f"--out {plan}" in line
    # An older patch release does not load it either (not version-compatible: that exact release only).
    assert not check(plan, tensorrt="10.7.0").ok and not check(plan, tensorrt="10.8.1").ok


def test_version_compatible_plan_follows_the_installed_rule(plan, capsys):
    _record(plan, "10.8.0.43", version_compatible=True)
    assert check(plan, tensorrt="10.8.0").ok
    assert check(plan, tensorrt="10.13.3").ok  # later minor, same major
    assert check(plan, tensorrt="11.1.0").ok  # documented cross-major pair 10 -> 11
    assert not check(plan, tensorrt="10.7.0").ok  # older
    code, out, _ = _check_plan(plan, "--tensorrt", "10.13.3", capsys=capsys)
    assert code == 0 and "version-compatible=true" in out  # Triton's switch for such plans


def test_a_tensorrt_rtx_plan_does_not_fit_tensorrt(plan, capsys, rtx):
    code, out, _ = _check_plan(plan, "--tensorrt", "10.8.0", capsys=capsys)
    assert code == 1 and f"built with tensorrt-rtx {rtx.__version__}, which TensorRT 10.8.0 cannot load" in out


@pytest.mark.parametrize("version", ["10.8", "ten", "10.8.0-rc1", ""])
def test_malformed_version_is_one_line_exit_2(plan, version, capsys):
    code, out, err = _check_plan(plan, "--tensorrt", version, capsys=capsys)
    assert code == 2 and out == ""
    assert err.startswith("dcpose-trt check-plan: error: --tensorrt takes a TensorRT version major.minor.patch")
    assert len(err.strip().splitlines()) == 1
