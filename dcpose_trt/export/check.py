"""The post-export check: ONNX Runtime against PyTorch on a random batch, or a structural check of the
``plugin`` form (ONNX Runtime cannot run our plugin node)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dcpose_trt._deps import require
from dcpose_trt.errors import ExportError
from dcpose_trt.export.deform_ops import plugin_identity
from dcpose_trt.export.graphs import exporting, part_spec
from dcpose_trt.export.onnx_graph import dcn_nodes
from dcpose_trt.model.dcpose import DCPose


@dataclass
class CheckResult:
    """Outcome of the post-export check of one graph (``max_abs_diff`` is None when not run in ORT)."""

    part: str
    max_abs_diff: float | None
    max_abs_ref: float | None
    note: str = ""


def check_graph(proto: Any, model: DCPose, part: str, *, deform: str, batch: int, atol: float,
                rtol: float) -> CheckResult:
    """ONNX Runtime vs PyTorch on a random batch of ``batch`` persons (or a structural check of ``plugin``).

    Raises:
        ExportError: the outputs differ by more than ``atol + rtol * max|torch|`` (or have another shape),
            or the plugin form has the wrong DCN nodes.
    """
    if deform == "plugin":
        op_type, domain, _ = plugin_identity()
        nodes = dcn_nodes(proto)
        if part != "backbone" and (len(nodes) != len(model.dilations)
                                   or any(n.domain != domain or n.op_type != op_type for n in nodes)):
            raise ExportError(f"expected {len(model.dilations)} {domain}::{op_type} nodes, found "
                              f"{[f'{n.domain}::{n.op_type}' for n in nodes]}")
        return CheckResult(part, None, None, "plugin node (ONNX Runtime cannot run it); checked structurally")
    ort = require("onnxruntime", "onnx", "the post-export check")
    module, _, names, _ = part_spec(model, part, batch=batch)
    _, args, _, _ = part_spec(model, part, batch=batch)
    margin_idx = names.index("margin") if "margin" in names else None
    if margin_idx is not None:  # uneven frame distances exercise the margin weighting
        args = list(args)
        args[margin_idx] = torch.randint(1, 4, (batch, 2)).float()
    with torch.inference_mode(), exporting(model, "deformconv"):  # torchvision's op is the reference
        ref = module(*args).float().numpy()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    got = sess.run(["heatmaps"], {n: a.numpy() for n, a in zip(names, args, strict=True)})[0]
    if got.shape != ref.shape:
        raise ExportError(f"{part}: ONNX Runtime output shape {got.shape} != torch {ref.shape}")
    diff = float(np.abs(got - ref).max())
    scale = float(np.abs(ref).max())
    if not np.isfinite(diff) or diff > atol + rtol * scale:
        raise ExportError(f"{part}: ONNX Runtime differs from PyTorch by {diff:.3g} (max |heatmap| {scale:.3g}); "
                          f"tolerance {atol:g} + {rtol:g}·max")
    return CheckResult(part, diff, scale)
