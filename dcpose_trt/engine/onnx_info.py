"""What the engine builder needs to know about an ONNX file before TensorRT sees it.

Precision, deformable-conv form, plugins and preset are read from the graph itself (and the exporter's
``metadata_props``), so the plan sidecar describes what was really built rather than what a flag said.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dcpose_trt._deps import require
from dcpose_trt.contract import (
    BUILTIN_DCN_PLUGIN,
    BUILTIN_PLUGIN_LIBRARY,
    DCN_DOMAIN,
    DCN_OP_TYPE,
    DCN_OP_TYPES,
    ONNX_DEFORM_OP,
    PLUGIN_NAME,
    PLUGIN_NAMESPACE,
    OnnxModelInfo,
    read_model_metadata,
)
from dcpose_trt.errors import InputError

PLUGIN_DOMAIN = DCN_DOMAIN  # the PluginUse.source of our plugin

_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


@dataclass(frozen=True)
class TensorInfo:
    """An ONNX graph input or output: ``shape`` uses ``-1`` for dynamic dims, ``dim_names`` their names."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    dim_names: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class PluginUse:
    """Custom ops in the graph that TensorRT imports as plugin layers."""

    op_type: str
    namespace: str
    version: str
    nodes: int
    source: str  # "dcpose_trt" (our QDP) or "libnvinfer_plugin" (TensorRT's built-in)

    def to_json(self) -> dict[str, object]:
        return {"op": self.op_type, "namespace": self.namespace, "version": self.version,
                "nodes": self.nodes, "source": self.source}


@dataclass(frozen=True)
class OnnxInfo:
    """Summary of one ONNX model.

    Attributes:
        path: the file.
        sha256: hex digest of the file bytes (a changed ONNX makes its plans stale).
        opset: default-domain opset.
        precision: ``"int8"`` (Q/DQ nodes or int8 initializers), ``"fp16"`` / ``"bf16"`` (half
            initializers), else ``"fp32"``; the precision the strongly typed network will have.
        dcn_form: ``"plugin"`` (our plugin node, :data:`~dcpose_trt.contract.DCN_OP_TYPE`), ``"deformconv"`` (standard
            ``DeformConv``), ``"gridsample"`` (``GridSample`` decomposition) or ``"none"``.
        plugins: custom ops TensorRT will need.
        preset: ``metadata_props["dcpose_trt.preset"]`` or None.
        metadata: all ``metadata_props``.
        inputs / outputs: graph I/O.
        op_counts: node count per op type (for the sidecar and error messages).
    """

    path: Path
    sha256: str
    opset: int
    precision: str
    dcn_form: str
    plugins: tuple[PluginUse, ...]
    preset: str | None
    metadata: dict[str, str]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    op_counts: dict[str, int] = field(default_factory=dict)

    @property
    def model_meta(self) -> OnnxModelInfo:
        """The ``dcpose_trt.*`` metadata, typed (:func:`~dcpose_trt.contract.read_model_metadata`)."""
        return read_model_metadata(self.metadata, source=str(self.path))

    @property
    def needs_dcpose_plugin(self) -> bool:
        return any(p.source == PLUGIN_DOMAIN for p in self.plugins)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def external_locations(model: object, onnx: object, path: Path) -> list[str]:
    """The external-data files of ``model`` (loaded from ``path`` without its weights), each checked to be
    a regular file inside the model's folder.

    ONNX Runtime refuses locations that are absolute, climb out with ``..`` or resolve (through links)
    outside the model's folder; so do we, before reading a byte: a model from elsewhere must not make us
    read ``/etc/passwd`` into a hash or hang on ``/dev/zero``.

    Raises:
        InputError: one line naming the location.
    """
    TP = onnx.TensorProto  # type: ignore[attr-defined]
    tensors = list(model.graph.initializer)  # type: ignore[attr-defined]
    locations = sorted({e.value for t in tensors if t.data_location == TP.EXTERNAL
                        for e in t.external_data if e.key == "location"})
    folder = path.parent.resolve()
    for loc in locations:
        target = (folder / loc).resolve()
        if Path(loc).is_absolute() or (folder != target and folder not in target.parents):
            raise InputError(f"{path}: external data location {loc!r} lies outside the model's folder; refused "
                             "(as ONNX Runtime does): keep the model and its data files in one folder")
        if target.exists() and not target.is_file():
            raise InputError(f"{path}: external data location {loc!r} is not a regular file")
    return locations


def _load_structure(path: Path, onnx: object) -> object:
    """The ModelProto without weights; InputError when ``path`` is not an ONNX model."""
    try:
        model = onnx.load(str(path), load_external_data=False)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - protobuf decode errors have no common public type
        raise InputError(f"{path} is not an ONNX model ({type(exc).__name__})") from None
    return model


