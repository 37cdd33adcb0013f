"""Runtime tests run the Triton crop/decode kernels in Triton's CPU interpreter when there is no GPU.

``TRITON_INTERPRET`` is read when a ``@triton.jit`` kernel is defined, so it is set here, at collection
time, before any test imports :mod:`dcpose_trt.runtime.gpu_kernels`.
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
