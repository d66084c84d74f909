# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edgest-installed
TARGETS := onnx executorch coreml cuda tensorrt tvm
DISTS  := -e . -e models $(foreach t,$(TARGETS),-e targets/$(t)) -e plugins/edgest-openvino

.PHONY: setup demo test test-slow bench clean aarch64-sysroot

setup: $(STAMP)

# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml models/pyproject.toml $(foreach t,$(TARGETS),targets/$(t)/pyproject.toml) plugins/edgest-openvino/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q $(DISTS) "torch==2.13.0" "pytest>=8" "jsonschema>=4" "av>=12"
	touch $(STAMP)

demo: setup
	$(BIN)/edgest compile --model squeezetime --target onnx --out runs/demo --force

test: setup
	$(BIN)/python -m pytest -q -m "not slow" tests plugins/edgest-openvino/tests

# full-size configs, tuning, and every tiny zoo variant on every CPU target (tens of minutes)
test-slow: setup
	$(BIN)/python -m pytest -q -m slow tests plugins/edgest-openvino/tests

bench: setup
	$(BIN)/python bench/squeezetime_eager_vs_onnx.py

# qemu-user + Debian arm64 python3.11 + aarch64 TVM wheels: lets the TVM target check aarch64 artifacts here
aarch64-sysroot:
	bash scripts/aarch64_sysroot.sh

clean:
	rm -rf runs edgest-out
