"""Run inside a subprocess: import a TensorRT bindings package (over stub native libraries) and write .pyi.

Usage: ``python _stubgen_runner.py PACKAGE OUT_DIR``. The caller puts the unpacked bindings package first
on ``PYTHONPATH`` and the stub ``libnvinfer*.so.N`` on ``LD_LIBRARY_PATH``. Nothing here calls into the
native library (the stub functions return NULL); only names, signatures and enum values are read.

Kept free of project imports: it runs with whatever interpreter ``tools.trt_api`` was started with.
"""

from __future__ import annotations

import importlib
import inspect
import sys


def _enum_locations(module_name: str) -> list[str]:
    """``Name:dotted.path`` for every pybind11 enum in the module, nested ones included.

    pybind11 prints enum default values as ``<DataType.FLOAT: 0>``; stubgen needs to know where each enum
    class lives to print them as ``DataType.FLOAT``.
    """
    mod = importlib.import_module(f"{module_name}.{module_name}")
    found: dict[str, str] = {}

    def walk(obj: object, path: str, depth: int) -> None:
        for name, value in vars(obj).items():
            if not inspect.isclass(value) or name.startswith("_"):
                continue
            if hasattr(value, "__members__") and name not in found:
                found[name] = f"{path}.{name}"
            if depth < 2 and value.__module__ == mod.__name__:
                walk(value, f"{path}.{name}", depth + 1)

    walk(mod, mod.__name__, 0)
    return [f"^{name}$:{loc}" for name, loc in sorted(found.items())]


def main(argv: list[str]) -> int:
    package, out_dir = argv
    # The wheels' __init__ first tries `import tensorrt_libs` / `tensorrt_rtx_libs` (the real native
    # libraries). If one is installed in this interpreter it must not win over the stubs: a None entry in
    # sys.modules makes that import raise ImportError, which the wheel's __init__ handles.
    for libs in ("tensorrt_libs", "tensorrt_rtx_libs"):
        sys.modules[libs] = None  # type: ignore[assignment]
    importlib.import_module(package)

    from pybind11_stubgen import main as stubgen_main

    args = ["--print-invalid-expressions-as-is", "--ignore-all-errors", "-o", out_dir]
    for loc in _enum_locations(package):
        args += ["--enum-class-locations", loc]
    stubgen_main([*args, package])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
