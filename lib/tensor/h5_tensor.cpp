#include "tensor/h5_tensor.hpp"

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

#include "core/error.hpp"

namespace mlsys::tensor {

namespace {

template <class T>
std::span<const T> span_of(const at::Tensor& contiguous) {
  return {contiguous.const_data_ptr<T>(), static_cast<size_t>(contiguous.numel())};
}

template <class T>
at::Tensor tensor_from(std::vector<T> values, const std::vector<uint64_t>& shape, at::ScalarType dtype) {
  std::vector<int64_t> sizes(shape.begin(), shape.end());
  at::Tensor out = at::empty(sizes, at::TensorOptions().dtype(dtype));
  if (!values.empty()) std::memcpy(out.mutable_data_ptr(), values.data(), values.size() * sizeof(T));
  return out;
}

}  // namespace

void write_tensor(core::H5Writer& writer, const std::string& name, const at::Tensor& t) {
  if (!t.defined()) throw core::RuntimeFailure("write_tensor '" + name + "': the tensor is undefined");
  at::ScalarType stored;
  switch (t.scalar_type()) {
    case at::kFloat:
    case at::kBFloat16:
    case at::kHalf:
      stored = at::kFloat;
      break;
    case at::kDouble:
      stored = at::kDouble;
      break;
    case at::kLong:
    case at::kInt:
    case at::kShort:
    case at::kChar:
    case at::kByte:
    case at::kBool:
      stored = at::kLong;
      break;
    default:
      throw core::RuntimeFailure("write_tensor '" + name + "': dtype " + std::string(c10::toString(t.scalar_type())) +
                                 " has no HDF5 form here (expected a float, integer or bool tensor)");
  }
  at::Tensor c;
  try {
    c = t.to(at::kCPU, stored).contiguous();
  } catch (const c10::Error& e) {
    throw core::RuntimeFailure("write_tensor '" + name + "': " + e.what_without_backtrace());
  }
  std::vector<uint64_t> shape(static_cast<size_t>(c.dim()));
  for (int64_t d = 0; d < c.dim(); ++d) shape[static_cast<size_t>(d)] = static_cast<uint64_t>(c.size(d));
  if (shape.empty()) shape.push_back(1);  // 0-dim: one element
  switch (stored) {
    case at::kFloat:
      writer.write(name, span_of<float>(c), shape);
      break;
    case at::kDouble:
      writer.write(name, span_of<double>(c), shape);
      break;
    default:
      writer.write(name, span_of<int64_t>(c), shape);
      break;
  }
}

at::Tensor read_tensor(const core::H5Reader& reader, const std::string& name) {
  const std::string where = reader.path().string() + ": dataset '" + name + "'";
  if (!reader.has(name)) throw core::InputError(where + ": expected a tensor, found nothing");
  const std::vector<uint64_t> shape = reader.shape(name);
  const auto check = [&](size_t n) {
    uint64_t expected = 1;
    bool overflow = false;
    for (uint64_t d : shape) {
      overflow = overflow || d > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(expected, d, &expected);
    }
    if (overflow) throw core::InputError(where + ": expected a shape whose size fits 64 bits, found an overflow");
    if (expected != n) {
      throw core::InputError(where + ": expected " + std::to_string(expected) + " values for its shape, found " +
                             std::to_string(n));
    }
  };
  switch (reader.type(name)) {
    case core::H5Type::f32: {
      auto v = reader.read_f32(name);
      check(v.size());
      return tensor_from(std::move(v), shape, at::kFloat);
    }
    case core::H5Type::f64: {
      auto v = reader.read_f64(name);
      check(v.size());
      return tensor_from(std::move(v), shape, at::kDouble);
    }
    case core::H5Type::i64: {
      auto v = reader.read_i64(name);
      check(v.size());
      return tensor_from(std::move(v), shape, at::kLong);
    }
    case core::H5Type::string:
      throw core::InputError(where + ": expected a float32, float64 or int64 tensor, found strings");
    default:
      throw core::InputError(where + ": expected a float32, float64 or int64 tensor, found another type");
  }
}

}  // namespace mlsys::tensor
