"""The fused deformable-convolution plugin: Triton kernel, ahead-of-time PTX, TensorRT registration.

Public API:

* :func:`deform_conv2d` — :func:`torchvision.ops.deform_conv2d`'s signature, computed by the fused Triton
  kernel of :mod:`.kernels` (CUDA tensors; CPU tensors only under ``TRITON_INTERPRET=1``).
* :func:`launch_geometry` — grid, block and scalar arguments of one launch (shared by the Python
  wrapper, the AOT manifest and the TensorRT ``aot_impl``).
* :func:`launch_kernel` — the same launch into a preallocated output (used by the TensorRT JIT ``impl``).
* ``OP_TYPE`` / ``OP_DOMAIN`` — the ONNX node that the ``--deform plugin`` export writes (both from
  :mod:`dcpose_trt.contract`, which the exporter reads too);
  ``PLUGIN_NAMESPACE::PLUGIN_NAME`` (``PLUGIN_ID``) is the TensorRT plugin it resolves to (the ONNX
  parser maps op_type to the plugin name and ``plugin_namespace`` / domain to the namespace), at
  ``PLUGIN_VERSION``.
* :mod:`.plugin` — ``register_plugin()`` (imports ``tensorrt``); the node contract ``INPUTS``,
  ``ATTRIBUTE_TYPES``.
* :mod:`.aot` — ``compile_kernel()`` (one kernel, cached); :mod:`.aot_build` — ``build_ptx()`` behind
  ``dcpose-trt plugin build``; :mod:`.ptx` — TensorRT's launch ABI, PTX ISA per arch, ptxas.

Heavy imports (triton, tensorrt, onnxscript) happen inside the functions that need them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dcpose_trt.contract import DCN_DOMAIN, DCN_OP_TYPE, PLUGIN_ID, PLUGIN_NAME, PLUGIN_NAMESPACE, PLUGIN_VERSION
from dcpose_trt.errors import PluginError

if TYPE_CHECKING:  # torch stays out of module import so `dcpose-trt plugin --help` is instant
    from torch import Tensor

# The node/plugin identity lives in dcpose_trt.contract (shared with the exporter and the engine).
OP_TYPE = DCN_OP_TYPE
OP_DOMAIN = DCN_DOMAIN

# Kernel tile configurations; the key is also the TensorRT tactic id (0 is reserved by TensorRT).
TACTICS: dict[int, dict[str, int]] = {
    1: {"BLOCK_P": 128, "num_warps": 4},
    2: {"BLOCK_P": 64, "num_warps": 2},
}
MAX_BLOCK_CO = 64  # output channels kept in registers per program; more are tiled over the grid

_SUPPORTED_DTYPES = ("torch.float32", "torch.float16", "torch.bfloat16")
_INT32_MAX = 2**31 - 1

__all__ = [
    "MAX_BLOCK_CO",
    "OP_DOMAIN",
    "OP_TYPE",
    "PLUGIN_ID",
    "PLUGIN_NAME",
    "PLUGIN_NAMESPACE",
    "PLUGIN_VERSION",
    "TACTICS",
    "LaunchGeometry",
    "block_co_for",
    "deform_conv2d",
    "launch_geometry",
    "launch_kernel",
]


def _pair(v: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def block_co_for(cout_per_group: int) -> int:
    """Output-channel tile: the next power of two of ``Cout / groups`` (min 16, max ``MAX_BLOCK_CO``)."""
    return min(max(16, 1 << max(0, cout_per_group - 1).bit_length()), MAX_BLOCK_CO)


@dataclass(frozen=True)
class LaunchGeometry:
    """One launch of :func:`~dcpose_trt.plugins.deform_conv.kernels.deform_conv2d_kernel`.

    ``scalars`` are the kernel's int32 arguments in order (between the input and output pointers).
    """

    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    scalars: tuple[int, ...]
    constexprs: dict[str, int | bool]
    num_warps: int


SCALAR_ARGS = (
    "C_in", "H", "W", "C_out", "H_out", "W_out", "CIN_G", "COUT_G", "C_PER_OG",
    "stride_h", "stride_w", "pad_h", "pad_w", "dil_h", "dil_w",
)  # fmt: skip


def launch_geometry(
    input_shape: tuple[int, int, int, int],
    weight_shape: tuple[int, int, int, int],
    offset_groups: int,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    has_mask: bool = True,
    has_bias: bool = True,
    tactic: int = 1,
    block_p: int | None = None,
) -> LaunchGeometry:
    """Grid, block, scalar arguments and constexprs of one launch.

    Args:
        input_shape: (B, Cin, H, W).
        weight_shape: (Cout, Cin / groups, kh, kw).
        offset_groups: G, so that the offset has ``2 * G * kh * kw`` channels.
        tactic: a key of :data:`TACTICS`.
        block_p: overrides the tactic's ``BLOCK_P`` (a power of two).

    The grid formula (also written into the AOT manifest and given to TensorRT symbolically) is
    ``(cdiv(Ho * Wo, BLOCK_P), B * groups * cdiv(Cout / groups, BLOCK_CO), 1)`` with
    ``num_warps * 32`` threads per program.
    """
    b, c_in, h, w = (int(v) for v in input_shape)
    c_out, cin_g, kh, kw = (int(v) for v in weight_shape)
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    groups = c_in // cin_g
    cout_g = c_out // groups
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cfg = dict(TACTICS[tactic])
    if block_p is not None:
        cfg["BLOCK_P"] = int(block_p)
    block_co = block_co_for(cout_g)
    grid = (math.ceil(ho * wo / cfg["BLOCK_P"]), b * groups * math.ceil(cout_g / block_co), 1)
    scalars = (c_in, h, w, c_out, ho, wo, cin_g, cout_g, c_in // offset_groups, sh, sw, ph, pw, dh, dw)
    constexprs = {
        "KH": kh,
        "KW": kw,
        "BLOCK_CO": block_co,
        "BLOCK_P": cfg["BLOCK_P"],
        "HAS_MASK": bool(has_mask),
        "HAS_BIAS": bool(has_bias),
        "SINGLE_CH": c_in // offset_groups == 1,
    }
    return LaunchGeometry(grid, (cfg["num_warps"] * 32, 1, 1), scalars, constexprs, cfg["num_warps"])


def _check_kernel_inputs(tensors: dict[str, Tensor | None], out_channels: int) -> None:
    device = tensors["input"].device
    for name, t in tensors.items():
        if t is None:
            continue
        if str(t.dtype) not in _SUPPORTED_DTYPES:
            raise ValueError(f"{name} must be float32, float16 or bfloat16, got {t.dtype}")
        if t.device != device:
            raise ValueError(f"{name} is on {t.device} but input is on {device}")
    bias = tensors.get("bias")
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(f"the shape of the bias is {tuple(bias.shape)}, expected {(out_channels,)}")
    if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise PluginError(
            f"the Triton deform_conv2d needs CUDA tensors (got {device}); on a CPU use "
            "dcpose_trt.model.deform.deform_conv2d_torchvision, or set TRITON_INTERPRET=1 before "
            "importing triton to run the kernel in Triton's (slow) interpreter"
        )
    for name, t in tensors.items():
        # Element offsets inside one batch item are int32 in the kernel (batch bases are int64).
        per_item = math.prod(t.shape[1:]) if t is not None and t.dim() == 4 else 0
        if per_item > _INT32_MAX:
            raise ValueError(f"{name} has {per_item} elements per batch item; the kernel supports < 2**31")


def deform_conv2d(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: Tensor | None = None,
) -> Tensor:
    """Modulated deformable convolution (DCNv2) with the fused Triton kernel, one launch per call.

    Same contract as :func:`torchvision.ops.deform_conv2d` (and DCPose's mmdetection-v1 op).

    Args:
        input (Tensor[B, Cin, H, W]): float32 / float16 / bfloat16; the output has its dtype.
        offset (Tensor[B, 2 * G * kh * kw, Ho, Wo]): ``offset[:, 2 * (g * K + k)]`` is Δy, ``+ 1`` is Δx
            for offset group ``g`` and tap ``k = i * kw + j``. G is ``offset.shape[1] // (2 * kh * kw)``.
        weight (Tensor[Cout, Cin / groups, kh, kw]): ``groups = Cin // weight.shape[1]``.
        bias (Tensor[Cout] | None): optional bias.
        stride, padding, dilation (int | tuple[int, int]): as in :func:`torch.nn.functional.conv2d`.
        mask (Tensor[B, G * kh * kw, Ho, Wo] | None): raw modulation (no sigmoid); ``None`` means 1.

    Returns:
        Tensor[B, Cout, Ho, Wo].

    Sampling coordinates, interpolation and accumulation are fp32 for every I/O dtype.

    Raises:
        ValueError: a shape, dtype or device does not fit (message gives got/expected numbers).
        PluginError: the tensors are on a CPU and Triton's interpreter is not enabled.
    """
    import torch

    from dcpose_trt.model.deform import check_deform_args

    groups_off, ho, wo, _ = check_deform_args(input, offset, weight, mask, stride, padding, dilation)
    c_out, cin_g = weight.shape[0], weight.shape[1]
    conv_groups = input.shape[1] // cin_g
    if c_out % conv_groups != 0:
        raise ValueError(f"output channels {c_out} must be divisible by groups={conv_groups}")
    _check_kernel_inputs({"input": input, "offset": offset, "weight": weight, "bias": bias, "mask": mask}, c_out)
    out = torch.empty((input.shape[0], c_out, ho, wo), dtype=input.dtype, device=input.device)
    launch_kernel(input, weight, offset, bias, mask, out, stride, padding, dilation, groups_off)
    return out


def launch_kernel(
    input: Tensor,
    weight: Tensor,
    offset: Tensor,
    bias: Tensor | None,
    mask: Tensor | None,
    out: Tensor,
    stride: int | tuple[int, int],
    padding: int | tuple[int, int],
    dilation: int | tuple[int, int],
    offset_groups: int,
    tactic: int | None = None,
) -> None:
    """Launch the kernel into a preallocated ``out`` (Tensor[B, Cout, Ho, Wo]); no shape checks.

    Tensors in ONNX ``DeformConv`` input order (the kernel's pointer order).

    Used by :func:`deform_conv2d` (after validation) and by the TensorRT JIT ``impl`` (which writes into
    TensorRT's output buffer on TensorRT's stream). Inputs are made contiguous; ``tactic=None`` picks
    by problem size.
    """
    if out.numel() == 0:
        return
    from dcpose_trt._deps import require

    require("triton", "triton", "the Triton deformable convolution")
    from dcpose_trt.plugins.deform_conv.kernels import deform_conv2d_kernel

    ho, wo = out.shape[2], out.shape[3]
    if tactic is None:
        # Few output tiles (one person): smaller tiles keep more SMs busy.
        tactic = 2 if ho * wo * input.shape[0] <= 16384 else 1
    block_p = None
    if input.device.type != "cuda":
        # Triton's interpreter pays per operation, not per element: one tile per image is fastest.
        block_p = min(4096, 1 << max(4, (ho * wo - 1).bit_length()))
    geo = launch_geometry(
        tuple(input.shape), tuple(weight.shape), offset_groups, stride, padding, dilation,
        has_mask=mask is not None, has_bias=bias is not None, tactic=tactic, block_p=block_p,
    )  # fmt: skip
    off = offset.contiguous()
    w = weight.contiguous()
    # Absent mask/bias: any valid pointer; HAS_MASK/HAS_BIAS=False compile the loads away.
    m = mask.contiguous() if mask is not None else off
    bs = bias.contiguous() if bias is not None else w
    deform_conv2d_kernel[geo.grid[:2]](
        input.contiguous(), w, off, bs, m, *geo.scalars, out, **geo.constexprs, num_warps=geo.num_warps
    )
