"""ONNX translations of ``torchvision::deform_conv2d`` for the dynamo exporter (one place for all forms).

The model's deformable convs call :func:`torchvision.ops.deform_conv2d`, which ``torch.export`` records
as ``torch.ops.torchvision.deform_conv2d.default``. The exporter is told how to write that op through
``custom_translation_table`` (:func:`translation_table`), never by editing the graph afterwards:

- ``deformconv``: the standard ONNX ``DeformConv`` (opset >= 19, default domain).
- ``plugin``: a node of op type :data:`~dcpose_trt.contract.DCN_OP_TYPE` in domain ``dcpose_trt`` with
  ``plugin_namespace="dcpose_trt"``, which TensorRT's ONNX parser hands to our plugin (the parser looks
  the plugin up by op type = plugin name and namespace = ``plugin_namespace`` attribute or, since
  TensorRT 10.10, the node domain; the op type is one no built-in importer has, see
  :mod:`dcpose_trt.contract`). Attributes are the ONNX ``DeformConv`` ones, so the two graphs differ
  only in these nodes and the plugin reads the same fields.

Why our own translation although onnxscript 0.7.2's torchlib has one: with a dynamic person batch its
dispatcher rejects the op (``No ONNX function found for torchvision.deform_conv2d.default``, torch
2.14.1), while a registered translation exports the same node in both the static and dynamic case.

Tensor layout (torch op order): ``input[B, C, H, W]``, ``weight[Cout, C / groups, kh, kw]``,
``offset[B, 2 * offset_groups * kh * kw, Ho, Wo]``, ``mask[B, offset_groups * kh * kw, Ho, Wo]``,
``bias[Cout]`` → ``Y[B, Cout, Ho, Wo]``. ONNX ``DeformConv`` takes ``(X, W, offset, B, mask)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dcpose_trt.contract import (
    DCN_DOMAIN,
    DCN_DOMAIN_VERSION,
    DCN_OP_TYPE,
    DEFORM_FORMS,
    ONNX_DEFORM_OP,
    ONNX_DEFORM_OPSET,
    PLUGIN_NAMESPACE,
)

__all__ = ["DEFORM_FORMS", "make_deform_translation", "plugin_identity", "plugin_op_schema", "translation_table"]


def plugin_identity() -> tuple[str, str, str]:
    """``(op_type, domain, plugin_namespace)`` of the plugin node (from :mod:`dcpose_trt.contract`)."""
    return DCN_OP_TYPE, DCN_DOMAIN, PLUGIN_NAMESPACE


def _deform_attrs(weight: Any, stride_h: int, stride_w: int, pad_h: int, pad_w: int, dilation_h: int,
                  dilation_w: int, groups: int, offset_groups: int) -> dict[str, Any]:
    """The ONNX ``DeformConv`` attributes for one torchvision call (pads are [top, left, bottom, right])."""
    attrs: dict[str, Any] = dict(
        dilations=[int(dilation_h), int(dilation_w)],
        strides=[int(stride_h), int(stride_w)],
        pads=[int(pad_h), int(pad_w), int(pad_h), int(pad_w)],
        group=int(groups),
        offset_group=int(offset_groups),
    )
    # kernel_shape is optional in ONNX (inferred from W) but a plugin cannot see W's shape at parse time
    # as easily as an attribute, so write it whenever the exporter knows it (weights are static).
    shape = getattr(weight, "shape", None)
    if shape is not None and len(shape) == 4 and all(isinstance(d, int) for d in shape[2:]):
        attrs["kernel_shape"] = [int(shape[2]), int(shape[3])]
    return attrs


def plugin_op_schema() -> Any:
    """An ``onnx.defs.OpSchema`` for the plugin node: ONNX ``DeformConv``'s inputs, outputs and attributes
    plus the string attribute ``plugin_namespace``.

    The exporter's tracer validates every node against a schema; a custom domain has none registered,
    so we describe the node here (not registered globally: nothing outside this module depends on it).
    """
    import onnx

    op_type, domain, _ = plugin_identity()
    base = onnx.defs.get_schema(ONNX_DEFORM_OP, ONNX_DEFORM_OPSET)
    attr = onnx.defs.OpSchema.Attribute
    attributes = [attr(a.name, a.type, a.description) for a in base.attributes.values()]
    attributes.append(attr("plugin_namespace", onnx.defs.OpSchema.AttrType.STRING,
                           "TensorRT plugin namespace the parser looks the plugin up in"))
    return onnx.defs.OpSchema(
        op_type, domain, DCN_DOMAIN_VERSION,
        doc="Modulated deformable convolution (ONNX DeformConv semantics) run by the dcpose_trt TensorRT plugin.",
        inputs=list(base.inputs), outputs=list(base.outputs),
        type_constraints=[(t.type_param_str, list(t.allowed_type_strs), t.description)
                          for t in base.type_constraints],
        attributes=attributes,
    )


def make_deform_translation(plugin: bool) -> Callable[..., Any]:
    """Return a trace-only onnxscript translation of ``torchvision::deform_conv2d``.

    Args:
        plugin: ``False`` → standard ``DeformConv`` (opset 19); ``True`` → the ``dcpose_trt`` custom node.
    """
    import onnxscript
    from onnxscript import opset19 as op19
    from onnxscript.function_libs.torch_lib.tensor_typing import TFloat

    op_type, domain, namespace = plugin_identity()
    custom_op = onnxscript.values.Op(onnxscript.values.Opset(domain, DCN_DOMAIN_VERSION), op_type,
                                     plugin_op_schema())

    # The annotations are what the exporter's dispatcher matches on: tensors vs attributes.
    def torchvision_deform_conv2d(
        input: TFloat, weight: TFloat, offset: TFloat, mask: TFloat | None, bias: TFloat | None,
        stride_h: int, stride_w: int, pad_h: int, pad_w: int, dilation_h: int, dilation_w: int,
        groups: int, offset_groups: int, use_mask: bool,
    ) -> TFloat:
        attrs = _deform_attrs(weight, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w,
                              groups, offset_groups)
        m = mask if use_mask else None
        if plugin:
            return custom_op(input, weight, offset, bias, m, plugin_namespace=namespace, **attrs)
        return op19.DeformConv(input, weight, offset, bias, m, **attrs)

    # This module uses postponed annotations (strings); the dispatcher resolves them against module
    # globals, where the lazily imported TFloat is missing, so give it the real objects.
    torchvision_deform_conv2d.__annotations__ = {
        "input": TFloat, "weight": TFloat, "offset": TFloat, "mask": TFloat | None, "bias": TFloat | None,
        **{a: int for a in ("stride_h", "stride_w", "pad_h", "pad_w", "dilation_h", "dilation_w", "groups",
                            "offset_groups")},
        "use_mask": bool, "return": TFloat,
    }
    return torchvision_deform_conv2d


def translation_table(deform: str) -> dict[Any, Callable[..., Any]]:
    """``custom_translation_table`` for ``torch.onnx.export(..., dynamo=True)`` and a ``--deform`` form.

    ``gridsample`` needs none: the model runs :func:`~dcpose_trt.model.deform_conv2d_gridsample`
    (standard ops) during export instead of the torchvision op.
    """
    if deform == "gridsample":
        return {}
    import torch
    import torchvision.ops  # noqa: F401 - registers torch.ops.torchvision.*

    return {torch.ops.torchvision.deform_conv2d.default: make_deform_translation(plugin=deform == "plugin")}
