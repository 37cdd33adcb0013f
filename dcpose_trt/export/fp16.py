"""FP16 ONNX from an FP32 export, with ONNX Runtime's ``float16.convert_float_to_float16``.

Weights and activations become FP16; network I/O, the margin normalisation and the deformable sampling
path (DCN node, GridSample grid arithmetic and the offset convs that produce the sampling coordinates)
stay FP32, with Casts at the borders (the regions are :mod:`dcpose_trt.export.qdq`'s graph walks).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from dcpose_trt._deps import require
from dcpose_trt.export.qdq import dcn_coordinate_nodes, margin_nodes

log = logging.getLogger(__name__)


def to_fp16(model: Any) -> Any:
    """FP16 copy of an FP32 model; I/O, margin normalisation and DCN coordinates stay FP32."""
    # ONNX Runtime's maintained copy of onnxconverter-common's converter (same API); the standalone
    # package's 1.16 release writes Casts with stale types around Resize, which ORT refuses to load.
    fp16 = require("onnxruntime.transformers.float16", "onnx", "FP16 conversion")
    block = sorted({*dcn_coordinate_nodes(model), *margin_nodes(model)})
    log.info("FP16: keeping %d nodes in FP32 (DCN sampling path, margin normalisation)", len(block))
    with warnings.catch_warnings():
        # Weights below FP16's range are flushed to ±1e-7 with one warning each; that is expected.
        warnings.simplefilter("ignore", UserWarning)
        return fp16.convert_float_to_float16(model, keep_io_types=True, node_block_list=block,
                                             disable_shape_infer=False)
