// Fuzz target: safetensors (tensor::SafeTensorsFile): the header parser and validation,
// then every tensor copied out (a LibTorch target: lib/tensor/safetensors.cpp compiled with
// clang and linked against the LibTorch shared libraries).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tensor/safetensors.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mlsys;
  const auto p = fuzz::write_input("model.safetensors", fuzz::begin(data, size));
  fuzz::expect_typed("SafeTensorsFile::open", [&] {
    const tensor::SafeTensorsFile f = tensor::SafeTensorsFile::open(p);
    for (const auto& name : f.names()) {
      const at::Tensor t = f.get(name);
      if (static_cast<uint64_t>(t.nbytes()) != f.info(name).nbytes()) {
        fuzz::finding("SafeTensorsFile::get", "the tensor's size differs from its byte range", name);
      }
    }
    (void)f.metadata();
  });
  return 0;
}
