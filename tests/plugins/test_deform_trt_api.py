"""``register_plugin()`` against the real ``tensorrt.plugin`` of several TensorRT releases, without TensorRT.

:mod:`tools.trt_api` unpacks each release's bindings wheel and builds stub shared objects for the native
libraries it links, so ``import tensorrt`` works on a CPU as long as no native function is called.
``tensorrt.plugin`` is pure Python: its decorators validate our ``register``/``autotune``/``impl``/
``aot_impl`` signatures exactly as at engine-build time. ``lazy=True`` keeps the creator out of TensorRT's
(native) plugin registry. Each version runs in its own interpreter with ``LD_LIBRARY_PATH`` on the stubs.
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
    from dcpose_trt.errors import PluginError
    from dcpose_trt.plugins.deform_conv.plugin import INPUTS, register_plugin

    try:
        trtp = register_plugin(lazy=True)
    except PluginError as exc:
        print(json.dumps({"version": trt.__version__, "error": str(exc)}))
        sys.exit(0)
    assert register_plugin(lazy=True) is trtp  # idempotent
    from tensorrt.plugin._lib import QDP_REGISTRY

    from dcpose_trt.contract import PLUGIN_ID
    d = QDP_REGISTRY[PLUGIN_ID]
    descs = [trtp.TensorDesc(trtp.ShapeExprs(4), trt.float16) for _ in INPUTS]
    ints = lambda *v: np.array(v, dtype=np.int32)
    out = d.register_func(*descs, strides=ints(1, 1), pads=ints(9, 9, 9, 9), dilations=ints(9, 9), group=ints(1),
                          offset_group=ints(17))
    (combo,) = d.autotune_func(*descs, (out,))
    print(json.dumps({
        "version": trt.__version__,
        "inputs": list(d.input_tensor_names),
        "attrs": list(d.input_attrs),
        "impl": d.impl_func is not None and d.expects_tactic,
        "aot": getattr(d, "aot_impl_func", None) is not None,
        "out_dtype": str(out.dtype),
        "io_types": combo.io_types,
        "tactics": list(combo._tactics),
    }))
    """
)


def _probe(version: str) -> dict:
    trt_api = pytest.importorskip("tools.trt_api")
    try:
        stubs = trt_api.prepare(version)
    except trt_api.TrtApiError as exc:  # first run without network: the wheel cannot be fetched
        pytest.skip(f"TensorRT {version} bindings unavailable: {exc}")
    entry = stubs.stub_dir.parent  # tools.trt_api layout: pkg/ (real bindings), lib/ (stub .so), stubs/
    assert (entry / "pkg" / "tensorrt").is_dir() and (entry / "lib").is_dir(), f"unexpected layout in {entry}"
    env = trt_api.bindings_env(entry, [REPO])
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("version", ["10.13", "11.4"])
def test_registers_with_aot(version):
    r = _probe(version)
    assert r["version"].startswith(version)
    assert r["inputs"] == ["X", "W", "offset", "B", "mask"]
    assert r["attrs"] == ["strides", "pads", "dilations", "group", "offset_group"]
    assert r["impl"] and r["aot"]
    assert r["out_dtype"] == "DataType.HALF"
    assert r["io_types"] == ["FP32|FP16"] * 6 and r["tactics"] == [1, 2]


def test_old_tensorrt_is_a_clear_error():
    r = _probe("10.3")  # JetPack 6: no tensorrt.plugin
    assert "TensorRT 10.3" in r["error"] and "need >= 10.6" in r["error"] and "gridsample" in r["error"]
