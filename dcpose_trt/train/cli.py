"""``dcpose-trt train``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from dcpose_trt._atomic import check_writable

    check_writable(args.out, folder=True)
    from dcpose_trt.train import TrainConfig, train

    cfg = TrainConfig(
        data=Path(args.data), out=Path(args.out), preset=args.preset, split=args.split,
        init=Path(args.init) if args.init else None, freeze_backbone=args.freeze_backbone,
        single_frame=args.single_frame, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        milestones=tuple(int(m) for m in args.milestones.split(",") if m), gamma=args.gamma,
        workers=args.workers, seed=args.seed, resume=args.resume, max_steps=args.max_steps,
    )
    # Progress bars only on a terminal: in a log file every refresh would be a line.
    final = train(cfg, progress=sys.stderr.isatty())
    print(f"checkpoint: {final}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train DCPose (or the single-frame baseline) on a PoseTrack-layout dataset",
        description="The official DCPose recipe: Adam, MultiStepLR, MSE with target weights, a checkpoint per "
        "epoch (epoch_N_state.pth, official container) and final.pth.",
    )
    p.add_argument("--data", required=True, help="dataset root (images/, annotations/): PoseTrack or `synth` output")
    p.add_argument("--out", required=True, help="output folder for checkpoints")
    p.add_argument("--preset", default="w48-384x288", help="model preset (default: %(default)s)")
    p.add_argument("--split", default="train", help="annotation split to train on (default: %(default)s)")
    p.add_argument("--init", help="initial weights: a DCPose checkpoint, or an HRNet COCO / mmpose checkpoint")
    p.add_argument("--freeze-backbone", action="store_true", help="freeze HRNet (official with a COCO init)")
    p.add_argument("--single-frame", action="store_true", help="train the single-frame HRNet baseline instead")
    p.add_argument("--epochs", type=int, default=20, help="default: %(default)s")
    p.add_argument("--batch-size", type=int, default=32, help="default: %(default)s")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: %(default)s)")
    p.add_argument("--milestones", default="4,8,12,16", help="MultiStepLR milestones (default: %(default)s)")
    p.add_argument("--gamma", type=float, default=0.1, help="MultiStepLR factor (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="data-loading processes (default: %(default)s)")
    p.add_argument("--seed", type=int, default=8888, help="default: %(default)s (official)")
    p.add_argument("--resume", action="store_true", help="continue from the newest epoch_N_state.pth in --out")
    p.add_argument("--max-steps", type=int, help="cap the steps per epoch (smoke runs)")
    p.set_defaults(func=_run)
