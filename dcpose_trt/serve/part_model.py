"""The backbone or the head as a Triton Python-backend model running one of our CPU backends (``--target
cpu``). On ``--target tensorrt`` the same two models are ``tensorrt_plan`` models with the same names and
tensors, so the stream model cannot tell them apart.

Triton's dynamic batcher hands :meth:`PartModel.execute` the requests it gathered (BLS calls of several
streams); they run as one batch (rows concatenated) and each gets its own rows back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dcpose_trt.serve.bls import pb_array, pb_tensor
from dcpose_trt.serve.stream_model import parameters


class PartModel:
    """Parameters: ``part`` (``backbone`` | ``head``), ``backend`` (a registry name), the split model's files
    beside this model (``backbone.onnx`` + ``head.onnx`` in the version folder)."""

    def __init__(self, args: dict[str, str]):
        import triton_python_backend_utils as pb_utils

        from dcpose_trt.runtime.backends.base import SplitBackend
        from dcpose_trt.runtime.backends.opener import open_backend

        self.pb = pb_utils
        cfg = json.loads(args["model_config"])
        p = parameters(cfg)
        self.part = p["part"]
        folder = Path(args["model_repository"]) / args["model_version"]
        backend = open_backend(folder, p["backend"], progress=False, mode="cached")
        assert isinstance(backend, SplitBackend), type(backend)
        self.backend = backend
        self.inputs = [i["name"] for i in cfg["input"]]
        self.output = cfg["output"][0]["name"]

    def execute(self, requests: list[Any]) -> list[Any]:
        arrays = [[pb_array(self.pb.get_input_tensor_by_name(r, n)) for n in self.inputs] for r in requests]
        rows = [a[0].shape[0] for a in arrays]
        try:
            batch = [np.concatenate([a[i] for a in arrays]) for i in range(len(self.inputs))]
            out = self.backend.backbone(*batch) if self.part == "backbone" else self.backend.head(*batch)
        except Exception as exc:  # noqa: BLE001 - the callers get the error, the model keeps serving
            err = self.pb.TritonError(f"{self.part}: {type(exc).__name__}: {exc}")
            return [self.pb.InferenceResponse(error=err) for _ in requests]
        responses, s = [], 0
        for n in rows:
            responses.append(self.pb.InferenceResponse([pb_tensor(self.pb, self.output, out[s : s + n])]))
            s += n
        return responses

    def finalize(self) -> None:
        self.backend.close()
