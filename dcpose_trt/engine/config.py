"""``BuildConfig``: every engine-build setting in one frozen dataclass (the CLI flags map onto its fields)."""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dcpose_trt.errors import InputError

HARDWARE_COMPAT = ("none", "ampere+", "same-cc")


def parse_ints(text: str, what: str) -> tuple[int, ...]:
    """``"1,8,32"`` -> ``(1, 8, 32)``; raises :class:`InputError` naming ``what`` on bad input."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values:
        raise InputError(f"{what} is empty")
    return values


def profiles_from_persons(persons: Sequence[int],
                          per_bucket: bool = False) -> tuple[tuple[int, int, int], ...]:
    """Person-batch buckets -> optimization profiles ``(min, opt, max)``.

    ``persons=(1, 8, 32)`` gives one profile ``(1, 8, 32)``: min the smallest bucket, max the largest, opt
    the middle one (TensorRT picks kernels for opt). With ``per_bucket=True`` each bucket gets its own
    profile that covers the sizes above the previous bucket: ``(1,1,1), (2,8,8), (9,32,32)``; the runtime
    pads a batch to its bucket and selects that profile, so every bucket runs kernels tuned for it.
    """
    buckets = sorted(set(persons))
    if not buckets or buckets[0] < 1:
        raise InputError(f"person buckets must be positive, got {list(persons)}")
    if per_bucket:
        lows = [1] + [b + 1 for b in buckets[:-1]]
        return tuple((lo, b, b) for lo, b in zip(lows, buckets, strict=True))
    return ((buckets[0], buckets[len(buckets) // 2], buckets[-1]),)


# TensorRT's layers index tensor elements with 32-bit integers: a tensor of 2**31 elements or more fails at
# build or run time (NVIDIA/TensorRT issue #3815), so the largest person batch is bounded by the biggest
# per-person input or output.
TRT_MAX_TENSOR_ELEMENTS = 2**31 - 1

_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "uint8": 1, "int32": 4, "int64": 8,
                "bool": 1, "float64": 8}


def _host_memory_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # not POSIX
        return None


def check_batch_limits(profiles: Sequence[tuple[int, int, int]],
                       tensors: Sequence[tuple[str, str, Sequence[int]]],
                       memory_bytes: int | None = None) -> None:
    """Refuse person-batch profiles no plan can serve, before anything is built.

    Args:
        profiles: ``(min, opt, max)`` per optimization profile.
        tensors: ``(name, numpy dtype name, shape)`` of the graph inputs and outputs; a leading ``-1`` is
            the person batch (others are fixed-size and ignored).
        memory_bytes: memory the batch's inputs and outputs must fit in; defaults to this machine's RAM
            (the runtime stages every input and output in pinned host buffers, and the GPU needs at
            least as much again for them plus the activations, so this is a lower bound).

    Raises:
        InputError: a max batch makes a tensor reach TensorRT's 2**31-element limit, or its inputs and
            outputs alone do not fit in memory. The message names the largest batch that would.
    """
    batched = [(n, dt, list(s)) for n, dt, s in tensors if s and s[0] < 0 and all(d > 0 for d in s[1:])]
    if not batched:
        return
    top = max(p[2] for p in profiles)
    per_person = {n: math.prod(s[1:]) for n, _, s in batched}
    name = max(per_person, key=lambda n: per_person[n])
    limit = TRT_MAX_TENSOR_ELEMENTS // per_person[name]
    if top > limit:
        raise InputError(f"a batch of {top} persons makes '{name}' {top * per_person[name]:.3g} elements, over "
                         f"TensorRT's limit of 2**31 per tensor; the largest batch is {limit}")
    memory_bytes = _host_memory_bytes() if memory_bytes is None else memory_bytes
    if memory_bytes:
        io_bytes = sum(per_person[n] * _DTYPE_BYTES.get(dt, 4) for n, dt, _ in batched)
        if top * io_bytes > memory_bytes:
            raise InputError(f"a batch of {top} persons needs {top * io_bytes / 2**30:.1f} GiB for its inputs and "
                             f"outputs alone, more than this machine's {memory_bytes / 2**30:.1f} GiB; the "
                             f"largest batch that fits is {memory_bytes // io_bytes}")


@dataclass(frozen=True)
class BuildConfig:
    """How to turn an ONNX file into a plan. Defaults live here and only here.

    Attributes:
        backend: ``"tensorrt"`` (TensorRT 10.x/11.x) or ``"tensorrt-rtx"``.
        profiles: optimization profiles over the batch (= person) dimension, each ``(min, opt, max)``;
            every input whose first dimension is dynamic gets it. Defaults to ``((1, 8, 32),)``.
        workspace_mb: workspace memory-pool limit in MiB; None leaves TensorRT's default (device memory).
        timing_cache: file to load the timing cache from and save it back to (created if missing);
            TensorRT-RTX ignores timing caches (they are no-ops there).
        opt_level: builder optimisation level 0-5 (3 is TensorRT's default; 5 for releases).
        version_compatible: ``BuilderFlag.VERSION_COMPATIBLE`` (plan runs on later TensorRT of the same
            major with the lean runtime; only lean-runtime layers).
        hardware_compat: ``"none"``, ``"ampere+"`` (any Ampere or newer GPU) or ``"same-cc"`` (any GPU with
            the build GPU's compute capability; TensorRT >= 10.9 and TensorRT-RTX).
        plugin_dir: directory of plugin libraries (``*.so``) to load before parsing; with
            ``version_compatible`` they are serialized into the plan.
        compute_capabilities: TensorRT-RTX only: target GPUs as ``"8.9"``-style strings, which lets a
            machine without a GPU build a plan; empty means the builder's default (every supported GPU,
            specialised just in time on first load).
        fp16_flag: legacy weak typing: build the network *not* strongly typed and set
            ``BuilderFlag.FP16`` (TensorRT 10 still has it, TensorRT 11 and TensorRT-RTX do not). Default
            is a strongly typed network whose precision is the ONNX's own.
        progress: show a tqdm progress bar fed by TensorRT's progress monitor.
    """

    backend: str = "tensorrt"
    profiles: tuple[tuple[int, int, int], ...] = ((1, 8, 32),)
    workspace_mb: int | None = None
    timing_cache: Path | None = None
    opt_level: int = 3
    version_compatible: bool = False
    hardware_compat: str = "none"
    plugin_dir: Path | None = None
    compute_capabilities: tuple[str, ...] = field(default_factory=tuple)
    fp16_flag: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.profiles:
            raise InputError("at least one optimization profile is needed")
        for prof in self.profiles:
            if len(prof) != 3 or not (1 <= prof[0] <= prof[1] <= prof[2]):
                raise InputError(
                    f"a batch profile must be MIN,OPT,MAX with 1 <= MIN <= OPT <= MAX, got {prof}")
        if self.hardware_compat not in HARDWARE_COMPAT:
            raise InputError(f"--hardware-compat must be one of {', '.join(HARDWARE_COMPAT)}, "
                             f"got {self.hardware_compat!r}")
        if not 0 <= self.opt_level <= 5:
            raise InputError(f"--opt-level must be 0..5, got {self.opt_level}")
        if self.workspace_mb is not None and self.workspace_mb <= 0:
            raise InputError(f"--workspace must be a positive number of MiB, got {self.workspace_mb}")
        for cc in self.compute_capabilities:
            parts = cc.split(".")
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                raise InputError(f"compute capability must look like 8.9, got {cc!r}")

    def cli_args(self) -> list[str]:
        """The ``dcpose-trt build`` flags that reproduce this config (non-defaults only)."""
        d = BuildConfig()
        args = ["--backend", self.backend]
        for prof in self.profiles:
            args += ["--batch", ",".join(map(str, prof))]
        if self.workspace_mb is not None:
            args += ["--workspace", str(self.workspace_mb)]
        if self.timing_cache is not None:
            args += ["--timing-cache", str(self.timing_cache)]
        if self.opt_level != d.opt_level:
            args += ["--opt-level", str(self.opt_level)]
        if self.version_compatible:
            args.append("--version-compatible")
        if self.hardware_compat != d.hardware_compat:
            args += ["--hardware-compat", self.hardware_compat]
        if self.plugin_dir is not None:
            args += ["--plugin-dir", str(self.plugin_dir)]
        if self.compute_capabilities:
            args += ["--compute-capability", ",".join(self.compute_capabilities)]
        if self.fp16_flag:
            args.append("--fp16-flag")
        return args

    def command(self, onnx_path: str | Path, out_plan: str | Path) -> str:
        """The shell command that builds ``out_plan`` from ``onnx_path`` with this config."""
        argv = ["dcpose-trt", "build", "--onnx", str(onnx_path), "--out", str(out_plan), *self.cli_args()]
        return shlex.join(argv)
