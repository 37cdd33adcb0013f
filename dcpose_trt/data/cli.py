"""CLI verbs of the data stage: ``dcpose-trt synth``.

Only argparse-level code at import time; the generator (cv2, numpy) is imported when the verb runs.
"""

from __future__ import annotations

import argparse


def _size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` (e.g. ``320x240``) into (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH such as 320x240, got {text!r}") from None
    return w, h


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's verbs to the ``dcpose-trt`` parser. Options default to None; the help shows
    :class:`SynthConfig`'s defaults, which apply."""
    from dcpose_trt.data.synth import SynthConfig as C

    p = sub.add_parser(
        "synth",
        help="make a synthetic pose-video dataset in the PoseTrack18 layout",
        description=(
            "Write images/{train,val}/<video>/<frame:06d>.jpg, annotations/{train,val}/<video>.json "
            "(PoseTrack18 schema) and detections/{train,val}.json under --out. Deterministic for a seed."
        ),
    )
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--videos", type=int, help=f"number of videos, train + val (default {C.videos})")
    p.add_argument("--frames", type=int, help=f"frames per video (default {C.frames})")
    p.add_argument("--seed", type=int, help=f"random seed (default {C.seed})")
    p.add_argument("--split-ratio", type=float, help=f"fraction of videos in train (default {C.split_ratio})")
    p.add_argument("--size", type=_size, help=f"frame size WxH (default {C.size[0]}x{C.size[1]})")
    p.add_argument(
        "--hard-val",
        action=argparse.BooleanOptionalAction,
        help=f"more occlusion and blur in val than in train (default {'on' if C.hard_val else 'off'})",
    )
    p.add_argument(
        "--workers", type=int, help="processes (default: min(4, CPUs)); output is the same"
    )
    p.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dcpose_trt._atomic import check_writable

    check_writable(args.out, folder=True)
    from dcpose_trt.data.synth import SynthConfig, generate

    given = dict(videos=args.videos, frames=args.frames, seed=args.seed, split_ratio=args.split_ratio,
                 size=args.size, hard_val=args.hard_val, workers=args.workers)
    # Options default to None: what the user did not give comes from SynthConfig.
    cfg = SynthConfig(out=Path(args.out), **{k: v for k, v in given.items() if v is not None})
    s = generate(cfg)
    print(
        f"wrote {len(s.videos['train'])} train + {len(s.videos['val'])} val videos "
        f"({s.frames} frames) to {s.out} in {s.seconds:.1f} s"
    )
    return 0
