"""Benchmark pieces for CPU rows: the CPU-extension description, BF16 routing, torch BF16 autocast."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.backends import Skip, TorchAutocastBackend, open_backend
from benchmarks.config import BenchConfig
from benchmarks.machine import cpu_extensions


def test_cpu_extensions_from_flags():
    flags = "fpu sse2 avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16".split()
    assert cpu_extensions(flags) == ["AVX2", "FMA", "AVX-512F", "AVX-512BW", "AVX-512 VNNI", "AVX-512 BF16",
                                     "AMX", "AMX-INT8", "AMX-BF16"]
    assert cpu_extensions(["sse2", "avx2"]) == ["AVX2"]
    assert isinstance(cpu_extensions(), list)  # this machine's /proc/cpuinfo (empty where there is none)


@pytest.mark.parametrize("backend", ["onnxruntime", "tensorrt"])
def test_bf16_is_torch_and_openvino_only(backend):
    with pytest.raises(Skip, match="BF16"):
        open_backend(backend, "bf16", "exact", None, BenchConfig(), "cpu", False)


def test_torch_int8_skipped():
    with pytest.raises(Skip, match="FP32 eager and BF16 autocast"):
        open_backend("torch", "int8", "exact", None, BenchConfig(), "cpu", False)


def test_torch_bf16_autocast_runs_every_part(tiny_model_perturbed):
    from dcpose_trt.runtime import TorchBackend

    fp32 = TorchBackend(tiny_model_perturbed)
    bf16 = TorchAutocastBackend(fp32)
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((2, 9, 128, 96)).astype(np.float32)
    margin = np.ones((2, 2), np.float32)
    a, b = fp32.infer(frames, margin), bf16.infer(frames, margin)
    assert b.shape == a.shape and b.dtype == np.float32 and np.isfinite(b).all()
    assert not np.array_equal(a, b)  # autocast is engaged (BF16 rounding changes the heatmaps)
    hm = bf16.backbone(frames[:, :3])
    assert bf16.head(hm, hm, hm, margin).shape == a.shape  # the DCNs run in FP32 inside autocast
