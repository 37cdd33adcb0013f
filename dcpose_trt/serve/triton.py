"""Find a ``tritonserver`` to run: one on ``PATH`` (NVIDIA's container, a Jetson release), or the binary the
``nvidia-pytriton`` wheel bundles (the ``[serve]`` extra, x86-64).

The wheel keeps the server's shared libraries in ``nvidia_pytriton.libs/`` and one Python-backend stub per
Python version in ``pytriton/tritonserver/python_backend_stubs/3.X/``; the Python backend looks for its
stub beside ``libtriton_python.so``, so :func:`prepare_backends` assembles a backend directory with the stub
of the running interpreter's version (what PyTriton itself does, without its Python API).
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dcpose_trt.errors import MissingDependencyError

BINARY = "tritonserver"


@dataclass(frozen=True)
class TritonInstall:
    """A runnable server: ``binary``; ``backends`` its backend directory (None: the server's default);
    ``env`` what to add to the environment (the bundled libraries' ``LD_LIBRARY_PATH``)."""

    binary: Path
    backends: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    stub: Path | None = None  # the bundled Python-backend stub of this interpreter's version


def _bundled() -> TritonInstall | None:
    try:
        import importlib.util

        spec = importlib.util.find_spec("pytriton")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
    binary = root / "bin" / BINARY
    if not binary.is_file():
        return None
    libs = root.parent.parent / "nvidia_pytriton.libs"
    ld = os.pathsep.join(p for p in (str(libs), os.environ.get("LD_LIBRARY_PATH", "")) if p)
    stub = root / "python_backend_stubs" / f"{sys.version_info[0]}.{sys.version_info[1]}" / \
        "triton_python_backend_stub"
    return TritonInstall(binary, root / "backends", {"LD_LIBRARY_PATH": ld}, stub if stub.is_file() else None)


def find_tritonserver() -> TritonInstall:
    """``tritonserver`` from ``$DCPOSE_TRT_TRITONSERVER``, ``PATH``, or the ``[serve]`` extra's wheel.

    Raises:
        MissingDependencyError: none found (the message says how to get one).
    """
    given = os.environ.get("DCPOSE_TRT_TRITONSERVER")
    if given:
        if not Path(given).is_file():
            raise MissingDependencyError(f"DCPOSE_TRT_TRITONSERVER={given} is not a file")
        return TritonInstall(Path(given))
    on_path = shutil.which(BINARY)
    if on_path:
        return TritonInstall(Path(on_path))
    bundled = _bundled()
    if bundled is not None:
        return bundled
    from dcpose_trt._env import install_hint

    raise MissingDependencyError(
        f"no {BINARY} found: put one on PATH (NVIDIA's tritonserver container, a Jetson release) or, on "
        f"x86-64, use the one in the nvidia-pytriton wheel (installed without its dependencies, beside "
        f"{install_hint(extra='serve')}; see docs/serving.md)")


def prepare_backends(inst: TritonInstall, into: Path) -> Path | None:
    """The backend directory to give ``--backend-directory``: for the bundled server a copy of its backends
    under ``into`` with this Python's stub beside ``libtriton_python.so``; None for a server that has its
    own (a container's ``/opt/tritonserver/backends``)."""
    if inst.backends is None:
        return None
    out = into / "backends"
    shutil.copytree(inst.backends, out, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    if inst.stub is not None:
        dst = out / "python" / "triton_python_backend_stub"
        shutil.copy2(inst.stub, dst)
        dst.chmod(0o755)
    return out
