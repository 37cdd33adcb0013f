"""``dcpose-trt bench serve`` end to end: a real ``tritonserver``, the bundled tiny model, streams 1 and 2.

Checks the shape of ``results.json`` (not the timings: this machine is shared), that the server the bench
started is gone afterwards, and that bad arguments are one line, exit 2, nothing written.
"""

from __future__ import annotations

import json
import time

import pytest

from dcpose_trt.cli import main
from tests.serve.conftest import _need_triton, _processes_with


def test_bench_serve_writes_a_row_per_stream_count_and_the_baseline(tmp_path, capsys):
    _need_triton()
    pytest.importorskip("onnxruntime")
    out = tmp_path / "bench"
    assert main(["bench", "serve", "--streams", "1,2", "--frames", "3", "--backend", "onnxruntime",
                 "--out", str(out)]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert (doc["target"], doc["backend"], doc["mode"], doc["frames_per_stream"]) == ("cpu", "onnxruntime", "exact", 3)

    base = doc["baseline"]
    # The baseline runs every video (one per stream of the largest row) in one process, after a warm-up.
    assert base["config"].startswith("in-process run") and base["frames"] == 6 and base["frames_per_s"] > 0
    assert [v["frames"] for v in base["videos"]] == [3, 3]
    assert all(0 < v["frame_ms"]["p50"] <= v["frame_ms"]["p99"] for v in base["videos"])
    assert doc["persons_per_frame"] > 0
    scaling = doc["in_process_ms_per_person"]  # per-person cost of each part at growing batch sizes
    assert set(scaling) == {"backbone", "head"} and all(len(v) == 4 and min(v.values()) > 0 for v in scaling.values())

    assert [r["streams"] for r in doc["rows"]] == [1, 2]
    for row in doc["rows"]:
        assert row["frames"] == 3 * row["streams"] and row["frames_per_s"] > 0
        assert 0 < row["request_ms"]["p50"] <= row["request_ms"]["p99"]
        assert row["in_process_frames_per_s"] > 0
        assert row["vs_in_process"] == pytest.approx(row["frames_per_s"] / row["in_process_frames_per_s"], abs=0.01)
        # The batch sizes Triton's dynamic batcher formed on the backbone, counted for this row only. Exact
        # mode sends 3 crops (t-1, t, t+1) per person, so every request, and every batch of requests, holds a
        # multiple of 3 rows.
        batches = {int(k): v for k, v in row["backbone_batches"].items()}
        assert batches and all(k >= 1 and v >= 1 for k, v in batches.items())
        rows_sent = sum(k * v for k, v in batches.items())
        assert rows_sent > 0 and rows_sent % 3 == 0
        assert set(row["server_seconds"]) == {"dcpose_stream", "dcpose_backbone", "dcpose_head"}
        assert row["server_seconds"]["dcpose_stream"]["compute"] > 0
    # The bench's own server and its Python-backend stubs are gone (its repository lived in serve_bench.*).
    deadline = time.monotonic() + 20
    while _processes_with("serve_bench.") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_with("serve_bench.")


@pytest.mark.parametrize("args, message", [
    (["--streams", "0"], "--streams must be >= 1"),
    (["--streams", "1,x"], "--streams"),
    (["--frames", "1"], "--frames >= 2"),
])
def test_bench_serve_bad_arguments_are_one_line_and_write_nothing(args, message, tmp_path, capsys):
    out = tmp_path / "bench"
    code = main(["bench", "serve", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("dcpose-trt bench: error:") and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()
