"""The official DCPose training recipe (spec §5), plus the single-frame HRNet baseline.

Adam (no weight decay), MultiStepLR stepped with the epoch index after each epoch (the official
off-by-one), JointMSELoss with target weights, a checkpoint per epoch in the official container.
With a frozen backbone only the refined heatmaps are supervised (official); with a trainable
backbone (no COCO HRNet to start from) the rough current-frame heatmaps are supervised too, as
the official code does when ``FREEZE_HRNET_WEIGHTS`` is false.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from dcpose_trt.errors import CheckpointError, InputError
from dcpose_trt.model import (
    build_dcpose,
    deform_conv2d_gridsample,
    load_model,
    read_checkpoint,
    save_checkpoint,
    use_deform_conv,
)
from dcpose_trt.model.checkpoint import BACKBONE_PREFIX
from dcpose_trt.model.presets import BUNDLED_PRESET
from dcpose_trt.train.dataset import AugmentConfig, PoseTrackTrainSet, training_samples
from dcpose_trt.train.targets import joint_mse_loss

log = logging.getLogger(__name__)

# Heatmap Gaussian sigma per preset: the official 3 cells at 96×72, scaled with the heatmap size.
SIGMA = {"w48-384x288": 3.0, "w32-256x192": 2.0, "tiny-128x96": 1.5}


@dataclass(frozen=True)
class TrainConfig:
    """Defaults are the official PoseTrack17 recipe (LR 1e-3, milestones 4/8/12/16, γ 0.1, 20 epochs), on the
    bundled model's preset (``tiny-128x96``, like every other verb; the paper's model is ``--preset w48-384x288``)."""

    data: Path
    out: Path
    preset: str = BUNDLED_PRESET
    split: str = "train"
    init: Path | None = None
    freeze_backbone: bool = False
    single_frame: bool = False
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    milestones: tuple[int, ...] = (4, 8, 12, 16)
    gamma: float = 0.1
    workers: int = 2
    seed: int = 8888
    resume: bool = False
    max_steps: int | None = None  # per epoch; for smoke tests
    augment: bool = True

    def __post_init__(self) -> None:
        if self.single_frame and self.freeze_backbone:
            raise InputError("--single-frame trains the backbone; it cannot be combined with --freeze-backbone")


def latest_checkpoint(out: Path) -> tuple[Path, int] | None:
    best = None
    for p in out.glob("epoch_*_state.pth"):
        m = re.fullmatch(r"epoch_(\d+)_state\.pth", p.name)
        if m and (best is None or int(m.group(1)) > best[1]):
            best = (p, int(m.group(1)))
    return best


def train(cfg: TrainConfig, progress: bool = True) -> Path:
    """Train DCPose (or the single-frame baseline) and return the path of the final checkpoint.

    Writes ``epoch_{N}_state.pth`` after every epoch N (0-based, official naming) and ``final.pth``.
    """
    out = Path(cfg.out)
    resume_from = latest_checkpoint(out) if cfg.resume else None
    if cfg.resume and resume_from is None:
        raise CheckpointError(f"--resume: no epoch_N_state.pth in {out}")
    torch.manual_seed(cfg.seed)
    # Each checkpoint is read once: its weights, optimizer state and counters come from one Checkpoint.
    # Resuming overwrites every weight, so --init is not read then.
    source = resume_from[0] if resume_from else cfg.init
    ckpt = read_checkpoint(source) if source is not None else None
    model = load_model(ckpt, cfg.preset) if ckpt is not None else build_dcpose(cfg.preset)
    if ckpt is not None and not resume_from:
        log.info("initialised from %s (%s)", ckpt.path, ckpt.format)
    backbone_params = [p for k, p in model.named_parameters() if k.startswith(BACKBONE_PREFIX)]
    head_params = [p for k, p in model.named_parameters() if not k.startswith(BACKBONE_PREFIX)]
    if cfg.freeze_backbone:
        for p in backbone_params:
            p.requires_grad_(False)
    params = backbone_params if cfg.single_frame else [p for p in model.parameters() if p.requires_grad]
    if cfg.single_frame:
        for p in head_params:
            p.requires_grad_(False)
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    # The official trainer calls ``lr_scheduler.step(epoch)`` *after* epoch ``epoch``, so the LR drops one
    # epoch later than the milestones say (epochs 0-4 at 1e-3 for milestone 4): shift them by one.
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [m + 1 for m in cfg.milestones], cfg.gamma)

    out.mkdir(parents=True, exist_ok=True)
    begin_epoch, global_steps = 0, 0
    if resume_from is not None and ckpt is not None:
        if ckpt.optimizer:
            optimizer.load_state_dict(ckpt.optimizer)
        begin_epoch = int(ckpt.meta["begin_epoch"]) + 1
        global_steps = int(ckpt.meta.get("tensorboard_global_steps", 0))
        # The saved optimizer already carries the LR of the next epoch; align the scheduler's clock.
        scheduler.last_epoch = begin_epoch
        log.info("resumed from %s at epoch %d", ckpt.path, begin_epoch)

    from dcpose_trt.model.presets import get_preset

    preset = get_preset(cfg.preset)
    samples = training_samples(cfg.data, cfg.split)
    dataset = PoseTrackTrainSet(samples, preset, SIGMA.get(cfg.preset, 2.0),
                                AugmentConfig(enabled=cfg.augment), seed=cfg.seed)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, num_workers=cfg.workers,
                        drop_last=len(dataset) > cfg.batch_size, persistent_workers=False,
                        generator=torch.Generator().manual_seed(cfg.seed))
    extra = {"preset": cfg.preset, "single_frame": cfg.single_frame}
    # Train through the GridSample DCN: numerically the same op as torchvision's (tested to 1e-5) but
    # its CPU backward is several times faster than torchvision's deform_conv2d backward.
    with use_deform_conv(model, deform_conv2d_gridsample):
        global_steps = _run_epochs(cfg, model, optimizer, scheduler, loader, dataset, out, begin_epoch,
                                   global_steps, extra, progress)
    final = out / "final.pth"
    save_checkpoint(model.eval(), final, epoch=cfg.epochs - 1, global_steps=global_steps, extra=extra)
    return final


def _run_epochs(cfg, model, optimizer, scheduler, loader, dataset, out, begin_epoch, global_steps, extra,
                progress) -> int:
    from tqdm import tqdm

    for epoch in range(begin_epoch, cfg.epochs):
        dataset.epoch = epoch
        model.train()  # official: BN in train mode even when the backbone is frozen
        steps = len(loader) if cfg.max_steps is None else min(len(loader), cfg.max_steps)
        bar = tqdm(total=steps, desc=f"epoch {epoch}/{cfg.epochs - 1}", disable=None if progress else True, unit="step")
        t0, seen, run_loss = time.perf_counter(), 0, 0.0
        for step, batch in enumerate(loader):
            if step >= steps:
                break
            frames, margin = batch["frames"], batch["margin"]
            target, weight = batch["target"], batch["target_weight"]
            if cfg.single_frame:
                loss = joint_mse_loss(model.backbone(frames[:, :3]), target, weight)
            else:
                refined, rough = model.forward_with_rough(frames, margin)
                loss = joint_mse_loss(refined, target, weight)
                if not cfg.freeze_backbone:
                    loss = loss + joint_mse_loss(rough[: frames.shape[0]], target, weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            global_steps += 1
            seen += frames.shape[0]
            run_loss = loss.item() if step == 0 else 0.9 * run_loss + 0.1 * loss.item()
            bar.set_postfix(loss=f"{run_loss:.3e}", samples_s=f"{seen / (time.perf_counter() - t0):.1f}",
                            lr=f"{optimizer.param_groups[0]['lr']:.1e}")
            bar.update(1)
        bar.close()
        scheduler.step()
        save_checkpoint(model, out / f"epoch_{epoch}_state.pth", epoch=epoch, optimizer=optimizer,
                        global_steps=global_steps, extra=extra)
        log.info("epoch %d: loss %.4e", epoch, run_loss)
    return global_steps
