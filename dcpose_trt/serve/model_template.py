"""Triton Python-backend entry point of every dcpose-trt model in a served repository (copied as
``<model>/1/model.py`` by ``dcpose-trt serve export``).

The backend stub is a fresh interpreter that does not inherit ``PYTHONPATH``, and the backend's own
``triton_python_backend_utils`` imports numpy: so before anything else this file puts the directories of
the config's ``python_path`` parameter on ``sys.path`` (read from ``config.pbtxt`` beside it, since the
parsed config reaches the model only in ``initialize``), then hands every call to the class named by the
``entry`` parameter (``module:Class``).
"""

import os
import re
import sys
from pathlib import Path


def _parameter(text, key):
    m = re.search(r'key:\s*"' + re.escape(key) + r'"\s*value:\s*\{\s*string_value:\s*"([^"]*)"', text)
    return m.group(1) if m else ""


# In the package itself (not copied into a repository) there is no config beside it: nothing to set up.
_FILE = Path(__file__).resolve().parents[1] / "config.pbtxt"
_CONFIG = _FILE.read_text() if _FILE.is_file() else ""
for _p in reversed([p for p in _parameter(_CONFIG, "python_path").split(os.pathsep) if p]):
    if _p not in sys.path:
        sys.path.insert(0, _p)


class TritonPythonModel:
    """Delegates to ``entry`` (e.g. ``dcpose_trt.serve.stream_model:StreamModel``)."""

    def initialize(self, args):
        import importlib

        module, cls = _parameter(_CONFIG, "entry").split(":")
        self._impl = getattr(importlib.import_module(module), cls)(args)

    def execute(self, requests):
        return self._impl.execute(requests)

    def finalize(self):
        self._impl.finalize()
