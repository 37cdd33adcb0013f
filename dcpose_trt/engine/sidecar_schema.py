"""The plan sidecar's schema (``dcpose_trt.plan/1``) as types: a sidecar is validated before any field is used.

A sidecar comes from whoever built the plan (and from any editor since), so each field the checks and the
runtime read is checked for its JSON type here; a wrong one is one line naming the field, never a
``TypeError`` deep inside :func:`dcpose_trt.engine.plan.check`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dcpose_trt.errors import PlanMismatchError

_STR, _INT, _BOOL, _DICT, _LIST, _NULL = str, int, bool, dict, list, type(None)

#: dotted field -> (JSON types allowed, required). Lists name their items' types with ``[]``.
FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "plan": ((_DICT,), True),
    "plan.sha256": ((_STR,), True),
    "plan.bytes": ((_INT,), False),
    "plan.file": ((_STR,), False),
    "backend": ((_DICT,), True),
    "backend.name": ((_STR,), True),
    "backend.version": ((_STR,), True),
    "target": ((_DICT,), True),
    "target.gpu": ((_DICT, _NULL), False),
    "target.gpu.name": ((_STR,), False),
    "target.gpu.compute_capability": ((_STR,), False),
    "target.compute_capabilities": ((_LIST, _NULL), False),
    "target.compute_capabilities[]": ((_STR,), False),
    "target.hardware_compat": ((_STR,), False),
    "target.version_compatible": ((_BOOL,), False),
    "precision": ((_STR,), False),
    "profiles": ((_LIST,), False),
    "onnx": ((_DICT,), True),
    "onnx.sha256": ((_STR,), True),
    "dcn": ((_DICT, _NULL), False),
    "dcn.form": ((_STR,), False),
    "preset": ((_STR, _NULL), False),
    "metadata": ((_DICT, _NULL), False),
    "inputs": ((_LIST,), False),
    "outputs": ((_LIST,), False),
    "build": ((_DICT, _NULL), False),
    "build.plugin_impl": ((_STR, _NULL), False),
    "build.plugin_ptx_arch": ((_INT, _NULL), False),
    "build.plugin_libraries": ((_LIST, _NULL), False),
    "build.plugin_libraries[]": ((_STR, _DICT), False),
    "layers": ((_LIST,), False),
    "command": ((_STR, _NULL), False),
}

_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "an object", list: "a list",
          type(None): "null"}


def _is(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # JSON true is not an integer
        return bool in types
    return isinstance(value, types)


def validate_sidecar(meta: Any, where: str) -> dict[str, Any]:
    """``meta`` when every field of :data:`FIELDS` present has its type and the required ones are there.

    Raises:
        PlanMismatchError: one line naming the first field that is missing or of the wrong type.
    """
    if not isinstance(meta, dict):
        raise PlanMismatchError(f"{where}: the sidecar is not a JSON object")
    for dotted, (types, required) in FIELDS.items():
        items = dotted.endswith("[]")
        path = dotted.removesuffix("[]").split(".")
        node: Any = meta
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                node = KeyError
                break
            node = node[key]
        if node is KeyError:
            if required:
                raise PlanMismatchError(f"{where}: the sidecar has no '{dotted}' (edited, or not written by "
                                        "dcpose-trt build)")
            continue
        values = (node or []) if items else [node]
        for value in values:
            if not _is(value, types):
                want = " or ".join(_NAMES[t] for t in types)
                field = f"an item of '{dotted[:-2]}'" if items else f"'{dotted}'"
                raise PlanMismatchError(f"{where}: sidecar field {field} must be {want}, got {value!r:.60}")
    return meta
