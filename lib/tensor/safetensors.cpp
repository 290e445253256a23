#include "tensor/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/json.hpp"

namespace mlsys::tensor {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; this reader copies it as is");

namespace {

using Json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the Python library's limit too

struct DtypeCode {
  std::string_view code;
  at::ScalarType type;
  uint64_t itemsize;
  int layout_rank;  // the Python library's Dtype enum order: larger comes first in the file
};

// The rank follows the declaration order of safetensors' Rust `Dtype` enum, which its
// writer sorts by (descending) before the name; checked against safetensors 0.8.
constexpr DtypeCode kDtypes[] = {
    {"BOOL", at::kBool, 1, 0},  {"U8", at::kByte, 1, 1},  {"I8", at::kChar, 1, 2},
    {"I16", at::kShort, 2, 3},  {"F16", at::kHalf, 2, 4}, {"BF16", at::kBFloat16, 2, 5},
    {"I32", at::kInt, 4, 6},    {"F32", at::kFloat, 4, 7}, {"F64", at::kDouble, 8, 8},
    {"I64", at::kLong, 8, 9},
};

const DtypeCode* dtype_by_code(std::string_view code) {
  for (const auto& d : kDtypes) {
    if (d.code == code) return &d;
  }
  return nullptr;
}

const DtypeCode* dtype_by_type(at::ScalarType t) {
  for (const auto& d : kDtypes) {
    if (d.type == t) return &d;
  }
  return nullptr;
}

// Bounded, non-recursive: a hostile header may nest a million levels deep.
std::string type_name(const Json& v) { return core::describe_json(v); }

// A read-only mapping of a whole file.
class Mapping {
 public:
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }

  void map(const std::filesystem::path& path) {
    // O_NONBLOCK: opening a FIFO must not hang; the regular-file check below refuses it.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) throw core::InputError(path.string() + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      throw core::InputError(path.string() + ": cannot stat: " + std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      throw core::InputError(path.string() + ": expected a regular file, found something else (a directory?)");
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        throw core::InputError(path.string() + ": cannot map: " + std::strerror(err));
      }
      data_ = p;
    }
    ::close(fd);
  }

  [[nodiscard]] const unsigned char* bytes() const { return static_cast<const unsigned char*>(data_); }
  [[nodiscard]] uint64_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated at open: cannot overflow
  return n;
}

struct SafeTensorsFile::Impl {
  std::filesystem::path path;
  Mapping mapping;
  uint64_t data_start = 0;  // 8 + N
  std::vector<TensorInfo> tensors;  // in data order
  std::vector<std::string> names;
  std::unordered_map<std::string, size_t> index;
  std::map<std::string, std::string> metadata;

  [[nodiscard]] std::string where() const { return path.string(); }
  [[noreturn]] void fail(const std::string& what) const { throw core::InputError(where() + ": " + what); }
  [[noreturn]] void fail_tensor(const std::string& name, const std::string& what) const {
    throw core::InputError(where() + ": tensor '" + name + "': " + what);
  }

  void parse();
  TensorInfo parse_entry(const std::string& name, const Json& entry, uint64_t buffer_size) const;
};

TensorInfo SafeTensorsFile::Impl::parse_entry(const std::string& name, const Json& entry,
                                              uint64_t buffer_size) const {
  if (!entry.is_object()) fail_tensor(name, "expected an object {dtype, shape, data_offsets}, found " + type_name(entry));
  TensorInfo info;
  info.name = name;

  const auto dt = entry.find("dtype");
  if (dt == entry.end()) fail_tensor(name, "expected a \"dtype\" field, found none");
  if (!dt->is_string()) fail_tensor(name, "expected \"dtype\" to be a string, found " + type_name(*dt));
  info.dtype = dt->get<std::string>();
  const DtypeCode* code = dtype_by_code(info.dtype);
  if (code == nullptr) {
    fail_tensor(name, "expected a dtype among F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL, found \"" + info.dtype + "\"");
  }
  info.scalar_type = code->type;

  const auto sh = entry.find("shape");
  if (sh == entry.end()) fail_tensor(name, "expected a \"shape\" field, found none");
  if (!sh->is_array()) fail_tensor(name, "expected \"shape\" to be an array, found " + type_name(*sh));
  uint64_t numel = 1;
  uint64_t strided = 1;  // product of max(d, 1): what LibTorch's stride computation multiplies
  if (sh->size() > 64) fail_tensor(name, "expected a shape of at most 64 dimensions, found " + type_name(*sh));
  for (const Json& d : *sh) {
    if (!d.is_number_unsigned()) {
      fail_tensor(name, "expected the shape to hold non-negative integers, found " + type_name(d));
    }
    const uint64_t v = d.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || __builtin_mul_overflow(numel, v, &numel) ||
        numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(strided, std::max<uint64_t>(v, 1), &strided) ||
        strided > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail_tensor(name, "expected a shape whose element count fits 63 bits (strides too), found " + type_name(*sh) +
                            " reaching " + std::to_string(v) + " at dimension " + std::to_string(info.shape.size()));
    }
    info.shape.push_back(static_cast<int64_t>(v));
  }
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, code->itemsize, &nbytes)) {
    fail_tensor(name, "expected a byte size that fits 64 bits, found the shape " + sh->dump() + " of " + info.dtype);
  }

  const auto off = entry.find("data_offsets");
  if (off == entry.end()) fail_tensor(name, "expected a \"data_offsets\" field, found none");
  if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned()) {
    fail_tensor(name, "expected \"data_offsets\" to be [begin, end] with non-negative integers, found " +
                          type_name(*off));
  }
  info.begin = (*off)[0].get<uint64_t>();
  info.end = (*off)[1].get<uint64_t>();
  if (info.begin > info.end) {
    fail_tensor(name, "expected data_offsets [begin, end] with begin <= end, found [" + std::to_string(info.begin) +
                          ", " + std::to_string(info.end) + "]");
  }
  if (info.end > buffer_size) {
    fail_tensor(name, "expected data_offsets within the data buffer of " + std::to_string(buffer_size) +
                          " bytes, found [" + std::to_string(info.begin) + ", " + std::to_string(info.end) + "]");
  }
  if (info.end - info.begin != nbytes) {
    fail_tensor(name, "expected " + std::to_string(nbytes) + " bytes for shape " + sh->dump() + " of " + info.dtype +
                          ", found data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                          "] (" + std::to_string(info.end - info.begin) + " bytes)");
  }
  return info;
}

