"""CLI verbs of the data stage: ``dcpose-trt synth``.

Only argparse-level code at import time; the generator (cv2, numpy) is imported when the verb runs.
"""

from __future__ import annotations

import argparse

from dcpose_trt.errors import InputError


def _size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` (e.g. ``320x240``) into (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH such as 320x240, got {text!r}") from None
    return w, h


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's verbs to the ``dcpose-trt`` parser."""
    p = sub.add_parser(
        "synth",
        help="make a synthetic pose-video dataset in the PoseTrack18 layout",
        description=(
            "Write images/{train,val}/<video>/<frame:06d>.jpg, annotations/{train,val}/<video>.json "
            "(PoseTrack18 schema) and detections/{train,val}.json under --out. Deterministic for a seed."
        ),
    )
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--videos", type=int, default=60, help="number of videos, train + val (default 60)")
    p.add_argument("--frames", type=int, default=30, help="frames per video (default 30)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--split-ratio", type=float, default=0.8, help="fraction of videos in train (default 0.8)")
    p.add_argument("--size", type=_size, default=(320, 240), help="frame size WxH (default 320x240)")
    p.add_argument(
        "--hard-val",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="more occlusion and blur in val than in train (default on)",
    )
    p.add_argument(
        "--workers", type=int, default=0, help="processes (default: min(4, CPUs)); output is the same"
    )
    p.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dcpose_trt._atomic import check_writable

    check_writable(args.out, folder=True)
    from dcpose_trt.data.synth import SynthConfig, generate

    if args.workers < 0:
        raise InputError(f"--workers must be >= 0, got {args.workers}")
    cfg = SynthConfig(
        out=Path(args.out),
        videos=args.videos,
        frames=args.frames,
        seed=args.seed,
        split_ratio=args.split_ratio,
        size=args.size,
        hard_val=args.hard_val,
        workers=args.workers,
    )
    s = generate(cfg)
    print(
        f"wrote {len(s.videos['train'])} train + {len(s.videos['val'])} val videos "
        f"({s.frames} frames) to {s.out} in {s.seconds:.1f} s"
    )
    return 0
