"""TensorRT registration of ``dcpose_trt::DeformConv`` and the ONNX export hook that produces its node.

TensorRT side (Quickly Deployable Plugin, ``tensorrt.plugin``; QDP needs TensorRT >= 10.6, the
ahead-of-time path >= 10.9): :func:`register_plugin` imports tensorrt and runs, once,

* ``@trtp.register``: inputs ``(input, offset, mask, weight, bias)``, int attributes
  ``stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups``; output
  ``[B, Cout, Ho, Wo]`` with the input's dtype (Ho, Wo are taken from the offset's shape);
* ``@trtp.autotune``: all-FP32 or all-FP16 I/O, LINEAR, tactics = :data:`TACTICS` (tile sizes);
* ``@trtp.aot_impl``: PTX of :mod:`.aot` for the building GPU's arch (``DCPOSE_TRT_PTX_ARCH`` overrides
  it, e.g. ``80`` for a hardware-compatible Ampere+ engine), symbolic grid from the output shape and
  the kernel's int32 scalars as ``SymInt32`` extra args. The engine then runs in C++/trtexec without
  Python;
* ``@trtp.impl``: the same kernel launched from Python with torch/Triton (debugging; the process that
  runs such an engine must call :func:`register_plugin` first).

A network made from ONNX chooses AOT through the node attribute ``aot=1`` (written by the export hook)
or the builder flag ``PREFER_AOT_PYTHON_PLUGINS``; without either TensorRT refuses a plugin that has
both implementations.

Export side (no tensorrt needed), for ``torch.onnx.export(..., dynamo=True)``:

* :func:`export_op` — the ``torch.library`` custom op ``dcpose_trt::deform_conv2d(input, offset, mask,
  weight, bias, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups)``;
  its eager implementation is torchvision (CPU and CUDA), its fake implementation gives the shape.
* :func:`deform_conv2d_for_export` — torchvision's signature; fills a missing mask (ones) and bias
  (zeros), derives groups and offset groups from the shapes, and calls the op. A model's DCN layer
  calls this in export mode.
* :func:`onnx_translation_table` — ``{op: translation}`` for ``torch.onnx.export(...,
  custom_translation_table=...)``; the translation emits one node ``DeformConv`` in domain
  ``dcpose_trt`` with ``plugin_namespace="dcpose_trt"``, the eight int attributes and ``aot``.

The exporter therefore does::

    from dcpose_trt.plugins.deform_conv.plugin import deform_conv2d_for_export, onnx_translation_table
    # inside the model's forward in export mode:  y = deform_conv2d_for_export(x, off, w, b, ...,mask=m)
    torch.onnx.export(model, args, f, dynamo=True, opset_version=19,
                      custom_translation_table=onnx_translation_table())

This module deliberately has no ``from __future__ import annotations``: ``tensorrt.plugin`` and
``torch.library`` read the decorated functions' annotations as real objects.
"""

import functools
import os
import threading
from typing import TYPE_CHECKING

from dcpose_trt._deps import require
from dcpose_trt.errors import PluginError
from dcpose_trt.plugins.deform_conv import (
    OP_DOMAIN,
    OP_TYPE,
    PLUGIN_ID,
    PLUGIN_NAMESPACE,
    TACTICS,
    block_co_for,
)

if TYPE_CHECKING:
    from torch import Tensor

ATTRIBUTES = ("stride_h", "stride_w", "pad_h", "pad_w", "dilation_h", "dilation_w", "groups", "offset_groups")
INPUTS = ("input", "offset", "mask", "weight", "bias")
EXPORT_OP_NAME = "dcpose_trt::deform_conv2d"
MIN_TRT_AOT = (10, 9)

_lock = threading.Lock()
_registered: dict[str, object] = {}


def _trt_version(trt) -> tuple[int, int]:
    parts = str(trt.__version__).split(".")
    return int(parts[0]), int(parts[1])


