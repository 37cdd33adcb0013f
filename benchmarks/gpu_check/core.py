"""The vocabulary of :mod:`benchmarks.gpu_check` shared by the runner and the tiers: a step, what it gets,
what the machine offers, and how a step says it cannot run here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Skip(Exception):
    """A step cannot run here for a reason that is not a fault of this machine (no data, no cuda-python)."""


@dataclass(frozen=True)
class Env:
    """What the machine offers, as the gate of every step sees it.

    Attributes:
        gpu: a GPU some probe sees (``"NVIDIA H100 (nvidia-smi)"``), None when none does.
        no_gpu: why no probe sees one ("" when ``gpu``).
        torch_cuda: "" when torch runs on CUDA, else why not.
        tensorrt: "" when ``import tensorrt`` works, else why not.
        facts: versions and GPU properties for the summary.
    """

    gpu: str | None
    no_gpu: str = ""
    torch_cuda: str = ""
    tensorrt: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:240]}" if text else type(exc).__name__


@dataclass
class Context:
    """What a step gets: where to write (``out``: the ≤ 8 result files; ``work``: scratch), ``quick``, the
    machine, a ``log`` function, and ``shared`` results of earlier steps (the CUDA-tier baseline)."""

    out: Path
    work: Path
    quick: bool
    env: Env
    lines: list[str] = field(default_factory=list)
    shared: dict[str, Any] = field(default_factory=dict)

    def log(self, msg: str) -> None:
        print(f"    {msg}", flush=True)
        self.lines.append(msg)


@dataclass(frozen=True)
class Step:
    """One check: ``needs`` TensorRT (TensorRT tier) or only torch on CUDA (CUDA tier)."""

    name: str
    tier: str
    run: Callable[[Context], dict[str, Any]]
    doc: str
