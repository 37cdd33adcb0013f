"""Backends that run exported files get the bundled checkpoint exported on demand, cached, and reused;
``auto`` opens a TensorRT-RTX plan with TensorRT-RTX (issue 12 §2 items 1 and 3)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dcpose_trt.cli import main
from dcpose_trt.engine import model_cache
from dcpose_trt.errors import DcposeTrtError, InputError
from dcpose_trt.runtime import PoseEstimator
from dcpose_trt.runtime.backends.opener import open_backend

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("DCPOSE_TRT_CACHE", str(root))
    return root


@pytest.fixture
def export_calls(monkeypatch) -> list:
    """Records every real export the cache makes (a wrapper around the real exporter)."""
    calls: list = []
    real = model_cache._export

    def recording(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(model_cache, "_export", recording)
    return calls


def test_run_onnxruntime_without_model_exports_once_then_reuses(shared_data, cache, export_calls, tmp_path,
                                                                caplog, capsys):
    pytest.importorskip("onnxruntime")
    clip = shared_data / "posetrack18_sample" / "videos" / "000001_mpiinew_test"
    argv = ["run", "--video", str(clip), "--boxes", str(clip / "boxes.json"), "--backend", "onnxruntime"]
    assert main([*argv, "--json", str(tmp_path / "a.json")]) == 0
    assert len(export_calls) == 1
    assert "exporting dcpose_tiny.pth for onnxruntime" in capsys.readouterr().err
    entries = list((cache / "models").iterdir())
    assert len(entries) == 1 and not entries[0].name.startswith(".")  # no temporary left behind
    key = json.loads((entries[0] / "key.json").read_text())
    assert {"sha256", "form", "precision", "dcpose-trt", "torch", "onnx"} <= set(key)
    assert (key["form"], key["precision"]) == ("deformconv", "fp32")

    with caplog.at_level(logging.INFO, logger="dcpose_trt.engine.model_cache"):
        assert main([*argv, "--json", str(tmp_path / "b.json")]) == 0
    assert len(export_calls) == 1  # no second export
    assert any("reusing cached export" in r.message for r in caplog.records)
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert a["summary"]["backend"] == b["summary"]["backend"] == "onnxruntime"
    assert a["frames"] == b["frames"]


def test_cache_key_changes_with_the_checkpoint(tmp_path, cache):
    from dcpose_trt.model import build_dcpose, save_checkpoint

    step = model_cache.export_step("onnxruntime")
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        ckpt = tmp_path / f"m{seed}" / "tiny.pth"
        ckpt.parent.mkdir()
        save_checkpoint(build_dcpose("tiny-128x96"), ckpt, extra={"preset": "tiny-128x96"})
        paths.append(model_cache.entry_dir(ckpt, step, None)[0])
    assert paths[0] != paths[1] and paths[0].parent == cache / "models"
    # Same bytes, same key; another form, another key.
    other = model_cache.ExportStep("onnxruntime", "gridsample", "fp32", "model.onnx", step.make)
    assert model_cache.entry_dir(ckpt, step, None)[0] == paths[1]
    assert model_cache.entry_dir(ckpt, other, None)[0] != paths[1]
    # The cached mode's backbone + head pair is another entry.
    split = model_cache.export_step("onnxruntime", split=True)
    assert split is not None and split.artifact == "split"
    assert model_cache.entry_dir(ckpt, split, None)[0] not in paths


def test_plan_given_to_onnxruntime_gets_a_fitting_hint(tmp_path):
    plan = tmp_path / "x.plan"
    plan.write_bytes(b"\0" * 16)
    with pytest.raises(InputError) as err:
        open_backend(plan, "onnxruntime")
    assert "export --model" not in str(err.value) and "--backend tensorrt" in str(err.value)


def test_unwritable_cache_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x")
    monkeypatch.setenv("DCPOSE_TRT_CACHE", str(tmp_path / "f" / "cache"))
    with pytest.raises(InputError, match="DCPOSE_TRT_CACHE"):
        open_backend(None, "onnxruntime")


def test_rtx_plan_opens_with_auto(cache, export_calls, capsys):
    """An on-demand TensorRT-RTX plan (export + build on this CPU): ``auto`` and the example open it with
    TensorRT-RTX; without a GPU the reason shown is the missing GPU, not a wrong backend."""
    pytest.importorskip("tensorrt_rtx")
    gpu = torch.cuda.is_available()

    def refusal(open_it) -> str | None:
        """None when it opens (a GPU is present), else the one-line reason."""
        try:
            open_it().close()
        except DcposeTrtError as exc:
            return str(exc)
        return None

    def assert_opens_or_needs_gpu(reason: str | None) -> None:
        if gpu:
            assert reason is None, reason
        else:
            assert reason is not None and "no CUDA GPU" in reason and "open it with" not in reason, reason

    assert_opens_or_needs_gpu(refusal(lambda: open_backend(None, "tensorrt-rtx", progress=False)))
    assert len(export_calls) == 1
    plan = next((cache / "models").glob("*/model.plan"))
    assert json.loads(plan.with_name("model.plan.json").read_text())["backend"]["name"] == "tensorrt-rtx"
    assert_opens_or_needs_gpu(refusal(lambda: PoseEstimator(plan)))  # backend="auto"
    assert_opens_or_needs_gpu(refusal(lambda: PoseEstimator(plan, backend="tensorrt-rtx")))
    # The second on-demand request reuses the plan.
    assert_opens_or_needs_gpu(refusal(lambda: open_backend(None, "tensorrt-rtx", progress=False)))
    assert len(export_calls) == 1

    clip = REPO.parent / "shared" / "data" / "posetrack18_sample" / "videos" / "000001_mpiinew_test"
    if clip.is_dir():
        proc = subprocess.run([sys.executable, str(REPO / "examples" / "edge_app.py"), "--video", str(clip),
                               "--boxes", str(clip / "boxes.json"), "--model", str(plan)],
                              capture_output=True, text=True, timeout=600)
        if not gpu:
            assert proc.returncode == 2 and "no CUDA GPU" in proc.stderr, proc.stderr
        else:
            assert proc.returncode == 0, proc.stderr