def current_arch() -> int:
    """Compute capability (e.g. 86) the AOT PTX is compiled for: ``DCPOSE_TRT_PTX_ARCH`` or the GPU of
    the current CUDA context (the one TensorRT builds on)."""
    env = os.environ.get("DCPOSE_TRT_PTX_ARCH")
    if env:
        from dcpose_trt.plugins.deform_conv.aot import parse_archs

        return parse_archs(env)[0]
    try:
        from cuda.bindings import driver as cu
    except ImportError:
        cu = None
    if cu is not None:
        err, dev = cu.cuCtxGetDevice()
        if err != cu.CUresult.CUDA_SUCCESS:
            (err,) = cu.cuInit(0)
            err, dev = cu.cuDeviceGet(0)
        if err == cu.CUresult.CUDA_SUCCESS:
            attr = cu.CUdevice_attribute
            e1, major = cu.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev)
            e2, minor = cu.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev)
            if e1 == e2 == cu.CUresult.CUDA_SUCCESS:
                return 10 * major + minor
    import torch

    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        return 10 * major + minor
    raise PluginError("no CUDA device to compile the plugin for; set DCPOSE_TRT_PTX_ARCH (e.g. 86)")


def _const(expr, what: str) -> int:
    """The build-time value of a TensorRT shape expression (weights have constant shapes)."""
    if getattr(expr, "is_fake", False) or not expr.is_constant:
        raise PluginError(f"{PLUGIN_ID}: {what} must be a build-time constant (the weights' shape)")
    return int(expr.constant_value())


def register_plugin():
    """Import ``tensorrt.plugin`` and register ``dcpose_trt::DeformConv`` once; returns ``trtp``.

    Safe to call repeatedly and from several threads. Must run before parsing an ONNX model with the
    custom node (and, for JIT-only engines, before deserializing them).

    Raises:
        MissingDependencyError: tensorrt is not installed.
        PluginError: tensorrt is older than 10.6 (no ``tensorrt.plugin``).
    """
    with _lock:
        if "trtp" in _registered:
            return _registered["trtp"]
        trt = require("tensorrt", "trt", "registering the deformable-conv TensorRT plugin")
        if _trt_version(trt) < (10, 6):
            raise PluginError(
                f"TensorRT {trt.__version__} has no tensorrt.plugin (Quickly Deployable Plugins need >= 10.6, "
                "ahead-of-time >= 10.9); export with --deform gridsample or deformconv instead"
            )
        import tensorrt.plugin as trtp

        _define(trt, trtp)
        _registered["trtp"] = trtp
        return trtp


