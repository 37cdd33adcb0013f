"""``dcpose-trt bench head``: the per-op head profile runs every variant and sums real per-node counters."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from dcpose_trt.cli import main  # noqa: E402


def test_profiles_every_head_variant(tmp_path):
    out = tmp_path / "head"
    assert main(["bench", "head", "--preset", "tiny-128x96", "--persons", "1", "--iters", "1", "--out", str(out)]) == 0
    doc = json.loads((out / "results.json").read_text())
    rows = {r["variant"]: r for r in doc["rows"]}
    native, cpu, int8 = (rows["openvino native DCN fp32"], rows["openvino CPU form fp32"],
                         rows["openvino CPU form int8 (offset/mask convs)"])
    # The native head spends time in the DCN op; the CPU form has none and gathers with GridSample instead.
    dcn_op = "DCN op (DeformableConvolution / DeformConv / DcnGemm)"
    assert native["ops_ms"][dcn_op] > 0
    assert dcn_op not in cpu["ops_ms"]
    assert cpu["ops_ms"]["gather (GridSample)"] > 0 and int8["ops_ms"]["offset + mask convs"] > 0
    from dcpose_trt.engine.ov_extension import dcn_form

    fused = [r for name, r in rows.items() if name.endswith("+ DcnGemm op")]
    assert len(fused) == (2 if dcn_form() == "fused" else 0)
    for r in fused:  # our op in the DCN group, no GridSample left; the INT8 one keeps its INT8 convs
        assert r["ops_ms"][dcn_op] > 0 and "gather (GridSample)" not in r["ops_ms"]
    assert all(r["median_ms"] > 0 and r["persons"] == 1 for r in doc["rows"])
    if "onnxruntime deformconv fp32" in rows:  # ONNX Runtime installed: its profiler's table too
        assert rows["onnxruntime deformconv fp32"]["ops_ms"]["offset + mask convs"] > 0
    assert "| openvino CPU form int8 (offset/mask convs) | 1 |" in (out / "README.md").read_text()


@pytest.mark.parametrize("argv", [["--persons", "x"], ["--persons", "0"], ["--iters", "0"]])
def test_bad_arguments_one_line(tmp_path, capsys, argv):
    out = tmp_path / "head"
    assert main(["bench", "head", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and not out.exists()
