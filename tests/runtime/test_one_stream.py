"""Issue 20 "Done when": `run`, `predict --videos` (one process and Ray), `examples/edge_app.py` and the
Python API give identical poses, for a box that crosses the frame border and for a stream with an
unreadable frame (the one stream loop, :mod:`dcpose_trt.runtime.stream`, and its one box policy).

The stream: the real clip's five frames (1280x720), frame 2 replaced by a file that is no image; each
frame has its own boxes (so boxes that shift by one frame show), one of them reaching past the right
border. All runs use the bundled tiny checkpoint on the torch backend with one intra-op thread.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dcpose_trt.data.video import BoxesFromFile, FrameSource
from dcpose_trt.runtime import PoseEstimator

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stream(shared_data, tmp_path_factory) -> tuple[Path, Path, int]:
    """``(frames folder, boxes file, frame width)``: frame 2 unreadable, a box crossing the right border."""
    clip = shared_data / "posetrack18_sample" / "videos" / "000001_mpiinew_test"
    if not (clip / "boxes.json").is_file():
        pytest.skip("real clip not found")
    root = tmp_path_factory.mktemp("stream")
    frames = root / "clip"
    frames.mkdir()
    jpgs = sorted(clip.glob("*.jpg"))
    for p in jpgs:
        shutil.copy(p, frames / p.name)
    (frames / jpgs[2].name).write_bytes(b"not an image")
    width = cv2.imread(str(jpgs[0])).shape[1]
    rows = []
    for i in range(len(jpgs)):
        rows.append({"frame": i, "bbox": [356 + 20 * i, 262, 212, 322], "score": 1.0})
        rows.append({"frame": i, "bbox": [width - 150.0 + 10 * i, 250, 260, 282], "score": 0.9})  # past the border
    boxes = root / "boxes"
    boxes.mkdir()
    (boxes / "clip.json").write_text(json.dumps(rows))
    return frames, boxes / "clip.json", width


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _frames(doc_frames: list[dict]) -> list[dict]:
    return [{"frame": f["frame"], "persons": f["persons"]} for f in doc_frames]


def _by_run(frames: Path, boxes: Path, tmp: Path) -> list[dict]:
    from dcpose_trt.runtime.pipeline import RunConfig, run_video

    run_video(RunConfig(str(frames), backend="torch", boxes=str(boxes), json_out=str(tmp / "run.json")),
              progress=False)
    return _frames(json.loads((tmp / "run.json").read_text())["frames"])


def _by_predict(frames: Path, boxes: Path, tmp: Path) -> list[dict]:
    from dcpose_trt.scale.jobs import EstimatorConfig, WorkerState, run_in_process, video_jobs

    cfg = EstimatorConfig(None, "torch", threads=1)
    report = run_in_process(video_jobs(str(frames.parent / "cl*"), tmp / "predict", boxes.parent), cfg,
                            progress=False, state=WorkerState(cfg))
    assert report.done == ["clip"], report.failed
    return _frames(json.loads((tmp / "predict" / "clip.json").read_text())["frames"])


def _by_edge_app(frames: Path, boxes: Path, tmp: Path, capsys) -> list[dict]:
    spec = importlib.util.spec_from_file_location("edge_app", REPO / "examples" / "edge_app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    capsys.readouterr()
    assert app.main(["--video", str(frames), "--boxes", str(boxes), "--backend", "torch"]) == 0
    return _frames([json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()])


def _by_api(frames: Path, boxes: Path) -> list[dict]:
    from dcpose_trt.runtime.stream import stream_poses

    source = FrameSource(frames)
    with PoseEstimator(backend="torch") as est:
        return [r.to_json() for r in stream_poses(est, source.indexed(), BoxesFromFile(boxes, source.names()))]


def _check_policy(result: list[dict], width: int) -> None:
    # Frame 2 is skipped, the others keep their positions, and each frame got its own boxes.
    assert [f["frame"] for f in result] == [0, 1, 3, 4]
    for f in result:
        i = f["frame"]
        xs = sorted(p["box"][0] for p in f["persons"])
        assert xs == pytest.approx(sorted([356 + 20 * i, width - 150 + 10 * i]), abs=1e-3)
        for p in f["persons"]:  # the box crossing the border is clipped to the frame
            assert p["box"][0] + p["box"][2] <= width + 1e-3


def test_run_predict_edge_app_and_api_give_the_same_poses(stream, tmp_path, capsys, one_thread):
    frames, boxes, width = stream
    ref = _by_run(frames, boxes, tmp_path)
    _check_policy(ref, width)
    assert _by_predict(frames, boxes, tmp_path) == ref, "predict --videos differs from run"
    assert _by_edge_app(frames, boxes, tmp_path, capsys) == ref, "examples/edge_app.py differs from run"
    assert _by_api(frames, boxes) == ref, "the Python API differs from run"


def test_the_api_clips_a_border_box_as_run_does(stream):
    """PoseEstimator.process (the API's own loop) keeps the same box policy as the stream loop."""
    frames, boxes, width = stream
    source = FrameSource(frames)
    table = BoxesFromFile(boxes, source.names())
    with PoseEstimator(backend="torch") as est:
        out = []
        for i, frame in source.indexed():
            out += est.process(frame, table(i, frame), index=i)
        out += est.flush()
    _check_policy([r.to_json() for r in out], width)


def test_predict_on_ray_gives_the_same_poses(stream, tmp_path, one_thread):
    ray = pytest.importorskip("ray")
    from dcpose_trt.scale.distributed import ClusterConfig, run_distributed
    from dcpose_trt.scale.jobs import EstimatorConfig, video_jobs

    frames, boxes, width = stream
    ref = _by_run(frames, boxes, tmp_path)
    ray.init(num_cpus=1, log_to_driver=False, configure_logging=False, include_dashboard=False)
    try:
        report = run_distributed(video_jobs(str(frames.parent / "cl*"), tmp_path / "ray", boxes.parent),
                                 EstimatorConfig(None, "torch"), ClusterConfig(workers=1, threads=1), progress=False)
    finally:
        ray.shutdown()
    assert report.done == ["clip"], report.failed
    assert _frames(json.loads((tmp_path / "ray" / "clip.json").read_text())["frames"]) == ref
    assert np.isfinite([p["keypoints"] for f in ref for p in f["persons"]]).all()


def test_stream_loop_pushed_a_frame_at_a_time_equals_run(stream, tmp_path, one_thread):
    """The push-style loop (what the Triton stream model drives, one request per frame, the boxes in the
    request) gives what ``run`` gives; its frame count numbers the frames as the protocol's FRAME_INDEX."""
    from dcpose_trt.runtime.stream import StreamLoop

    frames, boxes, width = stream
    ref = _by_run(frames, boxes, tmp_path)
    source = FrameSource(frames)
    table = BoxesFromFile(boxes, source.names())
    with PoseEstimator(backend="torch") as est:
        first = next(iter(source.indexed()))[1]
        est.process(first, [[0, 0, 50, 50, 1.0]], index=99)
        loop = StreamLoop(est)  # resets the estimator: the frame pushed above is forgotten
        out = []
        for i, frame in source.indexed():
            out += loop.step(i, frame, table(i, frame))
        assert loop.frames == len(ref)
        out += loop.finish()
    assert _frames([r.to_json() for r in out]) == ref


def test_stream_model_has_no_loop_of_its_own_structural():
    """Structural (not behavioural) check of issue [house]: the Triton stream model drives each stream
    through runtime.stream's StreamLoop (``.step``/``.finish``) and calls no estimator's ``.process`` or
    ``.flush`` itself, so it cannot drift from ``run``'s loop. Failed before the refactor (it called both)."""
    import ast

    tree = ast.parse((REPO / "dcpose_trt" / "serve" / "stream_model.py").read_text())
    called = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert not called & {"process", "flush"}, "the stream model runs a loop of its own"
    assert {"step", "finish"} <= called
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "dcpose_trt.runtime.stream"
             for a in n.names}
    assert "StreamLoop" in names
