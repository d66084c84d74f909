# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edgest-installed
TARGETS := onnx executorch coreml cuda tensorrt tvm litert coreai
# LiteRT's converter (targets/litert [convert]). litert-torch 0.10 -> litert-converter 0.5 -> xdsl==0.28.0, which
# pins typing-extensions<4.13, while apache-tvm-ffi (tvm) and cattrs (coremltools) need >=4.13/>=4.14: pip cannot
# resolve them together. xdsl works with 4.16 (litert-torch does not even import it to convert), so the three
# packages that carry the pin go in with --no-deps, after their other dependencies.
LITERT_NODEPS := "litert-torch==0.10.0" "litert-converter==0.5.0" "xdsl==0.28.0"
LITERT_DEPS := "ai-edge-litert==2.3.0" "ai-edge-quantizer==0.10.0" "absl-py==2.5.1" "scipy==1.17.1" "safetensors==0.8.0" \
	"multipledispatch==1.0.0" "transformers==5.24.0" "kagglehub==1.0.3" "tabulate==0.10.0" "torchao==0.18.0" "jax==0.10.2" \
	"jaxlib==0.10.2" "jaxtyping==0.3.11" "fire==0.7.1" "sentencepiece==0.2.3" "rich==15.0.0" "litert-lm-builder==0.18.1" \
	"pillow==13.0.0" "flatbuffers==25.12.19" "protobuf==7.36.2" "tqdm==4.70.1" "ml_dtypes==0.6.0" "lark==1.3.1" \
	"backports.strenum==1.2.8" "immutabledict==4.2.1" "ordered-set==4.1.0"
# Core AI (targets/coreai): coreai-core is a pre-release (1.0.0b3, pip sees it only with --pre), so all three are pinned
# exactly. coreai-core caps ml-dtypes at <=0.6.0, hence the 0.6.0 pin above (jax, onnx and tvm accept it).
COREAI := "coreai-core==1.0.0b3" "coreai-torch==0.4.3" "coreai-opt==0.4.0"
DISTS  := -e . -e models $(foreach t,$(TARGETS),-e targets/$(t)) -e plugins/edgest-openvino -e examples/target -e examples/pass -e examples/model

.PHONY: setup demo test test-slow bench clean aarch64-sysroot

setup: $(STAMP)

# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml models/pyproject.toml $(foreach t,$(TARGETS),targets/$(t)/pyproject.toml) plugins/edgest-openvino/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q $(DISTS) "torch==2.13.0" "pytest>=8" "pytest-xdist==3.8.0" "jsonschema>=4" "av>=12" "hypothesis>=6.100,<7" "nncf==3.4.0" "ray==2.60.0" "olive-ai==0.13.0"
	$(BIN)/python -m pip install -q $(LITERT_DEPS) "torch==2.13.0"
	$(BIN)/python -m pip install -q --no-deps $(LITERT_NODEPS)
	$(BIN)/python -m pip install -q --pre $(COREAI) "torch==2.13.0"
	touch $(STAMP)

demo: setup
	$(BIN)/edgest compile --model squeezetime --target onnx --out runs/demo --force

# test files run on TEST_JOBS processes (pytest-xdist, a file at a time: module fixtures are built once);
# timed checks still take turns (edgest.executors.timing), so latency figures do not overlap;
# the 25 slowest test phases are listed at the end, so a slow host's run says where its time went
TEST_JOBS ?= 2
test: setup
	$(BIN)/python -m pytest -q -m "not slow" -n $(TEST_JOBS) --dist loadfile --durations=25 tests plugins/edgest-openvino/tests examples

# full-size configs, tuning, and every tiny zoo variant on every CPU target (tens of minutes)
test-slow: setup
	$(BIN)/python -m pytest -q -m slow tests plugins/edgest-openvino/tests examples

bench: setup
	$(BIN)/python bench/squeezetime_eager_vs_onnx.py

# qemu-user + Debian arm64 python3.11 + aarch64 TVM wheels: lets the TVM target check aarch64 artifacts here
aarch64-sysroot:
	bash scripts/aarch64_sysroot.sh

clean:
	rm -rf runs edgest-out
