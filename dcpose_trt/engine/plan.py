"""The plan artifact: ``MODEL.plan`` plus ``MODEL.plan.json``, and whether a plan fits this machine.

Sidecar schema (``"schema": "dcpose_trt.plan/1"``)::

    {
      "schema": "dcpose_trt.plan/1",
      "plan": {"file": "m.plan", "sha256": "...", "bytes": 123},
      "backend": {"name": "tensorrt-rtx", "version": "1.7.1.116"},
      "target": {"gpu": {"name": "NVIDIA H100", "compute_capability": "9.0"} | null,
                 "compute_capabilities": ["8.9", "12.0"],   # TensorRT-RTX targets; [] = builder default
                 "hardware_compat": "none", "version_compatible": false},
      "precision": "fp32" | "fp16" | "bf16" | "int8",
      "profiles": [{"batch": [1, 8, 32], "shapes": {"frames": {"min": [...], "opt": [...], "max": [...]}}}],
      "onnx": {"file": "m.onnx", "sha256": "...", "opset": 19, "ops": {"Conv": 80, ...}},
      "dcn": {"form": "gridsample" | "plugin" | "deformconv" | "none",
              "plugins": [{"op": "DcposeModulatedDeformConv2d", "namespace": "dcpose_trt", "version": "1", ...}]},
      "preset": "tiny-128x96" | null,
      "metadata": {...ONNX metadata_props...},
      "inputs": [{"name": "frames", "dtype": "float", "shape": [-1, 9, 128, 96]}], "outputs": [...],
      "build": {"strongly_typed": true, "flags": [], "opt_level": 3, "workspace_mb": null, ...},
      "layers": [{"name": "node_Conv_3_myl0_4", "type": "correlation", "inputs": ["Half"],
                  "constants": ["Half"], "outputs": ["Half"], "onnx_nodes": ["node_Conv_3"]}],
                  # the builder's own layer listing (empty if it printed none); dtypes as TensorRT names them
      "command": "dcpose-trt build --onnx m.onnx --out m.plan ...",
      "dcpose_trt_version": "0.1.0", "created": "2026-11-24T06:30:00Z"
    }
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcpose_trt._atomic import atomic_write_bytes
from dcpose_trt._env import TRT_FLAVOURS, parse_version
from dcpose_trt.engine._trt import GpuInfo, Machine, local_machine, module_version
from dcpose_trt.engine.onnx_info import OnnxInfo, file_sha256, onnx_sha256
from dcpose_trt.engine.plan_target import VC_CROSS_MAJOR, parse_tensorrt, tensorrt_reason, vc_loads  # noqa: F401
from dcpose_trt.errors import InputError, PlanMismatchError

log = logging.getLogger(__name__)
SCHEMA = "dcpose_trt.plan/1"


def sidecar_path(plan: str | os.PathLike[str]) -> Path:
    """``m.plan`` -> ``m.plan.json``."""
    return Path(f"{os.fspath(plan)}.json")


@dataclass
class PlanArtifact:
    """Everything the sidecar records about one build (see the module docstring for the JSON)."""

    backend: str
    backend_version: str
    gpu: GpuInfo | None
    compute_capabilities: tuple[str, ...]
    onnx: OnnxInfo
    profiles: list[dict[str, Any]]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    build: dict[str, Any]
    command: str
    layers: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, plan_file: Path, plan_sha256: str, plan_bytes: int) -> dict[str, Any]:
        from dcpose_trt import __version__

        return {
            "schema": SCHEMA,
            "plan": {"file": plan_file.name, "sha256": plan_sha256, "bytes": plan_bytes},
            "backend": {"name": self.backend, "version": self.backend_version},
            "target": {
                "gpu": ({"name": self.gpu.name, "compute_capability": self.gpu.compute_capability}
                        if self.gpu else None),
                "compute_capabilities": list(self.compute_capabilities),
                "hardware_compat": self.build.get("hardware_compat", "none"),
                "version_compatible": bool(self.build.get("version_compatible", False)),
            },
            "precision": self.onnx.precision,
            "profiles": self.profiles,
            "onnx": {"file": str(self.onnx.path), "sha256": self.onnx.sha256, "opset": self.onnx.opset,
                     "ops": dict(sorted(self.onnx.op_counts.items()))},
            "dcn": {"form": self.onnx.dcn_form, "plugins": [p.to_json() for p in self.onnx.plugins]},
            "preset": self.onnx.preset,
            "metadata": self.onnx.metadata,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "build": self.build,
            "layers": self.layers,
            "command": self.command,
            "dcpose_trt_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


def write_plan(out_plan: str | os.PathLike[str], serialized: bytes | memoryview,
               artifact: PlanArtifact) -> Path:
    """Write the plan and its sidecar atomically; returns the plan path.

    The sidecar carries the plan's sha256, so if a crash ever separated the two renames the pair is
    detected as inconsistent by :func:`check` instead of being trusted.
    """
    import hashlib

    out_plan = Path(out_plan)
    data = memoryview(serialized).cast("B")
    meta = artifact.to_json(out_plan, hashlib.sha256(data).hexdigest(), data.nbytes)
    atomic_write_bytes(out_plan, data)
    atomic_write_bytes(sidecar_path(out_plan), (json.dumps(meta, indent=2) + "\n").encode())
    return out_plan


def read_sidecar(plan: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``PLAN.json``, validated against the schema's types
    (:func:`~dcpose_trt.engine.sidecar_schema.validate_sidecar`).

    Raises:
        PlanMismatchError: missing, unreadable, another schema, or a field missing or of the wrong type.
    """
    from dcpose_trt.engine.sidecar_schema import validate_sidecar

    path = sidecar_path(plan)
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanMismatchError(f"{plan}: no sidecar {path.name}; rebuild it with dcpose-trt build") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise PlanMismatchError(f"{plan}: unreadable sidecar {path.name} ({exc})") from None
    if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
        schema = meta.get("schema") if isinstance(meta, dict) else "?"
        raise PlanMismatchError(f"{plan}: sidecar schema {schema!r:.60} is not {SCHEMA}")
    return validate_sidecar(meta, f"{plan}")


