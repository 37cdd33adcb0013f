"""Smoke run of the benchmark runner (tiny preset, torch + ONNX Runtime FP32, 1 person) and its output schema."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.config import STAGES
from benchmarks.report import CSV_COLUMNS, update_results_index
from benchmarks.runner import BenchConfig, run_benchmark
from benchmarks.timing import person_boxes
from dcpose_trt.errors import InputError


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One small real run; the frames are jpgs written here, so the test needs no shared data."""
    tmp = tmp_path_factory.mktemp("bench")
    frames = tmp / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(frames / f"{i:06d}.jpg"), rng.integers(0, 255, (180, 240, 3), dtype=np.uint8))
    cfg = BenchConfig(preset="tiny-128x96", backends=("torch", "onnxruntime", "tensorrt"), precisions=("fp32",),
                      persons=(1,), modes=("exact",), iters=2, warmup=1, out=tmp / "results" / "run",
                      video=frames, progress=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp / "cache-home"))  # FLOP-count cache
        result = run_benchmark(cfg)
    return result


def test_outputs_exist(smoke):
    for name in ("results.json", "results.csv", "latency.png", "machine.json", "README.md"):
        assert (smoke.out / name).is_file(), name
    assert (smoke.out / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_json_schema(smoke):
    doc = json.loads((smoke.out / "results.json").read_text())
    assert {"schema", "started", "model", "config", "machine", "flops", "rows"} <= doc.keys()
    assert doc["flops"]["exact"] > doc["flops"]["backbone_image"] > 0
    assert set(doc["rows"][0]) == set(CSV_COLUMNS)
    machine = json.loads((smoke.out / "machine.json").read_text())
    assert {"cpu", "logical_cpus", "memory_gb", "os", "python", "versions", "gpu"} <= machine.keys()
    assert {"torch", "onnxruntime", "tensorrt", "triton"} <= machine["versions"].keys()


def test_measured_rows(smoke):
    ok = {(r["backend"], r["precision"], r["mode"]): r for r in smoke.rows if r["status"] == "ok"}
    assert set(ok) == {("torch", "fp32", "exact"), ("onnxruntime", "fp32", "exact")}
    base = ok[("torch", "fp32", "exact")]
    assert base["baseline"] and base["speedup"] == 1.0
    ort = ok[("onnxruntime", "fp32", "exact")]
    assert ort["speedup"] > 0 and ort["speedup_infer"] > 0
    for r in ok.values():
        stages = sum(r[f"{s}_ms"] for s in STAGES if s != "e2e")
        # The stages partition one timed frame; medians of the parts need not add up to the median exactly.
        assert r["e2e_p50_ms"] <= r["e2e_p90_ms"] <= r["e2e_p99_ms"]
        assert stages == pytest.approx(r["e2e_p50_ms"], rel=0.5)
        assert r["infer_ms"] > 0 and r["persons_per_s"] > 0
        assert r["floor_share"] is None  # CPU rows have no FLOP floor


def test_csv_header_and_speedup(smoke):
    with (smoke.out / "results.csv").open() as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        rows = list(reader)
    assert "speedup" in reader.fieldnames
    assert all(r["speedup"] for r in rows if r["status"] == "ok")


def test_tensorrt_skipped_with_reason(smoke):
    from dcpose_trt._deps import available

    trt = [r for r in smoke.rows if r["backend"] == "tensorrt"]
    assert trt
    if available("tensorrt"):
        pytest.skip("TensorRT is installed here")
    assert all(r["status"] == "skipped" and r["reason"] for r in trt)
    readme = (smoke.out / "README.md").read_text()
    assert "Not measured" in readme and "tensorrt fp32 exact (persons 1): skipped:" in readme


def test_results_index(smoke):
    index = update_results_index(smoke.out.parent)
    text = index.read_text()
    assert "tiny-128x96" in text and smoke.out.name in text and "| backend |" in text


def test_person_boxes_tile_the_frame():
    b = person_boxes(16, (720, 1280), 3)
    assert b.shape == (16, 5)
    assert (b[:, 0] >= 0).all() and (b[:, 0] + b[:, 2] <= 1280).all() and (b[:, 1] + b[:, 3] <= 720).all()


def test_bad_config_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="precision"):
        run_benchmark(BenchConfig(precisions=("fp64",), out=tmp_path))
    with pytest.raises(InputError, match="persons"):
        run_benchmark(BenchConfig(persons=(0,), out=tmp_path))
    with pytest.raises(InputError, match="not found"):
        run_benchmark(BenchConfig(video=Path(tmp_path / "nope"), out=tmp_path, backends=("torch",),
                                  precisions=("fp32",), persons=(1,), modes=("exact",)))


# Issue 12 §2.9: a plain `dcpose-trt bench` must not rewrite the committed benchmarks/results/README.md.


def test_default_out_is_outside_the_committed_results():
    import subprocess

    from benchmarks import config, machine

    # Relative: under the working directory (issue 20: not the checkout's outputs/ whatever the cwd); run from
    # the checkout, git-ignored.
    out = machine.default_out("tiny-128x96", machine.machine_info())
    assert not out.is_absolute() and out.parts[:2] == ("outputs", "bench")
    out = config.REPO / out
    assert config.RESULTS.resolve() not in out.resolve().parents
    git = subprocess.run(["git", "-C", str(config.REPO), "check-ignore", "-q", str(out / "results.json")],
                         check=False)
    if git.returncode == 128:
        pytest.skip("not a git checkout")
    assert git.returncode == 0, f"{out} is not git-ignored"


def test_index_changes_only_on_request(tmp_path, monkeypatch):
    from benchmarks import config

    results = tmp_path / "results"
    monkeypatch.setattr(config, "RESULTS", results)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "000000.jpg"), np.zeros((120, 160, 3), np.uint8))
    base = dict(preset="tiny-128x96", backends=("torch",), precisions=("fp32",), persons=(1,), modes=("exact",),
                iters=1, warmup=0, video=frames, progress=False)
    run_benchmark(BenchConfig(**base, out=results / "run-a"))
    assert (results / "run-a" / "results.json").is_file() and not (results / "README.md").exists()
    run_benchmark(BenchConfig(**base, out=results / "run-b", update_index=True))
    assert "run-b" in (results / "README.md").read_text()
    with pytest.raises(InputError, match="--update-index"):
        BenchConfig(**base, out=tmp_path / "elsewhere", update_index=True).validate()


def test_results_index_skips_results_of_other_benchmarks(tmp_path):
    # `bench scale` also writes a results.json (another schema) under benchmarks/results/: not a latency run.
    (tmp_path / "scale_cpu").mkdir()
    (tmp_path / "scale_cpu" / "results.json").write_text('{"videos": 16, "configs": []}')
    text = update_results_index(tmp_path).read_text()
    assert "scale_cpu" not in text and "## All runs" in text
