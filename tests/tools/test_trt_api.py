"""tools.trt_api: real TensorRT bindings over stub native libraries, pybind11-stubgen, mypy per version.

The first run downloads the bindings wheels (1-5 MB each) into ``~/.cache/dcpose_trt/trt_api`` (or
``$DCPOSE_TRT_CACHE``); later runs reuse the wheels and the generated stubs and need no network.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tools.trt_api import DEFAULT_VERSIONS, TrtApiError, check, parse_spec, prepare
from tools.trt_api.__main__ import main
from tools.trt_api.stubs import _fix_def_line, needed_libraries, undefined_c_symbols

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"

pytest.importorskip("mypy")
pytest.importorskip("pybind11_stubgen")


def _prepare(version: str):
    try:
        return prepare(version)
    except TrtApiError as exc:
        if "pip could not download" in str(exc):
            pytest.skip(f"no network and no cached wheel for TensorRT {version}: {str(exc)[:200]}")
        raise


@pytest.fixture(scope="module", params=DEFAULT_VERSIONS)
def stubs(request):
    return _prepare(request.param)


def _check(paths, versions):
    for v in versions:
        _prepare(v)  # skip cleanly when offline with nothing cached
    return {r.name: r for r in check([str(p) for p in paths], versions, cwd=REPO)}


class TestSpecs:
    def test_parse(self):
        assert parse_spec("10.3").requirement == "tensorrt-cu12-bindings==10.3.*"
        assert parse_spec("11.4").package == "tensorrt"
        rtx = parse_spec("rtx")
        assert rtx.package == "tensorrt_rtx" and rtx.is_rtx and rtx.requirement == "tensorrt-rtx-cu13-bindings"
        assert parse_spec("rtx-1.7").requirement == "tensorrt-rtx-cu13-bindings==1.7.*"

    @pytest.mark.parametrize("bad", ["8.6", "ten", "10", ""])
    def test_bad_version(self, bad):
        with pytest.raises(TrtApiError, match="unknown TensorRT API version"):
            parse_spec(bad)

    def test_fix_def_line(self):
        # pybind11 signatures Python cannot parse: a keyword as a name, a required arg after defaults.
        line = "    def f(self, in: list[int], x: int = 0, y: Weights = None, axis: int) -> None:"
        fixed = _fix_def_line(line)
        assert fixed == "    def f(self, in_: list[int], x: int = 0, y: Weights = None, axis: int = ...) -> None:"
        ast.parse(fixed.strip() + " ...")


class TestStubs:
    def test_generated(self, stubs):
        pkg = stubs.stub_dir / stubs.spec.package
        main_pyi = pkg / f"{stubs.spec.package}.pyi"
        text = main_pyi.read_text()
        ast.parse(text)
        assert re.search(r"^class Builder\b", text, re.M)
        assert re.search(r"^class IProgressMonitor\b", text, re.M)
        assert "def build_serialized_network(self, network: INetworkDefinition" in text
        flags = re.search(r"^class BuilderFlag:.*?(?=^class )", text, re.M | re.S).group(0)
        has_fp16 = "    FP16: typing.ClassVar[BuilderFlag]" in flags
        assert has_fp16 == stubs.version.startswith("10."), stubs.version  # removed in 11 and RTX
        if stubs.spec.name in ("10.9", "10.13", "11.4"):
            assert (pkg / "plugin" / "_lib.py").is_file()  # tensorrt.plugin (QDP) ships as Python

    def test_stub_libraries(self, stubs):
        work = stubs.stub_dir.parent
        ext = next((work / "pkg" / stubs.spec.package).glob("*.so"))
        symbols = undefined_c_symbols(ext)
        assert "createInferBuilder_INTERNAL" in symbols and "getPluginRegistry" in symbols
        assert not any(s.startswith(("Py", "_Z", "dl")) for s in symbols)
        for soname in needed_libraries(ext):
            assert (work / "lib" / soname).is_file()
        expected = {"libtensorrt_rtx.so.1"} if stubs.spec.is_rtx else {
            f"libnvinfer.so.{stubs.version.split('.')[0]}", f"libnvonnxparser.so.{stubs.version.split('.')[0]}"}
        assert expected <= set(needed_libraries(ext))

    def test_cached(self, stubs):
        again = prepare(stubs.spec.name)
        assert again.stub_dir == stubs.stub_dir  # no regeneration, no network


class TestConformance:
    def test_removed_fp16_flag_caught_by_11(self):
        results = _check([FIXTURES / "removed_fp16_flag.py", FIXTURES / "guarded_fp16_flag.py"],
                         ["10.3", "10.13", "11.4"])
        assert results["10.3"].ok and results["10.13"].ok
        r11 = results["11.4"]
        assert not r11.ok and len(r11.errors) == 1
        src = (FIXTURES / "removed_fp16_flag.py").read_text().splitlines()
        line = next(i for i, text in enumerate(src, 1) if "set_flag(trt.BuilderFlag.FP16)" in text)
        assert f'removed_fp16_flag.py:{line}: error: "type[BuilderFlag]" has no attribute "FP16"' in r11.errors[0]

    def test_rtx_only_api(self):
        results = _check([FIXTURES / "rtx_only.py"], ["11.4", "rtx"])
        assert results["rtx"].ok, results["rtx"].errors
        assert not results["11.4"].ok  # `tensorrt_rtx` is not the module a TensorRT 11 run provides

    def test_project_engine_and_runtime(self):
        """Issue 6 item 4: dcpose_trt/engine and dcpose_trt/runtime against 10.3, 10.9, 10.13, 11.4, RTX."""
        results = _check([REPO / "dcpose_trt" / "engine", REPO / "dcpose_trt" / "runtime"], list(DEFAULT_VERSIONS))
        failed = {name: r.errors or r.failure for name, r in results.items() if not r.ok}
        assert not failed

    def test_cli(self, capsys):
        for v in ("10.13", "11.4"):
            _prepare(v)
        rc = main(["check", "--versions", "10.13,11.4", str(FIXTURES / "removed_fp16_flag.py")])
        out = capsys.readouterr().out
        assert rc == 1
        assert re.search(r"TensorRT API 10\.13 \(10\.13[.\w]*\): pass", out)
        assert re.search(r"TensorRT API 11\.4 \(11\.4[.\w]*\): FAIL - 1 error", out)
        assert "has no attribute \"FP16\"" in out
