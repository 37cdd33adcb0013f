"""[trust] item 11: external-data locations outside the model's folder are refused, as ONNX Runtime does
(before the fix ``check-plan --onnx`` hashed ``../../etc/passwd`` and hung reading ``/dev/zero``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcpose_trt.cli import main
from dcpose_trt.errors import DcposeTrtError

onnx = pytest.importorskip("onnx")


def model_with_external(folder: Path, location: str) -> Path:
    """A one-Add ONNX whose weight lives in an external file at ``location`` (as written in the model)."""
    from onnx import TensorProto, helper

    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4])
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "16")):
        e = w.external_data.add()
        e.key, e.value = k, v
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [w])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "m.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    return path


@pytest.fixture
def outside(tmp_path) -> Path:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0" * 64)
    return secret


LOCATIONS = {
    "dotdot": lambda tmp: "../secret.bin",
    "absolute": lambda tmp: str(tmp / "secret.bin"),
    "device": lambda tmp: "/dev/zero",
    "symlink-out": lambda tmp: "link.bin",
}


@pytest.mark.parametrize("case", list(LOCATIONS))
def test_external_data_outside_the_folder_is_refused(case, tmp_path, outside):
    from dcpose_trt.engine.onnx_info import inspect_onnx, onnx_sha256

    model = model_with_external(tmp_path / "model", LOCATIONS[case](tmp_path))
    if case == "symlink-out":
        (tmp_path / "model" / "link.bin").symlink_to(outside)
    for fn in (onnx_sha256, inspect_onnx):
        with pytest.raises(DcposeTrtError, match="outside"):
            fn(model)


def test_check_plan_and_build_refuse_it_in_one_line(tmp_path, outside, capsys):
    model = model_with_external(tmp_path / "model", "../secret.bin")
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"plan")
    sys_path = Path(__file__).parent
    import sys

    sys.path.insert(0, str(sys_path))
    from test_plan_trust import sidecar

    (tmp_path / "m.plan.json").write_text(json.dumps(sidecar()))
    for argv in (["check-plan", str(plan), "--onnx", str(model)],
                 ["build", "--onnx", str(model), "--out", str(tmp_path / "b.plan"), "--backend", "tensorrt-rtx"]):
        rc = main(argv)
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and "outside" in err, (argv, err)
    assert not (tmp_path / "b.plan").exists()


def test_external_data_inside_the_folder_is_hashed(tmp_path):
    from dcpose_trt.engine.onnx_info import onnx_sha256

    model = model_with_external(tmp_path / "model", "w.bin")
    (tmp_path / "model" / "w.bin").write_bytes(b"\0" * 16)
    a = onnx_sha256(model)
    (tmp_path / "model" / "w.bin").write_bytes(b"\1" * 16)
    assert onnx_sha256(model) != a
