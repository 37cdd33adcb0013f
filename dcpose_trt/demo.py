"""``make demo`` / ``python -m dcpose_trt.demo``: the whole product on a CPU in a few minutes.

1. a synthetic video (with its detector boxes) and, when it is there, the real 5-frame PoseTrack clip (with its
   boxes, and without: the built-in person detector finds them; PoseTrack is not shipped: without the clip
   the demo runs on the synthetic video alone);
2. export the bundled model to ONNX (and build a TensorRT-RTX plan when TensorRT-RTX is installed);
3. run the best backend this machine can run (a TensorRT plan on a GPU, else ``--backend auto``: the fastest
   CPU backend measured on this machine, once, see :mod:`dcpose_trt.runtime.backends.autoselect`), exact and cached
   modes, and write overlay videos, poses JSON and a latency summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Where the shared test data lives when neither ``--data`` nor ``--clip`` is given (the same variable
#: the tests and the benchmark read).
DATA_ENV = "DCPOSE_TRT_SHARED_DATA"
#: The real 5-frame PoseTrack clip, relative to the shared data folder.
CLIP_IN_DATA = Path("posetrack18_sample") / "videos" / "000001_mpiinew_test"


def default_data_root() -> Path:
    """``$DCPOSE_TRT_SHARED_DATA``, else ``shared/data`` beside this checkout (the development layout)."""
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else REPO.parent / "shared" / "data"


def resolve_clip(clip: str | None, data: str | None) -> Path | None:
    """The real clip to run on: ``clip``, else the one in ``data`` (or the default data folder).

    A clip or data folder the user named (argument or ``$DCPOSE_TRT_SHARED_DATA``) must be there; only
    the implicit checkout-relative default may be absent, in which case the demo runs on the synthetic
    video alone (returns None).

    Raises:
        InputError: a named clip without ``boxes.json``, or a named data folder without the clip.
    """
    from dcpose_trt.errors import InputError

    if clip is not None:
        path = Path(clip)
        if not (path / "boxes.json").is_file():
            raise InputError(f"--clip {path}: not a folder of frames with a boxes.json")
        return path
    named = data if data is not None else os.environ.get(DATA_ENV)
    path = (Path(named) if named is not None else default_data_root()) / CLIP_IN_DATA
    if (path / "boxes.json").is_file():
        return path
    if named is not None:
        source = "--data" if data is not None else f"${DATA_ENV}"
        raise InputError(f"{source} {named}: no real clip at {path} (expected frames and a boxes.json); "
                         f"point it at the shared data folder, or pass --clip")
    print(f"(the real PoseTrack clip is not here ({path}): running on the synthetic video only. PoseTrack is "
          f"not shipped: download it from its official site (README, Data) and pass --data DIR (holding "
          f"{CLIP_IN_DATA.parts[0]}/) or set {DATA_ENV}; or pass --clip DIR, any folder of frames with a boxes.json)")
    return None


def _step(msg: str) -> None:
    print(f"\n== {msg}", flush=True)


def run_demo(out: Path, clip: Path | None, synth_frames: int = 40) -> dict:
    """Run the demo into ``out``; returns the summary written to ``out/summary.json``.

    ``clip``: a folder of frames with ``boxes.json`` (see :func:`resolve_clip`), or None for the
    synthetic video alone.
    """
    from dcpose_trt._atomic import atomic_write_text
    from dcpose_trt._deps import available
    from dcpose_trt.data.synth import SynthConfig, generate
    from dcpose_trt.errors import DcposeTrtError
    from dcpose_trt.export import ExportConfig, export_onnx
    from dcpose_trt.runtime import PoseEstimator
    from dcpose_trt.runtime.pipeline import RunConfig, run_video

    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"outputs": {}, "runs": {}}
    videos: dict[str, tuple[Path, Path | None]] = {}
    if clip is not None:
        videos["real_clip"] = (clip, clip / "boxes.json")
        videos["real_clip_no_boxes"] = (clip, None)  # no boxes: the built-in HOG people detector finds them

    _step("synthetic video")
    synth_root = out / "synth"
    if not (synth_root / "annotations").is_dir():
        generate(SynthConfig(out=synth_root, videos=1, frames=synth_frames, seed=2026, split_ratio=0.0, workers=1))
    video_dir = next((synth_root / "images" / "val").iterdir())
    from dcpose_trt.data.posetrack import read_boxes_file
    from dcpose_trt.data.video import boxes_of_video

    # The synthetic detector boxes, re-keyed by frame number for this one video.
    dets = read_boxes_file(synth_root / "detections" / "val.json", min_score=0.2)
    boxes = boxes_of_video(dets, video_dir.name)
    boxes_file = out / "synth_boxes.json"
    atomic_write_text(boxes_file, json.dumps(boxes))
    videos["synthetic"] = (video_dir, boxes_file)

    _step("export the bundled model to ONNX (full graph and backbone/head split)")
    t0 = time.perf_counter()
    onnx_path = export_onnx(None, out / "dcpose_tiny.onnx", ExportConfig(deform="deformconv"))
    split_dir = export_onnx(None, out / "dcpose_tiny_split", ExportConfig(deform="deformconv", split=True))
    summary["export_seconds"] = round(time.perf_counter() - t0, 1)
    summary["outputs"]["onnx"] = str(onnx_path)

    # The bundled checkpoint with `auto`: on a CPU, the backend measured fastest here for each mode.
    model: str | None = None
    backend = "auto"
    if available("tensorrt_rtx") or available("tensorrt"):
        _step("build a TensorRT plan")
        from dcpose_trt.engine import BuildConfig, build_engine, check

        which = "tensorrt" if available("tensorrt") else "tensorrt-rtx"
        gs = export_onnx(None, out / "dcpose_tiny.gridsample.onnx", ExportConfig(deform="gridsample"))
        try:
            plan = build_engine(gs, out / "dcpose_tiny.plan", BuildConfig(backend=which, profiles=((1, 4, 8),)))
            summary["outputs"]["plan"] = str(plan)
            fit = check(plan)
            if fit.ok:
                model, backend = str(plan), which
            else:
                print(f"plan built; it does not run here: {fit.message}")
        except DcposeTrtError as exc:  # no usable TensorRT here: the demo goes on with the CPU backends
            print(f"engine build skipped: {str(exc).splitlines()[0]}")
    summary["outputs"]["onnx_split"] = str(split_dir)

    modes = ("exact",) if backend != "auto" else ("exact", "cached")  # plans are whole models
    summary["backend"] = {}
    for mode in modes:
        _step(f"{mode} mode: open the model ({backend})")
        est = PoseEstimator(model, backend=backend, mode=mode)
        summary["backend"][mode] = est.backend.name
        for name, (src, bx) in videos.items():
            _step(f"{name}: {est.backend.name}, {mode} mode")
            cfg = RunConfig(video=str(src), boxes=str(bx) if bx else None, out=str(out / f"{name}_{mode}.mp4"),
                            json_out=str(out / f"{name}_{mode}.json"))
            s = run_video(cfg, est)
            summary["runs"][f"{name}/{mode}"] = s.to_json()
            summary["outputs"][f"{name}/{mode}"] = {"overlay": cfg.out, "poses": cfg.json_out}
        est.close()
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "outputs" / "demo"), help="output folder (default: %(default)s)")
    parser.add_argument("--data", help=f"the shared data folder holding the real clip (default: ${DATA_ENV}, "
                        "else shared/data beside this checkout; without it the demo runs on synthetic video)")
    parser.add_argument("--clip", help="a folder of frames with boxes.json to run on instead of the real clip")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from dcpose_trt.errors import DcposeTrtError

    t0 = time.perf_counter()
    try:
        summary = run_demo(Path(args.out), resolve_clip(args.clip, args.data))
    except DcposeTrtError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    print("\n== latency (per frame, end to end)")
    for name, r in summary["runs"].items():
        lat = r["latency_ms"]
        print(f"  {name:<22} {r['backend']:<12} {r['frames']:>3} frames {r['persons']:>4} persons  "
              f"p50 {lat['p50']:7.1f} ms  p90 {lat['p90']:7.1f} ms  {r['fps']:6.2f} fps")
    print("\n== outputs")
    for name, paths in summary["outputs"].items():
        print(f"  {name:<22} {paths}")
    print(f"  summary                {Path(args.out) / 'summary.json'}")
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
