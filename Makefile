# Two entry points: `make demo` and `make test`. Both install into .venv in this checkout.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
CONSTRAINTS := requirements/constraints.txt
# What each target installs (pip extras of setup.py):
#   run:  export to ONNX and the CPU backends `auto` chooses from (ONNX Runtime, OpenVINO): `make demo`, `make install`
#   test: everything the test suite exercises (adds Triton, TensorRT-RTX, Ray, the Triton server client, pycocotools,
#         matplotlib, pytest, ruff; on x86-64 also nvidia-pytriton for its tritonserver binary)
EXTRAS_RUN := onnx,openvino
EXTRAS_TEST := onnx,openvino,triton,bench,dev,eval,rtx,ray,serve
# Optional: an index to take torch/torchvision from first, e.g. PyTorch's CPU-only wheels on a machine without
# an NVIDIA GPU: make install TORCH_INDEX=https://download.pytorch.org/whl/cpu  (PyPI's Linux x86-64 torch is a
# CUDA build that pulls ~3.4 GB of NVIDIA libraries, GPU or not.)
TORCH_INDEX ?=
# Jetson (aarch64): TensorRT comes from JetPack's apt packages, which a plain venv cannot see.
VENV_FLAGS := $(if $(filter aarch64,$(shell uname -m)),--system-site-packages,)
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: install install-test demo test test-fast test-all lint clean gpu-check

# $(call pip_install,EXTRAS,WHAT,SIZE): say what is installed and how big, show pip's progress, then the time
# it took and the size of .venv.
define pip_install
	@echo "== installing dcpose-trt into $(VENV) with [$(1)]: $(2)"
	@echo "   about $(3) on disk, ~3 GB to download; about 2 min with a local wheel cache, longer over the"
	@echo "   internet. On Linux x86-64, PyPI's torch is a CUDA build: ~3.4 GB of NVIDIA CUDA libraries and ~0.9 GB"
	@echo "   of Triton come with it even without a GPU (see README, Install)."
	@test -x $(PY) || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	@start=$$(date +%s); \
	if [ -n "$(TORCH_INDEX)" ]; then \
		$(PIP) install -c $(CONSTRAINTS) --index-url "$(TORCH_INDEX)" torch torchvision || exit $$?; \
	fi; \
	$(PIP) install -c $(CONSTRAINTS) -e '.[$(1)]' || exit $$?; \
	echo "== installed in $$(( $$(date +%s) - start )) s; $(VENV) is $$(du -sh $(VENV) | cut -f1)"
endef

$(STAMP_RUN): setup.py $(CONSTRAINTS)
	$(call pip_install,$(EXTRAS_RUN),the package and its CPU runtime (PyTorch, ONNX Runtime and OpenVINO),6.2 GB)
	touch $@

$(STAMP_TEST): setup.py $(CONSTRAINTS)
	$(call pip_install,$(EXTRAS_TEST),everything the test suite needs,7 GB)
	@if [ "$$(uname -m)" = x86_64 ]; then \
		echo "== the tritonserver binary the serve tests start: nvidia-pytriton (~0.15 GB; --no-deps: it pins numpy<2)"; \
		$(PIP) install -c $(CONSTRAINTS) --no-deps nvidia-pytriton; \
	fi
	touch $@ $(STAMP_RUN)

install: $(STAMP_RUN)

install-test: $(STAMP_TEST)

demo: $(STAMP_RUN)
	$(PY) -m dcpose_trt.demo

# The CI suite (.ci/run): ruff + every test not marked slow; prints its total time.
test: $(STAMP_TEST)
	@start=$$(date +%s); \
	$(PY) -m ruff check . && $(PY) -m pytest -q -m "not slow"; rc=$$?; \
	echo "make test: ruff + pytest -m 'not slow' took $$(( $$(date +%s) - start )) s (exit $$rc)"; exit $$rc

# A developer's inner loop: also leaves out the tests marked heavy (one list in tests/conftest.py).
test-fast: $(STAMP_TEST)
	@start=$$(date +%s); \
	$(PY) -m ruff check . && $(PY) -m pytest -q -m "not slow and not heavy"; rc=$$?; \
	echo "make test-fast: ruff + pytest -m 'not slow and not heavy' took $$(( $$(date +%s) - start )) s (exit $$rc)"; \
	exit $$rc

test-all: $(STAMP_TEST)
	$(PY) -m pytest -q

# The GPU acceptance run in two tiers (CUDA: kernels, AOT launch, CUDA graphs, pre/post, torch-CUDA runtime,
# w48 baseline; TensorRT: plans of every form and precision), results in benchmarks/results/<date>-<gpu>/ or
# --out. Without a GPU every step says it is skipped and why (exit 0). See docs/tensorrt_support.md.
gpu-check:  # installs nothing: the command a GPU machine without a package index runs (ARGS="--out DIR --tier cuda")
	PYTHONPATH=. python3 -m benchmarks.gpu_check $(ARGS)

lint: $(STAMP_TEST)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