def _define(trt, trtp) -> None:
    """Run the ``tensorrt.plugin`` decorators (annotations must be the real trtp classes)."""
    @trtp.register(PLUGIN_ID)
    def deform_conv_desc(
        input: trtp.TensorDesc,
        offset: trtp.TensorDesc,
        mask: trtp.TensorDesc,
        weight: trtp.TensorDesc,
        bias: trtp.TensorDesc,
        stride_h: int,
        stride_w: int,
        pad_h: int,
        pad_w: int,
        dilation_h: int,
        dilation_w: int,
        groups: int,
        offset_groups: int,
    ) -> trtp.TensorDesc:
        # [B, Cout, Ho, Wo]: Ho, Wo are the offset's (it is defined on the output grid), which avoids
        # symbolic conv-size arithmetic and ties the output to the offset the exporter computed.
        x, off, w = input.shape_expr, offset.shape_expr, weight.shape_expr
        return trtp.from_shape_expr((x[0], w[0], off[2], off[3]), dtype=input.dtype)

    @trtp.autotune(PLUGIN_ID)
    def deform_conv_autotune(
        input: trtp.TensorDesc,
        offset: trtp.TensorDesc,
        mask: trtp.TensorDesc,
        weight: trtp.TensorDesc,
        bias: trtp.TensorDesc,
        outputs: tuple[trtp.TensorDesc],
    ) -> list[trtp.AutoTuneCombination]:
        # '|' ties the six I/O types together: all FP32 or all FP16; each type gets every tile tactic.
        types = ", ".join(["FP32|FP16"] * (len(INPUTS) + 1))
        return [trtp.AutoTuneCombination(types, "LINEAR", sorted(TACTICS))]

    if hasattr(trtp, "aot_impl") and _trt_version(trt) >= MIN_TRT_AOT:

        @trtp.aot_impl(PLUGIN_ID)
        def deform_conv_aot_impl(
            input: trtp.TensorDesc,
            offset: trtp.TensorDesc,
            mask: trtp.TensorDesc,
            weight: trtp.TensorDesc,
            bias: trtp.TensorDesc,
            stride_h: int,
            stride_w: int,
            pad_h: int,
            pad_w: int,
            dilation_h: int,
            dilation_w: int,
            groups: int,
            offset_groups: int,
            outputs: tuple[trtp.TensorDesc],
            tactic: int,
        ) -> tuple[str | bytes, str | bytes, trtp.KernelLaunchParams, trtp.SymIntExprs]:
            from dcpose_trt.plugins.deform_conv.aot import DeformConfig, compile_kernel

            dtype = "fp16" if input.dtype == trt.float16 else "fp32"
            w = weight.shape_expr
            cout, kh, kw = _const(w[0], "Cout"), _const(w[2], "kernel height"), _const(w[3], "kernel width")
            cout_g = cout // groups
            cfg = DeformConfig(f"{kh}x{kw}-{cout_g}", kh, kw, cout_g)
            kernel = compile_kernel(current_arch(), dtype, cfg, tactic if tactic in TACTICS else 1)
            x, o = input.shape_expr, outputs[0].shape_expr
            c_in = x[1]
            c_per_og = c_in // offset_groups
            scalars = [c_in, x[2], x[3], o[1], o[2], o[3], w[1], cout_g, c_per_og,
                       stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w]  # fmt: skip
            extra_args = trtp.SymIntExprs.from_tuple([trtp.SymInt32(v) for v in scalars])
            params = trtp.KernelLaunchParams()
            params.grid_x = trtp.cdiv(o[2] * o[3], kernel.constexprs["BLOCK_P"])
            params.grid_y = o[0] * (groups * -(-cout_g // block_co_for(cout_g)))
            params.grid_z = 1
            params.block_x = kernel.num_warps * 32
            params.block_y = 1
            params.block_z = 1
            params.shared_mem = kernel.shared_mem
            return kernel.kernel_name, kernel.ptx, params, extra_args

    @trtp.impl(PLUGIN_ID)
    def deform_conv_impl(
        input: trtp.Tensor,
        offset: trtp.Tensor,
        mask: trtp.Tensor,
        weight: trtp.Tensor,
        bias: trtp.Tensor,
        stride_h: int,
        stride_w: int,
        pad_h: int,
        pad_w: int,
        dilation_h: int,
        dilation_w: int,
        groups: int,
        offset_groups: int,
        outputs: tuple[trtp.Tensor],
        stream: int,
        tactic: int,
    ) -> None:
        import torch

        from dcpose_trt.plugins.deform_conv import launch_kernel

        with torch.cuda.stream(torch.cuda.ExternalStream(stream)):
            t = [torch.as_tensor(v, device="cuda") for v in (input, offset, mask, weight, bias)]
            out = torch.as_tensor(outputs[0], device="cuda")
            launch_kernel(
                t[0], t[1], t[2], t[3], t[4], out, (stride_h, stride_w), (pad_h, pad_w),
                (dilation_h, dilation_w), offset_groups, tactic if tactic in TACTICS else None,
            )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Export hook
# --------------------------------------------------------------------------------------------------


@functools.cache
def export_op():
    """The ``dcpose_trt::deform_conv2d`` custom op (registered on first call); see the module doc."""
    import torch

    from dcpose_trt.model.deform import deform_conv2d_torchvision

    @torch.library.custom_op(EXPORT_OP_NAME, mutates_args=())
    def deform_conv2d_op(
        input: torch.Tensor,
        offset: torch.Tensor,
        mask: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
        stride_h: int,
        stride_w: int,
        pad_h: int,
        pad_w: int,
        dilation_h: int,
        dilation_w: int,
        groups: int,
        offset_groups: int,
    ) -> torch.Tensor:
        # groups and offset_groups are implied by the shapes; they are carried for the plugin.
        return deform_conv2d_torchvision(
            input, offset, weight, bias, (stride_h, stride_w), (pad_h, pad_w), (dilation_h, dilation_w), mask
        )

    @deform_conv2d_op.register_fake
    def _(input, offset, mask, weight, bias, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w,
          groups, offset_groups):  # fmt: skip
        return input.new_empty((input.shape[0], weight.shape[0], offset.shape[2], offset.shape[3]))

    return deform_conv2d_op


def deform_conv2d_for_export(
    input: "Tensor",
    offset: "Tensor",
    weight: "Tensor",
    bias: "Tensor | None" = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: "Tensor | None" = None,
) -> "Tensor":
    """:func:`torchvision.ops.deform_conv2d`'s signature, through the ``dcpose_trt::deform_conv2d`` op.

    Shapes as in :func:`dcpose_trt.plugins.deform_conv.deform_conv2d`. A missing mask becomes ones
    (``[B, G * kh * kw, Ho, Wo]``) and a missing bias zeros, because the plugin has five fixed inputs.
    """
    import torch

    from dcpose_trt.model.deform import check_deform_args
    from dcpose_trt.plugins.deform_conv import _pair

    offset_groups, ho, wo, k = check_deform_args(input, offset, weight, mask, stride, padding, dilation)
    if mask is None:
        mask = torch.ones((input.shape[0], offset_groups * k, ho, wo), dtype=offset.dtype, device=offset.device)
    if bias is None:
        bias = torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    groups = input.shape[1] // weight.shape[1]
    return export_op()(input, offset, mask, weight, bias, sh, sw, ph, pw, dh, dw, groups, offset_groups)


@functools.cache
def _onnx_schema():
    """ONNX ``OpSchema`` of the custom node: the torch exporter's tracer builds nodes from a schema."""
    onnx = require("onnx", "onnx", "exporting the deformable-conv plugin node")
    schema = onnx.defs.OpSchema
    attr = schema.Attribute
    return schema(
        OP_TYPE,
        OP_DOMAIN,
        1,
        doc="Modulated deformable convolution (DCNv2), TensorRT plugin dcpose_trt::DeformConv.",
        inputs=[schema.FormalParameter(name, "T") for name in INPUTS],
        outputs=[schema.FormalParameter("output", "T")],
        type_constraints=[("T", ["tensor(float)", "tensor(float16)"], "float I/O, one type for all")],
        attributes=[attr(name, schema.AttrType.INT, required=True) for name in ATTRIBUTES]
        + [
            attr("plugin_namespace", schema.AttrType.STRING, required=True),
            attr("aot", schema.AttrType.INT, required=False),
        ],
    )


def onnx_translation_table(aot: bool | None = True) -> dict:
    """``{torch op: onnxscript function}`` for ``torch.onnx.export(..., custom_translation_table=...)``.

    Args:
        aot: written as the node's ``aot`` attribute (1/0) so TensorRT's parser picks the ahead-of-time
            (no Python at run time) or the JIT implementation; ``None`` leaves the choice to the builder
            flags (``PREFER_AOT_PYTHON_PLUGINS``).

    The node: op_type ``DeformConv``, domain ``dcpose_trt`` (opset version 1), inputs ``(input, offset,
    mask, weight, bias)``, int attributes :data:`ATTRIBUTES`, string ``plugin_namespace="dcpose_trt"``.
    """
    export_op()
    onnxscript = require("onnxscript", "onnx", "exporting the deformable-conv plugin node")
    deform_conv = onnxscript.values.Op(onnxscript.values.Opset(OP_DOMAIN, 1), OP_TYPE, _onnx_schema())
    extra = {} if aot is None else {"aot": int(bool(aot))}

    def dcpose_deform_conv(
        input, offset, mask, weight, bias, stride_h: int, stride_w: int, pad_h: int, pad_w: int,
        dilation_h: int, dilation_w: int, groups: int, offset_groups: int,
    ):  # fmt: skip
        return deform_conv(
            input, offset, mask, weight, bias,
            stride_h=stride_h, stride_w=stride_w, pad_h=pad_h, pad_w=pad_w,
            dilation_h=dilation_h, dilation_w=dilation_w, groups=groups, offset_groups=offset_groups,
            plugin_namespace=PLUGIN_NAMESPACE, **extra,
        )  # fmt: skip

    import torch

    return {torch.ops.dcpose_trt.deform_conv2d.default: dcpose_deform_conv}
