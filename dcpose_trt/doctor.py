"""``dcpose-trt doctor``: what this machine has, what it can build and run, and what to install for the rest.

:func:`diagnose` probes every optional package by importing it (lazily, one at a time, through
``importlib.import_module`` so a broken install is caught and reported, never raised), reads the CUDA
driver and GPU, and derives which deformable-conv forms (``plugin`` / ``deformconv`` / ``gridsample``)
and precisions each backend can BUILD and RUN here. It never raises because of a missing or broken
optional package: such a package is reported as absent with a one-line reason and the pip extra to install.

    from dcpose_trt.doctor import diagnose
    print(diagnose().to_table())
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from dcpose_trt._env import (
    at_least,
    extra_for,
    install_hint,
    installed_dist,
    installed_version,
    parse_version,
    probe_gpu,
)
from dcpose_trt.contract import DEFORM_FORMS, PRECISIONS

# module -> (label, pip extra that installs it). Order = table order; the extras are dcpose_trt._env's.
PACKAGES: dict[str, tuple[str, str]] = {
    module: (label, extra_for(module)) for module, label in (
        ("torch", "PyTorch"),
        ("onnx", "ONNX"),
        ("onnxruntime", "ONNX Runtime"),
        ("tensorrt", "TensorRT"),
        ("tensorrt_rtx", "TensorRT-RTX"),
        ("tensorrt_lean", "TensorRT lean runtime"),
        ("cuda.bindings", "cuda-python"),
        ("triton", "Triton"),
        ("openvino", "OpenVINO"),
        ("nncf", "NNCF"),
        ("ray", "Ray"),
    )
}

# Minimum versions the architecture relies on (architecture.md, "three paths").
TRT_PLUGIN_MIN = "10.9"  # our ahead-of-time DeformConv plugin (IPluginV3 QDP with aot_impl)
TRT_DEFORMCONV_MIN = "10.1"  # ONNX DeformConv through TensorRT's built-in plugin
TRT_GRIDSAMPLE_MIN = "8.5"  # GridSample layer
ORT_DEFORMCONV_MIN = "1.25"  # CPU kernel for ONNX DeformConv (opset 19)
FORMS = DEFORM_FORMS


@dataclass
class Package:
    """One optional package: ``version`` is None when it is absent or its import fails (``reason`` says why)."""

    module: str
    label: str
    version: str | None
    reason: str = ""
    extra: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.version is not None

    @property
    def install(self) -> str:
        """The pip command that installs it ('' for core dependencies)."""
        return install_hint(extra=self.extra)


@dataclass
class Capability:
    """What one backend can do here: forms × precisions it can build (export/engine) and run."""

    backend: str
    build: dict[str, list[str]]  # DCN form -> precisions
    run: dict[str, list[str]]
    note: str = ""


@dataclass
class Gpu:
    """The first CUDA device (None fields: unknown). ``driver`` is the CUDA driver API version, e.g. ``"13.0"``."""

    name: str | None = None
    compute_capability: str | None = None
    driver: str | None = None
    count: int = 0
    source: str = ""


@dataclass
class Report:
    """Everything :func:`diagnose` found. ``to_json()`` is the ``--json`` schema."""

    python: str
    platform: str
    packages: list[Package]
    gpu: Gpu
    capabilities: list[Capability]
    hints: list[str]

    def package(self, module: str) -> Package:
        return next(p for p in self.packages if p.module == module)

    def to_json(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "platform": self.platform,
            "packages": {p.module: {"label": p.label, "version": p.version, "ok": p.ok, "reason": p.reason,
                                    "install": p.install, **({"details": p.details} if p.details else {})}
                         for p in self.packages},
            "gpu": asdict(self.gpu),
            "capabilities": [asdict(c) for c in self.capabilities],
            "hints": self.hints,
        }

    def to_table(self) -> str:
        rows = [("Python", self.python, self.platform)]
        for p in self.packages:
            extra = ", ".join(f"{k}={v}" for k, v in p.details.items())
            rows.append((p.label, p.version or "absent", extra if p.ok else f"{p.reason}  -> {p.install}".strip()))
        g = self.gpu
        rows.append(("GPU", g.name or "none", f"cc {g.compute_capability}, driver CUDA {g.driver} ({g.source})"
                     if g.name else f"driver CUDA {g.driver}" if g.driver else "no CUDA driver"))
        w = max(len(r[0]) for r in rows)
        v = max(len(r[1]) for r in rows)
        out = ["Environment", "-" * 11] + [f"{a:<{w}}  {b:<{v}}  {c}".rstrip() for a, b, c in rows]
        out += ["", "Backends (DCN form: precisions)", "-" * 31]
        for c in self.capabilities:
            out.append(f"{c.backend}:")
            if c.build or not c.run:
                out.append(f"  build: {_fmt_caps(c.build)}")
            if c.run or not c.build:
                out.append(f"  run:   {_fmt_caps(c.run)}")
            if c.note:
                out.append(f"  note:  {c.note}")
        if self.hints:
            out += ["", "To get the rest", "-" * 15] + [f"- {h}" for h in self.hints]
        return "\n".join(out)


def _fmt_caps(caps: dict[str, list[str]]) -> str:
    return "; ".join(f"{form} {'/'.join(p)}" for form, p in caps.items() if p) or "nothing"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _probe(module: str) -> Package:
    label, extra = PACKAGES[module]
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any failure (ImportError, OSError from a native lib, ...) = absent
        return Package(module, label, None, _one_line(exc), extra)
    version = getattr(mod, "__version__", None) or installed_version(module) or "unknown"
    pkg = Package(module, label, str(version), "", extra)
    try:
        if module == "torch":
            pkg.details = {"cuda_build": mod.version.cuda or "cpu-only",
                           "cuda_available": bool(mod.cuda.is_available())}
        elif module == "onnxruntime":
            pkg.details = {"providers": list(mod.get_available_providers())}
    except Exception as exc:  # noqa: BLE001 - a half-working install still has a version
        pkg.details = {"error": _one_line(exc)}
    return pkg


# pip extra per CUDA major: cuda-python, TensorRT and its lean runtime built for that CUDA.
CUDA_EXTRAS = {12: "cuda12", 13: "cuda13"}


# Jetson: the CUDA minor of each JetPack (L4T ships the driver); cuda-python must match it (no minor-version
# compatibility there: cuda-python 12.9 on JetPack 6's CUDA 12.6 fails with cudaErrorInsufficientDriver).
JETPACK_EXTRAS = {(12, 6): "jetson6", (13, 0): "jetson7"}


def is_jetson() -> bool:
    """A Jetson (L4T): ``/etc/nv_tegra_release`` or a device-tree model naming Jetson / Orin / Thor."""
    from pathlib import Path

    if Path("/etc/nv_tegra_release").is_file():
        return True
    try:
        model = Path("/proc/device-tree/model").read_text(errors="ignore")
    except OSError:
        return False
    return any(k in model for k in ("Jetson", "Orin", "Thor"))


def cuda_stack_advice(driver: str | None, bindings: str | None, trt_dist: str | None = None,
                      jetson: bool = False) -> str | None:
    """A hint when the installed CUDA stack is newer than the driver, else None.

    Off Jetson, CUDA's minor-version compatibility lets a 12.x stack run on any 12.y driver, so majors are
    compared. On Jetson there is none: cuda-python must not be newer than the JetPack's CUDA
    ``major.minor`` (issue 23 finding 3).

    Args:
        driver: the driver's CUDA version (``cudaDriverGetVersion``, e.g. ``"12.6"``); None = no driver.
        bindings: the installed ``cuda-python`` / ``cuda-bindings`` version (``"13.0.3"``).
        trt_dist: the TensorRT distribution (``"tensorrt-cu13"``), if known.
        jetson: compare by major.minor (:func:`is_jetson`).
    """
    if not driver or not driver[:1].isdigit():
        return None
    have = parse_version(driver)
    if have is None:
        return None
    if jetson:
        b = parse_version(bindings) if bindings else None
        if b is None or (b.major, b.minor) <= (have.major, have.minor):
            return None
        extra = JETPACK_EXTRAS.get((have.major, have.minor))
        fix = install_hint(extra=extra) if extra else f"install cuda-python {have.major}.{have.minor}.x"
        return (f"cuda-python {bindings} is newer than this Jetson's CUDA {driver} (no minor-version "
                f"compatibility on Jetson: cudaErrorInsufficientDriver): cuda-python must be "
                f"{have.major}.{have.minor}.x: {fix}")
    majors = {}
    if bindings and (b := parse_version(bindings)) is not None:
        majors["cuda-python " + bindings] = b.major
    if trt_dist and trt_dist.rsplit("-cu", 1)[-1].isdigit():
        majors[trt_dist] = int(trt_dist.rsplit("-cu", 1)[-1])
    too_new = [name for name, major in majors.items() if major > have.major]
    if not too_new:
        return None
    extra = CUDA_EXTRAS.get(have.major)
    fix = install_hint(extra=extra) if extra else "update the NVIDIA driver"
    return (f"{', '.join(too_new)} need(s) a CUDA {max(majors.values())} driver but this driver supports "
            f"CUDA {driver}: {fix} (Jetson: TensorRT and CUDA come with JetPack, install them with apt)")


def _gpu() -> Gpu:
    """GPU and driver from :func:`dcpose_trt._env.probe_gpu` (cuda-python, else torch, else nvidia-smi)."""
    found = probe_gpu()
    if found.gpu is None:
        return Gpu(driver=found.driver)
    return Gpu(found.gpu.name, found.gpu.compute_capability, found.driver, found.count, found.source)


def _capabilities(pk: dict[str, Package], gpu: Gpu) -> tuple[list[Capability], list[str]]:
    has_gpu = gpu.name is not None
    all_p = list(PRECISIONS)
    caps: list[Capability] = []
    hints: list[str] = []
    onnx_ok = pk["onnx"].ok
    # Exporting needs onnx (+ onnxscript, pulled by the same extra); INT8 needs ORT for calibration.
    export: dict[str, list[str]] = {}
    if onnx_ok:
        precisions = all_p if pk["onnxruntime"].ok else ["fp32", "fp16"]
        export = {f: list(precisions) for f in FORMS}
        # INT8 of the plugin form is calibrated on its standard-DeformConv twin (export/int8.py), so every
        # form takes every precision where ONNX Runtime is present.
    caps.append(Capability("export (ONNX)", export, {}, "" if onnx_ok else "needs onnx"))

    torch_run = {"deformconv": ["fp32"] + (["fp16"] if has_gpu and pk["torch"].details.get("cuda_available") else [])}
    caps.append(Capability("torch", {}, torch_run if pk["torch"].ok else {},
                           "eager reference; its DCN is torchvision's deform_conv2d"))

    ort = pk["onnxruntime"]
    ort_run: dict[str, list[str]] = {}
    note = ""
    if ort.ok:
        forms = ["gridsample"]
        if at_least(ort.version, ORT_DEFORMCONV_MIN):
            forms.insert(0, "deformconv")
        ort_run = {f: list(all_p) for f in forms}
        provs = ort.details.get("providers", [])
        note = f"providers: {', '.join(provs)}; the plugin form's custom node has no ORT kernel"
        if has_gpu and "CUDAExecutionProvider" not in provs:
            hints.append("a GPU is present but ONNX Runtime is CPU-only: pip install onnxruntime-gpu")
    else:
        hints.append(f"ONNX Runtime (CPU backend, INT8 calibration): {ort.install}")
    caps.append(Capability("onnxruntime", {}, ort_run, note))

    ov = pk["openvino"]
    if ov.ok:
        # From a checkpoint (torch frontend, the head in its CPU form) or a gridsample ONNX; INT8 is NNCF's.
        ov_p = ["fp32", "bf16"] + (["int8"] if pk["nncf"].ok else [])
        from dcpose_trt.engine.ov_extension import unsupported_reason

        why = unsupported_reason()  # cheap: no compile here
        dcn = ("head DCNs as our DcnGemm op (compiled on first conversion)" if why is None
               else f"head DCNs as a GridSample graph (slower): {why}")
        caps.append(Capability("openvino", {}, {"checkpoint": ov_p, "gridsample": ov_p},
                               dcn + ("" if pk["nncf"].ok else f"; INT8 needs NNCF: {pk['nncf'].install}")))
    else:
        caps.append(Capability("openvino", {}, {}, ov.reason))
        hints.append(f"OpenVINO (fast CPU backend, picked by auto where it is fastest): {ov.install}")
    if not pk["ray"].ok:
        hints.append(f"Ray (predict --workers N on many videos): {pk['ray'].install}")

    cuda_ok = pk["cuda.bindings"].ok
    trt = pk["tensorrt"]
    if trt.ok:
        forms = [f for f, need in (("plugin", TRT_PLUGIN_MIN), ("deformconv", TRT_DEFORMCONV_MIN),
                                   ("gridsample", TRT_GRIDSAMPLE_MIN)) if at_least(trt.version, need)]
        if "plugin" in forms and not pk["triton"].ok:
            forms.remove("plugin")  # the plugin's kernel is compiled from Triton at build time
            hints.append(f"the DeformConv plugin needs Triton to compile its kernel: {pk['triton'].install}")
        # The full TensorRT builder times kernels on the device: no GPU, no build.
        build = {f: list(all_p) for f in forms} if has_gpu else {}
        run = {f: list(all_p) for f in forms} if has_gpu and cuda_ok else {}
        why = [] if has_gpu else ["no CUDA GPU: TensorRT builds and runs need one"]
        if not at_least(trt.version, TRT_PLUGIN_MIN):
            why.append(f"plugin form needs TensorRT >= {TRT_PLUGIN_MIN}")
        caps.append(Capability("tensorrt", build, run, "; ".join(why)))
    else:
        caps.append(Capability("tensorrt", {}, {}, trt.reason))
        hints.append(f"TensorRT (GPU engines, DCN plugin): {trt.install}")
    rtx = pk["tensorrt_rtx"]
    if rtx.ok:
        # TensorRT-RTX compiles ahead of time for given compute capabilities, so it builds on a CPU; it has
        # no built-in DeformConv plugin, so the gridsample form is the one it takes.
        build = {"gridsample": list(all_p)}
        run = {"gridsample": list(all_p)} if has_gpu and cuda_ok else {}
        caps.append(Capability("tensorrt-rtx", build, run, "" if has_gpu else
                               "builds on this CPU (--compute-capability optional: default every supported GPU); "
                               "running needs a CUDA GPU"))
    else:
        caps.append(Capability("tensorrt-rtx", {}, {}, rtx.reason))
        hints.append(f"TensorRT-RTX (engine builds without a GPU, RTX GPUs): {rtx.install}")
    lean = pk["tensorrt_lean"]
    if lean.ok:
        run = {f: list(all_p) for f in ("deformconv", "gridsample")} if has_gpu and cuda_ok else {}
        caps.append(Capability("tensorrt-lean", {}, run, "runs version-compatible plans built by full TensorRT"))
    else:
        caps.append(Capability("tensorrt-lean", {}, {}, lean.reason))
        hints.append(f"TensorRT lean runtime (run version-compatible plans): {lean.install}")
    if not cuda_ok:
        hints.append(f"cuda-python (the GPU runtime's CUDA calls): {pk['cuda.bindings'].install}")
    bindings = installed_version("cuda.bindings") if cuda_ok else None
    advice = cuda_stack_advice(gpu.driver, bindings, installed_dist("tensorrt-cu13", "tensorrt-cu12"),
                               jetson=is_jetson())
    if advice:
        hints.insert(0, advice)
    if not pk["triton"].ok:
        hints.append(f"Triton (DeformConv plugin kernel, GPU crop/decode): {pk['triton'].install}")
    if not onnx_ok:
        hints.append(f"ONNX export: {pk['onnx'].install}")
    if not has_gpu:
        hints.append("no CUDA GPU here: TensorRT runs and the plugin form need an NVIDIA GPU with a driver")
    return caps, list(dict.fromkeys(hints))


def diagnose() -> Report:
    """Probe this machine. Never raises because of a missing or broken optional package."""
    packages = [_probe(m) for m in PACKAGES]
    by_module = {p.module: p for p in packages}
    gpu = _gpu()
    caps, hints = _capabilities(by_module, gpu)
    return Report(platform.python_version(), platform.platform(), packages, gpu, caps, hints)


def _run(args: argparse.Namespace) -> int:
    report = diagnose()
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(report.to_table())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="what this machine can build and run, and what to install",
                       description="Reports Python, torch, ONNX Runtime, TensorRT / TensorRT-RTX / lean, CUDA driver "
                       "and GPU, Triton and cuda-python; which DCN forms and precisions each backend can build "
                       "and run here; and the pip extras for the rest.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_run)
