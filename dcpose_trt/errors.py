"""One exception family for everything a user can get wrong or a machine can lack.

The CLI turns any :class:`DcposeTrtError` into a one-line message and exit code 2; every other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class DcposeTrtError(Exception):
    """Base of every error dcpose-trt raises on purpose (bad input, missing dependency, ...)."""


class MissingDependencyError(DcposeTrtError):
    """An optional package is not installed; the message names the pip extra."""


class CheckpointError(DcposeTrtError):
    """A checkpoint is missing, unreadable, or does not fit the model."""


class InputError(DcposeTrtError):
    """Bad frames, boxes, paths or arguments given by the user."""


class DataError(DcposeTrtError):
    """A dataset, annotation or detection file is malformed."""


class ExportError(DcposeTrtError):
    """ONNX export or post-processing failed."""


class QuantizeError(DcposeTrtError):
    """FP16/INT8 conversion or calibration failed."""


class EngineBuildError(DcposeTrtError):
    """TensorRT / TensorRT-RTX could not parse or build a network."""


class PlanMismatchError(DcposeTrtError):
    """A plan was built for another TensorRT, GPU, ONNX or preset."""


class PluginError(DcposeTrtError):
    """The deformable-convolution plugin cannot be compiled, registered or run."""


class CudaError(DcposeTrtError):
    """A CUDA driver/runtime call returned an error."""
