// The dispatch of the row gather/scatter kernels (see dispatch.hpp): argument checks,
// then the CPU reference or, in a CUDA build, the CUDA launcher on the current stream.
#include "kernels/dispatch.hpp"

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

#include "kernels/dispatch_detail.hpp"

namespace mlsys::kernels {

using namespace detail;

namespace {

#ifdef MLSYS_WITH_CUDA
void gather_rows_on_cuda(const at::Tensor& src, const at::Tensor& index, at::Tensor& out) {
  const c10::cuda::CUDAGuard guard(src.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(src.device().index()).stream();
  const int64_t rows = src.size(0), cols = src.size(1), n = index.numel();
  with_index_type(index, [&](const auto* idx) {
    switch (src.scalar_type()) {
      case at::kFloat:
        cuda::gather_rows_cuda_f32(src.const_data_ptr<float>(), rows, cols, idx, n,
                                   out.mutable_data_ptr<float>(), stream);
        break;
      case at::kDouble:
        cuda::gather_rows_cuda_f64(src.const_data_ptr<double>(), rows, cols, idx, n,
                                   out.mutable_data_ptr<double>(), stream);
        break;
      case at::kHalf:
        cuda::gather_rows_cuda_f16(reinterpret_cast<const __half*>(src.const_data_ptr()), rows,
                                   cols, idx, n,
                                   reinterpret_cast<__half*>(out.mutable_data_ptr()), stream);
        break;
      case at::kBFloat16:
        cuda::gather_rows_cuda_bf16(
            reinterpret_cast<const __nv_bfloat16*>(src.const_data_ptr()), rows, cols, idx, n,
            reinterpret_cast<__nv_bfloat16*>(out.mutable_data_ptr()), stream);
        break;
      default: fail(std::string("gather_rows: unsupported dtype ") +
                    c10::toString(src.scalar_type()));
    }
  });
}

void scatter_add_rows_on_cuda(at::Tensor& dst, const at::Tensor& index, const at::Tensor& src) {
  const c10::cuda::CUDAGuard guard(dst.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(dst.device().index()).stream();
  const int64_t rows = dst.size(0), cols = dst.size(1), n = index.numel();
  with_index_type(index, [&](const auto* idx) {
    switch (dst.scalar_type()) {
      case at::kFloat:
        cuda::scatter_add_rows_cuda_f32(dst.mutable_data_ptr<float>(), rows, cols, idx, n,
                                        src.const_data_ptr<float>(), stream);
        break;
      case at::kDouble:
        cuda::scatter_add_rows_cuda_f64(dst.mutable_data_ptr<double>(), rows, cols, idx, n,
                                        src.const_data_ptr<double>(), stream);
        break;
      case at::kHalf:
        cuda::scatter_add_rows_cuda_f16(reinterpret_cast<__half*>(dst.mutable_data_ptr()), rows,
                                        cols, idx, n,
                                        reinterpret_cast<const __half*>(src.const_data_ptr()),
                                        stream);
        break;
      case at::kBFloat16:
        cuda::scatter_add_rows_cuda_bf16(
            reinterpret_cast<__nv_bfloat16*>(dst.mutable_data_ptr()), rows, cols, idx, n,
            reinterpret_cast<const __nv_bfloat16*>(src.const_data_ptr()), stream);
        break;
      default: fail(std::string("scatter_add_rows: unsupported dtype ") +
                    c10::toString(dst.scalar_type()));
    }
  });
}
#endif

// gather_rows into a preallocated out (validated by the caller, n x cols of src's dtype and
// device; row-strided on the CPU, contiguous on CUDA).
void gather_rows_to(const char* fn, const at::Tensor& src_in, const at::Tensor& index_in, const at::Tensor& out) {
  const at::Tensor src = src_in.contiguous();
  const at::Tensor index = index_in.contiguous();
  const int64_t rows = src.size(0), cols = src.size(1), n = index.numel();
  check_index_range(fn, index, rows, "src");
  if (n == 0 || cols == 0) return;
  if (src.is_cpu()) {
    with_cpu_type(src.scalar_type(), [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      with_index_type(index, [&](const auto* idx) {
        cpu::gather_rows(src.const_data_ptr<T>(), rows, cols, idx, n, static_cast<T*>(out.data_ptr()), out.stride(0));
      });
    });
  } else {
#ifdef MLSYS_WITH_CUDA
    at::Tensor o = out;
    gather_rows_on_cuda(src, index, o);
#endif
  }
}

}  // namespace

bool built_with_cuda() noexcept {
#ifdef MLSYS_WITH_CUDA
  return true;
#else
  return false;
#endif
}

at::Tensor gather_rows(const at::Tensor& src_in, const at::Tensor& index_in) {
  constexpr const char* fn = "gather_rows";
  check_matrix(fn, "src", src_in);
  check_index(fn, index_in);
  check_same_device(fn, "src", src_in, "index", index_in);
  check_backend(fn, src_in);
  at::Tensor out = at::empty({index_in.numel(), src_in.size(1)}, src_in.options());
  gather_rows_to(fn, src_in, index_in, out);
  return out;
}

void gather_rows_into(const at::Tensor& out, const at::Tensor& src_in, const at::Tensor& index_in) {
  constexpr const char* fn = "gather_rows_into";
  check_matrix(fn, "src", src_in);
  check_matrix(fn, "out", out);
  check_index(fn, index_in);
  check_same_device(fn, "src", src_in, "index", index_in);
  check_same_device(fn, "src", src_in, "out", out);
  check_backend(fn, src_in);
  if (out.scalar_type() != src_in.scalar_type()) {
    fail(std::string(fn) + ": out is " + c10::toString(out.scalar_type()) + " but src is " +
         c10::toString(src_in.scalar_type()) + "; they must have the same dtype");
  }
  if (out.size(0) != index_in.numel() || out.size(1) != src_in.size(1)) {
    fail(std::string(fn) + ": out has shape " + shape_of(out) + "; expected [" + std::to_string(index_in.numel()) + ", " +
         std::to_string(src_in.size(1)) + "] (index entries x src columns)");
  }
  if (!row_strided(out)) fail(std::string(fn) + ": out must have unit column stride, got strides " + c10::str(out.strides()));
  if (out.storage().is_alias_of(src_in.storage()) || out.storage().is_alias_of(index_in.storage())) {
    fail(std::string(fn) + ": out shares memory with src or index; expected a separate buffer");
  }
  write_into(out, [&](const at::Tensor& target) {
    gather_rows_to(fn, src_in, index_in, target);
    return 0;
  });
}

void scatter_add_rows(at::Tensor& dst, const at::Tensor& index_in, const at::Tensor& src_in) {
  constexpr const char* fn = "scatter_add_rows";
  check_matrix(fn, "dst", dst);
  check_matrix(fn, "src", src_in);
  check_index(fn, index_in);
  if (src_in.scalar_type() != dst.scalar_type()) {
    fail(std::string(fn) + ": src is " + c10::toString(src_in.scalar_type()) + " but dst is " +
         c10::toString(dst.scalar_type()) + "; they must have the same dtype");
  }
  check_same_device(fn, "dst", dst, "index", index_in);
  check_same_device(fn, "dst", dst, "src", src_in);
  if (src_in.size(0) != index_in.size(0)) {
    fail(std::string(fn) + ": src has " + std::to_string(src_in.size(0)) +
         " rows but index has " + std::to_string(index_in.size(0)) +
         " entries; they must match");
  }
  if (src_in.size(1) != dst.size(1)) {
    fail(std::string(fn) + ": src has " + std::to_string(src_in.size(1)) +
         " columns but dst has " + std::to_string(dst.size(1)) + "; they must match");
  }
  check_backend(fn, dst);

  // The CPU kernel reads src's rows with a leading dimension (a column block of a wider
  // matrix needs no copy); CUDA takes it contiguous.
  at::Tensor src = dst.is_cpu() && row_strided(src_in) ? src_in : src_in.contiguous();
  const at::Tensor index = index_in.contiguous();
  const int64_t rows = dst.size(0), cols = dst.size(1), n = index.numel();
  check_index_range(fn, index, rows, "dst");
  if (n == 0 || cols == 0) return;

  // The kernels write a contiguous buffer; a strided dst is updated through a copy.
  const bool in_place = dst.is_contiguous();
  at::Tensor target = in_place ? dst : dst.contiguous();
  // The kernels take src and dst as __restrict__: read from a copy when they share memory
  // (scatter_add_rows(d, i, d) then adds d's values as they were before the call).
  // (get_overlap_status answers TooHard for any non-dense view, such as a column block, so
  // ask it only when the two share storage at all.)
  if (target.storage().is_alias_of(src.storage()) && at::get_overlap_status(target, src) != at::MemOverlapStatus::No) {
    src = src.clone();
  }
  if (target.is_cpu()) {
    with_cpu_type(target.scalar_type(), [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      with_index_type(index, [&](const auto* idx) {
        cpu::scatter_add_rows(target.mutable_data_ptr<T>(), rows, cols, idx, n,
                              src.const_data_ptr<T>(), src.stride(0));
      });
    });
  } else {
#ifdef MLSYS_WITH_CUDA
    scatter_add_rows_on_cuda(target, index, src);
#endif
  }
  if (!in_place) dst.copy_(target);
}

}  // namespace mlsys::kernels
