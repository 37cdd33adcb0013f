"""The README's "Build recipes" block runs as written (issue 12, §2.2), one test per command, in order.

Substitutions, the smallest settings that exercise each command: ``dcpose.pth`` is the bundled model,
``my_video.mp4`` / ``boxes.json`` the shared sample clip and its boxes, INT8 calibrates on 8 crops.
Commands run in one scratch folder, so later commands read what earlier ones wrote, as in a shell.
What this machine cannot run is skipped with the reason: TensorRT builds when TensorRT is not installed
(the command is still run and must stop with a one-line install hint), and the camera/detector run
(no YOLO ONNX here). TensorRT-RTX builds run on the CPU.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from dcpose_trt.cli import main
from dcpose_trt.model.presets import BUNDLED_MODEL

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO.parent / "shared" / "data" / "posetrack18_sample" / "videos" / "000001_mpiinew_test"


def recipe_commands() -> list[str]:
    """The command lines of the first ``bash`` block under "## Build recipes" (comments dropped)."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Build recipes", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "no bash block in the Build recipes section"
    lines = [ln.split("  #", 1)[0].strip() for ln in block.group(1).splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


COMMANDS = recipe_commands()


def _substitute(argv: list[str]) -> list[str]:
    subs = {"dcpose.pth": str(BUNDLED_MODEL), "my_video.mp4": str(CLIP / "000001_mpiinew_test.mp4"),
            "boxes.json": str(CLIP / "boxes.json")}
    argv = [subs.get(a, a) for a in argv]
    if argv[:1] == ["quantize"] and "int8" in argv:
        argv += ["--calib-samples", "8"]
    return argv


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Shared scratch folder and the outcome of every command so far."""
    if not (CLIP / "boxes.json").is_file():
        pytest.skip(f"sample clip not found at {CLIP}")
    return tmp_path_factory.mktemp("recipes"), {}


def test_block_has_the_documented_recipes():
    verbs = [shlex.split(c)[1] for c in COMMANDS if c.startswith("dcpose-trt")]
    assert verbs.count("export") >= 2 and verbs.count("quantize") >= 3 and verbs.count("build") >= 4
    assert any("--deform plugin" in c for c in COMMANDS)
    assert any("--precision int8" in c for c in COMMANDS)


@pytest.mark.parametrize("index", range(len(COMMANDS)), ids=[c.split(" --")[0] for c in COMMANDS])
def test_recipe_command(index, workdir, monkeypatch, capsys):
    from dcpose_trt._deps import available

    root, done = workdir
    monkeypatch.chdir(root)
    words = shlex.split(COMMANDS[index])
    if words[0] == "pip":
        pytest.skip("installs packages; the test environment has them")
    assert words[0] == "dcpose-trt", COMMANDS[index]
    argv = _substitute(words[1:])
    verb = argv[0]
    inputs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--onnx", "--model")]
    if verb == "check-plan":
        inputs.append(argv[1])
    missing = [a for a in inputs if not Path(a).exists()]
    if verb == "run":
        pytest.skip("needs a camera/video of people, a TensorRT plan and a YOLO detector ONNX, none of which "
                    "exist on this machine")
    if missing:
        pytest.skip(f"needs {', '.join(missing)}, which an earlier command could not make here: "
                    f"{'; '.join(done.get(m, 'not made') for m in missing)}")
    backend = argv[argv.index("--backend") + 1] if "--backend" in argv else "tensorrt"
    needs_trt = verb == "build" and backend == "tensorrt" and not available("tensorrt")
    rc = main(argv)
    captured = capsys.readouterr()
    out = argv[argv.index("--out") + 1] if "--out" in argv else None
    if needs_trt:
        err = captured.err.strip()
        assert rc == 2 and "\n" not in err and "tensorrt" in err.lower(), err
        assert out is None or not Path(out).exists()
        done[out] = "TensorRT is not installed here"
        pytest.skip(f"TensorRT is not installed here; the command stops with: {err}")
    assert rc == 0, captured.err[-2000:]
    if out is not None:
        assert Path(out).is_file()
        if verb == "build":
            assert Path(f"{out}.json").is_file()
        done.pop(out, None)
