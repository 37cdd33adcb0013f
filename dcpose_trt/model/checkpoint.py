"""Checkpoint loading and saving in the official DCPose container format.

Accepted inputs (timm-style ``checkpoint_filter_fn``: unwrap, rename, then load strictly):

- DCPose: ``{'state_dict': ...}`` (official ``epoch_N_state.pth`` / ``PoseTrack17_DCPose.pth``) or a raw
  state dict, with or without a ``module.`` prefix → the whole model.
- Official HRNet COCO (``pose_hrnet_w48_384x288.pth``: ``conv1.weight`` ... ``final_layer.bias``) and
  mmpose HRNet (``backbone.*`` + ``keypoint_head.final_layer``/``head.final_layer``) → the backbone only.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dcpose_trt.errors import CheckpointError

BACKBONE_PREFIX = "rough_pose_estimation_net."
_HRNET_ROOTS = ("conv1.", "bn1.", "conv2.", "bn2.", "layer1.", "transition", "stage", "final_layer.")


def _read(path: str | os.PathLike) -> Any:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    if p.stat().st_size == 0:
        raise CheckpointError(f"checkpoint is empty: {p}")
    with open(p, "rb") as fh:
        head = fh.read(4)
    # torch.save writes a zip archive (since 1.6) or, in older files, a pickle (protocol 2+: 0x80).
    is_zip, is_pickle = head == b"PK\x03\x04", head[:1] == b"\x80"
    if not (is_zip or is_pickle):
        raise CheckpointError(f"{p} is not a PyTorch checkpoint (neither a zip archive nor a pickle)")
    if is_zip and not zipfile.is_zipfile(p):
        raise CheckpointError(f"{p} is truncated or damaged (its zip archive has no central directory); "
                              "copy or download it again")
    try:
        # weights_only: a checkpoint is data; never execute pickled code from it.
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message is a paragraph about its weights_only default; name the object that was refused.
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(f"{p} holds Python objects besides tensors{what}, which are not loaded because "
                              "unpickling them could run code; save only the state dict") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        text = str(exc).strip()
        first = re.split(r"(?<=\.)\s", text.splitlines()[0])[0] if text else type(exc).__name__
        raise CheckpointError(f"{p} is not a readable PyTorch checkpoint: {first.rstrip('.')}") from None


def unwrap_state_dict(obj: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Return the state dict inside a container (``state_dict``/``model``/``module``), ``module.`` stripped."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "module"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{source} does not contain a state dict of tensors")
    out = {}
    for k, v in obj.items():
        k = k[len("module.") :] if k.startswith("module.") else k
        k = k[len("_orig_mod.") :] if k.startswith("_orig_mod.") else k
        out[k] = v
    return out


def detect_format(sd: Mapping[str, torch.Tensor]) -> str:
    """``"dcpose"``, ``"hrnet"`` (official COCO HRNet) or ``"mmpose"``."""
    keys = list(sd)
    if any(k.startswith(BACKBONE_PREFIX) for k in keys) or any(k.startswith("offsets_list.") for k in keys):
        return "dcpose"
    if any(k.startswith("backbone.") for k in keys):
        return "mmpose"
    if any(k.startswith(_HRNET_ROOTS) for k in keys):
        return "hrnet"
    return "unknown"


def _to_backbone_keys(sd: Mapping[str, torch.Tensor], fmt: str) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        if fmt == "mmpose":
            if k.startswith("backbone."):
                k = k[len("backbone.") :]
            else:
                k = re.sub(r"^(keypoint_head|head)\.final_layer\.", "final_layer.", k)
                if not k.startswith("final_layer."):
                    continue  # other heads' layers (e.g. deconvs) have no place in HRNet
        out[BACKBONE_PREFIX + k] = v
    return out


def _mismatch_message(
    source: str, missing: list[str], unexpected: list[str], shapes: list[str], what: str
) -> str:
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)):
        if items:
            head = ", ".join(items[:3]) + (f", ... (+{len(items) - 3})" if len(items) > 3 else "")
            parts.append(f"{len(items)} {label} keys: {head}")
    return f"{source} does not fit {what}: " + "; ".join(parts)


def load_state_dict_checked(
    model: nn.Module, sd: Mapping[str, torch.Tensor], source: str, *, backbone_only: bool = False,
    what: str = "the model",
) -> None:
    """``load_state_dict(strict=True)`` with one readable :class:`CheckpointError` on any mismatch."""
    target = model.state_dict()
    if backbone_only:
        target = {k: v for k, v in target.items() if k.startswith(BACKBONE_PREFIX)}
    missing = [k for k in target if k not in sd]
    if backbone_only:
        # Old checkpoints (PyTorch < 0.4.1) have no BN counters; they carry no information.
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in target]
    shapes = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(target[k].shape)}"
        for k in sd
        if k in target and tuple(sd[k].shape) != tuple(target[k].shape)
    ]
    if missing or unexpected or shapes:
        raise CheckpointError(_mismatch_message(source, missing, unexpected, shapes, what))
    model.load_state_dict(sd, strict=not backbone_only)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file read once: its state dict, detected format and dcpose-trt extra fields.

    Attributes:
        path: the file it was read from.
        state_dict: the unwrapped state dict (``module.``/``_orig_mod.`` prefixes stripped).
        format: ``"dcpose"`` (whole model) or ``"hrnet"``/``"mmpose"`` (backbone only).
        meta: the container's extra fields (``preset``, ``begin_epoch``, ``single_frame``...), ``{}`` if none.
        optimizer: the saved optimizer state (official container), ``{}`` if none.
    """

    path: Path
    state_dict: dict[str, torch.Tensor]
    format: str
    meta: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=dict)

    @property
    def preset(self) -> str | None:
        """The preset dcpose-trt recorded when saving, None for official and third-party checkpoints."""
        p = self.meta.get("preset")
        return p if isinstance(p, str) else None


