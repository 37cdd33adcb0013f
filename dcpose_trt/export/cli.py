"""CLI verbs of the export stage: ``export`` and ``quantize`` (``fidelity`` is the eval stage's).

Only argparse at import time, so ``dcpose-trt --help`` needs none of torch.onnx, onnx or onnxruntime.
Each verb parses its flags into the stage's config dataclass and calls one function.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dcpose_trt.contract import DEFORM_FORMS, INT8_TARGETS


def _progress_logging() -> None:
    """Show this stage's progress (INFO) even without -v: exports and calibration take a while."""
    for name in ("dcpose_trt.export", "dcpose_trt.eval.fidelity"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)


def _given(**values: object) -> dict[str, object]:
    """The options the user gave (argparse defaults are None): the config dataclass supplies the rest."""
    return {k: v for k, v in values.items() if v is not None}


def _export(args: argparse.Namespace) -> int:
    from dcpose_trt._atomic import check_writable

    check_writable(args.out, folder=args.split, inputs=[args.model])
    from dcpose_trt.export.onnx_export import ExportConfig, export_onnx, export_summary
    from dcpose_trt.model import load_model

    _progress_logging()
    cfg = ExportConfig(**_given(deform=args.deform, split=args.split, opset=args.opset, check=args.check))
    model = load_model(args.model, args.preset)
    out = export_onnx(model, args.out, cfg)
    files = [out / "backbone.onnx", out / "head.onnx"] if args.split else [out]
    print(export_summary(files))
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from dcpose_trt._atomic import check_writable
    from dcpose_trt.errors import InputError

    openvino = args.target == "openvino"
    if openvino and args.onnx is not None:
        raise InputError("--target openvino quantizes a checkpoint (--model, default: the bundled model), "
                         "not an ONNX: drop --onnx")
    if not openvino and args.onnx is None:
        raise InputError("--onnx is required" + (" (--model is only for --target openvino)" if args.model else ""))
    if not openvino and args.model is not None:
        raise InputError("--model is only for --target openvino; the other targets quantize an --onnx export")
    if openvino and args.precision != "int8":
        raise InputError("--target openvino is an INT8 IR: give --precision int8")
    calib_ann = args.calib / "annotations" if args.calib is not None else None
    src = args.model if openvino else args.onnx
    check_writable(args.out, folder=openvino or args.onnx.is_dir(), inputs=[src, args.calib, args.calib_boxes],
                   protected=[calib_ann])
    if openvino and args.out.is_dir() and any(args.out.iterdir()):
        raise InputError(f"--out {args.out} is a non-empty folder; give a new or empty one for the IR pair")
    from dcpose_trt.export.quantize_config import QuantizeConfig

    _progress_logging()
    cfg = QuantizeConfig(**_given(precision=args.precision, calib=args.calib, calib_boxes=args.calib_boxes,
                                  calib_samples=args.calib_samples, calib_split=args.calib_split or CALIB_SPLIT,
                                  calib_method=args.calib_method, target=args.target))
    if openvino:
        # The IR build is the engine stage's (it imports export, not the other way): engine/cli.py hands it in.
        out = args.quantize_ir(args.model, args.out, cfg)
        print(f"wrote {out} (int8, openvino IR: backbone + head offset/mask convs INT8)")
        return 0
    from dcpose_trt.export.precision import quantize_onnx

    out = quantize_onnx(args.onnx, args.out, cfg)
    print(f"wrote {out} ({args.precision}{', ' + cfg.target + ' layout' if cfg.precision == 'int8' else ''})")
    return 0


# INT8 calibrates on training crops by default: calibrating on `val` would tune the scales to the very frames
# `fidelity` / `eval` measure on.
CALIB_SPLIT = "train"


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's verbs to the ``dcpose-trt`` parser. Options default to None; the help shows the
    config dataclasses' defaults, which apply."""
    from dcpose_trt.export.onnx_export import ExportConfig
    from dcpose_trt.export.quantize_config import CALIB_METHODS, QuantizeConfig

    p = sub.add_parser("export", help="export DCPose to ONNX (three deformable-conv forms, optional split)",
                       description="Export DCPose to ONNX with a dynamic person batch.")
    p.add_argument("--model", type=Path, help="DCPose checkpoint (.pth); default: the bundled tiny model")
    p.add_argument("--preset", help="preset (default: the checkpoint's, else tiny-128x96)")
    p.add_argument("--out", type=Path, required=True, help="output .onnx (with --split: a folder)")
    p.add_argument("--deform", choices=DEFORM_FORMS,
                   help="plugin: dcpose_trt TensorRT plugin node; deformconv: ONNX DeformConv (opset 19); "
                        f"gridsample: standard ops only (default: {ExportConfig.deform})")
    p.add_argument("--split", action="store_true", default=None, help="write backbone.onnx and head.onnx into --out")
    p.add_argument("--opset", type=int, help=f"ONNX opset (default: {ExportConfig.opset})")
    p.add_argument("--check", action=argparse.BooleanOptionalAction,
                   help="compare ONNX Runtime with PyTorch on a random batch "
                        f"(default: {'on' if ExportConfig.check else 'off'})")
    p.set_defaults(func=_export)

    q = sub.add_parser("quantize", help="FP16 or INT8 (Q/DQ) copy of an exported ONNX, or an INT8 OpenVINO IR",
                       description="Lower an FP32 export to FP16, or to INT8 calibrated on real person crops; "
                                   "--target openvino: an INT8 OpenVINO IR pair of a checkpoint.")
    q.add_argument("--onnx", type=Path,
                   help="FP32 ONNX from 'dcpose-trt export', or a --split export folder (required, except for "
                        "--target openvino)")
    q.add_argument("--model", type=Path,
                   help="--target openvino only: DCPose checkpoint (.pth); default: the bundled tiny model")
    q.add_argument("--precision", choices=("fp16", "int8"), required=True)
    q.add_argument("--calib", type=Path, help="INT8: video file, frames folder, or PoseTrack-layout dataset")
    q.add_argument("--calib-boxes", type=Path, help="INT8: person boxes for a video/frames folder (boxes.json "
                   "or a COCO detection list)")
    q.add_argument("--calib-samples", type=int,
                   help=f"person crops to calibrate on (default: {QuantizeConfig.calib_samples})")
    q.add_argument("--calib-split",
                   help=f"split of a PoseTrack-layout dataset (default: {CALIB_SPLIT}; never calibrate on the split "
                        "you evaluate on)")
    q.add_argument("--calib-method", choices=CALIB_METHODS, help=f"(default: {QuantizeConfig.calib_method})")
    q.add_argument("--target", choices=INT8_TARGETS,
                   help="INT8 layout: tensorrt = symmetric Q/DQ for TensorRT plans; cpu = ONNX Runtime's U8S8 "
                        "QOperator recipe, faster than FP32 on its CPU provider (not buildable by TensorRT); "
                        "openvino = an OpenVINO IR folder (backbone + head .xml/.bin, NNCF INT8) of --model, "
                        f"for '--backend openvino' (default: {QuantizeConfig.target})")
    q.add_argument("--out", type=Path, required=True,
                   help="output .onnx (for a split folder: a folder; --target openvino: a new folder)")
    q.set_defaults(func=_quantize)
