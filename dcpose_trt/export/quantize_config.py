"""The settings of ``dcpose-trt quantize`` (:class:`QuantizeConfig`), shared by the FP16/INT8 steps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dcpose_trt.contract import INT8_TARGETS, QUANTIZED_PRECISIONS
from dcpose_trt.errors import InputError

PRECISIONS = QUANTIZED_PRECISIONS
CALIB_METHODS = ("minmax", "percentile", "entropy")


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
        calib_batch: persons per calibration run. Defaults to 8 (fewer for crops above 256x192, see
            :func:`dcpose_trt.export.int8.calib_batch`: calibration memory grows with it).
        target: INT8 layout: ``tensorrt`` (default; symmetric Q/DQ around convs for strongly typed TensorRT
            networks) or ``cpu`` (ONNX Runtime's CPU recipe, U8S8 QOperator: faster than FP32 on ONNX
            Runtime's CPU provider, not buildable by TensorRT). See :func:`dcpose_trt.export.int8._layout`.
            ``openvino``: no ONNX; an NNCF INT8 OpenVINO IR pair of a checkpoint
            (:func:`dcpose_trt.engine.openvino_ir.quantize_ir`).
    """

    precision: str = "int8"
    calib: Path | None = None
    calib_boxes: Path | None = None
    calib_samples: int = 256
    calib_split: str = "val"
    calib_method: str = "minmax"
    calib_batch: int = 8
    target: str = "tensorrt"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown --precision {self.precision!r}; choose one of: {', '.join(PRECISIONS)}")
        if self.calib_method not in CALIB_METHODS:
            raise InputError(f"unknown calibration method {self.calib_method!r}; choose one of: "
                             f"{', '.join(CALIB_METHODS)}")
        if self.target not in INT8_TARGETS:
            raise InputError(f"unknown INT8 --target {self.target!r}; choose one of: {', '.join(INT8_TARGETS)}")
        if self.target != "tensorrt" and self.precision != "int8":
            raise InputError("--target is an INT8 layout; FP16 has one form")
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
