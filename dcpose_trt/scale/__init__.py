"""Many videos at once: the video job (no Ray) and the Ray driver (``dcpose_trt.scale.distributed``).

Only :mod:`dcpose_trt.scale.jobs` is imported here; Ray is imported when a distributed run starts.
"""

from dcpose_trt.scale.jobs import (
    EstimatorConfig,
    JobOutput,
    PoseTrackJob,
    RunReport,
    VideoFileJob,
    posetrack_jobs,
    run_in_process,
    video_jobs,
)

__all__ = ["EstimatorConfig", "JobOutput", "PoseTrackJob", "RunReport", "VideoFileJob", "posetrack_jobs",
           "run_in_process", "video_jobs"]
