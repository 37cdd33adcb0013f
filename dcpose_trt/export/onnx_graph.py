"""Editing and comparing ``onnx.ModelProto`` s: readable node names, the onnxslim cleanup, metadata,
the deformable-conv nodes, and the atomic save. onnx itself is not imported here."""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from dcpose_trt._atomic import atomic_write_bytes
from dcpose_trt._deps import require
from dcpose_trt.contract import DCN_OP_TYPES

log = logging.getLogger(__name__)


def _scope_of(node: Any, strip: str) -> str:
    """Dotted module path of an exported node from the exporter's ``pkg.torch.onnx.name_scopes``."""
    import ast

    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(p.value)
            except (ValueError, SyntaxError):
                return ""
            # The last entry is the fx node; the one before it the innermost module's full path.
            mods = [s for s in scopes[:-1] if s and not s.startswith("_empty_nn_module_stack")]
            path = mods[-1] if mods else ""
            return path[len(strip):] if strip and path.startswith(strip) else path
    return ""


def rename_nodes(proto: Any, strip: str) -> None:
    """Name nodes ``<module path>/<OpType>[_k]`` and drop the per-node metadata (local stack traces)."""
    seen: Counter[str] = Counter()
    inits = {t.name for t in proto.graph.initializer}
    for node in proto.graph.node:
        scope = _scope_of(node, strip)
        # A Conv fused with its BatchNorm inherits the BN's scope; its weight keeps the conv's name.
        if (node.op_type == "Conv" or node.op_type in DCN_OP_TYPES) and len(node.input) > 1 and node.input[1] in inits \
                and node.input[1].endswith(".weight"):
            scope = node.input[1][: -len(".weight")]
            scope = scope[len(strip):] if strip and scope.startswith(strip) else scope
        base = f"{scope}/{node.op_type}" if scope else node.op_type
        k = seen[base]
        seen[base] += 1
        node.name = base if k == 0 else f"{base}_{k}"
        del node.metadata_props[:]


def cleanup(proto: Any) -> Any:
    """onnxslim: constant folding, dead-node and Identity elimination, shape inference."""
    onnxslim = require("onnxslim", "onnx", "the ONNX cleanup pass")
    try:
        slim = onnxslim.slim(proto)
    except Exception as exc:  # noqa: BLE001 - keep the exported graph when the optimizer trips
        log.warning("onnxslim failed (%s); keeping the exporter's graph", exc)
        return proto
    if slim is None:
        return proto
    # onnxslim rewrites the graph; keep its result only if every I/O survived under its name.
    if [i.name for i in slim.graph.input] != [i.name for i in proto.graph.input] or \
            [o.name for o in slim.graph.output] != [o.name for o in proto.graph.output]:
        log.warning("onnxslim changed the graph's inputs/outputs; keeping the exporter's graph")
        return proto
    return slim


def set_metadata(proto: Any, values: dict[str, str]) -> None:
    """Set (replace) ``metadata_props`` entries of an ``onnx.ModelProto`` (the one writer of them; read them
    with :func:`dcpose_trt.contract.read_model_metadata`)."""
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in values]
    del proto.metadata_props[:]
    for k, v in [*keep, *values.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, str(v)


def dcn_nodes(proto: Any) -> list[Any]:
    """The deformable-conv nodes: standard ``DeformConv`` or our plugin node."""
    return [n for n in proto.graph.node if n.op_type in DCN_OP_TYPES]


def graph_diff_except_dcn(a: Any, b: Any) -> list[str]:
    """Differences between two graphs node for node, ignoring the domain/attributes of DCN nodes.

    Compares op type, inputs, outputs and attributes of every node in order, the initializers'
    names and the graph I/O. Returns human-readable differences (empty: same graph up to DCN nodes).
    """
    out = []
    if len(a.graph.node) != len(b.graph.node):
        out.append(f"node count {len(a.graph.node)} != {len(b.graph.node)}")
    for i, (x, y) in enumerate(zip(a.graph.node, b.graph.node, strict=False)):
        both_dcn = x.op_type in DCN_OP_TYPES and y.op_type in DCN_OP_TYPES
        if (x.op_type != y.op_type and not both_dcn) or list(x.input) != list(y.input) \
                or list(x.output) != list(y.output):
            out.append(f"node {i}: {x.op_type}{list(x.input)} vs {y.op_type}{list(y.input)}")
        elif not both_dcn and (x.domain != y.domain or x.attribute != y.attribute):
            out.append(f"node {i} ({x.op_type}): attributes or domain differ")
    if sorted(t.name for t in a.graph.initializer) != sorted(t.name for t in b.graph.initializer):
        out.append("initializer names differ")
    out += [f"graph {kind}s differ" for kind in ("input", "output")
            if [v.name for v in getattr(a.graph, kind)] != [v.name for v in getattr(b.graph, kind)]]
    return out


def atomic_save_onnx(proto: Any, path: str | os.PathLike) -> Path:
    """Serialise an ``onnx.ModelProto`` to a temporary file next to ``path``, then rename it into place."""
    return atomic_write_bytes(path, proto.SerializeToString())
