"""The ``HEAVY`` list of tests/conftest.py (what `make test-fast` leaves out) names tests that exist."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _heavy_list() -> tuple[str, ...]:
    tree = ast.parse((TESTS / "conftest.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "HEAVY":
            return ast.literal_eval(node.value)
    raise AssertionError("tests/conftest.py has no HEAVY list")


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}


def test_every_heavy_entry_names_a_test():
    stale = []
    for entry in _heavy_list():
        rel, _, name = entry.partition("::")
        path = TESTS / rel
        if not path.is_file() or (name and name.split("::")[0] not in _test_names(path)):
            stale.append(entry)
    assert not stale, f"tests/conftest.py HEAVY names tests that do not exist (moved or renamed?): {stale}"
