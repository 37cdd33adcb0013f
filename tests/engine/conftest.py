"""Tiny DCPose ONNX files for engine tests: FP32 (gridsample DCN), FP16 and INT8 (Q/DQ).

TODO(lead): switch to the ``dcpose_trt.export`` APIs (``--deform gridsample``, ``--precision fp16/int8``)
once they exist. Until then this module makes equivalent files itself: the dynamo exporter at opset 19
with a dynamic batch, onnxconverter-common for FP16 (I/O kept FP32, GridSample kept FP32) and ONNX
Runtime ``quantize_static`` (QDQ, symmetric, per-channel Conv weights) for INT8, and writes the
``dcpose_trt.preset`` / ``dcpose_trt.deform`` metadata the exporter will write.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _set_metadata(model, preset: str, deform: str = "gridsample") -> None:
    import onnx

    keep = [p for p in model.metadata_props if p.key not in ("dcpose_trt.preset", "dcpose_trt.deform")]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in keep},
                                        "dcpose_trt.preset": preset, "dcpose_trt.deform": deform})


def export_fp32(path: Path, preset: str = "tiny-128x96") -> Path:
    """Export ``preset`` with the GridSample DCN: ``frames[B,9,H,W]``, ``margin[B,2]`` -> ``heatmaps``."""
    import onnx
    import torch

    from dcpose_trt.model import build_dcpose, deform_conv2d_gridsample, use_deform_conv

    torch.manual_seed(0)
    model = build_dcpose(preset).eval()
    h, w = model.preset.image_size
    frames, margin = torch.randn(2, 9, h, w), torch.rand(2, 2)
    batch = torch.export.Dim("batch", min=1, max=64)
    with use_deform_conv(model, deform_conv2d_gridsample), torch.no_grad():
        program = torch.onnx.export(model, (frames, margin), dynamo=True, opset_version=19,
                                    input_names=["frames", "margin"], output_names=["heatmaps"],
                                    dynamic_shapes=({0: batch}, {0: batch}), verbose=False)
    proto = program.model_proto
    _set_metadata(proto, preset)
    onnx.save(proto, str(path))
    return path


def convert_fp16(src: Path, dst: Path) -> Path:
    """FP16 weights and activations; network I/O and the GridSample sampling stay FP32."""
    import onnx
    from onnxconverter_common import float16

    model = onnx.load(str(src))
    block = list(float16.DEFAULT_OP_BLOCK_LIST) + ["GridSample"]
    half = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=block)
    onnx.save(half, str(dst))
    return dst


def _calibration_batches(h: int, w: int, n: int = 6, batch: int = 2, seed: int = 0):
    """Smooth, image-like crops (low-frequency colour blobs, ImageNet-normalised) and margins."""
    rng = np.random.default_rng(seed)
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
    for _ in range(n):
        coarse = rng.random((batch, 3, h // 16, w // 16), dtype=np.float32)
        img = coarse.repeat(16, axis=2).repeat(16, axis=3)  # blocky low-frequency picture in [0, 1]
        # previous / next frames: the same picture slightly shifted, as in a video
        prev, nxt = np.roll(img, 2, axis=3), np.roll(img, -2, axis=2)
        frames = np.concatenate([(f - mean) / std for f in (img, prev, nxt)], axis=1).astype(np.float32)
        margin = rng.uniform(0.5, 2.0, (batch, 2)).astype(np.float32)
        yield {"frames": frames, "margin": margin}


def quantize_int8(src: Path, dst: Path, h: int, w: int) -> Path:
    """INT8 Q/DQ on Conv (symmetric activations and weights, per-channel weights), calibrated with ORT."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(_calibration_batches(h, w))

        def get_next(self):
            return next(self._it, None)

    quantize_static(
        str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False},
    )
    return dst


# --------------------------------------------------------------------------------------------------
# Fixtures. ONNX files and TensorRT-RTX plans are made once per session: the export is the slow part
# (~30 s on 2 cores); each RTX build of the tiny model takes 2-10 s on a CPU.

TINY = "tiny-128x96"


@pytest.fixture(scope="session")
def onnx_exporter():
    """``export_fp32(path, preset)`` for tests that need another preset."""
    return export_fp32


@pytest.fixture(scope="session")
def onnx_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="session")
def tiny_fp32_onnx(onnx_dir) -> Path:
    pytest.importorskip("onnx")
    return export_fp32(onnx_dir / "tiny.onnx", TINY)


@pytest.fixture(scope="session")
def tiny_fp16_onnx(tiny_fp32_onnx, onnx_dir) -> Path:
    pytest.importorskip("onnxconverter_common")
    return convert_fp16(tiny_fp32_onnx, onnx_dir / "tiny.fp16.onnx")


@pytest.fixture(scope="session")
def tiny_int8_onnx(tiny_fp32_onnx, onnx_dir) -> Path:
    pytest.importorskip("onnxruntime")
    return quantize_int8(tiny_fp32_onnx, onnx_dir / "tiny.int8.onnx", 128, 96)


@pytest.fixture(scope="session")
def rtx():
    """The real TensorRT-RTX builder (``pip install 'dcpose-trt[rtx]'``); it compiles plans without a GPU."""
    return pytest.importorskip("tensorrt_rtx")


@pytest.fixture(scope="session")
def plan_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("plans")


def _build(onnx_path: Path, out: Path, **cfg):
    from dcpose_trt.engine import BuildConfig, build_engine

    return build_engine(onnx_path, out, BuildConfig(backend="tensorrt-rtx", progress=False, **cfg))


@pytest.fixture(scope="session")
def tiny_fp32_plan(rtx, tiny_fp32_onnx, plan_dir) -> Path:
    # Explicit RTX targets: exercises IBuilderConfig.set_compute_capability and gives check() a target set.
    return _build(tiny_fp32_onnx, plan_dir / "tiny.fp32.plan", profiles=((1, 4, 8),),
                  compute_capabilities=("8.6", "8.9"))


@pytest.fixture(scope="session")
def tiny_fp16_plan(rtx, tiny_fp16_onnx, plan_dir) -> Path:
    return _build(tiny_fp16_onnx, plan_dir / "tiny.fp16.plan", profiles=((1, 1, 1), (2, 8, 8)))


@pytest.fixture(scope="session")
def tiny_int8_plan(rtx, tiny_int8_onnx, plan_dir) -> Path:
    return _build(tiny_int8_onnx, plan_dir / "tiny.int8.plan", profiles=((1, 8, 32),))