@dataclass
class PlanCheck:
    """Whether a plan fits this machine.

    Attributes:
        plan: the plan file.
        ok: it can be loaded here as it is.
        reasons: one short sentence per problem (empty when ok).
        rebuild_command: the ``dcpose-trt build ...`` command that makes a fitting plan.
        meta: the sidecar (empty when it could not be read).
    """

    plan: Path
    ok: bool
    reasons: list[str]
    rebuild_command: str
    meta: dict[str, Any] = field(default_factory=dict)
    checked: bool = True
    against: str = "this machine"  # or "TensorRT 10.8.0" (check(tensorrt=...))

    @property
    def message(self) -> str:
        """One line: ``PLAN does not fit this machine: reason; reason; rebuild with: COMMAND``.

        When the plan could not be checked at all (no plan, no or a broken sidecar) it says so instead of
        calling it a mismatch: ``PLAN: cannot check whether it fits this machine: reason; rebuild with: ...``.
        """
        if self.ok:
            return f"{self.plan}: fits {self.against}"
        if not self.checked:
            return (f"{self.plan}: cannot check whether it fits {self.against}: {'; '.join(self.reasons)}; "
                    f"rebuild with: {self.rebuild_command}")
        return (f"{self.plan} does not fit {self.against}: {'; '.join(self.reasons)}; "
                f"rebuild with: {self.rebuild_command}")


def _version_tuple(v: str) -> tuple[int, ...]:
    """The release numbers of ``v`` (``"10.13.3.9"`` -> ``(10, 13, 3, 9)``) by :mod:`packaging.version`
    rules; ``()`` when it is not a version."""
    parsed = parse_version(v)
    return parsed.release if parsed is not None else ()


def _version_reason(meta: dict[str, Any], machine: Machine) -> str | None:
    backend = meta["backend"]["name"]
    built = meta["backend"]["version"]
    have = machine.backend_versions.get(backend)
    if have is None:
        return f"it was built with {backend} {built}, which is not installed here"
    if have == built:
        return None
    b, h = _version_tuple(built), _version_tuple(have)
    if meta["target"].get("version_compatible"):
        if vc_loads(b, h):
            return None
        return f"it was built version-compatible with {backend} {built}, which {backend} {have} cannot load"
    return f"it was built with {backend} {built} but {have} is installed (plans are version specific)"


