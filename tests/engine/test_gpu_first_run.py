"""Issue 23 findings 9 (builder/plan details), checked on the real TensorRT bindings over stub libraries.

* ``init_libnvinfer_plugins`` keeps its logger as a raw pointer (NVIDIA/TensorRT
  ``plugin/api/inferPlugin.cpp``: ``InitializePlugin`` stores ``static_cast<ILogger*>(logger)`` in the global
  ``gLogger``): the builder hands it one module-level logger, once, never a build's logger.
* The plan check compares the sidecar's ``trt.__version__`` with the *imported* module's version, not with
  package metadata: the 10.13 bindings wheel is ``10.13.3.9.post1`` while ``tensorrt.__version__`` is
  ``10.13.3.9``, and the stub environment has no metadata at all. Before the fix ``local_machine()`` read
  metadata, so a plan built by that very module was reported as built by another version / not installed.
* Same compute capability, another GPU name: TensorRT only warns ("Using an engine plan file across
  different models of devices is not recommended..."), so the check warns and does not refuse.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dcpose_trt._env import GpuInfo
from dcpose_trt.engine._trt import Machine

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

PROBE = textwrap.dedent(
    """
    import json, sys
    import tensorrt as real
    sys.path.insert(0, sys.argv[1])
    from trt_recording import Recorder
    from dcpose_trt.engine._trt import local_machine
    from dcpose_trt.engine.network import init_builtin_plugins

    rec = Recorder(real)
    t = rec.module()
    a, b = init_builtin_plugins(t), init_builtin_plugins(t)
    print(json.dumps({"version": real.__version__, "same": a is b, "calls": rec.calls,
                      "machine": local_machine().backend_versions}))
    """
)


def _probe(version: str) -> dict:
    trt_api = pytest.importorskip("tools.trt_api")
    try:
        stubs = trt_api.prepare(version)
    except trt_api.TrtApiError as exc:
        pytest.skip(f"TensorRT {version} bindings unavailable: {exc}")
    env = trt_api.bindings_env(stubs.stub_dir.parent, [REPO])
    proc = subprocess.run([sys.executable, "-c", PROBE, str(HERE)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("version", ["10.13", "11.4"])
def test_builtin_plugins_get_one_lasting_logger(version):
    r = _probe(version)
    assert r["same"]
    names = [c[0] for c in r["calls"]]
    assert names == ["Logger", "init_libnvinfer_plugins"]  # once per process, with the module's logger
    assert r["calls"][1][1][1] == ""


@pytest.mark.parametrize("version", ["10.13", "11.4"])
def test_machine_reports_the_imported_modules_version(version):
    r = _probe(version)
    assert r["machine"].get("tensorrt") == r["version"]  # what the builder writes into the sidecar


def _sidecar(gpu_name: str) -> dict:
    return {"backend": {"name": "tensorrt", "version": "10.13.3.9"},
            "target": {"gpu": {"name": gpu_name, "compute_capability": "8.6"}, "compute_capabilities": [],
                       "hardware_compat": "none", "version_compatible": False}}


def test_same_cc_other_gpu_name_warns(caplog):
    from dcpose_trt.engine.plan import _gpu_reason

    here = Machine({"tensorrt": "10.13.3.9"}, GpuInfo("NVIDIA RTX A6000", "8.6"))
    with caplog.at_level("WARNING"):
        assert _gpu_reason(_sidecar("NVIDIA GeForce RTX 3090"), here) is None
    assert "RTX 3090" in caplog.text and "same compute capability" in caplog.text
    other_cc = Machine({"tensorrt": "10.13.3.9"}, GpuInfo("NVIDIA L4", "8.9"))
    assert "compute capability 8.6" in _gpu_reason(_sidecar("NVIDIA GeForce RTX 3090"), other_cc)


def test_check_plan_prints_unverified_notes(tiny_fp32_plan, tmp_path, capsys):
    """A plan whose build was recorded as unverified (plugin form + VC/HC) says so in check-plan's output."""
    import shutil

    from dcpose_trt.cli import main
    from dcpose_trt.engine import sidecar_path

    plan = Path(shutil.copy(tiny_fp32_plan, tmp_path / "m.plan"))
    meta = json.loads(sidecar_path(tiny_fp32_plan).read_text())
    meta["build"]["unverified"] = ["unverified: a version-compatible plan with our AOT DeformConv plugin has not "
                                   "been loaded on a GPU yet"]
    sidecar_path(plan).write_text(json.dumps(meta))
    main(["check-plan", str(plan)])
    out = capsys.readouterr().out
    assert out.count("note: unverified: a version-compatible plan") == 1
    # A plugin-form hardware-compatible plan whose sidecar predates the notes still gets its note.
    meta["build"].pop("unverified")
    meta["dcn"]["form"], meta["target"]["hardware_compat"] = "plugin", "ampere+"
    sidecar_path(plan).write_text(json.dumps(meta))
    main(["check-plan", str(plan)])
    assert "note: unverified: a hardware-compatible (ampere+) plan" in capsys.readouterr().out
