"""Type-check project modules against the stubs of one TensorRT Python API version with mypy.

The mypy configuration is written for one question only: *does this code use names, signatures and
enum members that exist in TensorRT X?* So

- the TensorRT stubs are followed and trusted (``ignore_errors`` inside them),
- other third-party packages are not followed (``follow_imports = skip`` for non-stub modules), so
  torch/onnx typing noise cannot fail the check, and project modules outside the given paths are
  analysed but not reported (``silent``),
- bodies of unannotated functions are checked too (``check_untyped_defs``), since TensorRT calls often
  live in small helpers without annotations,
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
mypy_path = {stubs}
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
follow_imports = normal
ignore_errors = True

[mypy-torch,torch.*,torchvision.*,onnx,onnx.*,onnxruntime.*,onnxscript.*,triton,triton.*,cuda,cuda.*,cv2,cv2.*,scipy.*,tqdm,tqdm.*]
follow_imports = skip
"""

_ERROR_LINE = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+):(?:\d+:)? (?P<kind>error|note): (?P<msg>.*)$")


@dataclass
class CheckResult:
    """mypy's verdict for one API version.

    Attributes:
        name: the requested version (``"11.4"``).
        version: the bindings wheel's exact version (``"11.4.0.106"``), empty if it could not be prepared.
        ok: no mypy errors.
        errors: ``path:line: error: message [code]`` lines.
        failure: why the check could not run at all (download, stub generation), else empty.
    """

    name: str
    version: str
    ok: bool
    errors: list[str] = field(default_factory=list)
    failure: str = ""


def run_mypy(stubs: StubSet, paths: Sequence[str | os.PathLike[str]], cwd: Path | None = None) -> CheckResult:
    """Run mypy on ``paths`` (files or packages) with ``stubs`` on ``MYPYPATH``; see module docstring."""
    always = "always_true = TRT_API_RTX" if stubs.spec.is_rtx else "always_false = TRT_API_RTX"
    cache = stubs.stub_dir.parent / "mypy_cache"
    with tempfile.TemporaryDirectory(prefix="trt_api_mypy.") as tmp:
        ini = Path(tmp) / "mypy.ini"
        ini.write_text(_MYPY_INI.format(py=f"{sys.version_info.major}.{sys.version_info.minor}",
                                        stubs=stubs.stub_dir, cache=cache, always=always))
        cmd = [sys.executable, "-m", "mypy", "--config-file", str(ini), *map(str, paths)]
        env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    errors = [line for line in proc.stdout.splitlines()
              if (m := _ERROR_LINE.match(line)) and m["kind"] == "error"]
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not errors):
        # 2 = mypy crashed or was misconfigured: report it rather than pretending the code is fine.
        detail = (proc.stderr or proc.stdout).strip()[-2000:]
        return CheckResult(stubs.spec.name, stubs.version, False, errors, f"mypy failed: {detail}")
    return CheckResult(stubs.spec.name, stubs.version, not errors, errors)


def check(paths: Sequence[str | os.PathLike[str]], versions: Sequence[str],
          cwd: Path | None = None) -> list[CheckResult]:
    """Check ``paths`` against every API in ``versions`` (``["10.3", "11.4", "rtx"]``); one mypy run each.

    A version whose stubs cannot be prepared (no network and nothing cached, say) gives a failed
    :class:`CheckResult` with ``failure`` set instead of raising, so the other versions still report.
    """
    results = []
    for name in versions:
        try:
            stubs = prepare(name)
        except TrtApiError as exc:
            results.append(CheckResult(name, "", False, failure=str(exc)))
            continue
        results.append(run_mypy(stubs, paths, cwd=cwd))
    return results
