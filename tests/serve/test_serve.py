"""``dcpose-trt serve`` against a real tritonserver: many streams, each exactly what ``run`` writes, batched
together on the part models; idle streams freed; bad requests refused alone; a dying server reported."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from dcpose_trt.cli import main
from tests.serve.conftest import IDLE_TIMEOUT_S, assert_gone, start_server

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def videos(shared_data, tmp_path_factory) -> list[tuple[str, str]]:
    """(video, boxes) of the real PoseTrack clip and three synthetic videos."""
    clip = shared_data / "posetrack18_sample" / "videos" / "000001_mpiinew_test"
    out = tmp_path_factory.mktemp("synth")
    assert main(["synth", "--out", str(out), "--videos", "3", "--frames", "5", "--size", "192x144",
                 "--workers", "1", "--no-hard-val"]) == 0
    synth = [(str(v), str(out / "detections" / f"{v.parent.name}.json"))
             for v in sorted((out / "images").glob("*/*")) if v.is_dir()]
    assert len(synth) == 3
    return [(str(clip), str(clip / "boxes.json")), *synth]


def _frames(path: Path) -> list[dict]:
    return json.loads(path.read_text())["frames"]


def _same_poses(got: list[dict], want: list[dict]) -> None:
    assert [f["frame"] for f in got] == [f["frame"] for f in want]
    for g, w in zip(got, want, strict=True):
        assert [p["track_id"] for p in g["persons"]] == [p["track_id"] for p in w["persons"]]
        for p, q in zip(g["persons"], w["persons"], strict=True):
            assert p["box"] == q["box"]
            # 1e-3 px, plus the float error of the JSON's 3-decimal rounding
            np.testing.assert_allclose(p["keypoints"], q["keypoints"], rtol=0, atol=1e-3 + 1e-6)


def _live(server) -> int:
    text = urllib.request.urlopen(server.metrics_url, timeout=5).read().decode()
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("dcpose_live_streams{")))


def _backbone_batches(server) -> dict[int, int]:
    import tritonclient.grpc as g

    with g.InferenceServerClient(server.grpc_url) as c:
        stats = c.get_inference_statistics("dcpose_backbone", as_json=True)
    rows = stats["model_stats"][0].get("batch_stats", [])  # absent before the first batch
    return {int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in rows}


def test_four_streams_equal_run_and_share_batches(served, videos, tmp_path):
    from dcpose_trt.serve.client import stream_video

    errors: list[BaseException] = []

    def one(i: int, video: str, boxes: str) -> None:
        try:
            stream_video(served.server.grpc_url, video, boxes=boxes, json_out=str(tmp_path / f"serve{i}.json"),
                         progress=False)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i, v, b)) for i, (v, b) in enumerate(videos)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    crops_per_stream = 0
    for i, (video, boxes) in enumerate(videos):
        want = tmp_path / f"run{i}.json"
        assert main(["run", "--video", video, "--boxes", boxes, "--model", str(served.split), "--backend",
                     "onnxruntime", "--json", str(want)]) == 0
        got = _frames(tmp_path / f"serve{i}.json")
        _same_poses(got, _frames(want))
        crops_per_stream = max(crops_per_stream, 3 * max(len(f["persons"]) for f in got))
    # Exact mode: one stream's backbone request is 3 crops per person of one frame. A batch larger than the
    # largest such request held the crops of more than one stream.
    batches = _backbone_batches(served.server)
    assert max(batches) > crops_per_stream, (batches, crops_per_stream)


def test_dropped_stream_is_freed_after_idle_timeout(served):
    from dcpose_trt.serve.client import RequestError, StreamClient

    frame = np.full((96, 128, 3), 90, np.uint8)
    boxes = np.array([[20, 10, 40, 70, 0.9]], np.float32)
    with StreamClient(served.server.grpc_url) as c:
        c.process(frame, boxes)
        c.process(frame, boxes)  # ... and the camera goes away without ending its stream
        assert c.live_streams >= 1 and _live(served.server) >= 1
        deadline = time.monotonic() + IDLE_TIMEOUT_S + 30
        while _live(served.server) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _live(served.server) == 0
        with pytest.raises(RequestError):  # its state is gone: it must start again
            c.send(frame, boxes)


def test_bad_requests_fail_alone(served, videos, tmp_path):
    from dcpose_trt.serve.client import RequestError, StreamClient, stream_video

    video, boxes_file = videos[1]
    done: dict[str, object] = {}

    def good() -> None:
        try:
            done["summary"] = stream_video(served.server.grpc_url, video, boxes=boxes_file,
                                           json_out=str(tmp_path / "good.json"), progress=False)
        except BaseException as exc:  # noqa: BLE001
            done["error"] = exc

    t = threading.Thread(target=good)
    t.start()
    frame = np.full((96, 128, 3), 90, np.uint8)
    box = np.array([[20, 10, 40, 70, 0.9]], np.float32)
    with StreamClient(served.server.grpc_url) as c:
        c.send(frame, box, start=True)
        with pytest.raises(RequestError, match="size"):
            c.send(np.zeros((64, 64, 3), np.uint8), box)
        with pytest.raises(RequestError, match="NaN"):
            c.send(frame, np.array([[np.nan, 1, 2, 3, 1]], np.float32))
        with pytest.raises(RequestError):  # FP32 where UINT8 is declared: refused by Triton itself
            c.send(frame.astype(np.float32), box)
        # The stream is still there and unchanged: the next good frame gives the first frame's poses.
        res = c.send(frame, box)
        assert [r.index for r in res] == [0] and len(res[0].boxes) == 1
        assert [r.index for r in c._infer([], start=False, end=True)] == [1]
    t.join(300)
    assert "error" not in done, done.get("error")
    assert len(_frames(tmp_path / "good.json")) == 5


def test_multi_camera_example(served, videos):
    clip, boxes = videos[0]
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "multi_camera_client.py"), "--url",
                           served.server.grpc_url, "--boxes", boxes, clip, clip], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 10 and all(": frame " in line for line in lines)  # 5 frames x 2 streams, each once
    for k in range(5):
        assert sum(f": frame {k}:" in line for line in lines) == 2


def _stream_model_requests(server) -> int:
    import tritonclient.grpc as g

    try:
        with g.InferenceServerClient(server.grpc_url) as c:
            stats = c.get_inference_statistics("dcpose_stream", as_json=True)
    except Exception:  # noqa: BLE001 - not answering yet
        return 0
    return int(stats["model_stats"][0]["inference_stats"]["success"].get("count", 0))


@pytest.fixture
def own_repo(serve_repo, tmp_path) -> Path:
    """A copy of the repository: the servers started from it are told apart from the module's server (the
    no-orphan check looks for processes by repository path)."""
    import shutil

    return Path(shutil.copytree(serve_repo[0], tmp_path / "own_repo"))


def test_killed_server_gives_one_line_error_and_restart_works(own_repo, videos, tmp_path):
    repo = own_repo
    out = tmp_path / "long"
    assert main(["synth", "--out", str(out), "--videos", "1", "--frames", "60", "--size", "160x120",
                 "--workers", "1", "--no-hard-val", "--split-ratio", "1.0"]) == 0
    video = out / "images" / "train" / "000001_synth_train"
    server = start_server(repo)
    try:
        cmd = [sys.executable, "-m", "dcpose_trt.cli", "serve", "stream", "--url", server.grpc_url, "--video",
               str(video), "--boxes", str(out / "detections" / "train.json"), "--json", str(tmp_path / "k.json"),
               "--timeout", "30"]
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while _stream_model_requests(server) < 3 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert proc.poll() is None, proc.communicate()  # still mid-stream
            server.kill()  # a crash, not a clean stop
            t0 = time.monotonic()
            _, err = proc.communicate(timeout=90)
            waited = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 1, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("dcpose-trt serve stream: error: server"), err
        assert waited < 45
        assert not (tmp_path / "k.json").exists()  # nothing half-written
    finally:
        server.stop()
    assert_gone(server)

    # A new server on the same repository: a new stream works.
    from dcpose_trt.serve.client import stream_video

    server = start_server(repo)
    try:
        clip, boxes = videos[0]
        summary = stream_video(server.grpc_url, clip, boxes=boxes, json_out=str(tmp_path / "again.json"),
                               progress=False)
        assert summary.frames == 5 and len(_frames(tmp_path / "again.json")) == 5
    finally:
        server.stop()
    assert_gone(server)


def test_serve_start_prints_addresses_and_stops_on_sigterm(own_repo):
    import signal

    from dcpose_trt.serve.server import TritonServer, free_ports

    repo = own_repo
    ports = free_ports()
    proc = subprocess.Popen([sys.executable, "-m", "dcpose_trt.cli", "serve", "start", "--repo", str(repo),
                             "--grpc-port", str(ports.grpc), "--http-port", str(ports.http), "--metrics-port",
                             str(ports.metrics)], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until ready (or the command failed)
        assert first.startswith(f"ready: grpc 127.0.0.1:{ports.grpc}"), (first, proc.stderr and proc.stderr.read())
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and out.strip().endswith("stopped")
    probe = TritonServer(repo, ports)  # only to check what the command left: nothing
    assert_gone(probe)
