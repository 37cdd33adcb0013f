"""Real ``.pyi`` stubs of a TensorRT (or TensorRT-RTX) Python API, made without TensorRT's native libraries.

For one API version this

1. downloads the bindings wheel with pip (``tensorrt-cu12-bindings==10.3.*``, ...; cached),
2. unpacks its package under the import name the project uses (``tensorrt`` / ``tensorrt_rtx``),
3. compiles with gcc one stub shared object per library the extension links against
   (``libnvinfer.so.10``, ``libnvinfer_plugin.so.10``, ``libnvonnxparser.so.10``; for TensorRT-RTX
   ``libtensorrt_rtx.so.1`` and ``libtensorrt_onnxparser_rtx.so.1``). It exports exactly the C symbols the
   extension leaves undefined (``nm -D --undefined-only``: ``create*_INTERNAL``, ``getPluginRegistry``,
   ...) as functions returning NULL, so the extension loads; calling any of them would crash, so only
   names, signatures and enums are ever read,
4. imports the bindings in a subprocess with ``LD_LIBRARY_PATH`` on the stubs and runs
   ``pybind11-stubgen``, then copies the wheel's pure-Python modules (``tensorrt/plugin``) next to the
   ``.pyi`` so mypy also sees the Quickly Deployable Plugin API.

Everything lives under ``$DCPOSE_TRT_CACHE/trt_api`` (default ``~/.cache/dcpose_trt/trt_api``): a second
run with the wheel already downloaded needs no network and no subprocess.
"""

from __future__ import annotations

import ast
import ctypes
import fcntl
import keyword
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Bump when the recipe below changes, so cached stub sets are regenerated.
RECIPE = "6"


class TrtApiError(RuntimeError):
    """A wheel could not be fetched, loaded or turned into stubs (the message says which step)."""


@dataclass(frozen=True)
class ApiSpec:
    """One TensorRT Python API to check against.

    Attributes:
        name: what the user typed (``"10.3"``, ``"11.4"``, ``"rtx"``).
        requirement: the pip requirement of the bindings wheel (``"tensorrt-cu12-bindings==10.3.*"``).
        package: the import name the project uses for it (``"tensorrt"`` or ``"tensorrt_rtx"``).
        wheel_package: the package directory inside the wheel (``"tensorrt_bindings"``).
    """

    name: str
    requirement: str
    package: str
    wheel_package: str

    @property
    def is_rtx(self) -> bool:
        return self.package == "tensorrt_rtx"


# JetPack 6.x (10.3), the first AOT-plugin release (10.9), JetPack 7 (10.13), the first release with
# OnnxParserFlag.ENABLE_PLUGIN_OVERRIDE (10.15), TensorRT 11.4 and
# TensorRT-RTX 1.x. cu12 wheels exist for every 10.x/11.x release; RTX ships cu13 only.
DEFAULT_VERSIONS = ("10.3", "10.9", "10.13", "10.15", "11.4", "rtx")


def parse_spec(name: str) -> ApiSpec:
    """``"10.3"`` / ``"11.4"`` / ``"10.13.3"`` / ``"rtx"`` / ``"rtx-1.7"`` -> :class:`ApiSpec`."""
    name = name.strip()
    if name == "rtx" or name.startswith("rtx-"):
        version = name[4:]
        req = "tensorrt-rtx-cu13-bindings" + (f"=={version}.*" if version else "")
        return ApiSpec(name, req, "tensorrt_rtx", "tensorrt_rtx_bindings")
    if not re.fullmatch(r"\d+\.\d+(\.\d+)*", name) or int(name.split(".")[0]) < 10:
        raise TrtApiError(f"unknown TensorRT API version {name!r}: use e.g. 10.3, 10.13, 11.4 or rtx")
    return ApiSpec(name, f"tensorrt-cu12-bindings=={name}.*", "tensorrt", "tensorrt_bindings")


def cache_root() -> Path:
    """``$DCPOSE_TRT_CACHE/trt_api`` or ``~/.cache/dcpose_trt/trt_api``."""
    base = os.environ.get("DCPOSE_TRT_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "dcpose_trt"
    return root / "trt_api"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise concurrent preparations of the same cache entry (pytest-xdist, two shells)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _wheel_tag() -> str:
    return f"cp{sys.version_info.major}{sys.version_info.minor}"


def _find_cached_wheel(spec: ApiSpec, wheels: Path) -> Path | None:
    """The newest cached wheel that satisfies ``spec`` for this interpreter, without asking pip."""
    dist = spec.requirement.split("==")[0].replace("-", "_")
    prefix = spec.requirement.split("==")[1].rstrip("*") if "==" in spec.requirement else ""
    hits = []
    for whl in wheels.glob(f"{dist}-*-{_wheel_tag()}-*.whl"):
        version = whl.name.split("-")[1]
        if version.startswith(prefix):
            hits.append((tuple(int(p) for p in re.findall(r"\d+", version)), whl))
    return max(hits)[1] if hits else None


def _download(spec: ApiSpec, wheels: Path) -> Path:
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(wheels), spec.requirement]
    log.info("downloading %s", spec.requirement)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TrtApiError(f"pip could not download {spec.requirement}: {proc.stderr.strip()[-800:]}")
    whl = _find_cached_wheel(spec, wheels)
    if whl is None:
        raise TrtApiError(f"pip downloaded no {_wheel_tag()} wheel for {spec.requirement} into {wheels}")
    return whl


