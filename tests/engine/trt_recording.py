"""A recording wrapper around a real TensorRT Python module (``tensorrt``, ``tensorrt_rtx``).

Used where the code under test calls into TensorRT's native library but this machine has none (or no
GPU): every attribute is looked up on the **real** module or class (a name a release lacks raises
``AttributeError``), every attribute set must exist on the real class, and calls are recorded in
``calls`` instead of entering native code. A call returns a stand-in of the real class its binding
signature names (``-> tensorrt.IPluginRegistry``), so chained calls are checked against the real API too.
Not a fake ``tensorrt``: it has no behaviour of its own beyond recording.
"""

from __future__ import annotations

import re
from typing import Any


class Recorder:
    def __init__(self, real_module: Any, returns: dict[str, Any] | None = None,
                 return_class: dict[str, str] | None = None) -> None:
        self.real = real_module
        self.calls: list[list[Any]] = []
        self.returns = returns or {}  # function name -> value it returns (e.g. a list of strings)
        self.return_class = return_class or {}  # function name -> class name, where the signature has none

    def module(self) -> Rec:
        return Rec(self, self.real, "")

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def _arg(a: Any) -> Any:
    if isinstance(a, (str, int, float, bool)) or a is None:
        return a
    if hasattr(a, "name") and type(a).__module__.startswith("tensorrt"):  # an enum member
        return f"{type(a).__name__}.{a.name}"
    if isinstance(a, Rec):
        return a._path
    return type(a).__name__


class Rec:
    """Stands for one real TensorRT object: the module, a class, or an instance of a class."""

    def __init__(self, rec: Recorder, real_obj: Any, path: str) -> None:
        object.__setattr__(self, "_rec", rec)
        object.__setattr__(self, "_real", real_obj)
        object.__setattr__(self, "_path", path)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)  # AttributeError: this release has no such API
        path = f"{self._path}.{name}" if self._path else name
        if isinstance(attr, type) and not hasattr(attr, "__members__"):  # a class: recorded if constructed
            return Rec(self._rec, attr, path)
        if callable(attr) and not isinstance(attr, type):
            return _Call(self._rec, attr, path)
        return attr  # enums, enum members, properties' class attributes, constants

    def __setattr__(self, name: str, value: Any) -> None:
        assert hasattr(self._real, name), f"{self._path} has no attribute {name}"
        self._rec.calls.append([f"{self._path}.{name}=", _arg(value)])

    def __call__(self, *args: Any) -> Rec:  # constructing the real class
        self._rec.calls.append([self._path, [_arg(a) for a in args]])
        return Rec(self._rec, self._real, self._path + "()")


class _Call:
    def __init__(self, rec: Recorder, fn: Any, path: str) -> None:
        self.rec, self.fn, self.path = rec, fn, path

    def __call__(self, *args: Any) -> Any:
        self.rec.calls.append([self.path, [_arg(a) for a in args]])
        name = self.path.rsplit(".", 1)[-1]
        if name in self.rec.returns:
            return self.rec.returns[name]
        doc = (getattr(self.fn, "__doc__", "") or "").splitlines()
        m = re.search(r"->\s*([\w.]+)", doc[0]) if doc else None
        cls = getattr(self.rec.real, m.group(1).rsplit(".", 1)[-1], None) if m else None
        if not isinstance(cls, type) and name in self.rec.return_class:
            cls = getattr(self.rec.real, self.rec.return_class[name])
        return Rec(self.rec, cls, self.path + "()") if isinstance(cls, type) else True
