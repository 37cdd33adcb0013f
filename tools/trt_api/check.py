"""Type-check project modules against the stubs of one TensorRT Python API version with mypy.

The mypy configuration is written for one question only: *does this code use names, signatures and
enum members that exist in TensorRT X?* So

- the TensorRT stubs are followed and trusted (``ignore_errors`` inside them),
- other third-party packages are not followed (``follow_imports = skip`` for non-stub modules), so
  torch/onnx typing noise cannot fail the check, and project modules outside the given paths are
  analysed but not reported (``silent``),
- bodies of unannotated functions are checked too (``check_untyped_defs``), since TensorRT calls often
  live in small helpers without annotations,
- importing ``tensorrt`` in the TensorRT-RTX run (or ``tensorrt_rtx`` in a TensorRT run) is reported
  (``import-not-found``) instead of silently typing the module as Any,
- errors that are not about TensorRT are filtered out: a *baseline* run with ``tensorrt`` /
  ``tensorrt_rtx`` typed as Any (no stubs) finds the code's other typing debt, and only errors that
  appear with the real stubs and not in the baseline are reported (``all_errors=True`` shows all),
- ``TRT_API_RTX`` is a compile-time constant (``always_true`` in the TensorRT-RTX run, ``always_false``
  otherwise), so code can say ``if TYPE_CHECKING: if TRT_API_RTX: import tensorrt_rtx as trt`` and be
  checked against the module it will really get.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tools.trt_api.stubs import StubSet, TrtApiError, prepare

_MYPY_INI = """\
[mypy]
python_version = {py}
{mypy_path}
follow_imports = silent
follow_imports_for_stubs = False
ignore_missing_imports = True
check_untyped_defs = True
warn_unused_ignores = False
show_error_codes = True
no_error_summary = True
cache_dir = {cache}
{always}

[mypy-tensorrt,tensorrt.*,tensorrt_rtx,tensorrt_rtx.*]
{trt_section}

[mypy-torch,torch.*,torchvision.*,onnx,onnx.*,onnxruntime.*,onnxscript.*,triton,triton.*,cuda,cuda.*,cv2,cv2.*,scipy.*,tqdm,tqdm.*]
follow_imports = skip
"""

_TRT_WITH_STUBS = """\
follow_imports = normal
ignore_errors = True
# Importing the module this run does not provide (`tensorrt` in the TensorRT-RTX run) is an error, not
# a silent Any: that code would go unchecked.
ignore_missing_imports = False"""

# Baseline: TensorRT typed as Any, so whatever mypy still reports has nothing to do with its API.
_TRT_AS_ANY = """\
follow_imports = skip
ignore_missing_imports = True"""

_ERROR_LINE = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+):(?:\d+:)? (?P<kind>error|note): (?P<msg>.*)$")


@dataclass
class CheckResult:
    """mypy's verdict for one API version.

    Attributes:
        name: the requested version (``"11.4"``).
        version: the bindings wheel's exact version (``"11.4.0.106"``), empty if it could not be prepared.
        ok: no TensorRT API errors.
        errors: ``path:line: error: message [code]`` lines about the TensorRT API.
        unrelated: errors mypy also reports with TensorRT typed as Any (not counted; see module doc).
        failure: why the check could not run at all (download, stub generation, mypy crash), else empty.
    """

    name: str
    version: str
    ok: bool
    errors: list[str] = field(default_factory=list)
    unrelated: list[str] = field(default_factory=list)
    failure: str = ""


def _mypy(paths: Sequence[str | os.PathLike[str]], stub_dir: Path | None, rtx: bool, cache: Path,
          cwd: Path | None) -> tuple[list[str], str]:
    """One mypy run; returns (error lines, failure text or "")."""
    with tempfile.TemporaryDirectory(prefix="trt_api_mypy.") as tmp:
        ini = Path(tmp) / "mypy.ini"
        ini.write_text(_MYPY_INI.format(
            py=f"{sys.version_info.major}.{sys.version_info.minor}",
            mypy_path=f"mypy_path = {stub_dir}" if stub_dir else "",
            cache=cache,
            always="always_true = TRT_API_RTX" if rtx else "always_false = TRT_API_RTX",
            trt_section=_TRT_WITH_STUBS if stub_dir else _TRT_AS_ANY,
        ))
        cmd = [sys.executable, "-m", "mypy", "--config-file", str(ini), *map(str, paths)]
        env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    errors = [line for line in proc.stdout.splitlines()
              if (m := _ERROR_LINE.match(line)) and m["kind"] == "error"]
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not errors):
        # 2 = mypy crashed or was misconfigured: report it rather than pretending the code is fine.
        return errors, f"mypy failed: {(proc.stderr or proc.stdout).strip()[-2000:]}"
    return errors, ""


def run_mypy(stubs: StubSet, paths: Sequence[str | os.PathLike[str]], cwd: Path | None = None,
             baseline: Sequence[str] | None = None) -> CheckResult:
    """Check ``paths`` (files or packages) against ``stubs``; see the module docstring.

    Args:
        baseline: error lines of the baseline run (TensorRT as Any) to leave out; None keeps all errors.
    """
    cache = stubs.stub_dir.parent / "mypy_cache"
    errors, failure = _mypy(paths, stubs.stub_dir, stubs.spec.is_rtx, cache, cwd)
    if failure:
        return CheckResult(stubs.spec.name, stubs.version, False, errors, failure=failure)
    known = set(baseline or ())
    mine = [e for e in errors if e not in known]
    unrelated = [e for e in errors if e in known]
    return CheckResult(stubs.spec.name, stubs.version, not mine, mine, unrelated)


def baseline_errors(paths: Sequence[str | os.PathLike[str]], rtx: bool,
                    cwd: Path | None = None) -> list[str]:
    """mypy's errors for ``paths`` with TensorRT typed as Any: the code's typing debt unrelated to TensorRT."""
    from tools.trt_api.stubs import cache_root

    cache = cache_root() / f"mypy_cache_baseline_{'rtx' if rtx else 'trt'}"
    errors, failure = _mypy(paths, None, rtx, cache, cwd)
    if failure:
        raise TrtApiError(f"baseline {failure}")
    return errors


def check(paths: Sequence[str | os.PathLike[str]], versions: Sequence[str],
          cwd: Path | None = None, all_errors: bool = False) -> list[CheckResult]:
    """Check ``paths`` against every API in ``versions`` (``["10.3", "11.4", "rtx"]``): one mypy run
    each, plus one baseline run for TensorRT and one for TensorRT-RTX (unless ``all_errors``).

    A version whose stubs cannot be prepared (no network and nothing cached, say) gives a failed
    :class:`CheckResult` with ``failure`` set instead of raising, so the other versions still report.
    """
    results = []
    baselines: dict[bool, list[str]] = {}
    for name in versions:
        try:
            stubs = prepare(name)
            rtx = stubs.spec.is_rtx
            if not all_errors and rtx not in baselines:
                baselines[rtx] = baseline_errors(paths, rtx, cwd)
        except TrtApiError as exc:
            results.append(CheckResult(name, "", False, failure=str(exc)))
            continue
        results.append(run_mypy(stubs, paths, cwd=cwd, baseline=None if all_errors else baselines[rtx]))
    return results
