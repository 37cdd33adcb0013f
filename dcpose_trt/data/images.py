"""Reading one image file the way every frame reader does (:func:`read_image`): an unreadable file is None."""

from __future__ import annotations

import os

import cv2
import numpy as np


def read_image(path: str | os.PathLike, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    """The image at ``path`` (``cv2.imread`` with ``flags``), or None when it cannot be read: missing, not an
    image, or a header claiming more pixels than OpenCV decodes (``CV_IO_MAX_IMAGE_PIXELS``, 2**30; OpenCV
    raises there instead of returning None)."""
    try:
        return cv2.imread(str(path), flags)
    except cv2.error:
        return None
