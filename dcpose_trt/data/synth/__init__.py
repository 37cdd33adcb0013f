"""Synthetic pose videos in the PoseTrack18 layout, made so that temporal context pays off.

There are no pretrained DCPose weights where this project is developed, so it trains its own tiny
model on videos made here. Each video shows 1-4 articulated people (17 COCO-order joints, PoseTrack
semantics: ``head_bottom``/``head_top`` in the eye slots, ears never annotated) walking, waving or
dancing in front of a textured background, filmed by a panning, zooming camera. People cross and
occlude each other; static poles and signs, fast moving objects and one-frame "flash" occluders
hide joints; some frames get motion blur or defocus. Joints that are hidden but inside the frame
keep ``v=1`` (as in PoseTrack, where occluded joints are annotated and evaluated), so a joint that is
covered or smeared in frame t but clear in t-1 and t+1 is exactly where a temporal model can beat a
single-frame one. Joints outside the frame are written as ``(0, 0, 0)`` (PoseTrack's "not annotated").

Layout written under ``out`` (the same as PoseTrack18, plus a detections folder)::

    images/{train,val}/<video>/<frame:06d>.jpg
    annotations/{train,val}/<video>.json      # PoseTrack18 per-video schema
    detections/{train,val}.json               # COCO detection list, jittered like a real detector

Everything is a pure function of ``seed``: each video has its own generator seeded by
``(seed, video index)``, so output does not depend on the number of worker processes.

Rendering and writing are separate: :func:`render_video` yields :class:`SynthFrame` s (image,
annotation and detection dicts) in memory; :func:`write_video` / :func:`generate` write them (JPEG
frames here, the PoseTrack documents and detection files with the writers beside their readers in
:mod:`dcpose_trt.data.posetrack`), every file atomically.

Modules, bottom up: :mod:`.config` (what to make), :mod:`.texture` (textures, background, painting),
:mod:`.body` (people and their motion), :mod:`.draw_person` (a person into a frame), :mod:`.occluders`
(poles, movers, flashes, blur), :mod:`.render` (one video in memory, with its labels), :mod:`.write`
(files on disk). The CLI verb is in :mod:`dcpose_trt.data.cli`.
"""

from __future__ import annotations

from dcpose_trt.data.synth.config import Difficulty, SynthConfig, frame_image_id, split_of, video_name
from dcpose_trt.data.synth.render import SynthFrame, render_video
from dcpose_trt.data.synth.write import SynthSummary, generate, write_frame, write_video

__all__ = [
    "Difficulty",
    "SynthConfig",
    "SynthFrame",
    "SynthSummary",
    "frame_image_id",
    "generate",
    "render_video",
    "split_of",
    "video_name",
    "write_frame",
    "write_video",
]
