"""The formats' JSON Schemas (docs/formats.md): valid schemas, shipped with the package, and the files
dcpose-trt itself writes or ships pass them; a hand-made file that does not is one line saying where."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dcpose_trt.errors import DataError
from dcpose_trt.schemas import HERE, NAMES, schema, validate

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", NAMES)
def test_each_schema_is_a_valid_schema_and_ships_with_the_package(name):
    from jsonschema.validators import validator_for

    doc = schema(name)
    validator_for(doc).check_schema(doc)
    assert (HERE / f"{name}.schema.json").is_file()
    assert '"schemas/*.json"' in (REPO / "setup.py").read_text()
    assert f"{name}.schema.json" in (REPO / "docs" / "formats.md").read_text()


def test_the_boxes_files_we_ship_and_write_pass(shared_data, tmp_path):
    from dcpose_trt.data.synth import SynthConfig, generate

    sample = shared_data / "posetrack18_sample"
    for path in (sample / "videos/000001_mpiinew_test/boxes.json",
                 sample / "annotations/test_posetrack18_human_detections.json"):
        validate(json.loads(path.read_text()), "boxes", path)
    generate(SynthConfig(out=tmp_path, videos=2, frames=3, workers=1))
    for path in (tmp_path / "detections").glob("*.json"):
        validate(json.loads(path.read_text()), "boxes", path)


def test_a_run_result_passes(shared_data, tmp_path):
    from dcpose_trt.runtime.pipeline import RunConfig, run_video

    clip = shared_data / "posetrack18_sample/videos/000001_mpiinew_test"
    out = tmp_path / "poses.json"
    run_video(RunConfig(video=str(clip), boxes=str(clip / "boxes.json"), json_out=str(out), max_frames=2),
              progress=False)
    doc = json.loads(out.read_text())
    assert doc["frames"] and doc["frames"][0]["persons"]
    validate(doc, "result", out)
    doc["frames"][0]["persons"][0]["keypoints"].pop()
    where = r"'frames' > entry 0 > 'persons' > entry 0 > 'keypoints'"
    with pytest.raises(DataError, match=where + ": does not satisfy minItems=17"):
        validate(doc, "result", out)


def test_posetrack_predictions_pass_and_a_broken_one_is_refused_by_the_reader(tmp_path):
    from dcpose_trt.data.posetrack import Frame, Video
    from dcpose_trt.eval.results import Pose, read_video_results, video_results

    frames = [Frame(f"images/val/v/{i:06d}.jpg", tmp_path / f"{i:06d}.jpg", i, None, 2, True) for i in range(2)]
    video = Video("v", frames, 2, 6, "images/val/v", tmp_path)
    kp = np.tile([[10.0, 20.0, 0.8]], (17, 1))
    doc = video_results(video, {0: [Pose(kp, 0.9)]})
    validate(doc, "posetrack", "v.json")
    del doc["annolist"][0]["annorect"][0]["annopoints"][0]["point"][3]["x"]
    fp = tmp_path / "v.json"
    fp.write_text(json.dumps(doc))
    with pytest.raises(DataError) as err:
        read_video_results(fp)
    assert "not a valid posetrack file" in str(err.value) and "'x' is a required property" in str(err.value)


def test_a_plan_sidecar_passes():
    from dcpose_trt.engine.onnx_info import OnnxInfo, TensorInfo
    from dcpose_trt.engine.plan import PlanArtifact

    io = TensorInfo("frames", "float", (-1, 9, 128, 96))
    info = OnnxInfo(Path("m.onnx"), "a" * 64, 19, "fp16", "gridsample", (), "tiny-128x96", {}, (io,), (io,),
                    {"Conv": 3})
    art = PlanArtifact("tensorrt", "10.13.0", None, (), info, [{"batch": [1, 4, 8]}], [io.to_json()],
                       [io.to_json()], {"flags": []}, "dcpose-trt build --onnx m.onnx")
    doc = art.to_json(Path("m.plan"), "b" * 64, 123)
    validate(doc, "plan_sidecar", "m.plan.json")
    doc["plan"]["sha256"] = "not-a-digest"
    with pytest.raises(DataError, match="'plan' > 'sha256'"):
        validate(doc, "plan_sidecar", "m.plan.json")
