# Two entry points: `make demo` and `make test`. Both install into .venv in this checkout.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: install demo test test-all lint clean gpu-check

$(STAMP): setup.py requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --disable-pip-version-check -q -c requirements/constraints.txt -e '.[onnx,triton,bench,dev,eval,rtx,ray,openvino]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m dcpose_trt.demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -m "not slow"

test-all: $(STAMP)
	$(PY) -m pytest -q

# On a machine with an NVIDIA GPU: pytest -m gpu, the AOT PTX launched with TensorRT's exact argument list,
# the deformable-conv kernel benchmark and the torch-CUDA runtime on the real clip, written to
# benchmarks/results/<date>-<gpu>/. Without a GPU every step says it is skipped and why (exit 0).
gpu-check: $(STAMP)
	$(PY) -m dcpose_trt.cli bench gpu-check

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
