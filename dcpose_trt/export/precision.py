"""FP16 and INT8 ONNX from an FP32 export (architecture.md, "Precision").

TensorRT 11 takes precision from the ONNX itself (strongly typed networks), so this is an
ONNX-to-ONNX step that ONNX Runtime can check on a CPU:

- **FP16** (ONNX Runtime's ``float16.convert_float_to_float16``): weights and activations FP16; network
  I/O, the margin normalisation and the deformable sampling path (DCN node, GridSample grid arithmetic
  and the offset convs that produce the sampling coordinates) stay FP32, with Casts at the borders.
- **INT8** (``onnxruntime.quantization.quantize_static``, QDQ format): symmetric INT8 Q/DQ (zero point 0)
  with per-channel weights on the HRNet backbone's convolutions, calibrated on real person crops cut by
  the inference crop code (:func:`~dcpose_trt.data.transforms.make_inputs`). The first conv, the
  backbone's final heatmap conv and the whole temporal head (heatmap fusion, offset/mask prediction, DCN)
  stay FP32 (see ``INT8_EXCLUDED_SCOPES`` for the measurement behind that). The result is checked to be
  buildable as a strongly typed TensorRT network (int8 zero points of 0, no uint8). A ``plugin`` export
  (which ONNX Runtime cannot run) is calibrated as the equivalent standard-``DeformConv`` graph (the
  plugin node has ``DeformConv``'s inputs and attributes plus ``plugin_namespace``); the DCN nodes stay
  FP32, so the Q/DQ graph only needs its DCN nodes turned back into plugin nodes.

Graph regions are found by structure (DCN nodes and their inputs) and by the node names our exporter
writes (``<module path>/<OpType>``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import warnings
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dcpose_trt._deps import require
from dcpose_trt.contract import (
    DCN_DOMAIN,
    DCN_DOMAIN_VERSION,
    DCN_OP_TYPE,
    DCN_OP_TYPES,
    META_CALIBRATION,
    META_INPUT_SIZE,
    META_MEAN,
    META_PART,
    META_PRECISION,
    META_PRESET,
    META_STD,
    ONNX_DEFORM_OP,
    ONNX_DEFORM_OPSET,
    PLUGIN_NAMESPACE,
    QUANTIZED_PRECISIONS,
)
from dcpose_trt.errors import InputError, QuantizeError
from dcpose_trt.export.onnx_export import (
    atomic_save_onnx,
    get_metadata,
    set_metadata,
)

log = logging.getLogger(__name__)

PRECISIONS = QUANTIZED_PRECISIONS
CALIB_METHODS = ("minmax", "percentile", "entropy")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")

# Modules that stay high precision under INT8 (node-name prefixes written by our exporter).
# Only the HRNet backbone (minus its first and last conv) is quantized. The temporal head stays FP32:
# measured on the bundled model (synthetic val, first 120 frames, MinMax calibration on 256 train crops),
# quantizing it too left only 85.4% of joints within one heatmap cell of FP32 (-1.5 AP); keeping just
# offset_mask_combine_conv (the features the DCN offsets are predicted from) in FP32 gave 96.7%; keeping
# the whole head in FP32 gave 98.2% (+0.06 AP). The head refines heatmaps and predicts sampling
# coordinates, both of which need more than 8 bits; the backbone is most of the compute of W32/W48.
INT8_EXCLUDED_SCOPES = (
    "rough_pose_estimation_net.conv1/",  # first conv: sees raw pixels
    "rough_pose_estimation_net.final_layer/",  # backbone heatmap conv
    "support_temporal_fuse.",  # Pose Temporal Merger: convs over heatmaps
    "diff_temporal_fuse.",  # Pose Residual Fusion: convs over heatmap differences
    "offset_mask_combine_conv.",  # the features the DCN offsets and masks are predicted from
    "offsets_list.",  # DCN sampling offsets
    "masks_list.",  # DCN modulation
    "modulated_deform_conv_list.",  # the DCN itself (gridsample form: its strided aggregation conv)
)


@dataclass(frozen=True)
class QuantizeConfig:
    """How to lower precision.

    Attributes:
        precision: ``fp16`` or ``int8``.
        calib: calibration source for INT8: a PoseTrack-layout dataset folder (GT boxes of ``calib_split``),
            a video file, or a folder of frames (both with ``calib_boxes``).
        calib_boxes: person boxes for a video/frames folder (``boxes.json`` or a COCO detection list).
        calib_samples: person crops to calibrate on. Defaults to 256.
        calib_split: dataset split for a PoseTrack-layout source. Defaults to ``val``.
        calib_method: ``minmax`` (default), ``percentile`` or ``entropy``.
        calib_batch: persons per calibration run. Defaults to 8.
    """

    precision: str = "int8"
    calib: Path | None = None
    calib_boxes: Path | None = None
    calib_samples: int = 256
    calib_split: str = "val"
    calib_method: str = "minmax"
    calib_batch: int = 8

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown --precision {self.precision!r}; choose one of: {', '.join(PRECISIONS)}")
        if self.calib_method not in CALIB_METHODS:
            raise InputError(f"unknown calibration method {self.calib_method!r}; choose one of: "
                             f"{', '.join(CALIB_METHODS)}")
        if self.precision == "int8":
            if self.calib is None:
                raise InputError("INT8 needs calibration on real person crops: give --calib VIDEO_OR_DIR "
                                 "(with --calib-boxes FILE unless it is a PoseTrack-layout dataset)")
            if not Path(self.calib).exists():
                raise InputError(f"calibration source not found: {self.calib}")
            if self.calib_boxes is not None and not Path(self.calib_boxes).is_file():
                raise InputError(f"boxes file not found: {self.calib_boxes}")
            if self.calib_samples < 1 or self.calib_batch < 1:
                raise InputError("--calib-samples and the calibration batch must be >= 1")


# ----------------------------------------------------------------------------------------------------
# Graph regions
# ----------------------------------------------------------------------------------------------------


class _Graph:
    """Producer/consumer maps and value types of an ``onnx.ModelProto``."""

    def __init__(self, model: Any):
        onnx = require("onnx", "onnx", "precision conversion")
        self.model = model
        self.nodes = list(model.graph.node)
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.consumers: dict[str, list[Any]] = {}
        for n in self.nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.inits = {t.name for t in model.graph.initializer}
        self.inputs = {v.name for v in model.graph.input}
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
        except Exception:  # noqa: BLE001 - custom domains may stop inference; types are a refinement only
            inferred = model
        self.elem_type = {v.name: v.type.tensor_type.elem_type
                          for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
        for t in model.graph.initializer:
            self.elem_type[t.name] = t.data_type

    def is_float(self, name: str) -> bool:
        return self.elem_type.get(name, 1) in (1, 10, 11)  # FLOAT, FLOAT16, DOUBLE; unknown → float


def dcn_coordinate_nodes(model: Any) -> list[str]:
    """Names of the nodes that compute deformable sampling coordinates, plus the DCN nodes themselves.

    DCN nodes are ``DeformConv`` (any domain) and ``GridSample``. From the offset input
    (``DeformConv`` input 2) or the grid (``GridSample`` input 1) we walk up float edges through the
    coordinate arithmetic and stop at (and include) the Conv that produces the offsets. ``Shape``
    nodes are not crossed: they only read sizes.
    """
    g = _Graph(model)
    keep: set[str] = set()
    stack: list[str] = []
    for n in g.nodes:
        if n.op_type in DCN_OP_TYPES:
            keep.add(n.name)
            stack.append(n.input[2])
        elif n.op_type == "GridSample":
            keep.add(n.name)
            stack.append(n.input[1])
    seen: set[str] = set()
    while stack:
        t = stack.pop()
        if t in seen or t in g.inits or t in g.inputs or not g.is_float(t):
            continue
        seen.add(t)
        node = g.producer.get(t)
        if node is None or node.op_type in ("Shape", "Constant"):
            continue
        keep.add(node.name)
        if node.op_type == "Conv":
            continue  # the offset conv: its own input is ordinary features
        stack.extend(node.input)
    return sorted(keep)


def margin_nodes(model: Any) -> list[str]:
    """Names of the nodes that only transform ``margin`` (its normalisation into frame weights).

    A node belongs when one of its float inputs comes from ``margin`` and every other float input is a
    constant; the first node that mixes in a feature map (``prev * wp``) ends the region.
    """
    g = _Graph(model)
    if "margin" not in g.inputs:
        return []
    derived = {"margin"}
    keep: list[str] = []
    for n in g.nodes:  # graph order is topological
        floats = [i for i in n.input if i and g.is_float(i)]
        from_margin = [i for i in floats if i in derived]
        others = [i for i in floats if i not in derived and i not in g.inits
                  and not (i in g.producer and g.producer[i].op_type == "Constant")]
        if from_margin and not others:
            keep.append(n.name)
            derived.update(n.output)
    return keep


def int8_excluded_nodes(model: Any) -> list[str]:
    """Conv nodes that stay high precision under INT8 (see ``INT8_EXCLUDED_SCOPES``).

    By name (our exporter's ``<module path>/<OpType>``), and by structure: the convs that produce a
    DCN's offsets or mask, and the convs that read graph inputs through no other conv (the first conv).
    """
    g = _Graph(model)
    out = {n.name for n in g.nodes if n.op_type == "Conv" and n.name.startswith(INT8_EXCLUDED_SCOPES)}
    for n in g.nodes:
        if n.op_type in DCN_OP_TYPES:
            for t in n.input[2:5:2]:  # offset, mask
                p = g.producer.get(t)
                if p is not None and p.op_type == "Conv":
                    out.add(p.name)
    if g.inputs & {"frames", "image"}:
        # Convs reached from a pixel input without crossing another conv.
        stack = [i for i in g.inputs if i in ("frames", "image")]
        seen: set[str] = set()
        while stack:
            t = stack.pop()
            for c in g.consumers.get(t, []):
                if c.name in seen:
                    continue
                seen.add(c.name)
                if c.op_type == "Conv":
                    out.add(c.name)
                elif c.op_type != "Shape":
                    stack.extend(c.output)
    missing = [p for p in ("rough_pose_estimation_net.final_layer/",)
               if get_metadata(model).get(META_PART) in ("full", "backbone")
               and not any(n.name.startswith(p) for n in g.nodes)]
    if missing:
        log.warning("no node named %s* (not exported by dcpose-trt?); the final heatmap conv may get quantized",
                    missing[0])
    return sorted(out)


# ----------------------------------------------------------------------------------------------------
# Plugin form <-> standard DeformConv (the plugin node has ONNX DeformConv's inputs and attributes)
# ----------------------------------------------------------------------------------------------------


def has_plugin_nodes(model: Any) -> bool:
    """Whether ``model`` has a ``dcpose_trt`` plugin DCN node (``--deform plugin`` export)."""
    return any(n.op_type == DCN_OP_TYPE and n.domain == DCN_DOMAIN for n in model.graph.node)


def plugin_to_standard(model: Any) -> tuple[Any, list[str]]:
    """A copy of a plugin-form model whose plugin nodes are standard ONNX ``DeformConv`` (opset >= 19).

    The plugin node has ONNX ``DeformConv``'s inputs and attributes plus ``plugin_namespace``
    (:mod:`~dcpose_trt.export.deform_ops`), so the copy is the ``--deform deformconv`` graph of the same
    weights, which ONNX Runtime runs.
    Returns (copy, names of the rewritten nodes).
    """
    onnx = require("onnx", "onnx", "plugin-form conversion")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    names = []
    for n in out.graph.node:
        if n.op_type == DCN_OP_TYPE and n.domain == DCN_DOMAIN:
            n.domain = ""
            n.op_type = ONNX_DEFORM_OP
            keep = [a for a in n.attribute if a.name != "plugin_namespace"]
            del n.attribute[:]
            n.attribute.extend(keep)
            names.append(n.name)
    if len(set(names)) != len(names) or "" in names:
        raise QuantizeError("the plugin nodes need unique names to be restored after quantization")
    imports = [o for o in out.opset_import if o.domain != DCN_DOMAIN]
    for o in imports:
        if o.domain in ("", "ai.onnx") and o.version < ONNX_DEFORM_OPSET:
            o.version = ONNX_DEFORM_OPSET
    del out.opset_import[:]
    out.opset_import.extend(imports)
    return out, names


def standard_to_plugin(model: Any, names: Iterable[str]) -> Any:
    """Turn the standard ``DeformConv`` nodes called ``names`` back into plugin nodes, in place."""
    onnx = require("onnx", "onnx", "plugin-form conversion")
    wanted = set(names)
    found = set()
    for n in model.graph.node:
        if n.name in wanted and n.op_type == ONNX_DEFORM_OP and n.domain in ("", "ai.onnx"):
            n.op_type, n.domain = DCN_OP_TYPE, DCN_DOMAIN
            n.attribute.append(onnx.helper.make_attribute("plugin_namespace", PLUGIN_NAMESPACE))
            found.add(n.name)
    if found != wanted:
        raise QuantizeError(f"quantization lost plugin nodes: {sorted(wanted - found)[:3]}")
    if not any(o.domain == DCN_DOMAIN for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(DCN_DOMAIN, DCN_DOMAIN_VERSION))
    return model


# ----------------------------------------------------------------------------------------------------
# FP16
# ----------------------------------------------------------------------------------------------------


def to_fp16(model: Any) -> Any:
    """FP16 copy of an FP32 model; I/O, margin normalisation and DCN coordinates stay FP32."""
    # ONNX Runtime's maintained copy of onnxconverter-common's converter (same API); the standalone
    # package's 1.16 release writes Casts with stale types around Resize, which ORT refuses to load.
    fp16 = require("onnxruntime.transformers.float16", "onnx", "FP16 conversion")
    block = sorted({*dcn_coordinate_nodes(model), *margin_nodes(model)})
    log.info("FP16: keeping %d nodes in FP32 (DCN sampling path, margin normalisation)", len(block))
    with warnings.catch_warnings():
        # Weights below FP16's range are flushed to ±1e-7 with one warning each; that is expected.
        warnings.simplefilter("ignore", UserWarning)
        return fp16.convert_float_to_float16(model, keep_io_types=True, node_block_list=block,
                                             disable_shape_infer=False)


# ----------------------------------------------------------------------------------------------------
# INT8 calibration data: real person crops through the inference crop code
# ----------------------------------------------------------------------------------------------------


def _imread(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read image {path}")
    return img


def _posetrack_windows(root: Path, split: str, boxes_file: Path | None
                       ) -> Iterator[tuple[list[np.ndarray], np.ndarray]]:
    """([cur, prev, next] frames, boxes) for each labeled frame of a PoseTrack-layout split."""
    from dcpose_trt.data.posetrack import load_split, read_boxes_file

    index = load_split(root, split)
    source = "gt"
    if boxes_file is not None:
        if index.attach_detections(read_boxes_file(boxes_file)) == 0:
            raise InputError(f"{boxes_file}: no boxes match the frames of {root} ({split})")
        source = "detections"
    for video, frame in index.labeled_frames():
        boxes = index.boxes(video.name, frame.index, source=source)
        if not len(boxes):
            continue
        prev, nxt = video.neighbours(frame.index)
        cur_img = _imread(frame.path)
        # Sample datasets may list only the labeled frame; its neighbours then stand in as itself.
        imgs = [_imread(p) if p.is_file() else cur_img for p in (video.frame_path(prev), video.frame_path(nxt))]
        yield [cur_img, *imgs], boxes


def _frame_stream(source: Path) -> Iterator[tuple[int, str, np.ndarray]]:
    """(index, file name, BGR frame) from a video file or a folder of images (sorted by name)."""
    import cv2

    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)})")
        for i, p in enumerate(files):
            yield i, p.name, _imread(p)
        return
    cap = cv2.VideoCapture(str(source))
    if not cap.isOpened():
        raise InputError(f"cannot open video {source}")
    try:
        i = 0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            yield i, f"{i:06d}.jpg", img
            i += 1
    finally:
        cap.release()


def _video_windows(source: Path, boxes_file: Path) -> Iterator[tuple[list[np.ndarray], np.ndarray]]:
    """([cur, prev, next], boxes) for every frame with boxes; a sliding 3-frame buffer keeps memory flat."""
    from dcpose_trt.data.posetrack import read_boxes_file

    table = read_boxes_file(boxes_file)

    def boxes_for(i: int, name: str) -> np.ndarray:
        rows = table.get(i, table.get(name, table.get(Path(name).stem, [])))
        return np.asarray(rows, np.float64).reshape(-1, 5)

    buf: deque[tuple[int, str, np.ndarray]] = deque(maxlen=3)
    for item in _frame_stream(source):
        buf.append(item)
        if len(buf) == 2 and buf[0][0] == 0:  # first frame: previous stands in as itself
            i, name, img = buf[0]
            b = boxes_for(i, name)
            if len(b):
                yield [img, img, buf[1][2]], b
        if len(buf) == 3:
            i, name, img = buf[1]
            b = boxes_for(i, name)
            if len(b):
                yield [img, buf[0][2], buf[2][2]], b
    if buf:  # last frame: next stands in as itself
        i, name, img = buf[-1]
        b = boxes_for(i, name)
        if len(b):
            yield [img, buf[-2][2] if len(buf) > 1 else img, img], b


def calibration_crops(cfg: QuantizeConfig, image_size: tuple[int, int], mean: tuple[float, ...],
                      std: tuple[float, ...]) -> np.ndarray:
    """Up to ``cfg.calib_samples`` real person crops ``float32[N, 9, H, W]`` (never random data).

    Windows come from a PoseTrack-layout folder (``annotations/<split>/*.json``, GT boxes unless
    ``calib_boxes``) or a video / frames folder with ``calib_boxes``; each is cut by
    :func:`~dcpose_trt.data.transforms.make_inputs`, exactly as at inference.
    """
    from dcpose_trt.data.transforms import clean_boxes, make_inputs

    src = Path(cfg.calib)  # type: ignore[arg-type]
    if src.is_dir() and (src / "annotations" / cfg.calib_split).is_dir():
        windows: Iterable = _posetrack_windows(src, cfg.calib_split, cfg.calib_boxes)
    elif cfg.calib_boxes is None:
        raise InputError(f"{src} is not a PoseTrack-layout dataset (no annotations/{cfg.calib_split}); "
                         "give its person boxes with --calib-boxes FILE")
    else:
        windows = _video_windows(src, Path(cfg.calib_boxes))
    chunks, n = [], 0
    for window, boxes in windows:
        frames, _, _ = make_inputs(window, clean_boxes(boxes), image_size, mean, std)
        chunks.append(frames[: cfg.calib_samples - n])
        n += len(chunks[-1])
        if n >= cfg.calib_samples:
            break
    if n == 0:
        raise QuantizeError(f"no person crops found in {src}; check the boxes file and the split")
    if n < cfg.calib_samples:
        log.warning("only %d person crops in %s (asked for %d); calibrating on those", n, src, cfg.calib_samples)
    return np.concatenate(chunks, axis=0)


class _CropReader:
    """``onnxruntime.quantization.CalibrationDataReader`` over crops, ``calib_batch`` persons per run."""

    def __init__(self, crops: np.ndarray, batch: int, input_names: list[str]):
        self.crops, self.batch, self.names = crops, batch, input_names
        self.pos = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.pos >= len(self.crops):
            return None
        f = self.crops[self.pos : self.pos + self.batch]
        self.pos += self.batch
        if self.names == ["image"]:  # a split backbone: the three frames' crops are three backbone inputs
            return {"image": np.ascontiguousarray(f.reshape(-1, 3, *f.shape[2:]))}
        return {"frames": f, "margin": np.ones((len(f), 2), np.float32)}

    def rewind(self) -> None:
        self.pos = 0


class _DropPreprocessAdvice(logging.Filter):
    """Drops ONNX Runtime's "Please consider (to run) pre-processing before quantization" warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _no_preprocess_advice() -> Iterator[None]:
    """Silence ORT's advice to run ``quant_pre_process`` (printed twice per model, on the root logger).

    Its pre-processing is shape inference plus ORT graph optimisation; our export already ran onnxslim
    (constant folding, shape inference), and ORT-specific fusions would put ops TensorRT cannot parse
    into the graph, so the advice does not apply here.
    """
    filt = _DropPreprocessAdvice()
    root = logging.getLogger()
    targets = [root, *root.handlers]
    for t in targets:
        t.addFilter(filt)
    try:
        yield
    finally:
        for t in targets:
            t.removeFilter(filt)


def to_int8(model_path: Path, out_path: Path, cfg: QuantizeConfig, meta: dict[str, str]) -> Any:
    """INT8 Q/DQ model via ``onnxruntime.quantization.quantize_static``; returns the ``onnx.ModelProto``."""
    onnx = require("onnx", "onnx", "INT8 quantization")
    q = require("onnxruntime.quantization", "onnx", "INT8 quantization")
    model = onnx.load(str(model_path))
    names = [i.name for i in model.graph.input]
    if names not in (["frames", "margin"], ["image"]):
        raise QuantizeError(f"INT8 calibration needs a whole DCPose model (inputs frames, margin) or a split "
                            f"backbone (input image); {model_path} has {names}")
    plugin_nodes: list[str] = []
    if has_plugin_nodes(model):
        # ONNX Runtime cannot run the plugin node: calibrate and quantize the equivalent standard-DeformConv
        # graph (same weights, same node names), then turn its DCN nodes back into plugin nodes.
        model, plugin_nodes = plugin_to_standard(model)
        model_path = out_path.with_name("standard_dcn.onnx")
        onnx.save(model, str(model_path))
        log.info("INT8: calibrating the plugin graph as its standard DeformConv equivalent (%d nodes)",
                 len(plugin_nodes))
    h, w = (int(v) for v in meta[META_INPUT_SIZE].split("x"))
    mean = tuple(float(v) for v in meta.get(META_MEAN, "0.485,0.456,0.406").split(","))
    std = tuple(float(v) for v in meta.get(META_STD, "0.229,0.224,0.225").split(","))
    t0 = time.perf_counter()
    crops = calibration_crops(cfg, (h, w), mean, std)
    log.info("calibration: %d person crops read in %.1f s", len(crops), time.perf_counter() - t0)
    exclude = int8_excluded_nodes(model)
    log.info("INT8: %d convs stay FP32 (the first conv, the backbone's heatmap conv, the temporal head; "
             "-vv lists them)", len(exclude))
    log.debug("INT8: convs kept FP32: %s", ", ".join(exclude))
    method = {"minmax": q.CalibrationMethod.MinMax, "percentile": q.CalibrationMethod.Percentile,
              "entropy": q.CalibrationMethod.Entropy}[cfg.calib_method]
    t0 = time.perf_counter()
    with _no_preprocess_advice():
        q.quantize_static(
            str(model_path), str(out_path), _CropReader(crops, cfg.calib_batch, names),
            quant_format=q.QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            per_channel=True,
            reduce_range=False,
            activation_type=q.QuantType.QInt8,  # symmetric int8 activations: what TensorRT's Q/DQ needs
            weight_type=q.QuantType.QInt8,
            nodes_to_exclude=exclude,
            calibrate_method=method,
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                # Bias stays float: TensorRT folds it into the INT8 conv itself.
                "QuantizeBias": False,
                # No "CalibMaxIntermediateOutputs": ORT 1.32's MinMax calibrator *drops* the collected batches
                # when that limit is reached instead of folding them into the ranges, so with it calibration
                # saw only the last few crops (or none: "No data is collected").
            },
        )
    log.info("quantize_static done in %.1f s", time.perf_counter() - t0)
    result = onnx.load(str(out_path))
    if plugin_nodes:
        standard_to_plugin(result, plugin_nodes)
    return result


# ----------------------------------------------------------------------------------------------------
# Checks and entry point
# ----------------------------------------------------------------------------------------------------


def check_qdq(model: Any, excluded: Iterable[str] = ()) -> list[str]:
    """Violations of the TensorRT strongly-typed Q/DQ rules (empty list: fine).

    Rules: zero points are int8 and 0 (symmetric); no uint8 tensor anywhere; Q/DQ only on the inputs
    and outputs of Convs that are not ``excluded``; every quantized weight is per-channel (axis 0).
    """
    onnx = require("onnx", "onnx", "Q/DQ check")
    from onnx import numpy_helper

    g = _Graph(model)
    init = {t.name: t for t in model.graph.initializer}
    excluded = set(excluded)
    problems = [f"uint8 initializer {t.name}" for t in model.graph.initializer
                if t.data_type == onnx.TensorProto.UINT8]
    for name, et in g.elem_type.items():
        if et == onnx.TensorProto.UINT8:
            problems.append(f"uint8 tensor {name}")
    allowed_convs = {n.name for n in g.nodes if n.op_type == "Conv" and n.name not in excluded}
    for n in g.nodes:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if len(n.input) < 3 or n.input[2] not in init:
            problems.append(f"{n.name}: no constant zero point")
        else:
            zp = init[n.input[2]]
            if zp.data_type != onnx.TensorProto.INT8 or np.any(numpy_helper.to_array(zp) != 0):
                problems.append(f"{n.name}: zero point is not int8 0")
        if n.op_type == "DequantizeLinear":
            users = g.consumers.get(n.output[0], [])
            src = g.producer.get(n.input[0])
            # A DQ feeds an allowed conv (input side), or follows the Q of an allowed conv's output.
            feeds_conv = any(u.name in allowed_convs for u in users)
            after_conv_q = src is not None and src.op_type == "QuantizeLinear" and \
                (g.producer.get(src.input[0]) is not None and g.producer[src.input[0]].name in allowed_convs)
            if not (feeds_conv or after_conv_q):
                problems.append(f"{n.name}: Q/DQ outside an INT8 conv (feeds {[u.name for u in users]})")
            if n.input[0] in init:  # weight DQ: per-channel along the output channels
                scale = init.get(n.input[1])
                axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
                if scale is None or len(scale.dims) != 1 or axis != 0:
                    problems.append(f"{n.name}: weight not quantized per channel on axis 0")
    for n in g.nodes:
        if n.name in excluded or (n.op_type in DCN_OP_TYPES or n.op_type == "GridSample"):
            for i in n.input:
                p = g.producer.get(i)
                if p is not None and p.op_type == "DequantizeLinear":
                    problems.append(f"{n.name}: must stay high precision but reads a DequantizeLinear")
    return problems


def quantize_onnx(onnx_in: str | os.PathLike, out: str | os.PathLike, cfg: QuantizeConfig) -> Path:
    """Write an FP16 or INT8 copy of an exported FP32 ONNX.

    Args:
        onnx_in: FP32 ONNX from :func:`~dcpose_trt.export.export_onnx` in any DCN form (INT8 calibrates
            a ``plugin`` export as its standard-``DeformConv`` equivalent, which ONNX Runtime runs, and
            writes the plugin nodes back), or one part of a ``--split`` export (INT8: the backbone is
            calibrated on single-frame crops, the head is kept FP32).
        out: the output ``.onnx``.
        cfg: precision and calibration settings.

    Returns:
        ``out``. Inputs and outputs keep their names and FP32 types, so every backend runs it as before.
        For a split-export folder, ``out`` is a folder that receives both converted parts.

    Raises:
        InputError: bad paths or settings. QuantizeError: calibration or conversion failed.
    """
    onnx = require("onnx", "onnx", "precision conversion")
    cfg.validate()
    src, out = Path(onnx_in), Path(out)
    if src.is_dir():
        parts = [src / "backbone.onnx", src / "head.onnx"]
        if not all(p.is_file() for p in parts):
            raise InputError(f"{src} is a folder without backbone.onnx and head.onnx (a --split export)")
        if out.suffix == ".onnx":
            raise InputError(f"{src} is a split export: --out is a folder for its two parts, not {out}")
        out.mkdir(parents=True, exist_ok=True)
        for part in parts:  # each part is written atomically
            quantize_onnx(part, out / part.name, cfg)
        return out
    if not src.is_file():
        raise InputError(f"ONNX file not found: {src}")
    try:
        model = onnx.load(str(src))
    except Exception as exc:  # noqa: BLE001 - protobuf decode errors
        raise InputError(f"{src} is not an ONNX model ({type(exc).__name__})") from None
    meta = get_metadata(model)
    if META_PRESET not in meta or META_INPUT_SIZE not in meta:
        raise InputError(f"{src} has no dcpose_trt metadata; export it with 'dcpose-trt export'")
    if meta.get(META_PRECISION, "fp32") != "fp32":
        raise InputError(f"{src} is already {meta[META_PRECISION]}; convert the FP32 export")
    t0 = time.perf_counter()
    problems: list[str] = []
    if cfg.precision == "fp16":
        result = to_fp16(model)
    elif meta.get(META_PART) == "head":
        # Under INT8 the whole temporal head stays FP32 (INT8_EXCLUDED_SCOPES): the split head's INT8 copy
        # is the FP32 graph, marked int8 so that it pairs with the INT8 backbone.
        log.info("INT8: the temporal head stays FP32 (see INT8_EXCLUDED_SCOPES); copying it unchanged")
        result = model
    else:
        with tempfile.TemporaryDirectory(prefix="dcpose_int8_") as tmp:
            result = to_int8(src, Path(tmp) / "int8.onnx", cfg, meta)
        problems = check_qdq(result, int8_excluded_nodes(model))
    if problems:
        raise QuantizeError(f"the INT8 graph breaks the TensorRT Q/DQ rules: {problems[0]} "
                            f"(+{len(problems) - 1} more)")
    set_metadata(result, {**meta, META_PRECISION: cfg.precision})
    if cfg.precision == "int8":
        set_metadata(result, {META_CALIBRATION: f"{cfg.calib_method}, {cfg.calib}"})
    atomic_save_onnx(result, out)
    ops = Counter(n.op_type for n in result.graph.node)
    log.info("wrote %s (%s, %.1f MB, %d Q / %d DQ) in %.1f s", out, cfg.precision, out.stat().st_size / 1e6,
             ops.get("QuantizeLinear", 0), ops.get("DequantizeLinear", 0), time.perf_counter() - t0)
    return out
