"""Issue 23 finding 4: ``export`` on JetPack 6's torch 2.5 fails on ``custom_translation_table=`` /
``optimize=``; the export now says so in one line (and where to export) instead of a TypeError."""

from __future__ import annotations

import inspect

import pytest
import torch

from dcpose_trt.errors import ExportError
from dcpose_trt.export import torch_compat

# torch 2.5's torch.onnx.export keywords (pytorch.org/docs/2.5/_modules/torch/onnx.html).
TORCH_2_5 = ("model", "args", "f", "kwargs", "export_params", "verbose", "input_names", "output_names",
             "opset_version", "dynamic_axes", "keep_initializers_as_inputs", "dynamo", "external_data",
             "dynamic_shapes", "report", "verify", "profile", "dump_exported_program", "artifacts_dir", "fallback",
             "training", "operator_export_type", "do_constant_folding", "custom_opsets",
             "export_modules_as_functions", "autograd_inlining")


def test_torch_2_5_lacks_both_keywords():
    assert torch_compat.missing_export_options(TORCH_2_5) == ["custom_translation_table", "optimize"]


def test_this_torch_has_them():
    assert torch_compat.missing_export_options(inspect.signature(torch.onnx.export).parameters) == []
    torch_compat.require_export_options()


def test_old_torch_is_one_line(monkeypatch):
    def export_2_5(model, args=(), f=None, *, dynamo=False, external_data=True):  # the shape of 2.5's signature
        raise AssertionError("not called")

    monkeypatch.setattr(torch.onnx, "export", export_2_5)
    with pytest.raises(ExportError, match=r"needs torch >= 2\.6.*export on an x86 machine") as exc:
        torch_compat.require_export_options()
    assert "\n" not in str(exc.value)
