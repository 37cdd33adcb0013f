"""What a plan may run in this process: host code and plugin libraries only on the user's word.

A TensorRT plan is an executable. A version-compatible plan embeds TensorRT's lean runtime and the plugin
libraries it was built with (host code, run when the plan is deserialized); a plan built with plugin
libraries needs them loaded (``dlopen``) first. TensorRT leaves both to the application
(``IRuntime.engine_host_code_allowed`` is off by default) and documents such plans as trusted-only. The
sidecar (``MODEL.plan.json``) is written next to the plan by whoever built it, so it is no authority on
what this process may run: its ``version_compatible`` and ``build.plugin_libraries`` are requests.

The policy (:func:`resolve`, :func:`host_code_allowed`, :func:`libraries_to_load`):

* host code runs only with an explicit opt-in: ``--trust-plan`` (CLI), ``trust_plan=True`` (API) or
  ``DCPOSE_TRT_TRUST_PLANS=1`` (environment); it is printed when used. Without it, a plan whose sidecar
  says it needs host code fails with one line naming the opt-in; a plan whose sidecar hides it is refused
  by TensorRT itself (host code stays disallowed).
* libraries are loaded only when the user names them at run time (``--plugin-lib PATH``, API
  ``plugin_libs=[...]``, ``DCPOSE_TRT_PLUGIN_LIBS``, ``os.pathsep``-separated). Our own plugin is
  registered from the installed package (:mod:`dcpose_trt.plugins.deform_conv.plugin`), never from a
  path in the sidecar. The sidecar may list what the plan needs (a name, or ``{"name", "sha256"}``); a
  need the user did not supply, or a supplied file whose sha256 differs, is a one-line error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcpose_trt.engine.onnx_info import file_sha256
from dcpose_trt.errors import InputError, PlanMismatchError

ENV_TRUST = "DCPOSE_TRT_TRUST_PLANS"
ENV_PLUGIN_LIBS = "DCPOSE_TRT_PLUGIN_LIBS"
OPT_IN = f"--trust-plan (API: trust_plan=True; environment: {ENV_TRUST}=1)"


@dataclass(frozen=True)
class PlanTrust:
    """The user's word on plans for this process.

    Attributes:
        trust_plan: host code embedded in a plan may run.
        plugin_libs: plugin libraries the user named (absolute paths); nothing else is ever loaded.
        source: how the trust was given (for the line printed when it is used).
    """

    trust_plan: bool = False
    plugin_libs: tuple[Path, ...] = ()
    source: str = ""


def _env_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def resolve(trust_plan: bool | None = None, plugin_libs: Iterable[str | os.PathLike[str]] | None = None,
            env: Mapping[str, str] | None = None) -> PlanTrust:
    """The trust in force: explicit arguments first, else the environment (which the CLI flags set).

    Raises:
        InputError: a named plugin library is not a file.
    """
    env = os.environ if env is None else env
    if trust_plan is None:
        trust, source = _env_true(env.get(ENV_TRUST)), f"{ENV_TRUST}=1 or --trust-plan"
    else:
        trust, source = bool(trust_plan), "trust_plan=True"
    if plugin_libs is None:
        plugin_libs = [p for p in (env.get(ENV_PLUGIN_LIBS) or "").split(os.pathsep) if p]
    libs = []
    for lib in plugin_libs:
        p = Path(lib).expanduser()
        if not p.is_file():
            raise InputError(f"--plugin-lib {lib}: no such file")
        libs.append(p.resolve())
    return PlanTrust(trust, tuple(libs), source if trust else "")


def add_cli_args(parser: Any) -> None:
    """``--trust-plan`` and ``--plugin-lib`` for a verb that opens plans."""
    parser.add_argument("--trust-plan", action="store_true",
                        help="let a version-compatible plan run the host code it carries (its lean runtime and "
                        f"plugin libraries); only for plans from someone you trust (also: {ENV_TRUST}=1)")
    parser.add_argument("--plugin-lib", action="append", default=[], metavar="PATH",
                        help="a TensorRT plugin library the plan needs, loaded before it (repeatable); plugin "
                        "libraries named in a plan's sidecar are never loaded by themselves")


def apply_cli_args(args: Any) -> None:
    """Put the CLI flags into this process's environment, so every plan it (or its Ray workers) opens sees them."""
    if getattr(args, "trust_plan", False):
        os.environ[ENV_TRUST] = "1"
    libs = getattr(args, "plugin_lib", None) or []
    if libs:
        trust = resolve(False, libs)  # InputError now, before any work, for a missing file
        os.environ[ENV_PLUGIN_LIBS] = os.pathsep.join(str(p) for p in trust.plugin_libs)


