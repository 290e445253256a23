// The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes
// of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
// then the data buffer. The reader maps the file and validates the whole header before it
// touches any data; the writer lays tensors out as the Python library does, byte for byte.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mlsys::tensor {

// One tensor as the header describes it (already validated).
struct TensorInfo {
  std::string name;
  std::string dtype;                          // the file's code: "F32", "BF16", "BOOL", ...
  at::ScalarType scalar_type = at::kFloat;    // the same as a LibTorch dtype
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte range [begin, end) in the data buffer (which starts after
  uint64_t end = 0;    // the header, at byte 8 + N of the file)
  [[nodiscard]] int64_t numel() const;
  [[nodiscard]] uint64_t nbytes() const { return end - begin; }
};

class SafeTensorsFile {
 public:
  // Maps `path` read-only and validates its header: core::InputError naming the file (and
  // the tensor, when one is at fault) with what was expected and what was found, for a file
  // shorter than 8 bytes, a header length beyond the file or above 100 MB, a header that is
  // not a JSON object, an unknown dtype (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8
  // BOOL), a bad shape, offsets out of order, outside the buffer or not matching the
  // shape, and overlapping tensors. Gaps between tensors and trailing bytes are tolerated
  // (Python's reader refuses them; no valid file has them).
  static SafeTensorsFile open(const std::filesystem::path& path);

  SafeTensorsFile(SafeTensorsFile&&) noexcept;
  SafeTensorsFile& operator=(SafeTensorsFile&&) noexcept;
  ~SafeTensorsFile();

  [[nodiscard]] const std::filesystem::path& path() const;
  // Tensor names in the order of their data in the file.
  [[nodiscard]] const std::vector<std::string>& names() const;
  [[nodiscard]] bool contains(const std::string& name) const;
  // core::InputError "<file>: tensor 'x' not found" for a name the file does not hold.
  [[nodiscard]] const TensorInfo& info(const std::string& name) const;
  // A CPU tensor that owns a copy of the data (the file may be closed afterwards).
  [[nodiscard]] at::Tensor get(const std::string& name) const;
  // The "__metadata__" entries (empty when the file has none).
  [[nodiscard]] const std::map<std::string, std::string>& metadata() const;

 private:
  struct Impl;
  explicit SafeTensorsFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Loads the tensors `names` (all of them when `names` is empty) from `path`;
// core::InputError "<file>: tensor 'x' not found" for a missing one.
[[nodiscard]] std::map<std::string, at::Tensor> load_safetensors(const std::filesystem::path& path,
                                                                 const std::vector<std::string>& names = {});

// The file's code of a LibTorch dtype ("F32", "I32", ...); c10's name for one safetensors
// cannot hold.
[[nodiscard]] std::string dtype_code(at::ScalarType type);

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Writes the safetensors bytes of `tensors` to `out`, laid out as Python's safetensors
// does: sorted by dtype alignment (largest first) then name, compact JSON, "__metadata__"
// first (omitted when `metadata` is empty), the header padded with spaces to a multiple of
// 8. Tensors may be on any device and non-contiguous (a contiguous CPU copy is written).
// core::RuntimeFailure for a duplicate or reserved name, an unsupported dtype or a name
// that is not UTF-8.
void write_safetensors(std::ostream& out, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {});
// The same into memory.
[[nodiscard]] std::string safetensors_bytes(const NamedTensors& tensors,
                                            const std::map<std::string, std::string>& metadata = {});
// The same to a file, atomically (core::AtomicFile): a failure leaves any old file intact.
void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace mlsys::tensor
