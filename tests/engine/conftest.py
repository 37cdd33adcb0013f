"""Tiny DCPose ONNX files for engine tests: FP32 (gridsample DCN), FP16 and INT8 (Q/DQ).

The ONNX files come from the product's own export and quantize stages (``dcpose_trt.export``), so the
plans are built from exactly what ``dcpose-trt export`` / ``dcpose-trt quantize`` write.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def export_fp32(path: Path, preset: str = "tiny-128x96") -> Path:
    """The product's export (``dcpose-trt export --deform gridsample``) of ``preset`` (seeded random init)."""
    import torch

    from dcpose_trt.export import ExportConfig, export_onnx
    from dcpose_trt.model import build_dcpose

    torch.manual_seed(0)
    return export_onnx(build_dcpose(preset), path, ExportConfig(deform="gridsample", check=False))


def convert_fp16(src: Path, dst: Path) -> Path:
    """``dcpose-trt quantize --precision fp16``."""
    from dcpose_trt.export import QuantizeConfig, quantize_onnx

    return quantize_onnx(src, dst, QuantizeConfig(precision="fp16"))


def quantize_int8(src: Path, dst: Path, calib: Path) -> Path:
    """``dcpose-trt quantize --precision int8`` calibrated on real crops of a small synthetic dataset."""
    from dcpose_trt.export import QuantizeConfig, quantize_onnx

    return quantize_onnx(src, dst, QuantizeConfig(precision="int8", calib=calib, calib_samples=24,
                                                  calib_split="train"))


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


def _export_cache_key(preset: str) -> str:
    """Changes whenever the model code, this exporter recipe or torch/onnxscript change."""
    import hashlib
    from importlib import metadata

    import dcpose_trt.export as export_pkg
    import dcpose_trt.model as model_pkg

    h = hashlib.sha256(preset.encode())
    sources = [*Path(model_pkg.__file__).parent.glob("*.py"), *Path(export_pkg.__file__).parent.glob("*.py")]
    for src in sorted(sources) + [Path(__file__)]:
        h.update(src.read_bytes())
    for dist in ("torch", "onnxscript", "onnx"):
        h.update(metadata.version(dist).encode())
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def tiny_fp32_onnx(onnx_dir) -> Path:
    """The exported tiny model; the export (~30 s on 2 cores) is cached on disk between sessions."""
    pytest.importorskip("onnx")
    import os
    import shutil

    base = os.environ.get("DCPOSE_TRT_CACHE") or str(Path.home() / ".cache" / "dcpose_trt")
    cached = Path(base) / "test_onnx" / f"{TINY}-{_export_cache_key(TINY)}.onnx"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        export_fp32(tmp, TINY)
        tmp.replace(cached)
    return Path(shutil.copy(cached, onnx_dir / "tiny.onnx"))


@pytest.fixture(scope="session")
def tiny_fp16_onnx(tiny_fp32_onnx, onnx_dir) -> Path:
    pytest.importorskip("onnxruntime")
    return convert_fp16(tiny_fp32_onnx, onnx_dir / "tiny.fp16.onnx")


@pytest.fixture(scope="session")
def calib_data(tmp_path_factory) -> Path:
    from dcpose_trt.data.synth import SynthConfig, generate

    root = tmp_path_factory.mktemp("calib")
    generate(SynthConfig(out=root, videos=2, frames=8, seed=11, split_ratio=1.0, workers=1))
    return root


@pytest.fixture(scope="session")
def tiny_int8_onnx(tiny_fp32_onnx, onnx_dir, calib_data) -> Path:
    pytest.importorskip("onnxruntime")
    return quantize_int8(tiny_fp32_onnx, onnx_dir / "tiny.int8.onnx", calib_data)


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


@pytest.fixture
def plan(tiny_fp32_plan, tmp_path) -> Path:
    """A private copy of the FP32 plan (targets 8.6 and 8.9) and its sidecar, free to edit."""
    import shutil

    from dcpose_trt.engine import sidecar_path

    dst = tmp_path / tiny_fp32_plan.name
    shutil.copy(tiny_fp32_plan, dst)
    shutil.copy(sidecar_path(tiny_fp32_plan), sidecar_path(dst))
    return dst