def _meta_of(obj: Any) -> dict[str, Any]:
    if isinstance(obj, Mapping):
        skip = ("state_dict", "optimizer")
        return {k: v for k, v in obj.items() if k not in skip and not isinstance(v, torch.Tensor)}
    return {}


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a DCPose, official-HRNet or mmpose-HRNet checkpoint (once) without loading it into a model.

    Raises:
        CheckpointError: missing/unreadable file, not a state dict of tensors, or an unknown key layout.
    """
    source = str(path)
    obj = _read(path)
    sd = unwrap_state_dict(obj, source)
    fmt = detect_format(sd)
    if fmt == "unknown":
        raise CheckpointError(f"{source} is neither a DCPose nor an HRNet checkpoint (first key: {next(iter(sd))})")
    opt = obj.get("optimizer") if isinstance(obj, Mapping) else None
    return Checkpoint(Path(path), sd, fmt, _meta_of(obj), dict(opt) if isinstance(opt, Mapping) else {})


def load_checkpoint(model: nn.Module, path: str | os.PathLike | Checkpoint, *, what: str | None = None) -> str:
    """Load a DCPose, official-HRNet or mmpose-HRNet checkpoint into ``model``.

    Args:
        model: a :class:`~dcpose_trt.model.dcpose.DCPose`.
        path: the ``.pth`` file, or a :class:`Checkpoint` already read by :func:`read_checkpoint`.
        what: how to name the model in errors (defaults to its preset when known).

    Returns:
        The detected format: ``"dcpose"`` (whole model) or ``"hrnet"``/``"mmpose"`` (backbone only).

    Raises:
        CheckpointError: missing/unreadable file, not a state dict, or names/shapes that do not fit
            (the message lists the first few missing, unexpected and mis-shaped keys).
    """
    ckpt = path if isinstance(path, Checkpoint) else read_checkpoint(path)
    source = str(ckpt.path)
    what = what or f"preset {getattr(model, 'preset_name', '?')!r}"
    if ckpt.format == "dcpose":
        load_state_dict_checked(model, ckpt.state_dict, source, what=what)
    else:
        load_state_dict_checked(model, _to_backbone_keys(ckpt.state_dict, ckpt.format), source,
                                backbone_only=True, what=f"the backbone of {what}")
    return ckpt.format


def read_checkpoint_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The extra fields of a dcpose-trt container (``preset``, ``begin_epoch``...), ``{}`` if none."""
    return _meta_of(_read(path))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: never a half-written file."""
    from dcpose_trt._atomic import atomic_output

    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def save_checkpoint(
    model: nn.Module, path: str | os.PathLike, *, epoch: int = 0, optimizer: Any = None,
    global_steps: int = 0, extra: Mapping[str, Any] | None = None,
) -> None:
    """Save in the official container: ``{'begin_epoch', 'state_dict', 'optimizer', 'tensorboard_global_steps'}``.

    ``extra`` adds fields (dcpose-trt stores ``preset``); official loaders ignore them.
    """
    sd = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in model.state_dict().items()}
    obj: dict[str, Any] = {
        "begin_epoch": epoch,
        "state_dict": sd,
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "tensorboard_global_steps": global_steps,
    }
    obj.update(extra or {})
    atomic_torch_save(obj, path)


def _main(argv: list[str] | None = None) -> int:
    """``python -m dcpose_trt.model.checkpoint --half SRC DST``: a float16 copy of a checkpoint (weights only)."""
    import argparse

    ap = argparse.ArgumentParser(description=_main.__doc__)
    ap.add_argument("--half", action="store_true", help="store floating-point tensors as float16")
    ap.add_argument("src")
    ap.add_argument("dst")
    args = ap.parse_args(argv)
    obj = _read(args.src)
    meta = {k: v for k, v in obj.items() if k not in ("state_dict", "optimizer")} if isinstance(obj, Mapping) else {}
    sd = unwrap_state_dict(obj, args.src)
    if args.half:
        sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
    atomic_torch_save({**meta, "state_dict": sd, "optimizer": {}}, args.dst)
    print(f"{args.dst}: {Path(args.dst).stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
