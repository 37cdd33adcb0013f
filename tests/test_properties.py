"""[trust] item 16: every reader of user-supplied or cached files accepts an input or rejects it with our
one error family (:class:`~dcpose_trt.errors.DcposeTrtError`), never another exception.

Hypothesis generates documents: arbitrary JSON, arbitrary bytes, and near-valid documents (a valid one
with any field replaced by any JSON value), which reach deeper into each reader. Each property runs
``EXAMPLES`` cases (a few seconds each on 2 loaded cores, well under 20 s); ``CASES`` counts them and the last test
checks the count, so a silently skipped property shows up.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dcpose_trt.errors import DcposeTrtError  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "engine"))

EXAMPLES = 300
CASES: Counter[str] = Counter()
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
JSON = st.recursive(SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=16)
BYTES = st.binary(max_size=200)


def _paths(doc: object) -> list[tuple]:
    """Every key path into a JSON document (for replacing one node)."""
    out: list[tuple] = [()]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += [(k, *p) for p in _paths(v)]
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += [(i, *p) for p in _paths(v)]
    return out


def mutated(valid: object) -> st.SearchStrategy:
    """``valid`` with one node (any depth) replaced by any JSON value, or deleted."""
    paths = _paths(valid)

    @st.composite
    def strat(draw):
        doc = copy.deepcopy(valid)
        path = draw(st.sampled_from(paths))
        if not path:
            return draw(JSON)
        node = doc
        for k in path[:-1]:
            node = node[k]
        if draw(st.booleans()) and isinstance(node, dict):
            del node[path[-1]]
        else:
            node[path[-1]] = draw(JSON)
        return doc

    return strat()


def _write(folder: Path, name: str, content: object) -> Path:
    p = folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(json.dumps(content, allow_nan=True))
    return p


def _accepts_or_ours(name: str, fn, *args) -> None:
    CASES[name] += 1
    try:
        fn(*args)
    except DcposeTrtError:
        pass


# -- boxes JSON ---------------------------------------------------------------------------------------

BOXES = [{"frame": 0, "bbox": [1, 2, 30, 40], "score": 0.9, "category_id": 1},
         {"image_name": "a/000001.jpg", "bbox": [0, 0, 1, 1]}, {"image_id": 3, "bbox": [5, 5, 5, 5]}]


@SETTINGS
@given(doc=st.one_of(JSON, mutated(BOXES), mutated({"annotations": BOXES}), BYTES))
def test_boxes_files(doc):
    from dcpose_trt.data.posetrack import read_boxes_file

    with tempfile.TemporaryDirectory() as d:
        _accepts_or_ours("boxes", read_boxes_file, _write(Path(d), "boxes.json", doc))


# -- plan sidecars ------------------------------------------------------------------------------------

@SETTINGS
@given(doc=st.one_of(JSON, BYTES, st.deferred(lambda: mutated(_sidecar()))))
def test_plan_sidecars(doc):
    from dcpose_trt.engine._trt import GpuInfo, Machine
    from dcpose_trt.engine.plan import check, read_sidecar
    from dcpose_trt.engine.plan_trust import PlanTrust, check_sidecar_trust

    with tempfile.TemporaryDirectory() as d:
        plan = _write(Path(d), "m.plan", b"plan")
        _write(Path(d), "m.plan.json", doc)
        machine = Machine({"tensorrt-rtx": "1.7.1.116", "tensorrt": "10.13.3"}, GpuInfo("NVIDIA A10", "8.6"))
        _accepts_or_ours("sidecar", read_sidecar, plan)
        _accepts_or_ours("sidecar", check, plan, None, "tiny-128x96", machine)

        def trust():
            check_sidecar_trust(read_sidecar(plan), PlanTrust(), str(plan))

        _accepts_or_ours("sidecar", trust)


def _sidecar() -> dict:
    from test_plan_trust import sidecar

    meta = sidecar(False, ["libx.so", {"name": "liby.so", "sha256": "0" * 64}])
    meta["target"]["gpu"] = {"name": "NVIDIA A10", "compute_capability": "8.6"}
    meta["target"]["compute_capabilities"] = ["8.6"]
    meta["build"]["plugin_ptx_arch"] = 80
    meta["dcn"]["form"] = "plugin"
    return meta


# -- PoseTrack annotations and predictions -----------------------------------------------------------

PT18 = {"images": [{"file_name": "images/val/v/000000.jpg", "id": 10000, "frame_id": 10000, "vid_id": "v",
                    "nframes": 2, "is_labeled": True, "ignore_regions_x": [[1, 2, 3]],
                    "ignore_regions_y": [[1, 5, 1]]},
                   {"file_name": "images/val/v/000001.jpg", "id": 10001, "frame_id": 10001, "vid_id": "v",
                    "nframes": 2, "is_labeled": False}],
        "annotations": [{"image_id": 10000, "track_id": 0, "bbox": [1, 1, 10, 10], "bbox_head": [1, 1, 3, 3],
                         "keypoints": [5, 5, 1] * 17, "scores": [0.5] * 17, "score": 0.9}],
        "categories": [{"keypoints": ["nose", "head_bottom", "head_top", "left_ear", "right_ear", "left_shoulder",
                                      "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                                      "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                                      "right_ankle"]}]}
PT17 = {"annolist": [{"image": [{"name": "images/val/v/000000.jpg"}], "imgnum": [1],
                      "annorect": [{"x1": [1], "y1": [1], "x2": [9], "y2": [9], "score": [0.9], "track_id": [0],
                                    "annopoints": [{"point": [{"id": [0], "x": [5], "y": [5], "score": [0.5],
                                                               "is_visible": [1]}]}]}],
                      "is_labeled": [1], "ignore_regions": []}]}


@SETTINGS
@given(doc=st.one_of(JSON, BYTES, mutated(PT18), mutated(PT17)))
def test_posetrack_annotations(doc):
    from dcpose_trt.data.posetrack import load_video

    with tempfile.TemporaryDirectory() as d:
        _accepts_or_ours("annotations", load_video, _write(Path(d), "annotations/val/v.json", doc), Path(d))


@SETTINGS
@given(doc=st.one_of(JSON, BYTES, mutated(PT18), mutated(PT17)))
def test_posetrack_predictions(doc):
    from dcpose_trt.eval.results import read_video_results

    with tempfile.TemporaryDirectory() as d:
        _accepts_or_ours("predictions", read_video_results, _write(Path(d), "v.json", doc))


# -- cache records: model-cache manifests, predict's per-video records --------------------------------

@SETTINGS
@given(doc=st.one_of(JSON, BYTES, mutated({"schema": "dcpose_trt.cache/1", "key": {"a": "b"},
                                           "files": {"model.onnx": {"bytes": 4, "sha256": "0" * 64},
                                                     "../x": {"bytes": 1, "sha256": "1" * 64}}})))
def test_cache_manifests(doc):
    from dcpose_trt.engine import cache_manifest

    with tempfile.TemporaryDirectory() as d:
        _write(Path(d), "model.onnx", b"onnx")
        _write(Path(d), "manifest.json", doc)
        CASES["cache"] += 1
        why = cache_manifest.verify(Path(d), {"a": "b"})  # a reason or None, never an exception
        assert why is None or isinstance(why, str)


@SETTINGS
@given(made=st.one_of(JSON, BYTES, mutated({"schema": "dcpose_trt.predict-made/1", "made_by": {"backend": "torch"},
                                            "sha256": "0" * 64, "frames": 1})),
       out=st.one_of(JSON, BYTES, mutated({"frames": [{"frame": 0, "persons": []}]})))
def test_predict_records(made, out):
    from dcpose_trt.scale.jobs import VideoFileJob
    from dcpose_trt.scale.resume import why_redo

    with tempfile.TemporaryDirectory() as d:
        job = VideoFileJob("v", str(_write(Path(d), "v.json", out)), str(Path(d) / "v.mp4"), boxes=None)
        _write(Path(d), "v.json.made", made)
        CASES["predict-record"] += 1
        why = why_redo(job, {"backend": "torch"})
        assert why is None or isinstance(why, str)


# -- select-backend records -----------------------------------------------------------------------------

SELECTION = {"backend": "onnxruntime", "key": {"cpu": "x", "mode": "exact"}, "times_ms": {"torch": {"1": 5.0}},
             "measured_at": "2026-12-06T00:00:00Z", "skipped": {}}


@SETTINGS
@given(doc=st.one_of(JSON, BYTES, mutated(SELECTION)))
def test_select_backend_records(doc):
    from dcpose_trt.runtime.backends.autoselect import read_record

    with tempfile.TemporaryDirectory() as d:
        CASES["select-backend"] += 1
        read_record(_write(Path(d), "sel.json", doc))  # a Selection or None (measured again), never raises


# -- ONNX files and their metadata ---------------------------------------------------------------------

@SETTINGS
@given(meta=st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=5), junk=BYTES,
       corrupt=st.booleans())
def test_onnx_metadata(meta, junk, corrupt):
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from dcpose_trt.engine.onnx_info import inspect_onnx, onnx_sha256

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph)
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    data = junk if corrupt else model.SerializeToString()
    with tempfile.TemporaryDirectory() as d:
        path = _write(Path(d), "m.onnx", data)
        _accepts_or_ours("onnx", inspect_onnx, path)
        _accepts_or_ours("onnx", onnx_sha256, path)


def test_every_property_ran():
    """Runs last in this file: how many cases each property saw (pytest -s shows them)."""
    print("hypothesis cases:", dict(CASES), "total", sum(CASES.values()))
    for name in ("boxes", "sidecar", "annotations", "predictions", "cache", "predict-record", "select-backend",
                 "onnx"):
        assert CASES[name] >= EXAMPLES, (name, CASES[name])
    assert math.isfinite(sum(CASES.values()))
