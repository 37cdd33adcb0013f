"""[trust] item 5: no verb writes over one of its inputs (also through links) or into an input dataset's
annotation folder: one line, exit 2, nothing touched.

Each verb's work function is replaced by one that fails the test (as in test_output_paths.py), so a check
that comes after the work, or never, shows up as that failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dcpose_trt.cli import main

WORK = {
    "export": ("dcpose_trt.model", "load_model"),
    "quantize": ("dcpose_trt.export.precision", "quantize_onnx"),
    "build": ("dcpose_trt.engine.builder", "build_engine"),
    "train": ("dcpose_trt.train", "train"),
    "run": ("dcpose_trt.runtime.pipeline", "FrameSource"),
    "predict": ("dcpose_trt.scale.jobs", "WorkerState"),
    "eval": ("dcpose_trt.eval.posetrack_ap", "evaluate_dirs"),
}


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    d = tmp_path / "data"
    (d / "annotations" / "val").mkdir(parents=True)
    (d / "annotations" / "val" / "v1.json").write_text('{"annolist": []}')
    (d / "images").mkdir()
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "v1.mp4").write_bytes(b"not a video")
    boxes = tmp_path / "boxes"
    boxes.mkdir()
    (boxes / "v1.json").write_text("[]")
    out = {"ck": tmp_path / "ck.pth", "onnx": tmp_path / "m.onnx", "video": tmp_path / "in.mp4",
           "boxes": tmp_path / "in.json", "data": d, "clips": clips, "boxes_dir": boxes}
    for k in ("ck", "onnx", "video", "boxes"):
        out[k].write_bytes(f"{k} bytes".encode())
    return out


def _cases(f: dict[str, Path], tmp: Path) -> dict[str, list[str]]:
    link = tmp / "link.pth"
    link.symlink_to(f["ck"])
    hard = tmp / "hard.onnx"
    os.link(f["onnx"], hard)
    ann = f["data"] / "annotations" / "val"
    return {
        "export-same": ["export", "--model", str(f["ck"]), "--out", str(f["ck"])],
        "export-symlink": ["export", "--model", str(f["ck"]), "--out", str(link)],
        "export-dotdot": ["export", "--model", str(f["ck"]), "--out", str(tmp / "x" / ".." / "ck.pth")],
        "quantize-same": ["quantize", "--onnx", str(f["onnx"]), "--precision", "fp16", "--out", str(f["onnx"])],
        "quantize-hardlink": ["quantize", "--onnx", str(f["onnx"]), "--precision", "fp16", "--out", str(hard)],
        "build-same": ["build", "--onnx", str(f["onnx"]), "--out", str(f["onnx"]), "--backend", "tensorrt-rtx"],
        "run-video": ["run", "--video", str(f["video"]), "--boxes", str(f["boxes"]), "--out", str(f["video"])],
        "run-boxes": ["run", "--video", str(f["video"]), "--boxes", str(f["boxes"]), "--json", str(f["boxes"])],
        "run-model": ["run", "--video", str(f["video"]), "--boxes", str(f["boxes"]), "--model", str(f["ck"]),
                      "--json", str(f["ck"])],
        "predict-annotations": ["predict", "--data", str(f["data"]), "--boxes", "gt", "--out", str(ann)],
        "predict-annotations-root": ["predict", "--data", str(f["data"]), "--boxes", "gt", "--out",
                                     str(f["data"] / "annotations")],
        "predict-boxes-dir": ["predict", "--videos", str(f["clips"]), "--boxes-dir", str(f["boxes_dir"]),
                              "--out", str(f["boxes_dir"])],
        "train-annotations": ["train", "--data", str(f["data"]), "--out", str(ann), "--preset", "tiny-128x96"],
        "eval-json-into-gt": ["eval", "--gt", str(ann), "--pred", str(tmp), "--json", str(ann / "v1.json")],
    }


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


CASES = ["export-same", "export-symlink", "export-dotdot", "quantize-same", "quantize-hardlink", "build-same",
         "run-video", "run-boxes", "run-model", "predict-annotations", "predict-annotations-root",
         "predict-boxes-dir", "train-annotations", "eval-json-into-gt"]


@pytest.mark.parametrize("case", CASES)
def test_output_that_is_an_input_is_refused(case, files, tmp_path, monkeypatch, capsys):
    import importlib

    verb = case.split("-")[0]
    module, name = WORK[verb]

    def reached(*a, **k):
        raise AssertionError(f"{verb} started its work before refusing the output")

    monkeypatch.setattr(importlib.import_module(module), name, reached)
    argv = _cases(files, tmp_path)[case]
    before = _snapshot(tmp_path)
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "input" in err, err
    assert _snapshot(tmp_path) == before  # nothing touched


def test_distinct_output_is_accepted(files, tmp_path):
    from dcpose_trt._atomic import check_writable

    assert check_writable(tmp_path / "new.pth", inputs=[files["ck"]], protected=[files["data"] / "annotations"])
    assert check_writable(files["data"] / "preds", folder=True, protected=[files["data"] / "annotations"])


def test_outputs_of_one_run_may_not_coincide(files, tmp_path, capsys):
    rc = main(["run", "--video", str(files["video"]), "--boxes", str(files["boxes"]), "--out",
               str(tmp_path / "o.mp4"), "--json", str(tmp_path / "o.mp4")])
    assert rc == 2 and "same" in capsys.readouterr().err