void SafeTensorsFile::Impl::parse() {
  const uint64_t size = mapping.size();
  if (size < 8) {
    fail("expected a safetensors file (at least 8 bytes: the header length), found " + std::to_string(size) +
         " bytes");
  }
  uint64_t n = 0;
  std::memcpy(&n, mapping.bytes(), 8);  // little-endian (static_assert above)
  if (n > kMaxHeaderBytes) {
    fail("expected a header length of at most " + std::to_string(kMaxHeaderBytes) + " bytes, found " +
         std::to_string(n));
  }
  if (n > size - 8) {
    fail("expected a header of " + std::to_string(n) + " bytes after the 8-byte length, found only " +
         std::to_string(size - 8) + " bytes in the file (truncated?)");
  }
  data_start = 8 + n;
  const uint64_t buffer_size = size - data_start;

  const auto* h = reinterpret_cast<const char*>(mapping.bytes() + 8);
  Json header;
  try {
    header = core::parse_json_bounded(std::string_view(h, n));
  } catch (const core::JsonTooDeep& e) {
    fail("expected a safetensors header (nesting of at most 64 levels), found " + std::string(e.what()));
  } catch (const core::JsonTextError& e) {
    fail("expected a JSON header, found text that does not parse: " + std::string(e.what()));
  }
  if (!header.is_object()) fail("expected the header to be a JSON object, found " + type_name(header));

  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail("expected \"__metadata__\" to be an object of strings, found " + type_name(value));
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) {
          fail("expected \"__metadata__\" value '" + mk + "' to be a string, found " + type_name(mv));
        }
        metadata.emplace(mk, mv.get<std::string>());
      }
      continue;
    }
    tensors.push_back(parse_entry(key, value, buffer_size));
  }

  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Overlaps: every non-empty range must start at or after the end of all earlier ones.
  const TensorInfo* furthest = nullptr;
  for (const TensorInfo& t : tensors) {
    if (t.begin == t.end) continue;
    if (furthest != nullptr && t.begin < furthest->end) {
      fail_tensor(t.name, "expected its data [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                              ") not to overlap another tensor, found it overlaps tensor '" + furthest->name +
                              "' [" + std::to_string(furthest->begin) + ", " + std::to_string(furthest->end) + ")");
    }
    if (furthest == nullptr || t.end > furthest->end) furthest = &t;
  }

  for (size_t i = 0; i < tensors.size(); ++i) {
    names.push_back(tensors[i].name);
    index.emplace(tensors[i].name, i);
  }
}

SafeTensorsFile::SafeTensorsFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SafeTensorsFile::SafeTensorsFile(SafeTensorsFile&&) noexcept = default;
SafeTensorsFile& SafeTensorsFile::operator=(SafeTensorsFile&&) noexcept = default;
SafeTensorsFile::~SafeTensorsFile() = default;

SafeTensorsFile SafeTensorsFile::open(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->mapping.map(path);
  impl->parse();
  return SafeTensorsFile(std::move(impl));
}

const std::filesystem::path& SafeTensorsFile::path() const { return impl_->path; }
const std::vector<std::string>& SafeTensorsFile::names() const { return impl_->names; }
bool SafeTensorsFile::contains(const std::string& name) const { return impl_->index.contains(name); }
const std::map<std::string, std::string>& SafeTensorsFile::metadata() const { return impl_->metadata; }