def _plugin_arch_reason(meta: dict[str, Any], gpu: GpuInfo) -> str | None:
    """Our plugin's PTX JITs only on GPUs of at least the arch it was compiled for."""
    if (meta.get("dcn") or {}).get("form") != "plugin" or (meta.get("build") or {}).get("plugin_impl") == "jit":
        return None
    arch = (meta.get("build") or {}).get("plugin_ptx_arch")
    if arch is None:  # sidecars from before it was recorded: the PTX was compiled for the build GPU
        built = (meta.get("target") or {}).get("gpu") or {}
        cc = _version_tuple(str(built.get("compute_capability", "")))
        arch = 10 * cc[0] + cc[1] if len(cc) >= 2 else None
    if arch is None:
        return None
    have = _version_tuple(gpu.compute_capability)
    if len(have) >= 2 and 10 * have[0] + have[1] < int(arch):
        return (f"its DeformConv plugin PTX was compiled for sm_{arch}, which this {gpu.name} "
                f"({gpu.compute_capability}) cannot run")
    return None


def plan_name(meta: dict[str, Any]) -> str:
    return str((meta.get("plan") or {}).get("file") or "plan")


def _gpu_reason(meta: dict[str, Any], machine: Machine) -> str | None:
    target = meta["target"]
    gpu = machine.gpu
    if gpu is None:
        return "this machine has no CUDA GPU"
    ccs = target.get("compute_capabilities") or []
    if ccs:
        if gpu.compute_capability not in ccs:
            return (f"it targets compute capabilities {', '.join(ccs)} but this {gpu.name} is "
                    f"{gpu.compute_capability}")
        return None
    built = target.get("gpu")
    if built is None:
        return None  # TensorRT-RTX default: every supported GPU, specialised when loaded
    compat = target.get("hardware_compat", "none")
    if compat == "ampere+":
        if _version_tuple(gpu.compute_capability) < (8, 0):
            return f"it is built for Ampere or newer but this {gpu.name} is {gpu.compute_capability}"
        return _plugin_arch_reason(meta, gpu)
    if gpu.compute_capability != built["compute_capability"]:
        return (f"it was built for {built['name']} (compute capability {built['compute_capability']}) "
                f"but this GPU is {gpu.name} ({gpu.compute_capability})")
    if compat != "same-cc" and gpu.name != built["name"]:
        # TensorRT loads such a plan and only warns ("Using an engine plan file across different models of
        # devices is not recommended and is likely to affect performance or even cause errors"): so do we.
        log.warning("%s: built for %s, this GPU is %s (same compute capability): it loads, but its kernels were "
                    "timed on the other GPU; --hardware-compat same-cc makes that explicit", plan_name(meta),
                    built["name"], gpu.name)
    return None


def rebuild_command(meta: dict[str, Any], plan: Path, onnx_path: Path | None = None) -> str:
    """The sidecar's build command with ``--out`` naming the plan as it is called now (it may have been
    renamed or moved) and ``--onnx`` the caller's ONNX when given."""
    import shlex

    try:
        argv = shlex.split(str(meta.get("command") or ""))
    except ValueError:
        argv = []
    if not argv:
        return f"dcpose-trt build --onnx {onnx_path or 'MODEL.onnx'} --out {plan}"
    for flag, value in (("--out", plan), ("--onnx", onnx_path)):
        if value is not None and flag in argv[:-1]:
            argv[argv.index(flag) + 1] = str(value)
    return shlex.join(argv)