def undefined_c_symbols(extension: Path) -> list[str]:
    """Undefined C symbols of ``extension`` that no system library already provides.

    ``nm -D --undefined-only`` lists everything the loader must resolve; versioned symbols (``@GLIBC``),
    C++ (``_Z...``) and Python API (``Py...``) names come from libc/libstdc++/libpython, and ``ctypes``
    tells which of the rest this process can already resolve (``dlopen`` and friends).
    """
    proc = subprocess.run(["nm", "-D", "--undefined-only", str(extension)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise TrtApiError(f"nm failed on {extension}: {proc.stderr.strip()}")
    process = ctypes.CDLL(None)
    out = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) != 2 or parts[0] != "U":
            continue
        sym = parts[1]
        if "@" in sym or sym.startswith(("_", "Py")) or hasattr(process, sym):
            continue
        out.append(sym)
    return sorted(out)


def needed_libraries(extension: Path) -> list[str]:
    """The ``DT_NEEDED`` SONAMEs of ``extension`` that belong to TensorRT (not libc/libstdc++/...)."""
    proc = subprocess.run(["readelf", "-d", str(extension)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise TrtApiError(f"readelf failed on {extension}: {proc.stderr.strip()}")
    names = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", proc.stdout)
    system = ("libstdc++", "libm.", "libgcc_s", "libc.", "ld-linux", "libdl", "libpthread", "librt")
    return [n for n in names if not n.startswith(system)]


def build_stub_libraries(extension: Path, lib_dir: Path) -> list[Path]:
    """Compile one stub ``.so`` per TensorRT library the extension needs; returns their paths.

    Every stub exports all the missing symbols (which library really defines which does not matter to
    the dynamic loader) as ``void *f(void) { return 0; }``.
    """
    if shutil.which("gcc") is None:
        raise TrtApiError("gcc is needed to compile the stub TensorRT libraries (apt-get install gcc)")
    symbols = undefined_c_symbols(extension)
    lib_dir.mkdir(parents=True, exist_ok=True)
    src = lib_dir / "trt_stub.c"
    src.write_text(
        "/* Generated by tools.trt_api: stand-ins for TensorRT's native entry points so the Python\n"
        "   bindings import on a machine without TensorRT. Never call them. */\n"
        + "".join(f"void *{s}(void) {{ return 0; }}\n" for s in symbols)
    )
    out = []
    for soname in needed_libraries(extension):
        target = lib_dir / soname
        cmd = ["gcc", "-shared", "-fPIC", "-O0", f"-Wl,-soname,{soname}", "-o", str(target), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise TrtApiError(f"gcc failed for {soname}: {proc.stderr.strip()}")
        out.append(target)
    return out


# C++ names that pybind11 leaves in some docstrings (``nvinfer1::v_1_0::IGpuAllocator``) become the
# Python class of the same name when the module has one, else Any.
_CPP_NAME = re.compile(r"\b(?:nvinfer1|nvonnxparser|nvinfer1::v_1_0)::(?:v_\d+_\d+::)?(\w+)")
_CPP_OTHER = re.compile(r"\bdetail::accessor<[^>]*>")


def _clean_cpp_names(pyi: Path) -> None:
    text = pyi.read_text()
    classes = set(re.findall(r"^class (\w+)", text, flags=re.M))

    def python_name(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in classes:
            return name
        # nvonnxparser::IParserError is bound as ParserError
        return name[1:] if name.startswith("I") and name[1:] in classes else "typing.Any"

    text = _CPP_NAME.sub(python_name, text)
    text = _CPP_OTHER.sub("typing.Any", text)
    # 10.x bindings print py::capsule parameters as the undefined name `capsule`.
    text = re.sub(r"(?<=: )capsule\b|(?<=-> )capsule\b", "typing.Any", text)
    # A pybind11 `void*` parameter (printed as a capsule type) also accepts any pybind11-bound object and
    # passes its C++ pointer: `init_libnvinfer_plugins(logger, "")` takes a trt.ILogger.
    text = re.sub(r"(?<=: )typing_extensions\.CapsuleType\b(?=\s*[,)=])", "typing.Any", text)
    text = "\n".join(_fix_def_line(line) for line in text.splitlines()) + "\n"
    if "import typing\n" not in text:
        text = "import typing\n" + text
    try:
        ast.parse(text)
    except SyntaxError as exc:
        raise TrtApiError(f"generated stub {pyi} is not valid Python (line {exc.lineno}: {exc.msg})"
                          ) from None
    pyi.write_text(text)


_DEF = re.compile(r"^(?P<head>\s*def \w+\()(?P<params>.*)(?P<tail>\) -> .*:)$")


def _split_params(params: str) -> list[str]:
    """Split a parameter list at top-level commas (not inside ``[]``/``()``/quotes)."""
    out, depth, cur, quote = [], 0, [], ""
    for ch in params:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def _fix_def_line(line: str) -> str:
    """Make a stubgen ``def`` line valid Python, keeping every name and annotation.

    Two things pybind11 signatures allow and Python does not: parameters named like keywords (``in``,
    from the plugin base classes) become ``in_``; a parameter without default after one with a default
    (pybind11 ``py::arg("x") = ...`` followed by a plain ``py::arg``) gets ``= ...``.
    """
    m = _DEF.match(line)
    if not m:
        return line
    params = _split_params(m["params"])
    seen_default = False
    fixed = []
    for param in params:
        name, sep, rest = param.partition(":")
        bare = name.strip()
        if keyword.iskeyword(bare):
            name = name.replace(bare, bare + "_")
        param = name + sep + rest
        if bare.startswith("*"):
            seen_default = False  # keyword-only parameters may mix defaults freely
        elif "=" in rest or ("=" in name and not sep):
            seen_default = True
        elif seen_default:
            param += " = ..."
        fixed.append(param)
    return m["head"] + ", ".join(fixed) + m["tail"]


@dataclass(frozen=True)
class StubSet:
    """Generated stubs of one API: ``stub_dir`` goes on ``MYPYPATH``; ``version`` is the wheel's."""

    spec: ApiSpec
    version: str
    stub_dir: Path


def bindings_env(entry: Path, extra_paths: Sequence[str | os.PathLike[str]] = ()) -> dict[str, str]:
    """This process's environment with the bindings of a prepared ``entry`` importable: ``entry/pkg`` (the
    real bindings) and ``extra_paths`` on ``PYTHONPATH``, the stub native libraries ``entry/lib`` first on
    ``LD_LIBRARY_PATH``. ``import tensorrt`` then works in a subprocess, as long as no native function runs.
    """
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(entry / "lib"), env.get("LD_LIBRARY_PATH")]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(entry / "pkg"), *map(str, extra_paths),
                                                      env.get("PYTHONPATH")]))
    return env


def prepare(spec: ApiSpec | str, refresh: bool = False) -> StubSet:
    """Download (or reuse) the bindings wheel of ``spec`` and generate its stubs; cached on disk.

    Args:
        spec: an :class:`ApiSpec` or a version string for :func:`parse_spec`.
        refresh: ignore cached stubs (the cached wheel is still reused).
    """
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    root = cache_root()
    wheels = root / "wheels"
    with _locked(root / "locks" / f"{spec.name}.lock"):
        whl = _find_cached_wheel(spec, wheels) or _download(spec, wheels)
        version = whl.name.split("-")[1]
        entry = root / "stubs" / f"{whl.name.split('-')[0]}-{version}-{_wheel_tag()}-r{RECIPE}"
        if entry.is_dir() and not refresh:
            return StubSet(spec, version, entry / "stubs")
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=entry.name + ".", dir=entry.parent))
        try:
            _generate(spec, whl, tmp)
            if entry.exists():
                shutil.rmtree(entry)
            tmp.rename(entry)  # atomic: a half-generated stub set is never picked up
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return StubSet(spec, version, entry / "stubs")


