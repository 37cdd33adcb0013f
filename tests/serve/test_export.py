"""``dcpose-trt serve export``: one repository structure on both targets; bad input is one line, nothing written."""

from __future__ import annotations

import json
import re

import pytest

from dcpose_trt.cli import main


def _config(repo, model: str) -> str:
    return (repo / model / "config.pbtxt").read_text()


def test_cpu_and_tensorrt_repositories_have_the_same_models_and_tensors(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    cpu = tmp_path / "cpu"
    assert main(["serve", "export", "--out", str(cpu), "--backend", "onnxruntime", "--idle-timeout", "7"]) == 0
    manifest = json.loads((cpu / "dcpose_serve.json").read_text())
    assert (manifest["target"], manifest["backend"], manifest["preset"]) == ("cpu", "onnxruntime", "tiny-128x96")
    stream = _config(cpu, "dcpose_stream")
    assert "max_sequence_idle_microseconds: 7000000" in stream and "CONTROL_SEQUENCE_CORRID" in stream
    for part in ("dcpose_backbone", "dcpose_head"):
        assert "dynamic_batching" in _config(cpu, part) and 'backend: "python"' in _config(cpu, part)
        assert (cpu / part / "1" / "model.py").is_file()

    # A TensorRT repository from a folder of plans: the writer copies them and records the TensorRT version
    # of their sidecars (no TensorRT is needed to write it; the plans' bytes are not read).
    plans = tmp_path / "plans"
    plans.mkdir()
    meta = {"dcpose_trt.preset": "tiny-128x96", "dcpose_trt.input_size": "128x96", "dcpose_trt.heatmap_size": "32x24"}
    for part in ("backbone", "head"):
        (plans / f"{part}.plan").write_bytes(b"plan bytes of " + part.encode())
        (plans / f"{part}.plan.json").write_text(json.dumps({"backend": {"name": "tensorrt", "version": "10.13.3"},
                                                             "onnx": {"metadata": meta}}))
    trt = tmp_path / "trt"
    assert main(["serve", "export", "--target", "tensorrt", "--model", str(plans), "--out", str(trt),
                 "--idle-timeout", "7"]) == 0
    manifest = json.loads((trt / "dcpose_serve.json").read_text())
    assert manifest["tensorrt_version"] == {"backbone": "10.13.3", "head": "10.13.3"}
    assert (trt / "dcpose_backbone" / "1" / "model.plan").read_bytes() == b"plan bytes of backbone"

    def tensors(text: str) -> list[tuple[str, str]]:
        return re.findall(r'(input|output) \[ \{ name: "([^"]+)" data_type: \w+ dims: (\[[^\]]*\])', text)

    for part in ("dcpose_backbone", "dcpose_head"):
        assert tensors(_config(cpu, part)) == tensors(_config(trt, part))
        assert 'platform: "tensorrt_plan"' in _config(trt, part)
    assert _config(cpu, "dcpose_stream").split("parameters")[0] == _config(trt, "dcpose_stream").split("parameters")[0]


@pytest.mark.parametrize("argv, message", [
    (["--target", "tensorrt"], "backbone.plan"),
    (["--backend", "torch"], "--target cpu runs one of"),
])
def test_bad_export_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "repo"
    assert main(["serve", "export", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_export_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["serve", "export", "--out", str(tmp_path)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
