"""The typed reader of the exported ONNX metadata (``dcpose_trt.contract.read_model_metadata``).

Every reader of ``metadata_props`` (quantize, the ONNX Runtime and OpenVINO backends, the engine's ONNX
summary) goes through it, so a malformed value is refused the same way everywhere: one line, our error.
"""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from dcpose_trt.contract import OnnxModelInfo, read_model_metadata
from dcpose_trt.errors import DcposeTrtError, InputError

WRITTEN = {
    "dcpose_trt.preset": "tiny-128x96",
    "dcpose_trt.deform": "deformconv",
    "dcpose_trt.part": "full",
    "dcpose_trt.version": "0.4.0",
    "dcpose_trt.input_size": "128x96",
    "dcpose_trt.heatmap_size": "32x24",
    "dcpose_trt.precision": "fp32",
    "dcpose_trt.mean": "0.485,0.456,0.406",
    "dcpose_trt.std": "0.229,0.224,0.225",
}


def _model(props: dict[str, str]) -> onnx.ModelProto:
    """A one-node ONNX model (Relu) carrying ``props`` as its metadata."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]))
    for k, v in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    return model


def test_reads_what_the_export_writes_typed():
    info = read_model_metadata(_model({**WRITTEN, "other.tool": "kept"}))
    assert info == OnnxModelInfo(preset="tiny-128x96", deform="deformconv", part="full", version="0.4.0",
                                 input_size=(128, 96), heatmap_size=(32, 24), precision="fp32",
                                 mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    assert info.raw["other.tool"] == "kept" and info.calibration is None and info.int8_target is None


def test_props_round_trip_keeps_other_keys():
    info = read_model_metadata({**WRITTEN, "dcpose_trt.plugin": "x", "dcpose_trt.int8_target": "cpu",
                                "dcpose_trt.precision": "int8"})
    assert info.int8_target == "cpu" and info.precision == "int8"
    assert info.props() == {**WRITTEN, "dcpose_trt.plugin": "x", "dcpose_trt.int8_target": "cpu",
                            "dcpose_trt.precision": "int8"}
    assert read_model_metadata(info.props()) == info


def test_a_foreign_model_reads_as_empty():
    info = read_model_metadata(_model({}))
    assert info.preset is None and info.input_size is None and info.precision == "fp32" and not info.raw


@pytest.mark.parametrize(("key", "value"), [
    ("dcpose_trt.precision", "int4"),
    ("dcpose_trt.deform", "bilinear"),
    ("dcpose_trt.part", "neck"),
    ("dcpose_trt.int8_target", "gpu"),
    ("dcpose_trt.input_size", "128by96"),
    ("dcpose_trt.input_size", "0x96"),
    ("dcpose_trt.heatmap_size", "32x24x1"),
    ("dcpose_trt.mean", "0.5,0.5"),
    ("dcpose_trt.std", "a,b,c"),
])
def test_malformed_values_are_refused_in_one_line(key, value):
    with pytest.raises(InputError) as exc:
        read_model_metadata({**WRITTEN, key: value}, source="m.onnx")
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("m.onnx: ") and key in msg and repr(value) in msg


def test_require_names_the_missing_keys():
    info = read_model_metadata({"dcpose_trt.deform": "plugin"}, source="m.onnx")
    with pytest.raises(InputError, match=r"m.onnx has no dcpose_trt.preset, dcpose_trt.input_size metadata"):
        info.require("preset", "input_size")
    assert info.require("deform") is info


def test_reads_a_file_without_loading_its_weights(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_model(WRITTEN), str(path))
    info = read_model_metadata(path)
    assert info.input_size == (128, 96) and info.source == str(path)


def test_bad_files_and_objects_raise_our_errors(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"\xff\xfe not a protobuf")
    for bad in (tmp_path / "none.onnx", tmp_path / "junk.onnx", 42):
        with pytest.raises(DcposeTrtError):
            read_model_metadata(bad)
