"""The ONNX Runtime backend's errors and the CLI's one-line user errors."""

from __future__ import annotations

import pytest

from dcpose_trt.cli import main
from dcpose_trt.errors import InputError
from dcpose_trt.runtime import PoseEstimator
from dcpose_trt.runtime.backends.base import SplitBackend
from dcpose_trt.runtime.backends.ort_backend import OnnxRuntimeBackend


def test_backend_reads_metadata(exports):
    b = OnnxRuntimeBackend(exports("deformconv"))
    assert (b.name, b.preset_name, b.input_size, b.precision) == ("onnxruntime", "tiny-128x96", (128, 96), "fp32")
    assert "CPUExecutionProvider" in b.providers
    # A whole model declares no backbone/head (runner protocol, #13 item 3); cached mode says what it needs.
    assert not isinstance(b, SplitBackend)
    with pytest.raises(InputError, match="--split"):
        PoseEstimator(backend=b, mode="cached")


def test_backend_errors(exports, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="not an ONNX model"):
        OnnxRuntimeBackend(bad)
    with pytest.raises(InputError, match="--deform deformconv or --deform gridsample"):
        OnnxRuntimeBackend(exports("plugin"))
    with pytest.raises(InputError, match="preset"):
        OnnxRuntimeBackend(exports("deformconv"), preset="w48-384x288")
    with pytest.raises(InputError, match="not found"):
        OnnxRuntimeBackend(tmp_path / "missing.onnx")


@pytest.mark.parametrize("argv, match", [
    (["export", "--preset", "nope", "--out", "{tmp}/m.onnx"], "unknown preset"),
    (["export", "--model", "{tmp}/missing.pth", "--out", "{tmp}/m.onnx"], "not found"),
    (["quantize", "--onnx", "{tmp}/missing.onnx", "--precision", "fp16", "--out", "{tmp}/o.onnx"], "not found"),
    (["fidelity", "--reference", "{tmp}/a.pth", "--candidate", "{tmp}/b.onnx", "--data", "{tmp}"], "not found"),
])
def test_cli_user_errors(tmp_path, capsys, argv, match):
    code = main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and match in err
