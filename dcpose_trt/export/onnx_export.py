"""PyTorch DCPose → ONNX in three deformable-conv forms, whole or split into backbone and head.

One function, :func:`export_onnx`, driven by a frozen :class:`ExportConfig`. Steps per graph:

1. ``torch.onnx.export(dynamo=True)`` with a dynamic person batch (named dim ``persons``). The DCN
   form decides how ``torchvision::deform_conv2d`` is written (:mod:`dcpose_trt.export.deform_ops`):
   ``deformconv`` → ONNX ``DeformConv``; ``plugin`` → the ``dcpose_trt`` custom node; ``gridsample`` →
   the model runs :func:`~dcpose_trt.model.deform_conv2d_gridsample` so only standard ops are traced.
2. Cleanup with onnxslim (constant folding, dead nodes, Identity chains) after the exporter's own
   onnxscript optimizer.
3. Readable names: node ``<module path>/<OpType>`` from the exporter's scope metadata (which the node
   metadata then drops: it holds local stack traces), named inputs/outputs with shape docs.
4. ``metadata_props`` (``dcpose_trt.*``) that the engine builder and the runtime read.
5. A check: ONNX Runtime vs PyTorch on a random batch (``deformconv``/``gridsample``); the ``plugin``
   form is checked structurally (ORT cannot run it).
6. Atomic write (temporary file + rename), so an error or Ctrl-C never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dcpose_trt import __version__
from dcpose_trt._atomic import atomic_write_bytes
from dcpose_trt._deps import require
from dcpose_trt.contract import (  # noqa: F401 - META_* re-exported for the precision step
    DCN_OP_TYPES,
    META_DEFORM,
    META_HEATMAP_SIZE,
    META_INPUT_SIZE,
    META_MEAN,
    META_PART,
    META_PRECISION,
    META_PRESET,
    META_STD,
    META_VERSION,
)
from dcpose_trt.errors import ExportError, InputError
from dcpose_trt.export.deform_ops import DEFORM_FORMS, plugin_identity, translation_table
from dcpose_trt.model import load_model, use_deform_conv
from dcpose_trt.model.dcpose import DCPose
from dcpose_trt.model.deform import deform_conv2d_gridsample

log = logging.getLogger(__name__)

# metadata_props keys (read by the engine builder and dcpose_trt.runtime.backends.ort_backend).

PARTS = ("full", "backbone", "head")


@dataclass(frozen=True)
class ExportConfig:
    """How to export.

    Attributes:
        deform: DCN form, one of ``plugin``, ``deformconv``, ``gridsample``. Defaults to ``deformconv``.
        split: write ``backbone.onnx`` + ``head.onnx`` into the output folder instead of one file.
        opset: ONNX opset; >= 19 (``DeformConv``), >= 16 for ``gridsample``. Defaults to 19.
        batch_dim: name of the dynamic person-batch dimension. Defaults to ``"persons"``.
        cleanup: run onnxslim after export. Defaults to True.
        check: compare ONNX Runtime with PyTorch after export. Defaults to True.
        check_batch: persons in the check batch (differs from the trace batch of 2 on purpose, so the
            dynamic dimension is exercised). Defaults to 3.
        check_atol, check_rtol: the check fails when ``max|ort - torch| > atol + rtol * max|torch|``.
    """

    deform: str = "deformconv"
    split: bool = False
    opset: int = 19
    batch_dim: str = "persons"
    cleanup: bool = True
    check: bool = True
    check_batch: int = 3
    check_atol: float = 1e-4
    check_rtol: float = 1e-4

    def __post_init__(self) -> None:
        if self.deform not in DEFORM_FORMS:
            raise InputError(f"unknown --deform {self.deform!r}; choose one of: {', '.join(DEFORM_FORMS)}")
        need = 16 if self.deform == "gridsample" else 19
        if self.opset < need:
            what = "GridSample" if self.deform == "gridsample" else "DeformConv"
            raise InputError(f"--deform {self.deform} needs opset >= {need} ({what}); got {self.opset}")
        if self.check_batch < 1:
            raise InputError(f"check_batch must be >= 1, got {self.check_batch}")


@dataclass
class CheckResult:
    """Outcome of the post-export check of one graph (``max_abs_diff`` is None when not run in ORT)."""

    part: str
    max_abs_diff: float | None
    max_abs_ref: float | None
    note: str = ""


# ----------------------------------------------------------------------------------------------------
# Wrappers: one nn.Module per exported graph, so input names come from forward's parameters
# ----------------------------------------------------------------------------------------------------


class _Backbone(nn.Module):
    def __init__(self, model: DCPose):
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        return self.model.backbone(image)


class _Head(nn.Module):
    def __init__(self, model: DCPose):
        super().__init__()
        self.model = model

    def forward(self, cur: Tensor, prev: Tensor, next: Tensor, margin: Tensor) -> Tensor:  # noqa: A002
        return self.model.head(cur, prev, next, margin)


def _part_spec(model: DCPose, part: str, batch: int) -> tuple[nn.Module, tuple[Tensor, ...], list[str], str]:
    """(module, example inputs, input names, scope prefix to strip) for one graph."""
    h, w = model.preset.image_size
    hh, hw = model.preset.heatmap_size
    g = torch.Generator().manual_seed(0)
    margin = torch.ones(batch, 2)
    if part == "full":
        return model, (torch.randn(batch, 9, h, w, generator=g), margin), ["frames", "margin"], ""
    if part == "backbone":
        return _Backbone(model).eval(), (torch.randn(batch, 3, h, w, generator=g),), ["image"], "model."
    hm = [torch.randn(batch, 17, hh, hw, generator=g) * 0.1 for _ in range(3)]
    return _Head(model).eval(), (*hm, margin), ["cur", "prev", "next", "margin"], "model."


_INPUT_DOCS = {
    "frames": "float32[persons, 9, H, W]: crops of frames [current, previous, next], RGB, ImageNet-normalised",
    "margin": "float32[persons, 2]: frame distance [previous, next] ([1, 1] for adjacent frames)",
    "image": "float32[persons, 3, H, W]: one RGB ImageNet-normalised crop",
    "cur": "float32[persons, 17, h, w]: backbone heatmaps of the current frame",
    "prev": "float32[persons, 17, h, w]: backbone heatmaps of the previous frame",
    "next": "float32[persons, 17, h, w]: backbone heatmaps of the next frame",
    "heatmaps": "float32[persons, 17, h, w]: joint heatmaps (h, w = H/4, W/4)",
}


# ----------------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _stage(what: str) -> Iterator[None]:
    """Log the start and the duration of a long step."""
    log.info("%s ...", what)
    t0 = time.perf_counter()
    yield
    log.info("%s done in %.1f s", what, time.perf_counter() - t0)


@contextlib.contextmanager
def _exporting(model: DCPose, deform: str) -> Iterator[None]:
    """Put the model in the DCN form being exported (gridsample swaps the function; others trace torchvision)."""
    if deform == "gridsample":
        with use_deform_conv(model, deform_conv2d_gridsample):
            yield
    else:
        yield


def _torch_export(model: DCPose, part: str, cfg: ExportConfig) -> Any:
    """Run the dynamo exporter for one graph → ``onnx.ModelProto`` (not yet cleaned)."""
    module, args, names, _ = _part_spec(model, part, batch=2)
    batch = torch.export.Dim(cfg.batch_dim, min=1)
    dynamic = {n: {0: batch} for n in names}
    # The exporter prints its progress to stdout; route it to our log instead of the user's terminal.
    sink = io.StringIO()
    try:
        with _exporting(model, cfg.deform), warnings.catch_warnings(), contextlib.redirect_stdout(sink):
            # One dim name shared by all inputs triggers a harmless "axis name will not be used" warning.
            warnings.filterwarnings("ignore", message=".*axis name.*")
            prog = torch.onnx.export(
                module, args, dynamo=True, opset_version=cfg.opset, input_names=names,
                output_names=["heatmaps"], dynamic_shapes=dynamic,
                custom_translation_table=translation_table(cfg.deform), optimize=True, verbose=False,
                external_data=False,
            )
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types; keep the first line
        log.debug("exporter output:\n%s", sink.getvalue())
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"torch.onnx.export failed for the {part} graph ({cfg.deform}): {first[:300]}") from exc
    log.debug("exporter output:\n%s", sink.getvalue())
    return prog.model_proto


def _scope_of(node: Any, strip: str) -> str:
    """Dotted module path of an exported node from the exporter's ``pkg.torch.onnx.name_scopes``."""
    import ast

    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(p.value)
            except (ValueError, SyntaxError):
                return ""
            # The last entry is the fx node; the one before it the innermost module's full path.
            mods = [s for s in scopes[:-1] if s and not s.startswith("_empty_nn_module_stack")]
            path = mods[-1] if mods else ""
            return path[len(strip):] if strip and path.startswith(strip) else path
    return ""


