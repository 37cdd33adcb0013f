"""User-facing messages read right (issue 12, §2.16): whole sentences, about the user's actual mistake."""

from __future__ import annotations

import logging

import pytest
import torch

from dcpose_trt.cli import main
from dcpose_trt.model.presets import BUNDLED_MODEL


def _one_error(capsys, verb: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"dcpose-trt {verb}: error: "), err
    return err


def test_truncated_checkpoint_says_so_in_a_whole_sentence(tmp_path, capsys):
    src = tmp_path / "cut.pth"
    src.write_bytes(BUNDLED_MODEL.read_bytes()[:100_000])
    assert main(["export", "--model", str(src), "--out", str(tmp_path / "m.onnx")]) == 2
    err = _one_error(capsys, "export")
    assert "truncated or damaged" in err and "miniz" not in err and err.endswith("again")


def test_non_checkpoint_file_does_not_talk_about_weights_only(tmp_path, capsys):
    src = tmp_path / "notes.pth"
    src.write_text("not a model\n")
    assert main(["export", "--model", str(src), "--out", str(tmp_path / "m.onnx")]) == 2
    err = _one_error(capsys, "export")
    assert "is not a PyTorch checkpoint" in err and "weights_only" not in err


def test_checkpoint_with_objects_names_the_object(tmp_path, capsys):
    import argparse

    src = tmp_path / "obj.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "args": argparse.Namespace(lr=1.0)}, src)
    assert main(["export", "--model", str(src), "--out", str(tmp_path / "m.onnx")]) == 2
    err = _one_error(capsys, "export")
    assert "argparse.Namespace" in err and "weights_only" not in err


def test_unknown_preset_before_any_random_init_warning(tmp_path, capsys, caplog):
    with caplog.at_level(logging.WARNING):
        assert main(["export", "--preset", "w99-1x1", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "unknown preset 'w99-1x1'" in _one_error(capsys, "export")
    assert not [r for r in caplog.records if "random initialisation" in r.getMessage()]


def test_fidelity_max_frames_zero(tmp_path, capsys):
    rc = main(["fidelity", "--reference", str(BUNDLED_MODEL), "--candidate", str(BUNDLED_MODEL), "--data",
               str(tmp_path), "--max-frames", "0"])
    assert rc == 2 and "--max-frames must be >= 1" in _one_error(capsys, "fidelity")


def test_run_max_frames_zero(tmp_path, capsys):
    rc = main(["run", "--video", str(tmp_path), "--boxes", str(tmp_path / "b.json"), "--max-frames", "0"])
    err = _one_error(capsys, "run")
    assert rc == 2 and "--max-frames must be >= 1" in err and "no frames could be read" not in err


def test_doctor_does_not_ask_rtx_builds_for_compute_capability():
    from dcpose_trt.doctor import diagnose

    rtx = next(c for c in diagnose().capabilities if c.backend == "tensorrt-rtx")
    if not rtx.build:
        pytest.skip("TensorRT-RTX is not installed")
    assert "pass --compute-capability" not in rtx.note
    if rtx.note:
        assert "optional" in rtx.note


def test_plugin_export_does_not_log_a_parity_check(caplog):
    pytest.importorskip("onnxscript")
    from dcpose_trt.export import ExportConfig
    from dcpose_trt.export.onnx_export import export_graph
    from dcpose_trt.model import build_dcpose

    with caplog.at_level(logging.INFO, logger="dcpose_trt.export"):
        _, result = export_graph(build_dcpose("tiny-128x96").eval(), "head", ExportConfig(deform="plugin"))
    assert result is not None and result.max_abs_diff is None
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "against PyTorch" not in text and "structure" in text
