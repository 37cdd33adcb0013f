# Two entry points: `make demo` and `make test`. Both install into .venv in this checkout.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: install demo test test-all lint clean gpu-check

$(STAMP): setup.py requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(if $(filter aarch64,$(shell uname -m)),--system-site-packages) $(VENV)  # Jetson: see apt's TensorRT
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

# The GPU acceptance run in two tiers (CUDA: kernels, AOT launch, CUDA graphs, pre/post, torch-CUDA runtime,
# w48 baseline; TensorRT: plans of every form and precision), results in benchmarks/results/<date>-<gpu>/ or
# --out. Without a GPU every step says it is skipped and why (exit 0). See docs/tensorrt_support.md.
gpu-check:  # installs nothing: the command a GPU machine without a package index runs (ARGS="--out DIR --tier cuda")
	PYTHONPATH=. python3 -m benchmarks.gpu_check $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