def _rename_nodes(proto: Any, strip: str) -> None:
    """Name nodes ``<module path>/<OpType>[_k]`` and drop the per-node metadata (local stack traces)."""
    seen: Counter[str] = Counter()
    inits = {t.name for t in proto.graph.initializer}
    for node in proto.graph.node:
        scope = _scope_of(node, strip)
        # A Conv fused with its BatchNorm inherits the BN's scope; its weight keeps the conv's name.
        if (node.op_type == "Conv" or node.op_type in DCN_OP_TYPES) and len(node.input) > 1 and node.input[1] in inits \
                and node.input[1].endswith(".weight"):
            scope = node.input[1][: -len(".weight")]
            scope = scope[len(strip):] if strip and scope.startswith(strip) else scope
        base = f"{scope}/{node.op_type}" if scope else node.op_type
        k = seen[base]
        seen[base] += 1
        node.name = base if k == 0 else f"{base}_{k}"
        del node.metadata_props[:]


def _cleanup(proto: Any) -> Any:
    """onnxslim: constant folding, dead-node and Identity elimination, shape inference."""
    onnxslim = require("onnxslim", "onnx", "the ONNX cleanup pass")
    try:
        slim = onnxslim.slim(proto)
    except Exception as exc:  # noqa: BLE001 - keep the exported graph when the optimizer trips
        log.warning("onnxslim failed (%s); keeping the exporter's graph", exc)
        return proto
    if slim is None:
        return proto
    # onnxslim rewrites the graph; keep its result only if every I/O survived under its name.
    if [i.name for i in slim.graph.input] != [i.name for i in proto.graph.input] or \
            [o.name for o in slim.graph.output] != [o.name for o in proto.graph.output]:
        log.warning("onnxslim changed the graph's inputs/outputs; keeping the exporter's graph")
        return proto
    return slim


