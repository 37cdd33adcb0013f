"""Defect 2 of [trt-contact]: plugins are registered before a plan is deserialized; VC builds carry the
parser's VC plugin libraries; the parser's ENABLE_PLUGIN_OVERRIDE is set where it exists.

Checked on the real bindings of TensorRT 10.3, 10.13, 10.15 and 11.4 (``tools.trt_api`` imports each
wheel over stub native libraries): a *recording wrapper* around the real ``tensorrt`` module resolves
every attribute on the real module (a name a release lacks fails), checks set attributes exist on the
real class, and records the calls instead of entering native code (there is no GPU or libnvinfer here).
Return values are objects of the real class the binding's signature names (``-> tensorrt.IPluginRegistry``).
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
    r"""
    import json, re, sys
    import tensorrt as real
    from dcpose_trt.errors import PlanMismatchError
    from dcpose_trt.engine.network import configure_parser
    from dcpose_trt.engine.trt_config import serialize_vc_plugins
    from dcpose_trt.engine.onnx_info import OnnxInfo, PluginUse
    from dcpose_trt.runtime.tensorrt import trt_backend as tb
    import dcpose_trt.plugins.deform_conv.plugin as plugin_mod

    sys.path.insert(0, sys.argv[2])
    from trt_recording import Recorder

    rec = Recorder(real, returns={"get_used_vc_plugin_libraries": ["/opt/trt/lib/libnvinfer_vc_plugin.so.10"]},
                   return_class={"get_plugin_registry": "IPluginRegistry"})
    calls = rec.calls
    Rec = lambda obj, path: __import__("trt_recording").Rec(rec, obj, path)
    t = Rec(real, "")
    # trtp registration is recorded, and runs for real with lazy=True (no native registry here).
    real_register = plugin_mod.register_plugin
    def register_plugin(lazy=False):
        calls.append(["dcpose_trt.register_plugin", []])
        return real_register(lazy=True)
    plugin_mod.register_plugin = register_plugin

    logger = object()  # only handed on (to recorded calls), never called
    out = {"version": real.__version__, "load": {}}
    lib = sys.argv[1]
    from dcpose_trt.engine.plan_trust import PlanTrust, resolve

    # The user named the library (--plugin-lib) and trusts the VC plan (--trust-plan): [trust] items 1-2.
    cases = {
        "gridsample": (tb.PlanPlugins("gridsample"), PlanTrust()),
        "deformconv": (tb.PlanPlugins("deformconv"), PlanTrust()),
        "plugin-aot": (tb.PlanPlugins("plugin", "aot"), PlanTrust()),
        "plugin-jit": (tb.PlanPlugins("plugin", "jit"), PlanTrust()),
        "libraries": (tb.PlanPlugins("gridsample", None, (lib,)), resolve(False, [lib])),
        "vc": (tb.PlanPlugins("deformconv", None, (lib,), True), resolve(True, [])),
    }
    import dcpose_trt.engine.network as network
    for case, (plugins, trust) in cases.items():
        network._plugin_loggers.clear()  # each case as the first load of a process
        calls.clear()
        try:
            tb.load_engine(b"plan", t, logger, plugins, what="m.plan", trust=trust)
            err = None
        except PlanMismatchError as exc:
            err = str(exc)
        out["load"][case] = {"calls": list(calls), "error": err}
    calls.clear()  # a second plan in the same process: the built-in plugins are registered already
    plugins, trust = cases["gridsample"]
    tb.load_engine(b"plan", t, logger, plugins, what="m.plan", trust=trust)
    out["load"]["second"] = {"calls": list(calls), "error": None}

    # Builder side: parser flag and VC plugin serialization, on the real OnnxParser / IBuilderConfig.
    info = OnnxInfo(path=None, sha256="", opset=19, precision="fp32", dcn_form="plugin",
                    plugins=(PluginUse("P", "dcpose_trt", "1", 1, "dcpose_trt"),), preset=None, metadata={},
                    inputs=(), outputs=())
    calls.clear()
    flags = configure_parser(t, Rec(real.OnnxParser, "parser"), info)
    out["parser"] = {"flags": flags, "calls": list(calls)}
    calls.clear()
    libs = serialize_vc_plugins(Rec(real.IBuilderConfig, "config"), Rec(real.OnnxParser, "parser"), [lib])
    out["vc"] = {"libs": libs, "calls": list(calls)}
    calls.clear()
    from dcpose_trt.runtime.tensorrt.trt_api import create_context
    create_context(t, Rec(real.ICudaEngine, "engine"))
    out["context"] = list(calls)
    print(json.dumps(out))
    """
)


def _probe(version: str, lib: Path) -> dict:
    trt_api = pytest.importorskip("tools.trt_api")
    try:
        stubs = trt_api.prepare(version)
    except trt_api.TrtApiError as exc:
        pytest.skip(f"TensorRT {version} bindings unavailable: {exc}")
    entry = stubs.stub_dir.parent
    env = trt_api.bindings_env(entry, [REPO])
    proc = subprocess.run([sys.executable, "-c", PROBE, str(lib), str(Path(__file__).parent)],
                          capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _names(case: dict) -> list[str]:
    return [c[0] for c in case["calls"]]


@pytest.fixture(scope="module", params=["10.3", "10.13", "10.15", "11.4"])
def probe(request, tmp_path_factory):
    lib = tmp_path_factory.mktemp("plugins") / "libmy_plugin.so"
    lib.write_bytes(b"\x7fELF")
    return request.param, lib, _probe(request.param, lib)


def test_builtin_plugins_before_deserialize_for_every_form(probe):
    version, _, r = probe
    assert r["version"].startswith(version)
    for case in ("gridsample", "deformconv", "plugin-aot", "libraries", "vc"):
        names = _names(r["load"][case])
        assert r["load"][case]["error"] is None, (case, r["load"][case])
        # The engine stage's lasting logger (init_builtin_plugins), not the plan's: the plugin library
        # keeps it as a raw pointer for the life of the process.
        assert names[:2] == ["Logger", "init_libnvinfer_plugins"], (case, names)
        assert names[-1] == "Runtime().deserialize_cuda_engine", (case, names)
        registration = [n for n in names if not n.startswith("Runtime")]
        assert names[: len(registration)] == registration, (case, names)  # all of it before the Runtime
        assert r["load"][case]["calls"][1][1][1] == ""  # namespace ""
        assert r["load"][case]["calls"][1][1][0] != "object"  # not the plan's logger
    second = _names(r["load"]["second"])
    assert second[0] == "Runtime" and second[-1] == "Runtime().deserialize_cuda_engine", second
    assert "init_libnvinfer_plugins" not in second and "Logger" not in second, second


def test_user_named_libraries_loaded_before_deserialize(probe):
    _, lib, r = probe
    names = _names(r["load"]["libraries"])
    assert names == ["Logger", "init_libnvinfer_plugins", "get_plugin_registry",
                     "get_plugin_registry().load_library", "Runtime", "Runtime().engine_host_code_allowed=",
                     "Runtime().deserialize_cuda_engine"]
    assert r["load"]["libraries"]["calls"][5][1] is False
    assert r["load"]["libraries"]["calls"][3][1] == [str(lib.resolve())]


def test_trusted_vc_plan_allows_host_code_and_does_not_reload_libraries(probe):
    _, _, r = probe
    names = _names(r["load"]["vc"])
    assert ["Runtime().engine_host_code_allowed=", True] in r["load"]["vc"]["calls"]
    assert "get_plugin_registry().load_library" not in names  # serialized into the plan
    assert names.index("Runtime().engine_host_code_allowed=") < names.index("Runtime().deserialize_cuda_engine")


def test_jit_plugin_registered_before_deserialize(probe):
    version, _, r = probe
    case = r["load"]["plugin-jit"]
    if version == "10.3":  # no tensorrt.plugin: a clear refusal, nothing deserialized
        assert "cannot be registered" in case["error"] and "10.3" in case["error"]
        assert "Runtime().deserialize_cuda_engine" not in _names(case)
        return
    assert case["error"] is None, case
    names = _names(case)
    assert names.index("dcpose_trt.register_plugin") < names.index("Runtime().deserialize_cuda_engine")
    assert "dcpose_trt.register_plugin" not in _names(r["load"]["plugin-aot"])  # PTX is in the plan


def test_vc_build_serializes_parser_vc_plugins(probe):
    _, lib, r = probe
    assert r["vc"]["libs"] == [str(lib), "/opt/trt/lib/libnvinfer_vc_plugin.so.10"]
    names = [c[0] for c in r["vc"]["calls"]]
    assert names == ["parser.get_used_vc_plugin_libraries", "config.plugins_to_serialize="]


def test_plugin_override_flag_where_it_exists(probe):
    version, _, r = probe
    if version in ("10.15", "11.4"):
        assert r["parser"]["flags"] == ["ENABLE_PLUGIN_OVERRIDE"]
        assert r["parser"]["calls"] == [["parser.set_flag", ["OnnxParserFlag.ENABLE_PLUGIN_OVERRIDE"]]]
    else:
        assert r["parser"] == {"flags": [], "calls": []}


def test_full_tensorrt_context_is_user_managed(probe):
    _, _, r = probe
    assert r["context"] == [["engine.create_execution_context",
                             ["ExecutionContextAllocationStrategy.USER_MANAGED"]]]
