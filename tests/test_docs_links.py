"""The README and docs/ stay self-contained and true to the repository (issue 20, item 6).

* every relative link and image of README.md and docs/*.md resolves to a file inside the repository, and a
  ``#anchor`` to a heading of its target (GitHub's slugs);
* nothing in the repository points at the development machine's design notes (``shared/docs``);
* the README stays a user's page: at most 250 lines, installation on its first screen, both commands.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _prose(text: str) -> str:
    """The page without its fenced code blocks (a ``# comment`` there is no heading, a ``[x](y)`` no link)."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\*|_(?=\W)|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip())
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _prose(page.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(page: Path) -> list[str]:
    return [m.group(1) for m in LINK.finditer(_prose(page.read_text(encoding="utf-8")))]


def test_slugs_follow_github():
    assert slug("`auto` on a CPU") == "auto-on-a-cpu"
    assert slug("INT8 on ONNX Runtime's CPU provider") == "int8-on-onnx-runtimes-cpu-provider"
    assert slug("Running: `dcpose-trt run` and the Python API") == "running-dcpose-trt-run-and-the-python-api"
    assert slug("Runtime modes (bundled model, GT boxes)") == "runtime-modes-bundled-model-gt-boxes"


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(REPO).as_posix() for p in PAGES])
def test_links_resolve_inside_the_repository(page):
    bad = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not ours to check
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page.resolve()
        if not dest.is_relative_to(REPO.resolve()):
            bad.append(f"{target}: outside the repository")
        elif not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.relative_to(REPO.resolve())}")
    assert not bad, f"{page.relative_to(REPO)}:\n  " + "\n  ".join(bad)


def test_nothing_points_at_the_design_notes_outside_the_repository():
    files = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=False)
    if files.returncode != 0:
        pytest.skip("not a git checkout")
    offenders = []
    for name in files.stdout.splitlines():
        path = REPO / name
        if path.suffix not in {".py", ".md", ".txt", ".toml", ".cfg", ".sh", ""} or not path.is_file():
            continue
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "shared/docs" in text or "performance_anchors.md" in text or "dcpose_spec.md" in text:
            offenders.append(name)
    assert not offenders, f"these files cite design notes that are not in the repository: {offenders}"


def test_readme_is_a_users_page():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines (at most 250)"
    first_screen = "\n".join(lines[:40])
    assert "## Install" in first_screen, "installation must be on the README's first screen"
    assert "make demo" in first_screen and "make test" in first_screen
    assert re.search(r"!\[[^\]]*\]\(docs/[^)]+\.png\)", text), "the README shows a picture"
    assert "../shared" not in text and "shared/data" not in text, "the README names data a user does not have"
