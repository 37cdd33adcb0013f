"""TensorRT registration of our deformable-conv plugin (``contract.PLUGIN_ID``), a Quickly Deployable Plugin.

The ONNX node it serves is written by the exporter (:func:`dcpose_trt.export.deform_ops.translation_table`
with ``"plugin"``): ONNX ``DeformConv`` semantics in domain ``dcpose_trt`` with
``plugin_namespace="dcpose_trt"``. The contract, checked by ``tests/plugins/test_deform_export.py``:

* inputs, in order (:data:`INPUTS`): ``X [B, Cin, H, W]``, ``W [Cout, Cin / group, kh, kw]``,
  ``offset [B, 2 * offset_group * kh * kw, Ho, Wo]``, ``B [Cout]``, ``mask [B, offset_group * kh * kw,
  Ho, Wo]`` — all five present (DCPose always has bias and mask); all FP32 or all FP16;
* attributes the plugin reads (:data:`ATTRIBUTE_TYPES`, the ONNX ``DeformConv`` ones): ``strides``
  [2], ``pads`` [4] (symmetric), ``dilations`` [2], ``group``, ``offset_group``; the parser forwards
  only these (``kernel_shape`` and ``plugin_namespace`` are not plugin fields; kh, kw come from W), each
  as a kINT32 field; the plugin declares all five as int32 arrays (NumPy >= 2.4, see :func:`_define`);
* output ``[B, Cout, Ho, Wo]`` with X's type.

:func:`register_plugin` imports tensorrt (QDP needs >= 10.6; ahead-of-time >= 10.9) and runs, once:

* ``@trtp.register``: shapes and types as above (Ho, Wo are the offset's);
* ``@trtp.autotune``: all-FP32 or all-FP16 I/O, LINEAR, tactics = :data:`TACTICS` (tile sizes);
* ``@trtp.aot_impl``: the PTX of :mod:`.aot` (cached) for the building GPU's arch
  (the engine builder sets sm_80 for ``--hardware-compat ampere+``, :func:`set_ptx_arch`;
  ``DCPOSE_TRT_PTX_ARCH`` overrides the build GPU's arch otherwise), a
  symbolic grid from the output shape and the kernel's int32 scalars as ``SymInt32`` extra args; such
  an engine runs in C++/trtexec without Python;
* ``@trtp.impl``: the same kernel launched from Python through torch/Triton (debugging; the process
  that runs a JIT engine must call :func:`register_plugin` first).

With both implementations registered, TensorRT needs a choice: the engine builder sets
``NetworkDefinitionCreationFlag.PREFER_AOT_PYTHON_PLUGINS`` (or a node may carry ``aot=1``).

This module deliberately has no ``from __future__ import annotations``: ``tensorrt.plugin`` inspects
the decorated functions' annotations as real objects.
"""

import os
import threading

from dcpose_trt._deps import require
from dcpose_trt._env import at_least, local_gpu
from dcpose_trt.errors import PluginError
from dcpose_trt.plugins.deform_conv import (
    PLUGIN_ID,
    TACTICS,
    block_co_for,
)

INPUTS = ("X", "W", "offset", "B", "mask")  # the node's input order = the kernel's pointer order
ATTRIBUTE_TYPES = {"strides": "ints[2]", "pads": "ints[4]", "dilations": "ints[2]", "group": "int",
                   "offset_group": "int"}  # fmt: skip
MIN_TRT_AOT = "10.9"

_lock = threading.Lock()
_registered: dict[str, object] = {}


