"""Serving many live camera streams from one Triton Inference Server (``dcpose-trt serve``).

:mod:`~dcpose_trt.serve.repository` writes the model repository, :mod:`~dcpose_trt.serve.server` runs
``tritonserver``, :mod:`~dcpose_trt.serve.client` is the camera side; :mod:`~dcpose_trt.serve.stream_model`
and :mod:`~dcpose_trt.serve.part_model` run inside the server. The wire protocol: :mod:`dcpose_trt.serve.protocol`.
"""
