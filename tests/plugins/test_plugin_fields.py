"""The plugin is created from the fields TensorRT's ONNX parser really passes, on the real ``tensorrt.plugin``.

Issue 23 finding 1: onnx-tensorrt's ``loadFields`` (``onnxOpImporters.cpp``, ``release/10.1-GA`` and
later: ``case AttributeProto::INT: copyField(attrs.get<int32_t>(fieldName), ...); type = kINT32``) hands
an ONNX INT attribute to the plugin creator as a kINT32 ``PluginField`` of length 1, which the bindings
expose as a 1-D array. The Quickly Deployable Plugin creator of TensorRT 10.9-10.15
(``tensorrt/plugin/_lib.py``, ``_TemplatePluginCreator.create_plugin``: ``attrs[f.name] =
attr_type_annot(f.data)``) then calls ``int(array([g]))``, which NumPy >= 2.4 refuses with a TypeError,
so the parse fails with "Could not create the plugin". TensorRT 11.4 unwraps size-1 arrays first
(``if isinstance(f.data, np.ndarray) and f.data.size == 1``). Declaring every attribute an int32 array
avoids the conversion on every release.

This test turns the exporter's real node into fields exactly as ``loadFields`` does, builds the real
creator of each release (over stub native libraries, :mod:`tools.trt_api`) and calls ``create_plugin``
with them. Before the fix it failed on 10.9/10.13/10.15 with NumPy 2.4 ("only 0-dimensional arrays can be
converted to Python scalars").
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorrt as trt
    from tensorrt.plugin._lib import QDP_REGISTRY, _TemplatePluginCreator
    from tensorrt.plugin._validate import _parse_register_inputs

    from dcpose_trt.contract import PLUGIN_ID, PLUGIN_NAME, PLUGIN_NAMESPACE
    from dcpose_trt.plugins.deform_conv.plugin import INPUTS, plugin_attributes, register_plugin

    register_plugin(lazy=True)  # lazy: the native plugin registry is a stub here
    d = QDP_REGISTRY[PLUGIN_ID]
    # what the eager register() (the builder's) hands the creator
    attrs_types = _parse_register_inputs(d.register_func, False)[-1]
    creator = _TemplatePluginCreator(PLUGIN_NAME, PLUGIN_NAMESPACE, attrs_types)
    declared = [f.name for f in creator.field_names]
    node = json.loads(sys.argv[1])  # {name: [onnx attribute type, value]} of the exported node
    fields = []
    for name in declared:  # loadFields walks the creator's field names
        kind, value = node[name]
        data = np.array([value] if kind == "INT" else value, dtype=np.int32)  # INT and INTS -> kINT32
        fields.append(trt.PluginField(name, data, trt.PluginFieldType.INT32))
    out = {"version": trt.__version__, "numpy": np.__version__, "declared": declared}
    try:
        plg = creator.create_plugin(PLUGIN_NAME, PLUGIN_NAMESPACE, trt.PluginFieldCollection(fields),
                                    trt.TensorRTPhase.BUILD)
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    else:
        attrs = plg.attrs
        out["attrs"] = {k: np.asarray(v).tolist() for k, v in attrs.items()}
        out["decoded"] = list(plugin_attributes(**attrs))
        descs = [trt.plugin.TensorDesc(trt.plugin.ShapeExprs(4), trt.float32) for _ in INPUTS]
        out["out_dtype"] = str(d.register_func(*descs, **attrs).dtype)
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def parser_fields(plugin_node) -> str:
    """The exported node's attributes the plugin declares, as (ONNX type, value): what loadFields reads."""
    import onnx

    from dcpose_trt.plugins.deform_conv.plugin import ATTRIBUTE_TYPES

    _, node = plugin_node
    out = {}
    for a in node.attribute:
        if a.name in ATTRIBUTE_TYPES:
            kind = onnx.AttributeProto.AttributeType.Name(a.type)
            out[a.name] = [kind, onnx.helper.get_attribute_value(a)]
    assert {k: v[0] for k, v in out.items()} == {"strides": "INTS", "pads": "INTS", "dilations": "INTS",
                                                 "group": "INT", "offset_group": "INT"}
    return json.dumps(out)


def _run(version: str, fields: str) -> dict:
    trt_api = pytest.importorskip("tools.trt_api")
    try:
        stubs = trt_api.prepare(version)
    except trt_api.TrtApiError as exc:  # first run without network: the wheel cannot be fetched
        pytest.skip(f"TensorRT {version} bindings unavailable: {exc}")
    env = trt_api.bindings_env(stubs.stub_dir.parent, [REPO])
    proc = subprocess.run([sys.executable, "-c", PROBE, fields], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("version", ["10.9", "10.13", "10.15", "11.4"])
def test_creator_accepts_the_parsers_fields(version, parser_fields):
    r = _run(version, parser_fields)
    assert r["version"].startswith(version)
    assert "error" not in r, f"TensorRT {r['version']} with NumPy {r['numpy']}: {r['error']}"
    assert r["declared"] == ["strides", "pads", "dilations", "group", "offset_group"]
    assert r["attrs"] == {"strides": [1, 1], "pads": [9, 9, 9, 9], "dilations": [9, 9], "group": [1],
                          "offset_group": [17]}
    assert r["decoded"] == [[1, 1], [9, 9], [9, 9], 1, 17]
    assert r["out_dtype"] == "DataType.FLOAT"
