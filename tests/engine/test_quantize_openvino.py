"""``dcpose-trt quantize --target openvino``: the INT8 OpenVINO IR pair of a checkpoint, written into a folder that
``run --backend openvino`` opens; bad arguments are one line, exit 2, nothing written."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from dcpose_trt.cli import main  # noqa: E402
from dcpose_trt.data.synth import SynthConfig, generate  # noqa: E402


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("qov") / "synth"
    generate(SynthConfig(out=root, videos=2, frames=8, seed=0, split_ratio=0.5, workers=1))
    return root


@pytest.fixture(scope="module")
def ir(synth, tmp_path_factory):
    """The IR folder ``quantize --target openvino`` writes for the bundled model (calibrated on synthetic train)."""
    out = tmp_path_factory.mktemp("qov-out") / "ir"
    rc = main(["quantize", "--precision", "int8", "--target", "openvino", "--calib", str(synth),
               "--calib-samples", "16", "--out", str(out)])
    assert rc == 0
    return out


def test_writes_the_int8_ir_pair(ir, capsys):
    from dcpose_trt.engine.ov_extension import dcn_form, new_core

    assert {p.name for p in ir.iterdir()} >= {"backbone.xml", "backbone.bin", "head.xml", "head.bin"}
    assert not [p for p in ir.parent.iterdir() if p.name.startswith(".")]  # no temp folder left behind
    core = new_core()
    for part in ("backbone", "head"):
        ops = {op.get_type_name() for op in core.read_model(str(ir / f"{part}.xml")).get_ops()}
        assert "FakeQuantize" in ops, part  # NNCF quantized it
        assert not ops & {"DeformableConvolution"}, part  # the head in its CPU form
    # Each DCN as our op where it builds on this machine, else GridSample + 1x1 conv.
    assert ("DcnGemm" in ops) == (dcn_form() == "fused") and ("GridSample" in ops) == (dcn_form() == "graph")


def test_run_opens_the_folder(ir, synth, tmp_path, capsys):
    capsys.readouterr()
    poses = tmp_path / "poses.json"
    video = next((synth / "images" / "val").iterdir())
    rc = main(["run", "--model", str(ir), "--backend", "openvino", "--video", str(video),
               "--boxes", str(synth / "detections" / "val.json"), "--json", str(poses), "--max-frames", "3"])
    assert rc == 0, capsys.readouterr().err
    frames = json.loads(poses.read_text())["frames"]
    assert len(frames) == 3 and any(f["persons"] for f in frames)
    assert all(len(p["keypoints"]) == 17 for f in frames for p in f["persons"])


@pytest.mark.parametrize("extra, message", [
    (["--target", "openvino", "--onnx", "{onnx}"], "drop --onnx"),
    (["--target", "cpu", "--model", "{model}"], "--model is only for --target openvino"),
    (["--target", "tensorrt"], "--onnx is required"),
    (["--target", "openvino", "--precision", "fp16"], "--precision int8"),
    (["--target", "openvino", "--out", "{full}"], "non-empty folder"),
])
def test_bad_arguments_one_line_exit_2(extra, message, synth, tmp_path, capsys):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not read")
    model = tmp_path / "m.pth"
    model.write_bytes(b"not read")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    out = tmp_path / "out"
    fill = {"{onnx}": str(onnx), "{model}": str(model), "{full}": str(full)}
    argv = ["quantize", "--precision", "int8", "--calib", str(synth), "--calib-samples", "16", "--out", str(out)]
    argv += [fill.get(a, a) for a in extra]
    before = sorted(p.name for p in tmp_path.iterdir())
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    assert [p.name for p in full.iterdir()] == ["keep.txt"]


def test_onnx_path_refuses_the_openvino_target(tmp_path):
    from dcpose_trt.errors import InputError
    from dcpose_trt.export.precision import quantize_onnx
    from dcpose_trt.export.quantize_config import QuantizeConfig

    cfg = QuantizeConfig(precision="int8", calib=tmp_path, target="openvino")
    with pytest.raises(InputError, match="--model CKPT instead of --onnx"):
        quantize_onnx(tmp_path / "m.onnx", tmp_path / "o.onnx", cfg)
    assert not (tmp_path / "o.onnx").exists()