def check(plan_path: str | os.PathLike[str], onnx_path: str | os.PathLike[str] | None = None,
          preset: str | None = None, machine: Machine | None = None, *,
          sidecar: dict[str, Any] | None = None, tensorrt: str | None = None) -> PlanCheck:
    """Tell whether ``plan_path`` can run here, and if not exactly why and how to rebuild it.

    Checks, in order: plan and sidecar present and consistent (sha256); the TensorRT / TensorRT-RTX
    version it was built with is installed (same version, or same major and not older for
    version-compatible plans); the GPU (compute capability, model unless hardware-compatible, the
    TensorRT-RTX target set); the ONNX file (when given) still has the hash the plan was built from; the
    preset (when given) matches.

    Args:
        plan_path: ``MODEL.plan``; its sidecar ``MODEL.plan.json`` must sit next to it.
        onnx_path: the ONNX the plan should come from; a changed file makes the plan stale.
        preset: the model preset the caller expects (``"w48-384x288"``).
        machine: facts about the machine to check against; defaults to :func:`local_machine` (tests pass
            other machines).
        sidecar: the plan's sidecar when the caller has already read it (:func:`read_sidecar`), so the
            file is read once.
        tensorrt: check against this TensorRT version (``"10.8.0"``) instead of the installed one, and
            leave the GPU unchecked (:mod:`dcpose_trt.engine.plan_target`); InputError when malformed.
    """
    plan = Path(plan_path)
    onnx = Path(onnx_path) if onnx_path is not None else None
    against = "this machine" if tensorrt is None else f"TensorRT {tensorrt}"
    if tensorrt is not None:
        parse_tensorrt(tensorrt)
    cmd = f"dcpose-trt build --onnx {onnx or 'MODEL.onnx'} --out {plan}"
    if not plan.exists() and not sidecar_path(plan).exists():
        return PlanCheck(plan, False, ["no such plan file"], cmd, checked=False, against=against)
    try:
        meta = sidecar if sidecar is not None else read_sidecar(plan)
    except PlanMismatchError as exc:
        reason = str(exc).split(": ", 1)[-1]
        if not sidecar_path(plan).exists():  # read_sidecar's own advice would repeat the rebuild command
            reason = f"no sidecar {sidecar_path(plan).name} next to it (dcpose-trt build writes one)"
        return PlanCheck(plan, False, [reason], cmd, checked=False, against=against)
    cmd = rebuild_command(meta, plan, onnx)
    if not plan.is_file():
        return PlanCheck(plan, False, ["the plan file is missing"], cmd, meta, against=against)

    reasons = []
    if file_sha256(plan) != meta["plan"]["sha256"]:
        reasons.append("the plan file does not match its sidecar (sha256 differs)")
    if tensorrt is not None:  # another machine's TensorRT: its GPU is unknown here
        reasons.extend(r for r in [tensorrt_reason(meta, tensorrt)] if r)
    else:
        machine = machine or local_machine()
        reasons.extend(r for r in (_version_reason(meta, machine), _gpu_reason(meta, machine)) if r)
    if onnx is not None:
        if not onnx.is_file():
            reasons.append(f"the ONNX file {onnx} does not exist")
        elif onnx_sha256(onnx) != meta["onnx"]["sha256"]:
            reasons.append(f"{onnx} changed since the plan was built (sha256 differs)")
    if preset is not None and meta.get("preset") not in (None, preset):
        reasons.append(f"it is for preset {meta['preset']} but {preset} was requested")
    return PlanCheck(plan, not reasons, reasons, cmd, meta, against=against)


def ensure_plan_fits(plan_path: str | os.PathLike[str], sidecar: dict[str, Any] | None = None,
                     backend: str | None = None, *, onnx_path: str | os.PathLike[str] | None = None,
                     preset: str | None = None, machine: Machine | None = None) -> dict[str, Any]:
    """:func:`check` for a runtime about to load ``plan_path``; returns the sidecar, raises when it does not fit.

    Args:
        plan_path: ``MODEL.plan``.
        sidecar: its sidecar when already read (:func:`read_sidecar`); None reads it.
        backend: the runtime that will load the plan: ``tensorrt``, ``tensorrt-rtx``, or ``tensorrt-lean``
            (whose installed version then stands in for full TensorRT's); None: the sidecar's backend.
        onnx_path, preset, machine: as for :func:`check`.

    Raises:
        InputError: ``backend`` is unknown or cannot load a plan built by the sidecar's backend.
        PlanMismatchError: the plan does not fit (one line with the reasons and the rebuild command), or
            it cannot be checked (no plan, no or a broken sidecar).
    """
    machine = machine or local_machine()
    meta = sidecar
    if backend is not None:
        meta = sidecar if sidecar is not None else read_sidecar(plan_path)
        if backend not in TRT_FLAVOURS:
            raise InputError(f"unknown runtime {backend!r}; choose one of {', '.join(TRT_FLAVOURS)}")
        # The lean runtime loads version-compatible plans built by full TensorRT: its version stands in.
        built_as, module = TRT_FLAVOURS[backend].loads, TRT_FLAVOURS[backend].module
        if built_as != meta["backend"]["name"]:
            raise InputError(f"{plan_path} was built with {meta['backend']['name']}; {backend} cannot load it")
        if module != built_as.replace("-", "_"):
            versions = {**machine.backend_versions, built_as: module_version(module) or ""}
            machine = Machine(versions, machine.gpu)
    result = check(plan_path, onnx_path, preset, machine, sidecar=meta)
    if not result.ok:
        raise PlanMismatchError(result.message)
    return result.meta
