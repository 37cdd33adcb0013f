"""Defect 4 of [trt-contact]: the AOT kernel's PTX ``.entry`` declares exactly what TensorRT passes at launch.

TensorRT launches an ``aot_impl`` kernel with one pointer per plugin input, then the ``extra_args``
(``SymInt32`` -> int32), then one pointer per output, and nothing else: the real ``tensorrt.plugin``
(``_lib.aot_impl``'s contract, ``_plugin_class._TemplateAOTPlugin.get_launch_params``) is read here from
the bindings of 10.13 and 11.4 (``tools.trt_api``). ``cuLaunchKernel`` reads one argument per declared
``.param``. On the old code the entry had 23 parameters (Triton's ``global_scratch`` and
``profile_scratch`` pointers appended) against TensorRT's 21.
"""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dcpose_trt.plugins.deform_conv import SCALAR_ARGS
from dcpose_trt.plugins.deform_conv.aot_build import DEFAULT_ARCHS, build_ptx, find_kernel
from dcpose_trt.plugins.deform_conv.plugin import INPUTS, aot_extra_args
from dcpose_trt.plugins.deform_conv.ptx import entry_params

pytest.importorskip("triton")
REPO = Path(__file__).resolve().parents[2]

# What the real tensorrt.plugin says about our registered plugin and about the AOT launch.
PROBE = textwrap.dedent(
    """
    import inspect, json
    import numpy as np
    import tensorrt as trt
    from tensorrt.plugin import _lib, _plugin_class
    from tensorrt.plugin._lib import QDP_REGISTRY
    from dcpose_trt.contract import PLUGIN_ID
    from dcpose_trt.plugins.deform_conv.plugin import INPUTS, register_plugin

    trtp = register_plugin(lazy=True)
    d = QDP_REGISTRY[PLUGIN_ID]
    descs = [trtp.TensorDesc(trtp.ShapeExprs(4), trt.float32) for _ in INPUTS]
    ints = lambda *v: np.array(v, dtype=np.int32)
    outs = d.register_func(*descs, strides=ints(1, 1), pads=ints(3, 3, 3, 3), dilations=ints(3, 3), group=ints(1),
                           offset_group=ints(17))
    outs = outs if isinstance(outs, tuple) else (outs,)
    aot_params = list(inspect.signature(d.aot_impl_func).parameters)
    print(json.dumps({
        "version": trt.__version__,
        "inputs": list(d.input_tensor_names),
        "num_outputs": len(outs),
        "aot_params": aot_params,
        "aot_doc": _lib.aot_impl.__doc__,
        "launch_src": inspect.getsource(_plugin_class._TemplateAOTPlugin.get_launch_params),
    }))
    """
)


def _probe(version: str) -> dict:
    trt_api = pytest.importorskip("tools.trt_api")
    try:
        stubs = trt_api.prepare(version)
    except trt_api.TrtApiError as exc:  # first run without network: the wheel cannot be fetched
        pytest.skip(f"TensorRT {version} bindings unavailable: {exc}")
    entry = stubs.stub_dir.parent
    env = trt_api.bindings_env(entry, [REPO])
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=["10.13", "11.4"])
def trt_launch(request) -> list[str]:
    """TensorRT's launch argument list for our ``aot_impl``, as PTX parameter types."""
    r = _probe(request.param)
    # TensorRT's rule, from its own sources: inputs, then extra args, then outputs; nothing else is passed
    # (get_launch_params gives TensorRT only grid/block/shared memory and the extra args).
    assert "located after the tensor inputs and before the tensor outputs" in " ".join(r["aot_doc"].split())
    assert "symExprSetter.nbSymExprs = len(extra_args)" in r["launch_src"]
    assert "scratch" not in r["launch_src"]
    assert r["inputs"] == list(INPUTS) and r["aot_params"][: len(INPUTS)] == list(INPUTS)
    # The aot_impl's extra args (one SymInt32 each), evaluated on DCPose's PCN shapes.
    x, w, o = (1, 17, 24, 32), (17, 1, 3, 3), (1, 17, 24, 32)
    extra = aot_extra_args(x, w, o, 17, 17, (1, 1, 3, 3, 3, 3))
    assert len(extra) == len(SCALAR_ARGS) and all(isinstance(v, int) for v in extra)
    assert "trtp.SymInt32(v) for v in scalars" in inspect.getsource(sys.modules[aot_extra_args.__module__])
    return ["u64"] * len(r["inputs"]) + ["u32"] * len(extra) + ["u64"] * r["num_outputs"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``dcpose-trt plugin build`` for every default arch (FP32, tactic 1) plus FP16 / tactic 2 on one."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DCPOSE_TRT_CACHE", str(tmp_path_factory.mktemp("ptx_cache")))
    out = tmp_path_factory.mktemp("abi")
    manifest = build_ptx(list(DEFAULT_ARCHS), out, dtypes=["fp32"], tactics=[1], jobs=2, progress=False)
    extra = build_ptx([86], out / "fp16", dtypes=["fp16"], tactics=[2], jobs=1, progress=False)
    yield [(out, e) for e in manifest["kernels"]] + [(out / "fp16", e) for e in extra["kernels"]]
    mp.undo()


def test_every_arch_matches_trt_launch(built, trt_launch):
    archs = {e["arch"] for _, e in built}
    assert archs == set(DEFAULT_ARCHS)
    for out, e in built:
        params = entry_params((out / e["ptx"]).read_text())
        assert [t for t, _ in params] == trt_launch, (e["arch"], e["dtype"], params)
        assert e["num_params"] == len(trt_launch)


def test_manifest_documents_the_launch(built, trt_launch):
    out, _ = built[0]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["arguments"]["ptx_param_types"] == trt_launch
    assert find_kernel(manifest, 80, "fp32")["num_params"] == len(trt_launch)


def test_stripping_refuses_a_used_scratch_param():
    from dcpose_trt.errors import PluginError
    from dcpose_trt.plugins.deform_conv.ptx import match_launch_abi

    ptx = (".visible .entry k(\n\t.param .u64 k_param_0,\n\t.param .u32 k_param_1,\n\t.param .u64 k_param_2,\n"
           "\t.param .u64 .ptr .global .align 1 k_param_3\n)\n{\n\tld.param.u64 %rd1, [k_param_3];\n}\n")
    with pytest.raises(PluginError, match="scratch"):
        match_launch_abi(ptx, ("u64", "u32", "u64"))
    unused = ptx.replace("[k_param_3]", "[k_param_0]")
    stripped = match_launch_abi(unused, ("u64", "u32", "u64"))
    assert [t for t, _ in entry_params(stripped)] == ["u64", "u32", "u64"]
    assert re.search(r"k_param_2\n\)", stripped)
    with pytest.raises(PluginError, match="do not start with"):
        match_launch_abi(unused, ("u32",))