const TensorInfo& SafeTensorsFile::info(const std::string& name) const {
  const auto it = impl_->index.find(name);
  if (it == impl_->index.end()) throw core::InputError(impl_->where() + ": tensor '" + name + "' not found");
  return impl_->tensors[it->second];
}

at::Tensor SafeTensorsFile::get(const std::string& name) const {
  const TensorInfo& t = info(name);
  at::Tensor out = at::empty(t.shape, at::TensorOptions().dtype(t.scalar_type));
  const uint64_t n = t.nbytes();
  if (n == 0) return out;
  const unsigned char* src = impl_->mapping.bytes() + impl_->data_start + t.begin;
  auto* dst = static_cast<unsigned char*>(out.mutable_data_ptr());
  std::memcpy(dst, src, n);
  if (t.scalar_type == at::kBool) {
    // A bool byte other than 0 or 1 is undefined behaviour in LibTorch's kernels.
    for (uint64_t i = 0; i < n; ++i) dst[i] = dst[i] != 0 ? 1 : 0;
  }
  return out;
}

std::map<std::string, at::Tensor> load_safetensors(const std::filesystem::path& path,
                                                   const std::vector<std::string>& names) {
  const SafeTensorsFile file = SafeTensorsFile::open(path);
  std::map<std::string, at::Tensor> out;
  for (const std::string& name : names.empty() ? file.names() : names) out.emplace(name, file.get(name));
  return out;
}

std::string dtype_code(at::ScalarType type) {
  const DtypeCode* code = dtype_by_type(type);
  return code != nullptr ? std::string(code->code) : std::string(c10::toString(type));
}

// ---------------------------------------------------------------- writer

void write_safetensors(std::ostream& out, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  struct Entry {
    const std::string* name;
    const DtypeCode* code;
    at::Tensor data;  // contiguous, on the CPU
  };
  std::vector<Entry> entries;
  entries.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") throw core::RuntimeFailure("safetensors: '__metadata__' is reserved, not a tensor name");
    if (!t.defined()) throw core::RuntimeFailure("safetensors: tensor '" + name + "' is undefined");
    const DtypeCode* code = dtype_by_type(t.scalar_type());
    if (code == nullptr) {
      throw core::RuntimeFailure("safetensors: tensor '" + name + "': expected a dtype among F64 F32 F16 BF16 I64 I32 "
                                 "I16 I8 U8 BOOL, found " + std::string(c10::toString(t.scalar_type())));
    }
    at::Tensor c;
    try {
      c = t.to(at::kCPU).contiguous();
    } catch (const c10::Error& e) {
      throw core::RuntimeFailure("safetensors: tensor '" + name + "': " + e.what_without_backtrace());
    }
    entries.push_back({&name, code, std::move(c)});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.code->layout_rank != b.code->layout_rank) return a.code->layout_rank > b.code->layout_rank;
    return *a.name < *b.name;
  });
  for (size_t i = 1; i < entries.size(); ++i) {
    if (*entries[i].name == *entries[i - 1].name) {
      throw core::RuntimeFailure("safetensors: tensor '" + *entries[i].name + "' is given twice");
    }
  }

  const auto quote = [](const std::string& s) {
    try {
      return Json(s).dump();
    } catch (const Json::exception&) {
      throw core::RuntimeFailure("safetensors: the name or metadata '" + s + "' is not valid UTF-8");
    }
  };
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) header += ',';
      first = false;
      header += quote(k) + ":" + quote(v);
    }
    header += "}";
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (i > 0 || !metadata.empty()) header += ',';
    header += quote(*e.name) + ":{\"dtype\":\"" + std::string(e.code->code) + "\",\"shape\":[";
    for (int64_t d = 0; d < e.data.dim(); ++d) {
      if (d > 0) header += ',';
      header += std::to_string(e.data.size(d));
    }
    const uint64_t nbytes = static_cast<uint64_t>(e.data.numel()) * e.code->itemsize;
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + nbytes) + "]}";
    offset += nbytes;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');

  unsigned char len[8];
  const uint64_t n = header.size();
  std::memcpy(len, &n, 8);
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const Entry& e : entries) {
    const uint64_t nbytes = static_cast<uint64_t>(e.data.numel()) * e.code->itemsize;
    if (nbytes > 0) out.write(static_cast<const char*>(e.data.const_data_ptr()), static_cast<std::streamsize>(nbytes));
  }
}

std::string safetensors_bytes(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  std::ostringstream out(std::ios::binary);
  write_safetensors(out, tensors, metadata);
  return std::move(out).str();
}

void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  core::AtomicFile file(path);
  {
    std::ofstream out(file.temp_path(), std::ios::binary | std::ios::trunc);
    if (!out) throw core::RuntimeFailure(path.string() + ": cannot write " + file.temp_path().string());
    write_safetensors(out, tensors, metadata);
    out.flush();
    if (!out) throw core::RuntimeFailure(path.string() + ": writing " + file.temp_path().string() + " failed");
  }
  file.commit();
}

}  // namespace mlsys::tensor