def worker_env() -> dict[str, str]:
    """The trust variables set in this process (for Ray workers' ``runtime_env``)."""
    return {k: os.environ[k] for k in (ENV_TRUST, ENV_PLUGIN_LIBS) if os.environ.get(k)}


@dataclass(frozen=True)
class LibraryNeed:
    """A plugin library a sidecar says the plan needs: its file name and, when recorded, its sha256."""

    name: str
    sha256: str | None = None


def library_needs(entries: Iterable[Any]) -> tuple[LibraryNeed, ...]:
    """Sidecar ``build.plugin_libraries`` entries (a path or name, or ``{"name", "sha256"}``) -> needs.

    Only the file name of a path counts: the sidecar never decides where a library is loaded from.
    """
    needs = []
    for e in entries:
        if isinstance(e, Mapping):
            needs.append(LibraryNeed(Path(str(e.get("name", ""))).name, e.get("sha256") or None))
        else:
            needs.append(LibraryNeed(Path(str(e)).name))
    return tuple(needs)


def library_records(paths: Iterable[str | os.PathLike[str]]) -> list[dict[str, str]]:
    """What a builder writes to ``build.plugin_libraries``: ``[{"name": file name, "sha256": ...}]`` per
    library it loaded (a path would say where to load from, which is the runner's decision)."""
    return [{"name": Path(p).name, "sha256": file_sha256(Path(p))} for p in paths]


def libraries_to_load(needs: Iterable[LibraryNeed], trust: PlanTrust, version_compatible: bool,
                      what: str = "plan") -> list[str]:
    """The libraries to ``load_library`` before deserializing: exactly those the user named.

    A version-compatible plan carries its libraries inside (they run as host code, :func:`host_code_allowed`),
    so its needs are not looked up. For other plans every need must be among the user's libraries (by file
    name) with the recorded sha256 when there is one.

    Raises:
        PlanMismatchError: a need the user did not supply, or a supplied library whose sha256 differs.
    """
    by_name = {p.name: p for p in trust.plugin_libs}
    if not version_compatible:
        for need in needs:
            lib = by_name.get(need.name)
            if lib is None:
                raise PlanMismatchError(f"{what} needs the plugin library {need.name or '?'} (its sidecar says so); "
                                        "libraries are loaded only when you name them: --plugin-lib PATH "
                                        "(API: plugin_libs=[...]), if you trust it")
            if need.sha256 and file_sha256(lib) != need.sha256:
                raise PlanMismatchError(f"{what} needs {need.name} with sha256 {need.sha256[:16]}..., but {lib} "
                                        "has another (a different build of the library)")
    return [str(p) for p in trust.plugin_libs]


def host_code_allowed(version_compatible: bool, trust: PlanTrust, what: str = "plan") -> bool:
    """Whether the runtime may run the plan's host code; prints a line when trust is used.

    Raises:
        PlanMismatchError: the plan needs host code (version-compatible) and the user gave no opt-in.
    """
    if not version_compatible:
        return False
    if not trust.trust_plan:
        raise PlanMismatchError(f"{what} is version-compatible: it carries host code (TensorRT's lean runtime, "
                                f"plugin libraries) that runs only if you trust who built it; to run it pass {OPT_IN}")
    print(f"dcpose-trt: trusting {what}: its host code may run ({trust.source})", file=sys.stderr, flush=True)
    return True


def check_sidecar_trust(meta: Mapping[str, Any], trust: PlanTrust, what: str = "plan") -> None:
    """Refuse early (before any runtime is imported) what :func:`load_engine` would refuse: a plan that
    needs host code without the opt-in, or plugin libraries the user did not supply."""
    vc = (meta.get("target") or {}).get("version_compatible") is True
    if vc and not trust.trust_plan:
        host_code_allowed(vc, trust, what)
    libraries_to_load(library_needs((meta.get("build") or {}).get("plugin_libraries") or ()), trust, vc, what)
