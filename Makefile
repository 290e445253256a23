# Thin wrapper over scripts/ and meson. Two commands matter on a fresh machine:
#   make demo   installs what is missing, builds, runs every program on its default config
#   make test   installs what is missing, builds, runs the test suite
BUILD ?= build
BUILD_CUDA ?= build-cuda
BUILD_FUZZ ?= build-fuzz
BUILD_ASAN ?= build-asan
FUZZ_TIME ?= 60
MESON_ARGS ?=

.PHONY: all deps build test demo bench cuda-deps cuda-build cuda-kernels man clean distclean \
	fuzz-deps fuzz check-fuzz test-asan

all: build

deps:
	@scripts/install-deps --quiet

$(BUILD)/build.ninja:
	@scripts/install-deps --quiet
	meson setup $(BUILD) $(MESON_ARGS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

test: build
	meson test -C $(BUILD) --print-errorlogs

demo: build
	@scripts/demo $(BUILD)

bench: build
	@scripts/bench $(BUILD)

# CUDA: LibTorch's CUDA libraries, then the whole build with nvcc (needs no GPU to compile).
cuda-deps:
	@scripts/install-deps --quiet --cuda

$(BUILD_CUDA)/build.ninja:
	@scripts/install-deps --quiet --cuda
	meson setup $(BUILD_CUDA) -Dcuda=enabled $(MESON_ARGS)

cuda-build: cuda-deps $(BUILD_CUDA)/build.ninja
	ninja -C $(BUILD_CUDA)

# Only the nvcc-compiled kernel library: what CI checks on a machine without a GPU.
cuda-kernels: cuda-deps $(BUILD_CUDA)/build.ninja
	ninja -C $(BUILD_CUDA) kernels/libmlsys_kernels_cuda.a

# libFuzzer targets (tests/fuzz/README.md): clang 14 with ASan+UBSan; check-fuzz runs each
# target FUZZ_TIME seconds on its seed corpus and fails on any crash, hang, leak or OOM.
fuzz-deps:
	@scripts/install-deps --quiet --fuzz

$(BUILD_FUZZ)/build.ninja:
	@scripts/install-deps --quiet --fuzz
	CC=clang-14 CXX=clang++-14 meson setup $(BUILD_FUZZ) -Dfuzz=true -Db_sanitize=address,undefined \
	  -Db_lundef=false -Dbuildtype=debugoptimized -Doptimization=1 $(MESON_ARGS)

fuzz: fuzz-deps $(BUILD_FUZZ)/build.ninja
	ninja -C $(BUILD_FUZZ) fuzz

check-fuzz: fuzz
	scripts/run-fuzz --build $(BUILD_FUZZ) --time $(FUZZ_TIME)

# AddressSanitizer + UndefinedBehaviorSanitizer (tests/asan/README.md): the torch-free
# modules (core, graph, plan, stream), gnnflow-stream, dynapipe-plan built torch-free (-Ddynapipe_exec=false: without
# its LibTorch subcommands profile and run) and their test suites. Any report fails the run.
ASAN_TARGETS = tests/support/test_harness tests/core/test_core tests/graph/test_graph \
	tests/plan/test_plan tools/dynapipe-plan/dynapipe-plan \
	tests/graph/test_block_store tests/stream/test_gnnflow_cli tools/gnnflow-stream/gnnflow-stream
ASAN_SUITES = harness core graph plan block_store gnnflow_stream

$(BUILD_ASAN)/build.ninja:
	@scripts/install-deps --quiet
	meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined -Db_lundef=false -Ddynapipe_exec=false $(MESON_ARGS)

test-asan: deps $(BUILD_ASAN)/build.ninja
	meson configure $(BUILD_ASAN) -Ddynapipe_exec=false
	ninja -C $(BUILD_ASAN) $(ASAN_TARGETS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  meson test -C $(BUILD_ASAN) --no-rebuild --print-errorlogs $(ASAN_SUITES)

clean:
	rm -rf $(BUILD) $(BUILD_CUDA) $(BUILD_FUZZ) $(BUILD_ASAN)

distclean: clean
	rm -rf .deps
