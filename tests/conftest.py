"""Shared fixtures; the ``gpu`` mark becomes a visible skip on machines without CUDA."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

# Triton reads TRITON_INTERPRET when a @triton.jit function is *defined*: set it here, before any test
# module (or the package code it imports) defines a kernel, so that every kernel of the run, and every
# @triton.jit helper it calls, runs in the CPU interpreter on machines without a GPU.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# `--backend auto` for a checkpoint times every CPU backend once per machine and model
# (dcpose_trt.runtime.backends.autoselect). Tests that are not about that choice run checkpoints with torch, as auto
# did before it measured; a single candidate is taken without timing. tests/runtime/test_autoselect.py sets
# its own candidates. Set here (not in a fixture) so that CLI subprocesses inherit it too.
os.environ.setdefault("DCPOSE_TRT_AUTO_CANDIDATES", "torch")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DCPOSE_TRT_SHARED_DATA", REPO.parent / "shared" / "data"))


#: What `make test-fast` (pytest -m "not slow and not heavy") leaves out: tests that take long on a 2-core CPU
#: (exports, INT8 calibration, plan builds, OpenVINO conversion, Ray, whole-pipeline runs, subprocess
#: sweeps). One list instead of a decorator in each file: a module path (relative to tests/) marks every test
#: in it, a node id one test. Chosen from `pytest --durations` on a shared, loaded 2-core machine, so
#: generously; `make test` (CI) still runs them all. tests/test_markers.py fails on an entry that no longer
#: names a test file, so the list cannot rot silently.
HEAVY: tuple[str, ...] = (
    "test_readme_recipes.py",
    "test_examples.py",
    "test_demo.py",
    "test_reliability.py",
    "test_missing_deps.py",
    "test_messages.py::test_plugin_export_does_not_log_a_parity_check",
    "test_new_user.py::test_bench_writes_under_the_cwd_and_never_replaces_a_run",
    "bench/test_runner.py",
    "bench/test_cpu_rows.py",
    "bench/test_report_calib.py",
    "engine/test_build.py",
    "engine/test_plan_plugins.py",
    "engine/test_plan_check.py",  # its fixture builds a TensorRT-RTX plan (cached on disk after the first run)
    "engine/test_gpu_first_run.py::test_check_plan_prints_unverified_notes",
    "eval/test_predict.py",
    "export/test_onnx_export.py",
    "export/test_fp16_casts.py",
    "model/test_model.py::test_forward_shapes",
    "model/test_model.py::test_forward_equals_backbone_plus_head",
    "model/test_model.py::test_frame_order_and_margin_matter",
    "export/test_precision.py",
    "export/test_runtime_parity.py",
    "export/test_backend_cli.py",
    "plugins/test_deform_kernel.py",
    "plugins/test_deform_aot.py",
    "plugins/test_deform_export.py",
    "plugins/test_aot_launch_abi.py",
    "runtime/test_autoselect.py",
    "runtime/test_detector_builtin.py",
    "runtime/test_detector_yolo.py::test_detector_cost_shows_apart_from_pose",
    "runtime/test_model_cache.py",
    "runtime/test_ov_backend.py",
    "runtime/test_run_cli.py",
    "runtime/test_tracking_cached.py",
    "runtime/test_estimator.py",
    "scale/test_distributed.py",
    "serve/test_serve.py",  # starts a real tritonserver
    "serve/test_serve_openvino.py::test_openvino_repository_streams_like_run",
    "serve/test_bench_serve.py::test_bench_serve_writes_a_row_per_stream_count_and_the_baseline",
    "bench/test_head_profile.py::test_profiles_every_head_variant",
    "engine/test_openvino_int8.py",
    "engine/test_quantize_openvino.py",
    "tools/test_trt_api.py",
    "train/test_train.py",
    "train/test_train_cli_progress.py",
)
TESTS = Path(__file__).resolve().parent


def _heavy(item: pytest.Item) -> bool:
    path = Path(str(item.fspath)).resolve()
    if not path.is_relative_to(TESTS):
        return False
    rel = path.relative_to(TESTS).as_posix()
    node = f"{rel}::{item.name}"
    base = f"{rel}::{item.originalname}" if getattr(item, "originalname", None) else node
    return any(entry in (rel, node, base) for entry in HEAVY)


def pytest_collection_modifyitems(config, items):
    heavy = pytest.mark.heavy
    for item in items:
        if _heavy(item):
            item.add_marker(heavy)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _restore_rng():
    """Tests may seed freely without leaking RNG state into each other."""
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()
    yield
    torch.set_rng_state(torch_state)
    np.random.set_state(np_state)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_perturbed():
    """``tiny-128x96`` with weights moved away from the official near-zero init (heatmaps ~1e-11), so that
    outputs depend on every input and wiring mistakes show up. Shared: tests must not modify it."""
    from dcpose_trt.model import build_dcpose

    gen = torch.Generator().manual_seed(0)
    model = build_dcpose("tiny-128x96")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return model


@pytest.fixture(scope="session")
def write_mp4():
    """``write_mp4(frames, out, fps=10.0) -> out``: the images ``frames``, in order, as an mp4 (OpenCV's
    mp4v), for tests that need a plain video file made from real frames."""
    import cv2

    def write(frames: list[Path], out: Path, fps: float = 10.0) -> Path:
        h, w = cv2.imread(str(frames[0])).shape[:2]
        writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        assert writer.isOpened()
        for p in frames:
            writer.write(cv2.imread(str(p)))
        writer.release()
        return out

    return write
