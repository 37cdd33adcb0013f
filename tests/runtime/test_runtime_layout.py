"""Issue 20 item 1: ``auto`` is decided in one place.

The runtime's import cycles (the registry's real imports included) and its file sizes are checked with the
whole package's, in tests/test_import_direction.py (one import-graph walker, not two).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "dcpose_trt"


def test_auto_is_decided_in_one_place():
    """Only autoselect.resolve_backend turns ``auto`` into a backend name (it was decided in 5 places)."""
    files = list((PACKAGE / "runtime").rglob("*.py")) + list((PACKAGE / "scale").rglob("*.py"))
    deciders = [f"{p.relative_to(REPO)}:{node.lineno}" for p in files
                for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
                if isinstance(node, ast.Compare)
                and any(isinstance(c, ast.Constant) and c.value == "auto" for c in node.comparators)]
    # TensorRTBackend(path, backend="auto") is the class's own "do not check the builder" value (the sidecar
    # names it either way), not a choice between backends.
    # ray_connect compares Ray's own address keyword ("--ray-address auto"), which names no backend.
    others = [d for d in deciders if "backends/autoselect.py" not in d and "tensorrt/trt_backend.py" not in d
              and "scale/ray_connect.py" not in d]
    assert not others and any("backends/autoselect.py" in d for d in deciders), deciders
