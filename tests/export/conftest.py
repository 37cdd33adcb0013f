"""Shared exports for the export tests: each DCN form is exported once per session (exports take ~25 s)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

PRESET = "tiny-128x96"
SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "posetrack18_sample"


def lively(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give the head's random init realistic magnitudes.

    The official head init (conv std 0.001) makes heatmaps ~1e-11 and DCN offsets ~0, which would make
    any comparison pass. He-init convs, varied BN statistics and offset convs scaled to a few pixels of
    displacement exercise the bilinear sampling for real.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in model.named_modules():
            if name.startswith("rough_pose_estimation_net"):
                continue
            if isinstance(m, nn.Conv2d):
                m.weight.normal_(0.0, (1.0 / m.weight[0].numel()) ** 0.5, generator=g)
            elif isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)
        for seq in model.offsets_list:
            seq[0].weight.mul_(4.0)  # offsets of a few pixels
        for dcn in model.modulated_deform_conv_list:
            dcn.deform_conv.weight.normal_(0.0, 0.3, generator=g)
            dcn.deform_conv.bias.normal_(0.0, 0.1, generator=g)
    return model.eval()


@pytest.fixture(scope="session")
def tiny_model_lively():
    from dcpose_trt.model import build_dcpose

    return lively(build_dcpose(PRESET))


@pytest.fixture(scope="session")
def exports(tmp_path_factory, tiny_model_lively):
    """Lazily exported files: ``exports("deformconv")``, ``exports("gridsample")``, ``exports("split")``..."""
    from dcpose_trt.export import ExportConfig, export_onnx

    root = tmp_path_factory.mktemp("onnx")
    cache: dict[str, Path] = {}

    def get(form: str) -> Path:
        if form not in cache:
            if form == "split":
                cfg = ExportConfig(deform="deformconv", split=True, check=False)
                cache[form] = export_onnx(tiny_model_lively, root / "split", cfg)
            else:
                # The tests compare with torch themselves; keep the exporter's own check on one form.
                cfg = ExportConfig(deform=form, check=form == "deformconv")
                cache[form] = export_onnx(tiny_model_lively, root / f"{form}.onnx", cfg)
        return cache[form]

    return get


@pytest.fixture(scope="session")
def sample_clip() -> Path:
    clip = SAMPLE / "videos" / "000001_mpiinew_test"
    if not (clip / "boxes.json").is_file():
        pytest.skip(f"sample clip not found at {clip}")
    return clip
