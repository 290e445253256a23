// The argument checks the dispatch files share (see dispatch_detail.hpp).
#include "kernels/dispatch_detail.hpp"

#include "kernels/cpu/gather_scatter.hpp"
#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/rnn.hpp"
#include "kernels/cpu/temporal.hpp"

#include <ATen/MemoryOverlap.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/full.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/tanh.h>
#include <ATen/TensorOperators.h>
#include <c10/core/ScalarType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#ifdef MLSYS_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/gather_scatter.cuh"
#include "kernels/cuda/temporal.cuh"
#endif

#include <cmath>
#include <sstream>
#include <tuple>
#include <stdexcept>
#include <string>

namespace mlsys::kernels::detail {

std::string shape_of(const at::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

void check_defined(const char* fn, const char* name, const at::Tensor& t) {
  if (!t.defined()) fail(std::string(fn) + ": " + name + " is an undefined tensor");
}

void check_matrix(const char* fn, const char* name, const at::Tensor& t) {
  check_defined(fn, name, t);
  if (t.dim() != 2) {
    fail(std::string(fn) + ": " + name + " must be 2-D (rows x cols), got a " +
         std::to_string(t.dim()) + "-D tensor of shape " + shape_of(t));
  }
  const auto dtype = t.scalar_type();
  if (dtype != at::kFloat && dtype != at::kDouble && dtype != at::kHalf &&
      dtype != at::kBFloat16) {
    fail(std::string(fn) + ": " + name +
         " must be float32, float64, float16 or bfloat16, got " + c10::toString(dtype));
  }
}

void check_index(const char* fn, const at::Tensor& index) {
  check_defined(fn, "index", index);
  if (index.dim() != 1) {
    fail(std::string(fn) + ": index must be 1-D, got a " + std::to_string(index.dim()) +
         "-D tensor of shape " + shape_of(index));
  }
  if (index.scalar_type() != at::kLong && index.scalar_type() != at::kInt) {
    fail(std::string(fn) + ": index must be int64 or int32, got " +
         c10::toString(index.scalar_type()));
  }
}

void check_same_device(const char* fn, const char* a_name, const at::Tensor& a,
                       const char* b_name, const at::Tensor& b) {
  if (a.device() != b.device()) {
    fail(std::string(fn) + ": " + a_name + " is on " + a.device().str() + " but " + b_name +
         " is on " + b.device().str() + "; all tensors must be on one device");
  }
}

void check_backend(const char* fn, const at::Tensor& t) {
  if (t.is_cpu()) return;
  if (t.is_cuda()) {
#ifdef MLSYS_WITH_CUDA
    return;
#else
    throw std::runtime_error(std::string(fn) + ": the tensors are on " + t.device().str() +
                             " but mlsys-tools was built without CUDA "
                             "(reconfigure with -Dcuda=enabled)");
#endif
  }
  fail(std::string(fn) + ": tensors on " + t.device().str() +
       " are not supported (expected cpu or cuda)");
}

// The first position in the (contiguous) index whose value is outside [0, rows), or -1.
int64_t first_out_of_range(const at::Tensor& index, int64_t rows) {
  const int64_t n = index.numel();
  if (n == 0) return -1;
  if (index.is_cpu()) {
    return index.scalar_type() == at::kLong
               ? cpu::first_out_of_range(index.const_data_ptr<int64_t>(), n, rows)
               : cpu::first_out_of_range(index.const_data_ptr<int32_t>(), n, rows);
  }
#ifdef MLSYS_WITH_CUDA
  // A device-side flag: one small kernel and one 8-byte copy back before the real launch.
  const c10::cuda::CUDAGuard guard(index.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(index.device().index()).stream();
  at::Tensor first_bad = at::full({1}, n, index.options().dtype(at::kLong));
  if (index.scalar_type() == at::kLong) {
    cuda::find_out_of_range_cuda(index.const_data_ptr<int64_t>(), n, rows,
                                 first_bad.mutable_data_ptr<int64_t>(), stream);
  } else {
    cuda::find_out_of_range_cuda(index.const_data_ptr<int32_t>(), n, rows,
                                 first_bad.mutable_data_ptr<int64_t>(), stream);
  }
  const int64_t pos = first_bad.item<int64_t>();
  return pos < n ? pos : -1;
#else
  return -1;  // unreachable: check_backend has refused CUDA tensors
#endif
}

void check_index_range(const char* fn, const at::Tensor& index, int64_t rows,
                       const char* rows_name) {
  const int64_t pos = first_out_of_range(index, rows);
  if (pos < 0) return;
  const int64_t value = index[pos].item<int64_t>();
  fail(std::string(fn) + ": index " + std::to_string(value) + " (at position " +
       std::to_string(pos) + ") out of range for " + rows_name + " with " +
       std::to_string(rows) + " rows");
}

// A float32 tensor of `dims` dimensions (sizes checked by the caller), made contiguous.
at::Tensor float_arg(const char* fn, const char* name, const at::Tensor& t, int64_t dims) {
  check_defined(fn, name, t);
  if (t.dim() != dims) {
    fail(std::string(fn) + ": " + name + " must be " + std::to_string(dims) + "-D, got shape " + shape_of(t));
  }
  if (t.scalar_type() != at::kFloat) {
    fail(std::string(fn) + ": " + name + " must be float32, got " + c10::toString(t.scalar_type()));
  }
  check_backend(fn, t);
  return t.contiguous();
}

void check_size(const char* fn, const char* name, const at::Tensor& t, int64_t dim, int64_t expected) {
  if (t.size(dim) != expected) {
    fail(std::string(fn) + ": " + name + " has shape " + shape_of(t) + "; expected " + std::to_string(expected) +
         " in dimension " + std::to_string(dim));
  }
}

bool row_strided(const at::Tensor& t) { return t.dim() == 2 && (t.size(1) <= 1 || t.stride(1) == 1) && t.stride(0) >= t.size(1); }

#ifdef MLSYS_WITH_CUDA
cudaStream_t stream_of(const at::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.device().index()).stream(); }
#endif

}  // namespace mlsys::kernels::detail