def _annotate(proto: Any, model: DCPose, part: str, cfg: ExportConfig) -> None:
    """Graph name, I/O docs and the ``dcpose_trt.*`` metadata_props."""
    p = model.preset
    proto.graph.name = f"dcpose_{p.name}_{part}"
    proto.doc_string = (f"DCPose {p.name} ({part}), deformable conv form '{cfg.deform}', "
                        f"exported by dcpose-trt {__version__}")
    for v in [*proto.graph.input, *proto.graph.output]:
        v.doc_string = _INPUT_DOCS.get(v.name, "")
    h, w = p.image_size
    hh, hw = p.heatmap_size
    meta = {
        META_PRESET: p.name,
        META_DEFORM: cfg.deform,
        META_PART: part,
        META_VERSION: __version__,
        META_INPUT_SIZE: f"{h}x{w}",
        META_HEATMAP_SIZE: f"{hh}x{hw}",
        META_PRECISION: "fp32",
        META_MEAN: ",".join(f"{v:g}" for v in p.mean),
        META_STD: ",".join(f"{v:g}" for v in p.std),
    }
    if cfg.deform == "plugin":
        op_type, domain, namespace = plugin_identity()
        meta["dcpose_trt.plugin"] = f"{namespace}::{op_type} (domain {domain})"
    set_metadata(proto, meta)
    proto.producer_name = "dcpose-trt"
    proto.producer_version = __version__


