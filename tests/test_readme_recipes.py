"""Every fenced ``bash`` block of the README and of docs/tensorrt_build.md runs as written (issue 20, item 7).

One test per command line, in document order; the commands of one document share one scratch folder, so a
later command reads what an earlier one wrote, as in a shell. Nothing is substituted but one speed knob:
INT8 calibration takes 8 crops (``--calib-samples 8`` is added when the line does not set it).

What a block needs is said by an explicit marker comment in the block, never guessed from the command:

* ``# recipe-test: skip (REASON)``: never run here (installs packages, needs the user's own video, ...);
* ``# recipe-test: needs X[, Y]``: run where every X is here, skipped with the reason elsewhere. X is one of
  :data:`NEEDS` (``tensorrt``, ``tensorrt-rtx``, ``gpu``).

A block without a marker may only hold ``dcpose-trt`` commands (and ``VAR=value`` prefixes); anything else is
a test failure that asks for a marker.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from dcpose_trt.cli import main

REPO = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/tensorrt_build.md")
MARKER = re.compile(r"^#\s*recipe-test:\s*(skip|needs)\b\s*(.*)$")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _module(name: str):
    def check() -> bool:
        from dcpose_trt._deps import available

        return available(name)

    return check


#: What a ``needs`` marker may name, and how this machine is checked for it.
NEEDS = {"tensorrt": _module("tensorrt"), "tensorrt-rtx": _module("tensorrt_rtx"), "gpu": _cuda}


@dataclass(frozen=True)
class Command:
    doc: str
    block: int  # 1-based index of the bash block in the document
    text: str  # the line as written (continuations joined)
    marker: tuple[str, str] | None  # ("skip", reason) or ("needs", "tensorrt, gpu")

    @property
    def id(self) -> str:
        words = shlex.split(self.text, comments=True)
        verb = next((w for w in words if "=" not in w), "?")
        sub = words[words.index(verb) + 1] if verb == "dcpose-trt" and len(words) > words.index(verb) + 1 else ""
        return f"{self.doc}:b{self.block}:{verb} {sub}".strip()


def bash_blocks(text: str) -> list[list[str]]:
    """The lines of every ```` ```bash ```` block, continuation lines joined."""
    blocks = []
    for body in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M):
        lines, cur = [], ""
        for raw in body.splitlines():
            cur += raw.rstrip()
            if cur.endswith("\\"):
                cur = cur[:-1] + " "
                continue
            lines.append(cur.strip())
            cur = ""
        blocks.append([ln for ln in lines if ln])
    return blocks


def commands(doc: str) -> list[Command]:
    out = []
    for i, lines in enumerate(bash_blocks((REPO / doc).read_text()), 1):
        marks = [MARKER.match(ln) for ln in lines]
        found = [(m.group(1), m.group(2).strip()) for m in marks if m]
        assert len(found) <= 1, f"{doc} block {i}: more than one recipe-test marker"
        marker = found[0] if found else None
        out += [Command(doc, i, ln, marker) for ln in lines if shlex.split(ln, comments=True)]
    return out


ALL = [c for doc in DOCS for c in commands(doc)]


def test_the_recipes_are_there():
    """The documented build paths all appear, each ONNX form under a name of its own."""
    text = " ".join(c.text for c in ALL if c.doc == "docs/tensorrt_build.md")
    for needle in ("--deform plugin", "--deform gridsample", "--deform deformconv", "--precision int8 --target cpu",
                   "--backend tensorrt-rtx"):
        assert needle in text, needle
    rtx_inputs = [c.text.split("--onnx ")[1].split()[0] for c in ALL if "--backend tensorrt-rtx" in c.text]
    assert any(".int8." in f for f in rtx_inputs), "no TensorRT-RTX INT8 recipe"
    readme = [c.text for c in ALL if c.doc == "README.md"]
    assert any("make demo" in t for t in readme) and any("make test" in t for t in readme)


def test_one_name_one_artifact():
    """No file name is written by two different commands of a document (one name = one ONNX form)."""
    for doc in DOCS:
        writers: dict[str, str] = {}
        for c in commands(doc):
            words = shlex.split(c.text, comments=True)
            if "--out" in words:
                out = words[words.index("--out") + 1]
                assert out not in writers, f"{doc}: {out} is written by `{writers[out]}` and by `{c.text}`"
                writers[out] = c.text


def test_markers_name_known_needs():
    for c in ALL:
        if c.marker and c.marker[0] == "needs":
            unknown = {n.strip() for n in c.marker[1].split(",")} - set(NEEDS)
            assert not unknown, f"{c.doc} block {c.block}: unknown needs {unknown}; known: {sorted(NEEDS)}"
        if c.marker and c.marker[0] == "skip":
            assert c.marker[1].startswith("(") and len(c.marker[1]) > 5, f"{c.doc} block {c.block}: give a reason"


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory):
    """One scratch folder per document, shared by its commands in order."""
    return {doc: tmp_path_factory.mktemp(Path(doc).stem) for doc in DOCS}


def _speed(argv: list[str]) -> list[str]:
    if argv[:1] == ["quantize"] and "int8" in argv and "--calib-samples" not in argv:
        argv = [*argv, "--calib-samples", "8"]
    return argv


@pytest.mark.parametrize("cmd", ALL, ids=[c.id for c in ALL])
def test_recipe(cmd: Command, workdirs, monkeypatch, capsys):
    if cmd.marker and cmd.marker[0] == "skip":
        pytest.skip(f"marked in {cmd.doc}: {cmd.marker[1]}")
    if cmd.marker and cmd.marker[0] == "needs":
        missing = [n.strip() for n in cmd.marker[1].split(",") if not NEEDS[n.strip()]()]
        if missing:
            pytest.skip(f"marked in {cmd.doc} as needing {cmd.marker[1]}; not here: {', '.join(missing)}")
    monkeypatch.chdir(workdirs[cmd.doc])
    words = shlex.split(cmd.text, comments=True)
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        name, value = words.pop(0).split("=", 1)
        monkeypatch.setenv(name, value)
    assert words and words[0] == "dcpose-trt", (
        f"{cmd.doc} block {cmd.block}: `{cmd.text}` is not a dcpose-trt command; mark the block "
        "`# recipe-test: skip (reason)` or `# recipe-test: needs ...`")
    argv = _speed(words[1:])
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 0, f"`{cmd.text}` exited {rc}:\n{err[-2000:]}"
    if "--out" in argv:
        out = Path(argv[argv.index("--out") + 1])
        assert out.exists(), f"`{cmd.text}` did not write {out}"
        if argv[0] == "build":
            assert Path(f"{out}.json").is_file()


def test_readme_python_block_runs(capsys):
    """The README's Python API block, with ``stream`` = three synthetic frames with two boxes each."""
    import numpy as np

    blocks = re.findall(r"^```python\n(.*?)^```", (REPO / "README.md").read_text(), re.S | re.M)
    assert len(blocks) == 1, "the README has one Python block"
    rng = np.random.default_rng(0)
    boxes = np.array([[40, 30, 60, 120, 0.9], [150, 40, 50, 110, 0.8]], np.float32)
    stream = [(rng.integers(0, 255, (180, 240, 3), dtype=np.uint8), boxes) for _ in range(3)]
    exec(compile(blocks[0], "README.md", "exec"), {"stream": stream})
    printed = capsys.readouterr().out
    assert re.findall(r"^(\d+) ", printed, re.M) == ["0", "1", "2"], printed[:2000]
