"""Defects 5-8 of [trt-contact], checked without a GPU.

5. Hardware-compatible plans: our plugin's PTX targets the lowest arch of the level and check-plan
   refuses a GPU below the recorded PTX arch.
6. TensorRT-RTX: REQUIRE_USER_ALLOCATION at build time and an eager-specialization runtime config at run
   time, checked against the real ``tensorrt_rtx`` module installed in the venv.
7. check-plan follows TensorRT's version-compatibility rule across majors (10 -> 11 yes, 8 -> 11 no).
8. Stream handles through ``cuda.bindings.utils.get_cuda_native_handle``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dcpose_trt.engine._trt import GpuInfo, Machine
from dcpose_trt.engine.plan import _gpu_reason, _version_reason, vc_loads

sys.path.insert(0, str(Path(__file__).parent))
from trt_recording import Recorder  # noqa: E402

# -- 7: version-compatible plans ---------------------------------------------------------------------

@pytest.mark.parametrize(("built", "runtime", "ok"), [
    ("10.3.0", "10.13.3", True),
    ("10.13.3", "10.3.0", False),   # never backwards
    ("10.13.3", "11.4.0", True),    # TensorRT 10 VC plans on 11 (11.x support matrix / engine compatibility)
    ("8.6.1", "10.3.0", True),
    ("8.6.1", "11.4.0", False),     # "No other combination across major versions is supported"
    ("11.4.0", "10.16.1", False),
    ("8.5.3", "8.6.1", False),      # VC exists from 8.6
])
def test_vc_rule(built, runtime, ok):
    meta = {"backend": {"name": "tensorrt", "version": built}, "target": {"version_compatible": True}}
    machine = Machine({"tensorrt": runtime}, None)
    assert (_version_reason(meta, machine) is None) == ok
    assert vc_loads(tuple(int(p) for p in built.split(".")), tuple(int(p) for p in runtime.split("."))) == ok


def test_non_vc_plans_stay_version_specific():
    meta = {"backend": {"name": "tensorrt", "version": "10.13.3"}, "target": {"version_compatible": False}}
    assert "version specific" in _version_reason(meta, Machine({"tensorrt": "11.4.0"}, None))


# -- 5: hardware-compatible plans with our plugin ----------------------------------------------------

def _ampere_plus(ptx_arch, gpu_cc="9.0"):
    build = {"plugin_impl": "aot"} | ({"plugin_ptx_arch": ptx_arch} if ptx_arch else {})
    return {"target": {"gpu": {"name": "NVIDIA H100", "compute_capability": gpu_cc}, "hardware_compat": "ampere+",
                       "compute_capabilities": []},
            "dcn": {"form": "plugin"}, "build": build}


@pytest.mark.parametrize(("ptx_arch", "gpu", "fits"), [
    (80, ("NVIDIA A10", "8.6"), True),
    (80, ("NVIDIA A100", "8.0"), True),
    (90, ("NVIDIA A10", "8.6"), False),
    (None, ("NVIDIA A10", "8.6"), False),  # older sidecar: PTX was compiled for the sm_90 build GPU
    (None, ("NVIDIA H200", "9.0"), True),
])
def test_plugin_ptx_arch_is_checked(ptx_arch, gpu, fits):
    reason = _gpu_reason(_ampere_plus(ptx_arch), Machine({}, GpuInfo(*gpu)))
    assert (reason is None) == fits, reason
    if not fits:
        assert "plugin PTX was compiled for sm_" in reason


def test_gridsample_ampere_plus_plans_are_not_restricted():
    meta = _ampere_plus(90)
    meta["dcn"] = {"form": "gridsample"}
    assert _gpu_reason(meta, Machine({}, GpuInfo("NVIDIA A10", "8.6"))) is None


def test_builder_compiles_plugin_ptx_for_the_level(monkeypatch):
    from dcpose_trt.engine.config import BuildConfig
    from dcpose_trt.engine.network import plugin_ptx_arch
    from dcpose_trt.engine.onnx_info import OnnxInfo, PluginUse
    from dcpose_trt.plugins.deform_conv import plugin

    monkeypatch.setenv("DCPOSE_TRT_PTX_ARCH", "90")  # stands for the building GPU (sm_90)
    info = OnnxInfo(path=Path("m.onnx"), sha256="", opset=19, precision="fp16", dcn_form="plugin",
                    plugins=(PluginUse("P", "dcpose_trt", "1", 5, "dcpose_trt"),), preset=None, metadata={},
                    inputs=(), outputs=())
    try:
        assert plugin_ptx_arch(info, BuildConfig(hardware_compat="ampere+")) == 80
        assert plugin.current_arch() == 80  # what the aot_impl compiles for during this build
        assert plugin_ptx_arch(info, BuildConfig(hardware_compat="same-cc")) == 90
        assert plugin_ptx_arch(info, BuildConfig()) == 90
    finally:
        plugin.set_ptx_arch(None)


# -- 6: TensorRT-RTX ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rtx():
    return pytest.importorskip("tensorrt_rtx")


def test_rtx_builder_requires_user_allocation(rtx):
    from dcpose_trt.engine.trt_config import require_user_allocation

    logger = rtx.Logger(rtx.Logger.ERROR)
    config = rtx.Builder(logger).create_builder_config()  # TensorRT-RTX builds without a GPU
    assert not config.get_flag(rtx.BuilderFlag.REQUIRE_USER_ALLOCATION)
    assert require_user_allocation(rtx, config) == "REQUIRE_USER_ALLOCATION"
    assert config.get_flag(rtx.BuilderFlag.REQUIRE_USER_ALLOCATION)


def test_rtx_context_specializes_eagerly_without_its_own_graphs(rtx):
    from dcpose_trt.runtime.tensorrt.trt_api import create_context

    rec = Recorder(rtx)
    create_context(rec.module(), rec.module().ICudaEngine)
    assert rec.calls == [
        ["ICudaEngine.create_runtime_config", []],
        ["ICudaEngine.create_runtime_config().set_execution_context_allocation_strategy",
         ["ExecutionContextAllocationStrategy.USER_MANAGED"]],
        ["ICudaEngine.create_runtime_config().dynamic_shapes_kernel_specialization_strategy=",
         "DynamicShapesKernelSpecializationStrategy.EAGER"],
        ["ICudaEngine.create_runtime_config().cuda_graph_strategy=", "CudaGraphStrategy.DISABLED"],
        ["ICudaEngine.create_execution_context", ["ICudaEngine.create_runtime_config()"]],
    ]


# -- 8: native handles -------------------------------------------------------------------------------

def test_stream_pointer_through_native_handle(monkeypatch):
    rt = pytest.importorskip("cuda.bindings.runtime")
    utils = pytest.importorskip("cuda.bindings.utils")
    from dcpose_trt.runtime.tensorrt import cuda

    seen = []
    real = utils.get_cuda_native_handle
    monkeypatch.setattr(utils, "get_cuda_native_handle", lambda h: seen.append(h) or real(h))
    handle = rt.cudaStream_t(0x1234)
    assert cuda.native_handle(handle) == 0x1234 and seen == [handle]
    stream = cuda.Stream.__new__(cuda.Stream)  # no GPU: wrap an existing handle without creating one
    stream.handle, stream._closed = handle, True
    assert stream.ptr == 0x1234 and len(seen) == 2
