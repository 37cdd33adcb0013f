"""[trust] items 1, 2, 13: a plan and sidecar written by someone else run nothing unasked.

What the real TensorRT-RTX runtime object is asked to do is recorded (``trt_recording.Recorder`` over the
installed ``tensorrt_rtx`` module: every attribute is looked up on the real module and classes, calls are
recorded instead of entering native code). A sidecar from elsewhere (any ``version_compatible``, any
``build.plugin_libraries``) never gets ``engine_host_code_allowed = True`` and never has a library loaded
without the user's opt-in (``--trust-plan`` / ``trust_plan=True`` / ``DCPOSE_TRT_TRUST_PLANS=1``,
``--plugin-lib PATH``).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dcpose_trt.errors import PlanMismatchError

sys.path.insert(0, str(Path(__file__).parent))
from trt_recording import Recorder  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_ambient_trust(monkeypatch):
    monkeypatch.delenv("DCPOSE_TRT_TRUST_PLANS", raising=False)
    monkeypatch.delenv("DCPOSE_TRT_PLUGIN_LIBS", raising=False)


def sidecar(vc=False, libs=None, **extra) -> dict:
    """A sidecar as ``dcpose-trt build`` writes it, with the fields an attacker controls set."""
    meta = {
        "schema": "dcpose_trt.plan/1",
        "plan": {"file": "m.plan", "sha256": hashlib.sha256(b"plan").hexdigest(), "bytes": 4},
        "backend": {"name": "tensorrt-rtx", "version": "1.7.1.116"},
        "target": {"gpu": None, "compute_capabilities": [], "hardware_compat": "none", "version_compatible": vc},
        "precision": "fp32", "profiles": [], "onnx": {"file": "m.onnx", "sha256": "0" * 64, "opset": 19, "ops": {}},
        "dcn": {"form": "gridsample", "plugins": []}, "preset": "tiny-128x96", "metadata": {},
        "inputs": [], "outputs": [], "build": {"plugin_libraries": libs or []}, "layers": [],
        "command": "dcpose-trt build --onnx m.onnx --out m.plan", "dcpose_trt_version": "0.1.0",
    }
    meta.update(extra)
    return meta


def write_plan(folder: Path, meta: dict) -> Path:
    plan = folder / "m.plan"
    plan.write_bytes(b"plan")
    (folder / "m.plan.json").write_text(json.dumps(meta))
    return plan


def load(rtx, plan: Path, trust=None) -> tuple[list, str | None]:
    """Sidecar -> PlanPlugins -> load_engine on the recorded real TensorRT-RTX module: (calls, error)."""
    from dcpose_trt.engine.plan import read_sidecar
    from dcpose_trt.runtime.tensorrt import trt_backend as tb

    rec = Recorder(rtx, return_class={"get_plugin_registry": "IPluginRegistry"})
    plugins = tb.PlanPlugins.from_sidecar(read_sidecar(plan))
    try:
        if trust is None:  # what every caller gets without an opt-in
            tb.load_engine(plan.read_bytes(), rec.module(), object(), plugins, what=str(plan))
        else:
            tb.load_engine(plan.read_bytes(), rec.module(), object(), plugins, what=str(plan), trust=trust)
    except PlanMismatchError as exc:
        return rec.calls, str(exc)
    return rec.calls, None


@pytest.fixture
def evil(tmp_path, monkeypatch) -> Path:
    """A shared library a sidecar could point at, relative to the working directory and absolute."""
    lib = tmp_path / "libevil.so"
    lib.write_bytes(b"\x7fELF not really")
    monkeypatch.chdir(tmp_path)
    return lib


HOSTILE = [
    pytest.param(True, [], id="vc"),
    pytest.param(True, ["libevil.so"], id="vc+relative-lib"),
    pytest.param(False, ["libevil.so"], id="relative-lib"),
    pytest.param(False, ["ABS"], id="absolute-lib"),
    pytest.param(False, [{"name": "libevil.so", "sha256": "SHA"}], id="named-lib-with-hash"),
    pytest.param(True, ["ABS", {"name": "libevil.so"}], id="vc+libs"),
]


@pytest.mark.parametrize(("vc", "libs"), HOSTILE)
def test_foreign_sidecar_gets_no_host_code_and_loads_nothing(rtx, tmp_path, evil, vc, libs):
    sha = hashlib.sha256(evil.read_bytes()).hexdigest()
    libs = [str(evil) if e == "ABS" else ({**e, "sha256": sha} if isinstance(e, dict) and "sha256" in e else e)
            for e in libs]
    calls, err = load(rtx, write_plan(tmp_path, sidecar(vc, libs)))
    names = [c[0] for c in calls]
    assert not any(n.endswith("load_library") for n in names), calls
    assert ["Runtime().engine_host_code_allowed=", True] not in calls, calls
    assert err is not None  # the plan asks for something only the user can grant: one line, nothing loaded
    assert "\n" not in err
    assert ("--trust-plan" in err) if vc else ("--plugin-lib" in err and "libevil.so" in err)
    assert "Runtime().deserialize_cuda_engine" not in names


def test_plain_plan_disallows_host_code_explicitly(rtx, tmp_path):
    calls, err = load(rtx, write_plan(tmp_path, sidecar(False)))
    assert err is None
    names = [c[0] for c in calls]
    assert ["Runtime().engine_host_code_allowed=", False] in calls
    assert names.index("Runtime().engine_host_code_allowed=") < names.index("Runtime().deserialize_cuda_engine")
    assert not any(n.endswith("load_library") for n in names)


def test_trust_plan_allows_host_code_and_says_so(rtx, tmp_path, capsys):
    from dcpose_trt.engine.plan_trust import resolve

    calls, err = load(rtx, write_plan(tmp_path, sidecar(True, ["/opt/elsewhere/libnvinfer_vc_plugin.so"])),
                      resolve(trust_plan=True))
    assert err is None, err
    assert ["Runtime().engine_host_code_allowed=", True] in calls
    assert not any(c[0].endswith("load_library") for c in calls)  # serialized in the plan: never from the path
    assert "trusting" in capsys.readouterr().err


def test_environment_opt_in(rtx, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DCPOSE_TRT_TRUST_PLANS", "1")
    calls, err = load(rtx, write_plan(tmp_path, sidecar(True)))
    assert err is None and ["Runtime().engine_host_code_allowed=", True] in calls
    assert "DCPOSE_TRT_TRUST_PLANS" in capsys.readouterr().err


def test_user_named_library_is_loaded_and_checked_against_the_sidecar(rtx, tmp_path, evil):
    from dcpose_trt.engine.plan_trust import resolve

    good = hashlib.sha256(evil.read_bytes()).hexdigest()
    plan = write_plan(tmp_path, sidecar(False, [{"name": "libevil.so", "sha256": good}]))
    calls, err = load(rtx, plan, resolve(plugin_libs=[evil]))
    assert err is None, err
    loads = [c for c in calls if c[0].endswith("load_library")]
    assert loads == [["get_plugin_registry().load_library", [str(evil.resolve())]]]
    names = [c[0] for c in calls]
    assert names.index("get_plugin_registry().load_library") < names.index("Runtime().deserialize_cuda_engine")

    from dcpose_trt.engine.plan_trust import library_records

    assert library_records([evil]) == [{"name": "libevil.so", "sha256": good}]  # what a builder records
    plan = write_plan(tmp_path, sidecar(False, [{"name": "libevil.so", "sha256": "f" * 64}]))
    calls, err = load(rtx, plan, resolve(plugin_libs=[evil]))
    assert "sha256" in err and "\n" not in err
    assert not any(c[0].endswith("load_library") for c in calls)


def test_cli_refuses_vc_plan_without_opt_in(tmp_path):
    """``run`` on a version-compatible plan from elsewhere: one line naming the opt-in, exit 2."""
    import cv2
    import numpy as np

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i:04d}.jpg"), np.zeros((64, 48, 3), np.uint8))
    (tmp_path / "boxes.json").write_text(json.dumps([{"frame": 0, "bbox": [1, 1, 20, 30], "score": 0.9}]))
    plan = write_plan(tmp_path, sidecar(True))
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO)}
    env.pop("DCPOSE_TRT_TRUST_PLANS", None)
    proc = subprocess.run([sys.executable, "-m", "dcpose_trt.cli", "run", "--video", str(frames), "--boxes",
                           str(tmp_path / "boxes.json"), "--model", str(plan)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--trust-plan" in lines[0], proc.stderr


# -- item 13: the sidecar is validated as a schema -------------------------------------------------------

@pytest.mark.parametrize(("field", "value"), [
    ("target", "x"),
    ("plan", {"sha256": 5}),
    ("backend", {"name": "tensorrt-rtx", "version": 10}),
    ("build", {"plugin_libraries": "libevil.so"}),
    ("build", {"plugin_libraries": [3]}),
    ("dcn", "plugin"),
    ("preset", 3),
])
def test_sidecar_field_of_wrong_type_is_one_line(tmp_path, field, value):
    from dcpose_trt.engine.plan import check, read_sidecar

    meta = sidecar()
    meta[field] = value
    plan = write_plan(tmp_path, meta)
    with pytest.raises(PlanMismatchError) as info:
        read_sidecar(plan)
    assert field in str(info.value) and "\n" not in str(info.value)
    result = check(plan)  # check-plan: a reason, not a TypeError
    assert not result.ok and not result.checked


def test_target_version_compatible_must_be_boolean(tmp_path):
    from dcpose_trt.engine.plan import read_sidecar

    meta = sidecar()
    meta["target"]["version_compatible"] = "yes"
    with pytest.raises(PlanMismatchError, match="version_compatible"):
        read_sidecar(write_plan(tmp_path, meta))
