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
4. ``metadata_props`` (``dcpose_trt.*``): an :class:`~dcpose_trt.contract.OnnxModelInfo`, which every
   reader reads back with :func:`~dcpose_trt.contract.read_model_metadata`.
5. A check: ONNX Runtime vs PyTorch on a random batch (``deformconv``/``gridsample``); the ``plugin``
   form is checked structurally (ORT cannot run it).
6. Atomic write (temporary file + rename), so an error or Ctrl-C never leaves a half-written file.

Beside this module: :mod:`.graphs` (the traced modules and their example inputs), :mod:`.onnx_graph`
(node names, cleanup, metadata, atomic save: steps 2, 3, 4, 6), :mod:`.check` (step 5).
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

import torch
from torch import nn

from dcpose_trt import __version__
from dcpose_trt._deps import require
from dcpose_trt.contract import DCN_OP_TYPES, PARTS, OnnxModelInfo, read_model_metadata
from dcpose_trt.errors import ExportError, InputError
from dcpose_trt.export.check import CheckResult, check_graph
from dcpose_trt.export.deform_ops import DEFORM_FORMS, plugin_identity, translation_table
from dcpose_trt.export.graphs import INPUT_DOCS, exporting, part_spec
from dcpose_trt.export.onnx_graph import atomic_save_onnx, cleanup, rename_nodes, set_metadata
from dcpose_trt.model import load_model
from dcpose_trt.model.dcpose import DCPose

log = logging.getLogger(__name__)


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


@contextlib.contextmanager
def _stage(what: str) -> Iterator[None]:
    """Log the start and the duration of a long step."""
    log.info("%s ...", what)
    t0 = time.perf_counter()
    yield
    log.info("%s done in %.1f s", what, time.perf_counter() - t0)


def _torch_export(model: DCPose, part: str, cfg: ExportConfig) -> Any:
    """Run the dynamo exporter for one graph → ``onnx.ModelProto`` (not yet cleaned)."""
    from dcpose_trt.export.torch_compat import require_export_options

    require_export_options()  # torch < 2.6 (JetPack 6): one line saying where to export
    module, args, names, _ = part_spec(model, part, batch=2)
    batch = torch.export.Dim(cfg.batch_dim, min=1)
    dynamic = {n: {0: batch} for n in names}
    # The exporter prints its progress to stdout; route it to our log instead of the user's terminal.
    sink = io.StringIO()
    try:
        with exporting(model, cfg.deform), warnings.catch_warnings(), contextlib.redirect_stdout(sink):
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


def _annotate(proto: Any, model: DCPose, part: str, cfg: ExportConfig) -> None:
    """Graph name, I/O docs and the ``dcpose_trt.*`` metadata_props."""
    p = model.preset
    proto.graph.name = f"dcpose_{p.name}_{part}"
    proto.doc_string = (f"DCPose {p.name} ({part}), deformable conv form '{cfg.deform}', "
                        f"exported by dcpose-trt {__version__}")
    for v in [*proto.graph.input, *proto.graph.output]:
        v.doc_string = INPUT_DOCS.get(v.name, "")
    extra = {}
    if cfg.deform == "plugin":
        op_type, domain, namespace = plugin_identity()
        extra["dcpose_trt.plugin"] = f"{namespace}::{op_type} (domain {domain})"
    info = OnnxModelInfo(preset=p.name, deform=cfg.deform, part=part, version=__version__,
                         input_size=tuple(p.image_size), heatmap_size=tuple(p.heatmap_size),  # type: ignore[arg-type]
                         precision="fp32", mean=tuple(p.mean), std=tuple(p.std), raw=extra)  # type: ignore[arg-type]
    set_metadata(proto, info.props())
    proto.producer_name = "dcpose-trt"
    proto.producer_version = __version__


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
    rename_nodes(proto, part_spec(model, part, 1)[3])
    if cfg.cleanup:
        with _stage("cleaning up with onnxslim"):
            proto = cleanup(proto)
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
            result = check_graph(proto, model, part, deform=cfg.deform, batch=cfg.check_batch,
                                     atol=cfg.check_atol, rtol=cfg.check_rtol)
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
        meta = read_model_metadata(m, source=str(p))
        dcn = sum(ops.get(t, 0) for t in DCN_OP_TYPES)
        lines.append(f"{p}: {len(m.graph.node)} nodes, {ops.get('Conv', 0)} Conv, {dcn} DeformConv, "
                     f"{ops.get('GridSample', 0)} GridSample; preset {meta.preset}, "
                     f"part {meta.part}, deform {meta.deform}")
    return "\n".join(lines)