def _generate(spec: ApiSpec, whl: Path, work: Path) -> None:
    pkg_root = work / "pkg"
    with zipfile.ZipFile(whl) as zf:
        members = [m for m in zf.namelist() if m.startswith(spec.wheel_package + "/")]
        if not members:
            raise TrtApiError(f"{whl.name} has no {spec.wheel_package}/ package")
        zf.extractall(pkg_root, members)
    # The project imports `tensorrt` / `tensorrt_rtx`; the wheel's package is `tensorrt_bindings`
    # (the `tensorrt` front-end package only re-exports it), so unpack it under the import name.
    package_dir = pkg_root / spec.package
    (pkg_root / spec.wheel_package).rename(package_dir)
    extensions = list(package_dir.glob("*.so"))
    if len(extensions) != 1:
        raise TrtApiError(f"expected one extension module in {whl.name}, found {extensions}")
    build_stub_libraries(extensions[0], work / "lib")

    stub_dir = work / "stubs"
    env = bindings_env(work)
    runner = Path(__file__).with_name("_stubgen_runner.py")
    proc = subprocess.run([sys.executable, str(runner), spec.package, str(stub_dir)],
                          capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise TrtApiError(f"importing {whl.name} over stub libraries / pybind11-stubgen failed:\n"
                          f"{proc.stderr.strip()[-2000:]}")
    out_pkg = stub_dir / spec.package
    for pyi in out_pkg.rglob("*.pyi"):
        _clean_cpp_names(pyi)
    # Pure-Python submodules (tensorrt.plugin, QDP) ship as sources; mypy reads .py from MYPYPATH.
    for py in package_dir.rglob("*.py"):
        rel = py.relative_to(package_dir)
        if rel.parts[0] == "__init__.py" or (out_pkg / rel.with_suffix(".pyi")).exists():
            continue
        (out_pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(py, out_pkg / rel)
    (work / "SOURCE").write_text(f"{whl.name}\n{spec.requirement}\n")
