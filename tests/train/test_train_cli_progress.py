"""``dcpose-trt train`` draws no progress bars when stderr is not a terminal (issue 12, §2.12)."""

from __future__ import annotations

from dcpose_trt.cli import main


def test_no_progress_bars_in_a_log(tmp_path, capfd):
    from dcpose_trt.data.synth import SynthConfig, generate

    data = tmp_path / "data"
    generate(SynthConfig(out=data, videos=1, frames=4, seed=3, split_ratio=1.0, workers=1))
    capfd.readouterr()
    rc = main(["train", "--data", str(data), "--preset", "tiny-128x96", "--out", str(tmp_path / "run"),
               "--epochs", "1", "--batch-size", "2", "--max-steps", "2", "--workers", "0"])
    err = capfd.readouterr().err
    assert rc == 0
    assert "step/s" not in err and "s/step" not in err and "%|" not in err
