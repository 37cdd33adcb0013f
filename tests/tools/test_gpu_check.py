"""``make gpu-check`` without a GPU: every step is skipped with its reason, nothing is written, exit 0."""

from __future__ import annotations

import pytest

from benchmarks import gpu_check
from dcpose_trt.cli import main


def test_skips_cleanly_without_a_gpu(capsys, tmp_path):
    machine, why = gpu_check.gpu_or_reason()
    if machine is not None:
        pytest.skip(f"this machine has a GPU ({machine['gpu']}): run make gpu-check instead")
    assert main(["bench", "gpu-check", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    for step in gpu_check.STEPS:
        assert f"{step}" in out and "skipped" in out
    assert why in out and not (tmp_path / "r").exists()


def test_unknown_step_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "gpu-check", "--steps", "nope"])
    assert exc.value.code == 2 and "unknown step" in capsys.readouterr().err
