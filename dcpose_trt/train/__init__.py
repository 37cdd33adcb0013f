"""The official DCPose training recipe on PoseTrack-layout data (real or synthetic)."""

from dcpose_trt.train.loop import TrainConfig, train

__all__ = ["TrainConfig", "train"]