def onnx_sha256(path: str | os.PathLike[str], external: list[str] | None = None) -> str:
    """sha256 of an ONNX file, chained with its external-data files (``external`` relative to it).

    With ``external=None`` the file is parsed (without weights) to find them (:func:`external_locations`).
    """
    path = Path(path)
    if external is None:
        onnx = require("onnx", "onnx", "hashing ONNX models")
        external = external_locations(_load_structure(path, onnx), onnx, path)
    digest = file_sha256(path)
    if not external:
        return digest
    h = hashlib.sha256(digest.encode())
    for name in external:
        h.update(name.encode() + b"\0" + file_sha256(path.parent / name).encode())
    return h.hexdigest()


def _tensor_info(value_info: object, onnx: object) -> TensorInfo:
    t = value_info.type.tensor_type  # type: ignore[attr-defined]
    dims, names = [], []
    for d in t.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else -1)
        names.append(d.dim_param if d.HasField("dim_param") else "")
    dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name  # type: ignore[attr-defined]
    return TensorInfo(value_info.name, dtype, tuple(dims), tuple(names))  # type: ignore[attr-defined]


def inspect_onnx(path: str | os.PathLike[str]) -> OnnxInfo:
    """Read ``path`` (weights included, external data too) and summarise it; see :class:`OnnxInfo`."""
    onnx = require("onnx", "onnx", "reading ONNX models for the engine builder")
    path = Path(path)
    # Load without weights first to learn which external-data files the model uses: they are part of
    # the model, so they go into its hash (a retrained .onnx.data must make plans stale too).
    model = _load_structure(path, onnx)
    if not model.graph.output:  # e.g. an empty file, which decodes as an empty ModelProto
        raise InputError(f"{path} is not an ONNX model (no graph outputs)")
    external = external_locations(model, onnx, path)
    if external:
        try:
            onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
        except (OSError, ValueError, onnx.checker.ValidationError) as exc:  # missing or short data file
            raise InputError(f"{path}: cannot read its external data ({type(exc).__name__}: {exc})"[:300]) from None
    graph = model.graph
    TP = onnx.TensorProto

    nodes = list(graph.node)
    for fn in model.functions:  # the dynamo exporter may keep local functions
        nodes.extend(fn.node)
    op_counts = Counter(n.op_type for n in nodes)
    init_types = Counter(int(t.data_type) for t in graph.initializer)
    const_types = Counter(int(a.t.data_type) for n in nodes if n.op_type == "Constant"
                          for a in n.attribute if a.name == "value")
    dtypes = init_types + const_types

    if any(op in op_counts for op in _QDQ_OPS) or dtypes[TP.INT8] or dtypes[TP.UINT8]:
        precision = "int8"
    elif dtypes[TP.FLOAT16]:
        precision = "fp16"
    elif dtypes[TP.BFLOAT16]:
        precision = "bf16"
    else:
        precision = "fp32"

    plugin_nodes: Counter[tuple[str, str, str, str]] = Counter()
    for n in nodes:
        if n.op_type not in DCN_OP_TYPES:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        version = attrs.get("plugin_version", b"1")
        version = version.decode() if isinstance(version, bytes) else str(version)
        if n.domain == DCN_DOMAIN and n.op_type == DCN_OP_TYPE:
            plugin_nodes[(PLUGIN_NAME, PLUGIN_NAMESPACE, version, PLUGIN_DOMAIN)] += 1
        elif n.domain in ("", "ai.onnx") and n.op_type == ONNX_DEFORM_OP:
            # The ONNX parser maps standard DeformConv onto TensorRT's ModulatedDeformConv2d plugin.
            plugin_nodes[(BUILTIN_DCN_PLUGIN, "", "", BUILTIN_PLUGIN_LIBRARY)] += 1
    plugins = tuple(PluginUse(op, ns, ver, count, src) for (op, ns, ver, src), count in plugin_nodes.items())

    if any(p.source == PLUGIN_DOMAIN for p in plugins):
        dcn_form = "plugin"
    elif plugins:
        dcn_form = "deformconv"
    elif op_counts.get("GridSample"):
        dcn_form = "gridsample"
    else:
        dcn_form = "none"

    initializer_names = {t.name for t in graph.initializer}
    meta = read_model_metadata(model, source=str(path))  # InputError on a malformed dcpose_trt.* value
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return OnnxInfo(
        path=path,
        sha256=onnx_sha256(path, external),
        opset=int(opset),
        precision=precision,
        dcn_form=dcn_form,
        plugins=plugins,
        preset=meta.preset,
        metadata=dict(meta.raw),
        # Old exporters list initializers among the inputs; they are weights, not bindings.
        inputs=tuple(_tensor_info(v, onnx) for v in graph.input if v.name not in initializer_names),
        outputs=tuple(_tensor_info(v, onnx) for v in graph.output),
        op_counts=dict(op_counts),
    )
