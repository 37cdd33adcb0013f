"""On a GPU: the native Triton kernel vs torchvision CUDA vs GridSample at DCPose's shapes, and the
ahead-of-time PTX loaded with cuda-python and launched the way TensorRT launches it."""

from __future__ import annotations

import ctypes

import pytest
import torch

from dcpose_trt.model.deform import deform_conv2d_gridsample, deform_conv2d_torchvision
from dcpose_trt.plugins.deform_conv import deform_conv2d, launch_geometry

pytestmark = pytest.mark.gpu

DILATIONS = (3, 6, 9, 12, 15)
TOL = {torch.float32: 1e-4, torch.float16: 1e-2}


def rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    ref = ref.double()
    return ((got.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()


def dcpose_inputs(persons: int, dtype: torch.dtype, seed: int = 0) -> dict:
    """One PCN layer on 96×72 heatmaps: 17 channels, 17 offset groups, 3×3, raw masks, large offsets."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    kw = {"device": "cuda", "generator": g}
    return {
        "input": torch.randn(persons, 17, 96, 72, **kw).to(dtype),
        "offset": (torch.randn(persons, 306, 96, 72, **kw) * 8).to(dtype),
        "weight": torch.randn(17, 17, 3, 3, **kw).to(dtype),
        "bias": torch.randn(17, **kw).to(dtype),
        "mask": torch.randn(persons, 153, 96, 72, **kw).to(dtype),
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("d", DILATIONS)
def test_native_vs_torchvision_vs_gridsample(d, dtype):
    args = dcpose_inputs(8, dtype, seed=d)
    got = deform_conv2d(**args, padding=d, dilation=d)
    # fp32 references on the same (possibly fp16-rounded) values.
    ref_args = {n: t.float() for n, t in args.items()}
    tv = deform_conv2d_torchvision(**ref_args, padding=d, dilation=d)
    gs = deform_conv2d_gridsample(**ref_args, padding=d, dilation=d)
    assert got.dtype == dtype and got.shape == (8, 17, 96, 72)
    assert rel_err(gs, tv) < 1e-4
    assert rel_err(got, tv) < TOL[dtype]


def _check(result):
    from cuda.bindings import driver as cu

    err = result[0] if isinstance(result, tuple) else result
    assert err == cu.CUresult.CUDA_SUCCESS, err
    return result[1] if isinstance(result, tuple) and len(result) == 2 else result


@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
@pytest.mark.parametrize("tactic", [1, 2])
def test_aot_ptx_launched_with_cuda_python(dtype, tactic, tmp_path, monkeypatch):
    """PTX from aot.compile_kernel → cuModuleLoadData → cuLaunchKernel with exactly TensorRT's AOT
    argument list (input pointers, int32 extra args, output pointer; nothing else) and launch geometry =
    the JIT result."""
    cu = pytest.importorskip("cuda.bindings.driver")
    from dcpose_trt.plugins.deform_conv.aot import compile_kernel

    monkeypatch.setenv("DCPOSE_TRT_CACHE", str(tmp_path))
    major, minor = torch.cuda.get_device_capability()
    kernel = compile_kernel(10 * major + minor, dtype, "dcpose", tactic=tactic)
    tdtype = torch.float16 if dtype == "fp16" else torch.float32
    d = 9
    a = dcpose_inputs(3, tdtype, seed=1)
    expected = deform_conv2d(**a, padding=d, dilation=d)

    torch.cuda.synchronize()  # torch has made the primary context current
    module = _check(cu.cuModuleLoadData(kernel.ptx.encode() + b"\0"))
    fn = _check(cu.cuModuleGetFunction(module, kernel.kernel_name.encode()))
    geo = launch_geometry(tuple(a["input"].shape), (17, 17, 3, 3), 17, 1, d, d, tactic=tactic)
    assert geo.constexprs == kernel.constexprs and geo.block[0] == kernel.num_warps * 32
    out = torch.full_like(expected, float("nan"))
    pointers = [a["input"], a["weight"], a["offset"], a["bias"], a["mask"]]
    values = [t.data_ptr() for t in pointers] + list(geo.scalars) + [out.data_ptr()]
    types = [ctypes.c_void_p] * 5 + [ctypes.c_int] * len(geo.scalars) + [ctypes.c_void_p]
    assert len(values) == kernel.num_params
    stream = cu.CUstream(torch.cuda.current_stream().cuda_stream)
    _check(cu.cuLaunchKernel(fn, *geo.grid, *geo.block, kernel.shared_mem, stream, (tuple(values), tuple(types)), 0))
    torch.cuda.synchronize()
    _check(cu.cuModuleUnload(module))
    assert rel_err(out, expected) < 1e-5