def aot_extra_args(x, w, o, cout_g, offset_group: int, conv: tuple[int, ...]) -> list:
    """The ``aot_impl``'s extra kernel arguments, in :data:`~dcpose_trt.plugins.deform_conv.SCALAR_ARGS`
    order: TensorRT passes them as int32 between the input and the output pointers.

    ``x``, ``w``, ``o``: shapes of X, W and the output (``trtp.ShapeExprs`` at build time, or plain ints);
    ``conv``: ``(stride_h, stride_w, pad_h, pad_w, dil_h, dil_w)``.
    """
    return [x[1], x[2], x[3], o[1], o[2], o[3], w[1], cout_g, x[1] // offset_group, *conv]


_ptx_arch: int | None = None  # set by the engine builder for hardware-compatible plans


def set_ptx_arch(arch: int | None) -> None:
    """Compile the AOT PTX for ``arch`` (e.g. 80 for ``--hardware-compat ampere+``); None: the build GPU's."""
    global _ptx_arch
    _ptx_arch = arch


def current_arch() -> int:
    """Compute capability (e.g. 86) the AOT PTX is compiled for: :func:`set_ptx_arch`'s, else
    ``DCPOSE_TRT_PTX_ARCH``, else the CUDA runtime's current device (the one TensorRT builds on), else the
    first GPU torch or nvidia-smi sees."""
    if _ptx_arch is not None:
        return _ptx_arch
    env = os.environ.get("DCPOSE_TRT_PTX_ARCH")
    if env:
        from dcpose_trt.plugins.deform_conv.aot import parse_archs

        return parse_archs(env)[0]
    arch = _builder_device_arch()
    if arch is not None:
        return arch
    gpu = local_gpu()  # no cuda-python: the first GPU torch or nvidia-smi sees
    if gpu is not None:
        major, minor = (int(v) for v in gpu.compute_capability.split(".")[:2])
        return 10 * major + minor
    raise PluginError("no CUDA device to compile the plugin for; set DCPOSE_TRT_PTX_ARCH (e.g. 86)")


def _builder_device_arch() -> int | None:
    """Compute capability of the device TensorRT builds on: the CUDA runtime's current device
    (``cudaGetDevice``, which ``cudaSetDevice`` / ``torch.cuda.set_device`` choose), not GPU 0; None without
    cuda-python or a device."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        return None
    try:
        err, dev = cudart.cudaGetDevice()
        if err != cudart.cudaError_t.cudaSuccess:
            return None
        attr = cudart.cudaDeviceAttr
        e1, major = cudart.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMajor, dev)
        e2, minor = cudart.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMinor, dev)
    except Exception:  # noqa: BLE001 - no driver library at all: fall back to the other probes
        return None
    if e1 == e2 == cudart.cudaError_t.cudaSuccess:
        return 10 * major + minor
    return None


def _const(expr, what: str) -> int:
    """The build-time value of a TensorRT shape expression (weights have constant shapes)."""
    if getattr(expr, "is_fake", False) or not expr.is_constant:
        raise PluginError(f"{PLUGIN_ID}: {what} must be a build-time constant (the weights' shape)")
    return int(expr.constant_value())


def register_plugin(lazy: bool = False):
    """Import ``tensorrt.plugin`` and register :data:`~dcpose_trt.contract.PLUGIN_ID` once; returns ``trtp``.

    Safe to call repeatedly and from several threads. Must run before parsing an ONNX model with the
    custom node (and, for JIT-only engines, before deserializing them).

    Args:
        lazy: ``tensorrt.plugin``'s ``lazy_register``: define the plugin in Python now but add its
            creator to TensorRT's plugin registry only when ``trtp.op.dcpose_trt.<PLUGIN_NAME>(...)`` is
            first used. The ONNX parser needs the eager default.

    Raises:
        MissingDependencyError: tensorrt is not installed.
        PluginError: tensorrt is older than 10.6 (no ``tensorrt.plugin``).
    """
    with _lock:
        if "trtp" in _registered:
            return _registered["trtp"]
        trt = require("tensorrt", "trt", "registering the deformable-conv TensorRT plugin")
        if not at_least(trt.__version__, "10.6"):
            raise PluginError(
                f"TensorRT {trt.__version__} has no tensorrt.plugin (Quickly Deployable Plugins need >= 10.6, "
                "ahead-of-time >= 10.9); export with --deform gridsample or deformconv instead"
            )
        import tensorrt.plugin as trtp

        _define(trt, trtp, lazy)
        _registered["trtp"] = trtp
        return trtp


def conv_params(strides, pads, dilations) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """ONNX ``strides`` [2], ``pads`` [top, left, bottom, right], ``dilations`` [2] → (stride, padding,
    dilation) pairs; raises :class:`PluginError` for asymmetric padding (the kernel pads symmetrically)."""
    s, p, d = (tuple(int(v) for v in a) for a in (strides, pads, dilations))
    if len(s) != 2 or len(d) != 2 or len(p) != 4:
        raise PluginError(f"{PLUGIN_ID}: expected strides[2], pads[4], dilations[2], got {s}, {p}, {d}")
    if p[:2] != p[2:]:
        raise PluginError(f"{PLUGIN_ID}: pads must be symmetric (top, left == bottom, right), got {list(p)}")
    return (s[0], s[1]), (p[0], p[1]), (d[0], d[1])


def scalar_attr(value, name: str) -> int:
    """An ONNX INT attribute as the plugin receives it (a 1-element int32 array, or an int) -> int."""
    import numpy as np

    arr = np.asarray(value).reshape(-1)
    if arr.size != 1:
        raise PluginError(f"{PLUGIN_ID}: attribute '{name}' must be one integer, got {arr.tolist()}")
    return int(arr[0])


def plugin_attributes(strides, pads, dilations, group, offset_group):
    """The five attributes as TensorRT hands them to the plugin -> ``(stride, padding, dilation, group,
    offset_group)`` with pairs for the first three (see :func:`conv_params`)."""
    stride, padding, dilation = conv_params(strides, pads, dilations)
    return stride, padding, dilation, scalar_attr(group, "group"), scalar_attr(offset_group, "offset_group")


def _define(trt, trtp, lazy: bool) -> None:
    """Run the ``tensorrt.plugin`` decorators (annotations must be the real trtp classes)."""
    import numpy as np
    import numpy.typing as npt

    # Every attribute, INT ones included, is declared an int32 array: the ONNX parser passes an INT as a
    # 1-element kINT32 field, and the creator of TensorRT 10.9-10.15 converts a field declared `int` with
    # int(array) - a TypeError on NumPy >= 2.4 (tests/plugins/test_plugin_fields.py). Arrays are copied
    # with astype on every release; plugin_attributes() unwraps the scalars.
    Ints = npt.NDArray[np.int32]

    @trtp.register(PLUGIN_ID, lazy_register=lazy)
    def deform_conv_desc(
        X: trtp.TensorDesc,
        W: trtp.TensorDesc,
        offset: trtp.TensorDesc,
        B: trtp.TensorDesc,
        mask: trtp.TensorDesc,
        strides: Ints,
        pads: Ints,
        dilations: Ints,
        group: Ints,
        offset_group: Ints,
    ) -> trtp.TensorDesc:
        plugin_attributes(strides, pads, dilations, group, offset_group)  # reject bad attributes at build time
        # [B, Cout, Ho, Wo]: Ho, Wo are the offset's (it lives on the output grid), which avoids symbolic
        # conv-size arithmetic and ties the output to the offset the exporter computed.
        x, w, off = X.shape_expr, W.shape_expr, offset.shape_expr
        return trtp.from_shape_expr((x[0], w[0], off[2], off[3]), dtype=X.dtype)

    @trtp.autotune(PLUGIN_ID)
    def deform_conv_autotune(
        X: trtp.TensorDesc,
        W: trtp.TensorDesc,
        offset: trtp.TensorDesc,
        B: trtp.TensorDesc,
        mask: trtp.TensorDesc,
        outputs: tuple[trtp.TensorDesc],
    ) -> list[trtp.AutoTuneCombination]:
        # '|' ties the six I/O types together: all FP32 or all FP16; each gets every tile tactic.
        types = ", ".join(["FP32|FP16"] * (len(INPUTS) + 1))
        return [trtp.AutoTuneCombination(types, "LINEAR", sorted(TACTICS))]

    if hasattr(trtp, "aot_impl") and at_least(trt.__version__, MIN_TRT_AOT):

        @trtp.aot_impl(PLUGIN_ID)
        def deform_conv_aot_impl(
            X: trtp.TensorDesc,
            W: trtp.TensorDesc,
            offset: trtp.TensorDesc,
            B: trtp.TensorDesc,
            mask: trtp.TensorDesc,
            strides: Ints,
            pads: Ints,
            dilations: Ints,
            group: Ints,
            offset_group: Ints,
            outputs: tuple[trtp.TensorDesc],
            tactic: int,
        ) -> tuple[str | bytes, str | bytes, trtp.KernelLaunchParams, trtp.SymIntExprs]:
            from dcpose_trt.plugins.deform_conv.aot import DeformConfig, compile_kernel

            (sh, sw), (ph, pw), (dh, dw), group, offset_group = plugin_attributes(
                strides, pads, dilations, group, offset_group)
            dtype = "fp16" if X.dtype == trt.float16 else "fp32"
            w = W.shape_expr
            cout, kh, kw = _const(w[0], "Cout"), _const(w[2], "kernel height"), _const(w[3], "kernel width")
            cout_g = cout // group
            x = X.shape_expr
            # One input channel per offset group (DCPose) gets the loop-free kernel variant.
            single = x[1].is_constant and _const(x[1], "Cin") == offset_group
            cfg = DeformConfig(f"{kh}x{kw}-{cout_g}", kh, kw, cout_g, single_channel_groups=single)
            kernel = compile_kernel(current_arch(), dtype, cfg, tactic if tactic in TACTICS else 1)
            o = outputs[0].shape_expr
            scalars = aot_extra_args(x, w, o, cout_g, offset_group, (sh, sw, ph, pw, dh, dw))
            extra_args = trtp.SymIntExprs.from_tuple([trtp.SymInt32(v) for v in scalars])
            params = trtp.KernelLaunchParams()
            # grid = (cdiv(Ho * Wo, BLOCK_P), B * group * cdiv(Cout_g, BLOCK_CO), 1), as launch_geometry().
            params.grid_x = trtp.cdiv(o[2] * o[3], kernel.constexprs["BLOCK_P"])
            params.grid_y = o[0] * (group * -(-cout_g // block_co_for(cout_g)))
            params.grid_z = 1
            params.block_x = kernel.num_warps * 32
            params.block_y = 1
            params.block_z = 1
            params.shared_mem = kernel.shared_mem
            return kernel.kernel_name, kernel.ptx, params, extra_args

    @trtp.impl(PLUGIN_ID)
    def deform_conv_impl(
        X: trtp.Tensor,
        W: trtp.Tensor,
        offset: trtp.Tensor,
        B: trtp.Tensor,
        mask: trtp.Tensor,
        strides: Ints,
        pads: Ints,
        dilations: Ints,
        group: Ints,
        offset_group: Ints,
        outputs: tuple[trtp.Tensor],
        stream: int,
        tactic: int,
    ) -> None:
        import torch

        from dcpose_trt.plugins.deform_conv import launch_kernel

        stride, padding, dilation, _, offset_group = plugin_attributes(strides, pads, dilations, group,
                                                                        offset_group)
        with torch.cuda.stream(torch.cuda.ExternalStream(stream)):
            x, w, off, b, m = (torch.as_tensor(t, device="cuda") for t in (X, W, offset, B, mask))
            out = torch.as_tensor(outputs[0], device="cuda")
            launch_kernel(x, w, off, b, m, out, stride, padding, dilation, offset_group,
                          tactic if tactic in TACTICS else None)  # fmt: skip
