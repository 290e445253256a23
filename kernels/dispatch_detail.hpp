// Internal to the kernel layer: the argument checks and helpers every dispatch file
// (dispatch_*.cpp) shares, so that each backend-facing file holds one family of kernels.
// Errors are std::invalid_argument with one line naming the function and the argument.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/ScalarType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#ifdef MLSYS_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include <cstdint>
#include <string>

namespace mlsys::kernels::detail {

std::string shape_of(const at::Tensor& t);
[[noreturn]] void fail(const std::string& message);
void check_defined(const char* fn, const char* name, const at::Tensor& t);
// 2-D (rows x cols), on a backend this build has.
void check_matrix(const char* fn, const char* name, const at::Tensor& t);
// 1-D int32 or int64.
void check_index(const char* fn, const at::Tensor& index);
void check_same_device(const char* fn, const char* a_name, const at::Tensor& a, const char* b_name,
                       const at::Tensor& b);
// The CPU, or CUDA in a CUDA build.
void check_backend(const char* fn, const at::Tensor& t);
// The first position in the (contiguous) index whose value is outside [0, rows), or -1.
int64_t first_out_of_range(const at::Tensor& index, int64_t rows);
void check_index_range(const char* fn, const at::Tensor& index, int64_t rows, const char* rows_name);
// A float32 tensor of `dims` dimensions (sizes checked by the caller), made contiguous.
at::Tensor float_arg(const char* fn, const char* name, const at::Tensor& t, int64_t dims);
void check_size(const char* fn, const char* name, const at::Tensor& t, int64_t dim, int64_t expected);
// Rows with unit column stride, `cols` wide, at least `cols` apart: the layout the CPU
// kernels take with a leading dimension (a column block of a wider matrix qualifies).
bool row_strided(const at::Tensor& t);
inline const float* ptr_or_null(const at::Tensor& t) { return t.defined() ? t.const_data_ptr<float>() : nullptr; }
#ifdef MLSYS_WITH_CUDA
cudaStream_t stream_of(const at::Tensor& t);
#endif

// Calls f(T*) with T the C++ element type of `dtype` (c10 types for the CPU).
template <typename F>
void with_cpu_type(at::ScalarType dtype, F&& f) {
  switch (dtype) {
    case at::kFloat: f(static_cast<float*>(nullptr)); break;
    case at::kDouble: f(static_cast<double*>(nullptr)); break;
    case at::kHalf: f(static_cast<c10::Half*>(nullptr)); break;
    case at::kBFloat16: f(static_cast<c10::BFloat16*>(nullptr)); break;
    default: fail(std::string("unsupported dtype ") + c10::toString(dtype));
  }
}

template <typename F>
void with_index_type(const at::Tensor& index, F&& f) {
  if (index.scalar_type() == at::kLong) {
    f(index.const_data_ptr<int64_t>());
  } else {
    f(index.const_data_ptr<int32_t>());
  }
}

// Runs write(target) so that its result lands in out: out itself on the CPU (whose kernels
// take a leading dimension) or when contiguous, else a contiguous temporary copied into
// out afterwards (the CUDA kernels write dense buffers). Returns what write returns.
template <class Write>
auto write_into(const at::Tensor& out, Write write) {
  if (out.is_cpu() || out.is_contiguous()) return write(out);
  const at::Tensor tmp = at::empty(out.sizes(), out.options());
  auto result = write(tmp);
  at::Tensor o = out;
  o.copy_(tmp);
  return result;
}

}  // namespace mlsys::kernels::detail
