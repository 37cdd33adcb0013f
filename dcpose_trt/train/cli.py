"""``dcpose-trt train``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from dcpose_trt._atomic import check_writable

    check_writable(args.out, folder=True, protected=[Path(args.data) / "annotations"])
    from dcpose_trt.train import TrainConfig, train

    given = dict(
        preset=args.preset, split=args.split, init=Path(args.init) if args.init else None,
        freeze_backbone=args.freeze_backbone, single_frame=args.single_frame, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr,
        milestones=tuple(int(m) for m in args.milestones.split(",") if m) if args.milestones is not None else None,
        gamma=args.gamma, workers=args.workers, seed=args.seed, resume=args.resume, max_steps=args.max_steps,
    )
    # Options default to None: what the user did not give comes from TrainConfig.
    cfg = TrainConfig(data=Path(args.data), out=Path(args.out), **{k: v for k, v in given.items() if v is not None})
    # Progress bars only on a terminal: in a log file every refresh would be a line.
    final = train(cfg, progress=sys.stderr.isatty())
    print(f"checkpoint: {final}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train``. Options default to None; the help shows :class:`TrainConfig`'s defaults, which apply."""
    from dcpose_trt.train import TrainConfig as C

    p = sub.add_parser(
        "train", help="train DCPose (or the single-frame baseline) on a PoseTrack-layout dataset",
        description="The official DCPose recipe: Adam, MultiStepLR, MSE with target weights, a checkpoint per "
        "epoch (epoch_N_state.pth, official container) and final.pth.",
    )
    p.add_argument("--data", required=True, help="dataset root (images/, annotations/): PoseTrack or `synth` output")
    p.add_argument("--out", required=True, help="output folder for checkpoints")
    p.add_argument("--preset", help=f"model preset (default: {C.preset})")
    p.add_argument("--split", help=f"annotation split to train on (default: {C.split})")
    p.add_argument("--init", help="initial weights: a DCPose checkpoint, or an HRNet COCO / mmpose checkpoint")
    p.add_argument("--freeze-backbone", action="store_true", default=None,
                   help="freeze HRNet (official with a COCO init)")
    p.add_argument("--single-frame", action="store_true", default=None,
                   help="train the single-frame HRNet baseline instead")
    p.add_argument("--epochs", type=int, help=f"default: {C.epochs}")
    p.add_argument("--batch-size", type=int, help=f"default: {C.batch_size}")
    p.add_argument("--lr", type=float, help=f"Adam learning rate (default: {C.lr})")
    p.add_argument("--milestones", help=f"MultiStepLR milestones (default: {','.join(map(str, C.milestones))})")
    p.add_argument("--gamma", type=float, help=f"MultiStepLR factor (default: {C.gamma})")
    p.add_argument("--workers", type=int, help=f"data-loading processes (default: {C.workers})")
    p.add_argument("--seed", type=int, help=f"default: {C.seed} (official)")
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue from the newest epoch_N_state.pth in --out")
    p.add_argument("--max-steps", type=int, help="cap the steps per epoch (smoke runs)")
    p.set_defaults(func=_run)
