"""Data: boxes and crops, frame windows, PoseTrack IO, synthetic videos (``dcpose_trt.data.synth``)."""

from dcpose_trt.data.posetrack import (
    Frame,
    Person,
    PoseTrackIndex,
    Video,
    frame_path,
    load_split,
    load_video,
    read_boxes_file,
)

__all__ = [
    "Frame",
    "Person",
    "PoseTrackIndex",
    "Video",
    "frame_path",
    "load_split",
    "load_video",
    "read_boxes_file",
]
