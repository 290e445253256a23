# Thin wrapper over scripts/ and meson. Two commands matter on a fresh machine:
#   make demo   installs what is missing, builds, runs every program on its default config
#   make test   installs what is missing, builds, runs the test suite
BUILD ?= build
BUILD_CUDA ?= build-cuda
MESON_ARGS ?=

.PHONY: all deps build test demo bench cuda-deps cuda-build cuda-kernels man clean distclean

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

clean:
	rm -rf $(BUILD) $(BUILD_CUDA)

distclean: clean
	rm -rf .deps
