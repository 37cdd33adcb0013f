"""`dcpose-trt predict` over a PoseTrack-layout dataset, then `dcpose-trt eval` on its output."""

from __future__ import annotations

import json

import pytest

from dcpose_trt.cli import main
from dcpose_trt.data.synth import SynthConfig, generate
from dcpose_trt.model import save_checkpoint


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    generate(SynthConfig(out=root, videos=1, frames=5, seed=7, split_ratio=0.0, workers=1))
    return root


@pytest.mark.parametrize("extra", [[], ["--mode", "cached"], ["--causal"]], ids=["exact", "cached", "causal"])
def test_predict_then_eval(dataset, tmp_path, tiny_model_perturbed, extra, capsys):
    ckpt = tmp_path / "m.pth"
    save_checkpoint(tiny_model_perturbed, ckpt, extra={"preset": "tiny-128x96"})
    pred = tmp_path / "pred"
    assert main(["predict", "--model", str(ckpt), "--data", str(dataset), "--split", "val", "--boxes", "detections",
                 "--backend", "torch", "--out", str(pred), *extra]) == 0
    out = capsys.readouterr().out
    calls = "1.00" if "cached" in extra else "3.00"
    assert f"({calls} backbone calls per person-frame)" in out
    files = sorted(pred.glob("*.json"))
    assert len(files) == 1
    doc = json.loads(files[0].read_text())
    assert len(doc["annolist"]) == 5  # every frame has an entry
    report = tmp_path / "ap.json"
    assert main(["eval", "--gt", str(dataset / "annotations" / "val"), "--pred", str(pred), "--json", str(report)]) == 0
    ap = json.loads(report.read_text())
    assert set(ap) >= {"Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean"}
    assert 0.0 <= ap["Mean"] <= 100.0
