"""Whether a plan fits a TensorRT that is not installed here (``check-plan --tensorrt 10.8.0``).

A plan is checked before it ships to a machine where our CLI may not run (NVIDIA's Triton container, a
Jetson): the user names that TensorRT's version, and the plan's sidecar (which records the TensorRT that
built it) is compared with it by the same rules :func:`dcpose_trt.engine.plan.check` applies to the
installed TensorRT. The GPU of that machine is not known here, so it is not checked.
"""

from __future__ import annotations

import re
from typing import Any

from dcpose_trt._env import parse_version
from dcpose_trt.errors import InputError

_VERSION = re.compile(r"\d+\.\d+\.\d+(\.\d+)?")

# Cross-major pairs (built, runtime) TensorRT supports for version-compatible plans: "TensorRT 10
# version-compatible engines can run with a TensorRT 11 runtime, and TensorRT 8 version-compatible engines
# can run with a TensorRT 10 runtime. No other combination across major versions is supported."
# (TensorRT 11.4 support matrix, "Engine Portability"; 11.x "Engine Compatibility" page).
VC_CROSS_MAJOR = {(8, 10), (10, 11)}


def vc_loads(built: tuple[int, ...], runtime: tuple[int, ...]) -> bool:
    """Can a version-compatible plan built with TensorRT ``built`` load on ``runtime``? Same major and not
    older, or a documented cross-major pair; VC exists from 8.6 on."""
    if built < (8, 6) or runtime < built:
        return False
    return built[:1] == runtime[:1] or (built[0], runtime[0]) in VC_CROSS_MAJOR


def parse_tensorrt(text: str) -> tuple[int, ...]:
    """``"10.8.0"`` or ``"10.8.0.43"`` (``tensorrt.__version__``) -> its numbers.

    Raises:
        InputError: not major.minor.patch[.build].
    """
    if not _VERSION.fullmatch(str(text).strip()):
        raise InputError(f"--tensorrt takes a TensorRT version major.minor.patch (e.g. 10.8.0), got {text!r}")
    return tuple(int(v) for v in str(text).strip().split("."))


def tensorrt_reason(meta: dict[str, Any], target: str) -> str | None:
    """Why TensorRT ``target`` (checked by :func:`parse_tensorrt`) cannot load the plan of sidecar ``meta``;
    None when it can.

    The rules are those of the installed check (:func:`dcpose_trt.engine.plan._version_reason`):

    * A plan that is not version-compatible loads only on the TensorRT release that built it ("By default,
      TensorRT engines are compatible only with the version of TensorRT used to build them", NVIDIA
      TensorRT developer guide, "Version Compatibility"). A release is major.minor.patch; the fourth
      number of ``tensorrt.__version__`` is its build number and is compared only when both sides give it.
    * A version-compatible plan (``--version-compatible``) loads on the same release or a later one of the
      same major, or a documented cross-major pair, from 8.6 on (:func:`vc_loads`,
      whose comment quotes NVIDIA's support matrix). Triton loads such a plan only with
      ``--backend-config=tensorrt,version-compatible=true`` (README of triton-inference-server/tensorrt_backend,
      "Command-line Options"; added in its pull request 74).
    """
    have = parse_tensorrt(target)
    backend, built = meta["backend"]["name"], str(meta["backend"]["version"])
    if backend != "tensorrt":
        return f"it was built with {backend} {built}, which TensorRT {target} cannot load"
    parsed = parse_version(built)
    b = parsed.release if parsed is not None else ()
    n = min(len(b), len(have))
    if meta["target"].get("version_compatible"):
        if n >= 3 and vc_loads(b[:n], have[:n]):
            return None
        return f"it was built version-compatible with TensorRT {built}, which TensorRT {target} cannot load"
    if n >= 3 and b[:n] == have[:n]:
        return None
    return (f"it was built with TensorRT {built} but the target has TensorRT {target} (plans are version "
            f"specific: rebuild it with TensorRT {target}, e.g. inside that container)")


def target_notes(meta: dict[str, Any]) -> list[str]:
    """What ``--tensorrt`` does not check and the target must give: the GPU, and for a version-compatible
    plan Triton's switch for it."""
    target = meta.get("target") or {}
    gpu = target.get("gpu")
    if target.get("compute_capabilities"):
        need = f"compute capability {', '.join(target['compute_capabilities'])}"
    elif gpu and target.get("hardware_compat") == "ampere+":
        need = "an Ampere or newer GPU"
    elif gpu:
        need = f"a {gpu['name']} (compute capability {gpu['compute_capability']})"
    else:
        need = "a GPU that TensorRT supports"
    notes = [f"the target's GPU is not checked: the plan needs {need}"]
    if target.get("version_compatible"):
        notes.append("a version-compatible plan loads in Triton only with "
                     "--backend-config=tensorrt,version-compatible=true")
    return notes
