"""``dcpose-trt doctor``: runs, JSON schema, and a missing or broken package becomes an install hint, not a crash."""

from __future__ import annotations

import importlib
import json

from dcpose_trt.cli import main
from dcpose_trt.doctor import PACKAGES, diagnose


def test_diagnose_schema():
    doc = diagnose().to_json()
    assert {"python", "platform", "packages", "gpu", "capabilities", "hints"} <= doc.keys()
    assert set(doc["packages"]) == set(PACKAGES)
    for p in doc["packages"].values():
        assert {"label", "version", "ok", "reason", "install"} <= p.keys()
        assert p["ok"] == (p["version"] is not None)
    assert {"name", "compute_capability", "driver", "count"} <= doc["gpu"].keys()
    backends = {c["backend"] for c in doc["capabilities"]}
    assert {"torch", "onnxruntime", "tensorrt", "tensorrt-rtx", "tensorrt-lean"} <= backends
    ort = next(c for c in doc["capabilities"] if c["backend"] == "onnxruntime")
    if doc["packages"]["onnxruntime"]["ok"]:
        assert ort["run"]["gridsample"] == ["fp32", "fp16", "int8"]


def test_missing_tensorrt_gives_install_hint(monkeypatch):
    real = importlib.import_module

    def fake(name, package=None):
        if name == "tensorrt" or name.startswith("tensorrt."):
            raise ImportError("No module named 'tensorrt' (simulated)")
        if name == "triton":
            raise OSError("libcuda.so: cannot open shared object file (simulated broken install)")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", fake)
    report = diagnose()
    trt = report.package("tensorrt")
    assert not trt.ok and "simulated" in trt.reason
    assert trt.install == "pip install -e '.[trt]' (run in the dcpose-trt checkout)"
    assert not report.package("triton").ok and report.package("triton").reason.startswith("OSError")
    assert any("pip install -e '.[trt]'" in h for h in report.hints)
    assert any("pip install -e '.[triton]'" in h for h in report.hints)
    cap = next(c for c in report.capabilities if c.backend == "tensorrt")
    assert not cap.build and not cap.run
    assert "absent" in report.to_table()


def test_cli_json_and_table(capsys):
    assert main(["doctor", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "packages" in doc
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime:" in out and "ONNX Runtime" in out


def test_doctor_lists_openvino_nncf_ray_and_plugin_int8():
    """Issue 20: `auto` picks OpenVINO here, yet doctor did not list it (nor NNCF, Ray); and the plugin form
    is INT8-calibrated on its standard-DeformConv twin, so doctor must not say it cannot be INT8."""
    report = diagnose()
    assert {"openvino", "nncf", "ray"} <= {p.module for p in report.packages}
    backends = {c.backend: c for c in report.capabilities}
    assert "openvino" in backends
    if report.package("openvino").ok:
        assert backends["openvino"].run["gridsample"][:2] == ["fp32", "bf16"]
        # Which form the head's DCNs take here, our op or the graph with the reason.
        from dcpose_trt.engine.ov_extension import unsupported_reason

        why = unsupported_reason()
        assert ("DcnGemm op" in backends["openvino"].note) if why is None else (why in backends["openvino"].note)
    export = backends["export (ONNX)"]
    if report.package("onnx").ok and report.package("onnxruntime").ok:
        assert "int8" in export.build["plugin"]
    table = report.to_table()
    assert "OpenVINO" in table and "NNCF" in table and "Ray" in table