def set_metadata(proto: Any, values: dict[str, str]) -> None:
    """Set (replace) ``metadata_props`` entries of an ``onnx.ModelProto``."""
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in values]
    del proto.metadata_props[:]
    for k, v in [*keep, *values.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, str(v)


def get_metadata(proto: Any) -> dict[str, str]:
    """``metadata_props`` of an ``onnx.ModelProto`` as a dict."""
    return {p.key: p.value for p in proto.metadata_props}


def dcn_nodes(proto: Any) -> list[Any]:
    """The deformable-conv nodes: standard ``DeformConv`` or our plugin node."""
    return [n for n in proto.graph.node if n.op_type in DCN_OP_TYPES]


def graph_diff_except_dcn(a: Any, b: Any) -> list[str]:
    """Differences between two graphs node for node, ignoring the domain/attributes of DCN nodes.

    Compares op type, inputs, outputs and attributes of every node in order, the initializers'
    names and the graph I/O. Returns human-readable differences (empty: same graph up to DCN nodes).
    """
    out = []
    if len(a.graph.node) != len(b.graph.node):
        out.append(f"node count {len(a.graph.node)} != {len(b.graph.node)}")
    for i, (x, y) in enumerate(zip(a.graph.node, b.graph.node, strict=False)):
        both_dcn = x.op_type in DCN_OP_TYPES and y.op_type in DCN_OP_TYPES
        if (x.op_type != y.op_type and not both_dcn) or list(x.input) != list(y.input) \
                or list(x.output) != list(y.output):
            out.append(f"node {i}: {x.op_type}{list(x.input)} vs {y.op_type}{list(y.input)}")
        elif not both_dcn and (x.domain != y.domain or x.attribute != y.attribute):
            out.append(f"node {i} ({x.op_type}): attributes or domain differ")
    if sorted(t.name for t in a.graph.initializer) != sorted(t.name for t in b.graph.initializer):
        out.append("initializer names differ")
    out += [f"graph {kind}s differ" for kind in ("input", "output")
            if [v.name for v in getattr(a.graph, kind)] != [v.name for v in getattr(b.graph, kind)]]
    return out


def _check(proto: Any, model: DCPose, part: str, cfg: ExportConfig) -> CheckResult:
    """ONNX Runtime vs PyTorch on a random batch of ``cfg.check_batch`` persons (or a structural check)."""
    if cfg.deform == "plugin":
        op_type, domain, _ = plugin_identity()
        nodes = dcn_nodes(proto)
        if part != "backbone" and (len(nodes) != len(model.dilations)
                                   or any(n.domain != domain or n.op_type != op_type for n in nodes)):
            raise ExportError(f"expected {len(model.dilations)} {domain}::{op_type} nodes, found "
                              f"{[f'{n.domain}::{n.op_type}' for n in nodes]}")
        return CheckResult(part, None, None, "plugin node (ONNX Runtime cannot run it); checked structurally")
    ort = require("onnxruntime", "onnx", "the post-export check")
    module, _, names, _ = _part_spec(model, part, batch=cfg.check_batch)
    _, args, _, _ = _part_spec(model, part, batch=cfg.check_batch)
    margin_idx = names.index("margin") if "margin" in names else None
    if margin_idx is not None:  # uneven frame distances exercise the margin weighting
        args = list(args)
        args[margin_idx] = torch.randint(1, 4, (cfg.check_batch, 2)).float()
    with torch.inference_mode(), _exporting(model, "deformconv"):  # torchvision's op is the reference
        ref = module(*args).float().numpy()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    got = sess.run(["heatmaps"], {n: a.numpy() for n, a in zip(names, args, strict=True)})[0]
    if got.shape != ref.shape:
        raise ExportError(f"{part}: ONNX Runtime output shape {got.shape} != torch {ref.shape}")
    diff = float(np.abs(got - ref).max())
    scale = float(np.abs(ref).max())
    if not np.isfinite(diff) or diff > cfg.check_atol + cfg.check_rtol * scale:
        raise ExportError(f"{part}: ONNX Runtime differs from PyTorch by {diff:.3g} (max |heatmap| {scale:.3g}); "
                          f"tolerance {cfg.check_atol:g} + {cfg.check_rtol:g}·max")
    return CheckResult(part, diff, scale)


def atomic_save_onnx(proto: Any, path: str | os.PathLike) -> Path:
    """Serialise an ``onnx.ModelProto`` to a temporary file next to ``path``, then rename it into place."""
    return atomic_write_bytes(path, proto.SerializeToString())


def export_graph(model: DCPose, part: str, cfg: ExportConfig) -> tuple[Any, CheckResult | None]:
    """Export one graph (``full``, ``backbone`` or ``head``) → (``onnx.ModelProto``, check result).

    Nothing is written; see :func:`export_onnx`.
    """
    onnx = require("onnx", "onnx", "ONNX export")
    require("onnxscript", "onnx", "ONNX export")
    if part not in PARTS:
        raise InputError(f"unknown part {part!r}; choose one of: {', '.join(PARTS)}")
    model.eval()
    with _stage(f"exporting {model.preset.name} {part} ({cfg.deform}, opset {cfg.opset})"):
        proto = _torch_export(model, part, cfg)
    _rename_nodes(proto, _part_spec(model, part, 1)[3])
    if cfg.cleanup:
        with _stage("cleaning up with onnxslim"):
            proto = _cleanup(proto)
    _annotate(proto, model, part, cfg)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported {part} graph is not valid ONNX: {str(exc).splitlines()[0]}") from exc
    result = None
    if cfg.check:
        # The plugin form cannot run in ONNX Runtime: say what is checked instead of timing a comparison
        # that does not happen.
        what = "structure (plugin nodes; ONNX Runtime cannot run them)" if cfg.deform == "plugin" else \
            "against PyTorch"
        with _stage(f"checking {part} {what}"):
            result = _check(proto, model, part, cfg)
        if result.max_abs_diff is not None:
            log.info("%s: max |onnxruntime - torch| = %.3g (max |heatmap| %.3g)", part, result.max_abs_diff,
                     result.max_abs_ref)
    return proto, result


def export_onnx(model: DCPose | str | os.PathLike | None, out: str | os.PathLike,
                cfg: ExportConfig = ExportConfig()) -> Path:
    """Export DCPose to ONNX.

    Args:
        model: a :class:`DCPose`, a checkpoint path, or None for the bundled model (see
            :func:`dcpose_trt.model.load_model`).
        out: the ``.onnx`` file; with ``cfg.split`` a folder that receives ``backbone.onnx`` and ``head.onnx``.
        cfg: the export settings.

    Graphs: full ``frames float32[persons, 9, H, W]``, ``margin float32[persons, 2]`` → ``heatmaps
    float32[persons, 17, H/4, W/4]``; backbone ``image[persons, 3, H, W]`` → ``heatmaps``; head ``cur``,
    ``prev``, ``next`` ``[persons, 17, h, w]`` + ``margin`` → ``heatmaps``.

    Returns:
        The written file, or the folder for a split export.

    Raises:
        InputError: bad settings or paths. ExportError: the exporter or the check failed.
    """
    if not isinstance(model, nn.Module):
        model = load_model(model)
    out = Path(out)
    if cfg.split:
        if out.suffix == ".onnx":
            raise InputError(f"with --split, --out is a folder for backbone.onnx and head.onnx, not {out}")
        if out.exists() and not out.is_dir():
            raise InputError(f"{out} exists and is not a folder")
        targets = [("backbone", out / "backbone.onnx"), ("head", out / "head.onnx")]
    else:
        if out.is_dir():
            raise InputError(f"{out} is a folder; give a .onnx file (or use --split)")
        targets = [("full", out)]
    # Export and check every graph before writing any, so a failure leaves no partial pair.
    protos = [(path, export_graph(model, part, cfg)[0]) for part, path in targets]
    for path, proto in protos:
        atomic_save_onnx(proto, path)
        log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return out


def export_summary(paths: Sequence[Path]) -> str:
    """One line per file: op counts of interest, for the CLI's final message."""
    onnx = require("onnx", "onnx", "reading ONNX files")
    lines = []
    for p in paths:
        m = onnx.load(str(p), load_external_data=False)
        ops = Counter(n.op_type for n in m.graph.node)
        meta = get_metadata(m)
        dcn = sum(ops.get(t, 0) for t in DCN_OP_TYPES)
        lines.append(f"{p}: {len(m.graph.node)} nodes, {ops.get('Conv', 0)} Conv, {dcn} DeformConv, "
                     f"{ops.get('GridSample', 0)} GridSample; preset {meta.get(META_PRESET)}, "
                     f"part {meta.get(META_PART)}, deform {meta.get(META_DEFORM)}")
    return "\n".join(lines)
