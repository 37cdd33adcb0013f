"""A repository served on OpenVINO: its part models load the checkpoint's IR pair (the ONNX Runtime
``DeformConv`` split, which OpenVINO cannot read, is not what they get), and a stream equals ``run``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcpose_trt.cli import main
from dcpose_trt.errors import InputError

from .conftest import _need_triton, assert_gone, start_server

pytest.importorskip("openvino")


def test_openvino_repository_streams_like_run(shared_data, tmp_path):
    _need_triton()
    from dcpose_trt.serve.client import stream_video
    from dcpose_trt.serve.repository import ServeExportConfig, export_repository

    repo = export_repository(ServeExportConfig(out=str(tmp_path / "repo"), backend="openvino"))
    part = repo / "dcpose_head" / "1"
    assert {p.name for p in part.iterdir()} >= {"backbone.xml", "head.xml"} and not list(part.glob("*.onnx"))
    clip = shared_data / "posetrack18_sample" / "videos" / "000001_mpiinew_test"
    server = start_server(repo)
    try:
        stream_video(server.grpc_url, str(clip), boxes=str(clip / "boxes.json"), json_out=str(tmp_path / "s.json"),
                     progress=False)
    finally:
        server.stop()
        assert_gone(server)
    assert main(["run", "--video", str(clip), "--boxes", str(clip / "boxes.json"), "--backend", "openvino",
                 "--json", str(tmp_path / "r.json")]) == 0
    got, want = (json.loads((tmp_path / f).read_text())["frames"] for f in ("s.json", "r.json"))
    assert [f["frame"] for f in got] == [f["frame"] for f in want]
    for g, w in zip(got, want, strict=True):
        assert [p["track_id"] for p in g["persons"]] == [p["track_id"] for p in w["persons"]]
        for gp, wp in zip(g["persons"], w["persons"], strict=True):
            assert max(abs(a - b) for ga, wa in zip(gp["keypoints"], wp["keypoints"], strict=True)
                       for a, b in zip(ga[:2], wa[:2], strict=True)) <= 1e-3 + 1e-6


def test_openvino_refuses_a_deformconv_split(tmp_path):
    pytest.importorskip("onnxruntime")
    from dcpose_trt.export import ExportConfig, export_onnx
    from dcpose_trt.serve.repository import ServeExportConfig, export_repository

    split = export_onnx(None, tmp_path / "split", ExportConfig(split=True, check=False))
    with pytest.raises(InputError, match="OpenVINO cannot read ONNX DeformConv"):
        export_repository(ServeExportConfig(out=str(tmp_path / "repo"), model=str(split), backend="openvino"))
    assert not Path(tmp_path / "repo").exists()
