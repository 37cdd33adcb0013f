"""Build a DCPose for a preset, or load one from a checkpoint: the one loader every stage uses.

``load_model`` decides the preset in one place:

============================  =============================================================================
checkpoint, preset            model
============================  =============================================================================
file, None                    the preset the file records (dcpose-trt checkpoints), else ``w48-384x288``
                              (official DCPose and COCO HRNet checkpoints are the W48 model)
file, name                    ``name``; a file that records another preset raises :class:`CheckpointError`
None, None                    the bundled tiny model (``dcpose_trt/assets/dcpose_tiny.pth``)
None, ``tiny-128x96``         the bundled tiny model as well
None, another name            that preset's random initialisation (logged as a warning)
============================  =============================================================================

An install without the bundled checkpoint falls back to the random initialisation of ``tiny-128x96``
(with a warning) rather than failing: timings and exports do not depend on the weights; callers that
need trained weights (``dcpose-trt run``) check :func:`~dcpose_trt.model.presets.bundled_model_path`
first.
"""

from __future__ import annotations

import logging
import os

from dcpose_trt.errors import CheckpointError
from dcpose_trt.model.checkpoint import Checkpoint, load_checkpoint, read_checkpoint
from dcpose_trt.model.dcpose import DCPose
from dcpose_trt.model.presets import BUNDLED_PRESET, DEFAULT_PRESET, bundled_model_path, get_preset

log = logging.getLogger(__name__)


def build_dcpose(preset: str = DEFAULT_PRESET) -> DCPose:
    """Build DCPose for a preset (``w48-384x288`` official, ``w32-256x192`` edge, ``tiny-128x96`` CPU).

    The model is in eval mode with the official initialisation (no weights loaded); see
    :func:`load_model`. ``model.preset`` holds the :class:`Preset` (input size, normalisation).
    """
    p = get_preset(preset)
    model = DCPose(p.hrnet)
    model.preset = p
    model.preset_name = p.name
    return model.eval()


def checkpoint_preset(ckpt: Checkpoint, preset: str | None = None) -> str:
    """The preset to build for ``ckpt``: the one it records, else ``preset``, else ``w48-384x288``.

    Raises:
        CheckpointError: ``preset`` is given and the checkpoint records a different one.
    """
    if ckpt.preset is not None and preset is not None and ckpt.preset != preset:
        raise CheckpointError(f"{ckpt.path} holds a {ckpt.preset} model, not {preset}; "
                              f"drop the preset or pass --preset {ckpt.preset}")
    # Official checkpoints carry no preset: they are the W48 model.
    return ckpt.preset or preset or DEFAULT_PRESET


def load_model(checkpoint: str | os.PathLike | Checkpoint | None = None, preset: str | None = None) -> DCPose:
    """The DCPose for ``checkpoint`` and/or ``preset``, in eval mode (see the module docstring's table).

    Args:
        checkpoint: a ``.pth`` file (DCPose, official HRNet or mmpose HRNet: the last two fill the
            backbone only), a :class:`Checkpoint` already read with :func:`read_checkpoint` (callers
            that also need its optimizer state or extra fields read the file once that way), or None.
        preset: the preset name, for checkpoints that record none, or to build without a checkpoint.

    Raises:
        CheckpointError: unreadable file, weights that do not fit, or a preset that contradicts the file.
        InputError: unknown preset name.
    """
    if checkpoint is not None:
        ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else read_checkpoint(checkpoint)
        model = build_dcpose(checkpoint_preset(ckpt, preset))
        load_checkpoint(model, ckpt)
        return model.eval()
    bundled = bundled_model_path()
    if preset in (None, BUNDLED_PRESET) and bundled is not None:
        return load_model(bundled, None)
    preset = preset or BUNDLED_PRESET
    get_preset(preset)  # an unknown name is a one-line InputError before any warning about random weights
    why = "no checkpoint given" if bundled is not None else "this install has no bundled model"
    log.warning("%s: using the random initialisation of preset %s (heatmaps are meaningless)", why, preset)
    return build_dcpose(preset)
