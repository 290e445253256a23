// The kernel dispatch API (see dispatch.hpp): argument checks shared by every backend,
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

namespace mlsys::kernels {

namespace {

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

}  // namespace

bool built_with_cuda() noexcept {
#ifdef MLSYS_WITH_CUDA
  return true;
#else
  return false;
#endif
}

namespace {

// Rows with unit column stride, `cols` wide, at least `cols` apart: the layout the CPU
// kernels take with a leading dimension (a column block of a wider matrix qualifies).
bool row_strided(const at::Tensor& t) { return t.dim() == 2 && (t.size(1) <= 1 || t.stride(1) == 1) && t.stride(0) >= t.size(1); }

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

// ---- temporal-GNN kernels

namespace {

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

#ifdef MLSYS_WITH_CUDA
cudaStream_t stream_of(const at::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.device().index()).stream(); }
#endif

// Offsets must be int64, R + 1 entries, 0 first, non-decreasing, S last (checked on the CPU).
at::Tensor offsets_arg(const char* fn, const at::Tensor& offsets_in, int64_t R, int64_t S, const at::Tensor& like,
                       const char* like_name, const char* rows_name) {
  check_defined(fn, "offsets", offsets_in);
  if (offsets_in.dim() != 1 || offsets_in.scalar_type() != at::kLong || offsets_in.numel() != R + 1) {
    fail(std::string(fn) + ": offsets must be 1-D int64 with " + std::to_string(R + 1) + " entries, got " +
         c10::toString(offsets_in.scalar_type()) + " of shape " + shape_of(offsets_in));
  }
  check_same_device(fn, like_name, like, "offsets", offsets_in);
  const at::Tensor host = offsets_in.cpu().contiguous();
  const int64_t* o = host.const_data_ptr<int64_t>();
  if (o[0] != 0 || o[R] != S) {
    fail(std::string(fn) + ": offsets must run from 0 to " + std::to_string(S) + " (" + rows_name + " rows), got " +
         std::to_string(o[0]) + " to " + std::to_string(o[R]));
  }
  for (int64_t r = 0; r < R; ++r) {
    if (o[r + 1] < o[r]) {
      fail(std::string(fn) + ": offsets decrease at entry " + std::to_string(r + 1) + " (" + std::to_string(o[r]) +
           " then " + std::to_string(o[r + 1]) + ")");
    }
  }
  return offsets_in.contiguous();
}

struct AttentionArgs {
  at::Tensor q, kv, offsets, keep;
  int64_t R = 0, S = 0, heads = 0, dh = 0;
};

AttentionArgs attention_args(const char* fn, const at::Tensor& q_in, const at::Tensor& kv_in, const at::Tensor& offsets,
                             int64_t heads, const at::Tensor& keep_in) {
  AttentionArgs a;
  a.q = float_arg(fn, "q", q_in, 2);
  a.kv = float_arg(fn, "kv", kv_in, 2);
  check_same_device(fn, "q", a.q, "kv", a.kv);
  a.R = a.q.size(0), a.S = a.kv.size(0), a.heads = heads;
  const int64_t de = a.q.size(1);
  if (heads <= 0 || de % heads != 0) {
    fail(std::string(fn) + ": heads must divide q's width " + std::to_string(de) + ", got " + std::to_string(heads));
  }
  a.dh = de / heads;
  check_size(fn, "kv", a.kv, 1, 2 * de);
  a.offsets = offsets_arg(fn, offsets, a.R, a.S, a.q, "q", "kv");
  if (keep_in.defined()) {
    a.keep = float_arg(fn, "keep", keep_in, 2);
    check_same_device(fn, "q", a.q, "keep", a.keep);
    check_size(fn, "keep", a.keep, 0, a.S);
    check_size(fn, "keep", a.keep, 1, heads);
  }
  return a;
}

const float* ptr_or_null(const at::Tensor& t) { return t.defined() ? t.const_data_ptr<float>() : nullptr; }

}  // namespace

namespace {

// time_encode into cos_out (n x d, validated by the caller: row-strided on the CPU,
// contiguous on CUDA); returns the sine (n x d) when with_sin.
at::Tensor time_encode_to(const char* fn, const at::Tensor& delta_in, const at::Tensor& w_in, const at::Tensor& b_in,
                          bool with_sin, const at::Tensor& co) {
  const at::Tensor delta = float_arg(fn, "delta", delta_in, 1);
  const at::Tensor w = float_arg(fn, "w", w_in, 1), b = float_arg(fn, "b", b_in, 1);
  check_same_device(fn, "delta", delta, "w", w);
  check_same_device(fn, "delta", delta, "b", b);
  const int64_t n = delta.numel(), d = w.numel();
  check_size(fn, "b", b, 0, d);
  if (co.size(0) != n || co.size(1) != d) {
    fail(std::string(fn) + ": cos_out has shape " + shape_of(co) + "; expected [" + std::to_string(n) + ", " + std::to_string(d) + "]");
  }
  at::Tensor si = with_sin ? at::empty({n, d}, delta.options()) : at::Tensor();
  if (n == 0 || d == 0) return si;
  float* sp = with_sin ? si.mutable_data_ptr<float>() : nullptr;
  if (delta.is_cpu()) {
    cpu::time_encode_forward(delta.const_data_ptr<float>(), n, w.const_data_ptr<float>(), b.const_data_ptr<float>(), d,
                             static_cast<float*>(co.data_ptr()), co.stride(0), sp);
  } else {
#ifdef MLSYS_WITH_CUDA
    const c10::cuda::CUDAGuard guard(delta.device());
    cuda::time_encode_forward_cuda(delta.const_data_ptr<float>(), n, w.const_data_ptr<float>(),
                                   b.const_data_ptr<float>(), d, static_cast<float*>(co.data_ptr()), sp, stream_of(delta));
#endif
  }
  return si;
}

}  // namespace

std::pair<at::Tensor, at::Tensor> time_encode(const at::Tensor& delta_in, const at::Tensor& w_in, const at::Tensor& b_in,
                                              bool with_sin) {
  constexpr const char* fn = "time_encode";
  check_defined(fn, "delta", delta_in);
  check_defined(fn, "w", w_in);
  at::Tensor co = at::empty({delta_in.numel(), w_in.numel()}, delta_in.options());
  at::Tensor si = time_encode_to(fn, delta_in, w_in, b_in, with_sin, co);
  return {co, si};
}

at::Tensor time_encode_into(const at::Tensor& cos_out, const at::Tensor& delta, const at::Tensor& w, const at::Tensor& b,
                            bool with_sin) {
  constexpr const char* fn = "time_encode_into";
  check_defined(fn, "cos_out", cos_out);
  check_defined(fn, "delta", delta);
  if (cos_out.dim() != 2 || cos_out.scalar_type() != at::kFloat || !row_strided(cos_out)) {
    fail(std::string(fn) + ": cos_out must be a 2-D float32 tensor with unit column stride, got " +
         c10::toString(cos_out.scalar_type()) + " of shape " + shape_of(cos_out) + " and strides " + c10::str(cos_out.strides()));
  }
  check_same_device(fn, "cos_out", cos_out, "delta", delta);
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"delta", &delta}, {"w", &w}, {"b", &b}}) {
    if (t->defined() && cos_out.storage().is_alias_of(t->storage())) {
      fail(std::string(fn) + ": cos_out shares memory with " + name + "; expected a separate buffer");
    }
  }
  return write_into(cos_out, [&](const at::Tensor& target) { return time_encode_to(fn, delta, w, b, with_sin, target); });
}

std::pair<at::Tensor, at::Tensor> time_encode_backward(const at::Tensor& delta_in, const at::Tensor& sin_in,
                                                       const at::Tensor& grad_in) {
  constexpr const char* fn = "time_encode_backward";
  const at::Tensor delta = float_arg(fn, "delta", delta_in, 1);
  const at::Tensor sin = float_arg(fn, "sin", sin_in, 2);
  // On the CPU grad may be row-strided (a column block of a wider gradient), uncopied.
  const bool strided_ok = grad_in.defined() && grad_in.is_cpu() && grad_in.scalar_type() == at::kFloat && row_strided(grad_in);
  const at::Tensor grad = strided_ok ? grad_in : float_arg(fn, "grad", grad_in, 2);
  check_same_device(fn, "delta", delta, "sin", sin);
  check_same_device(fn, "delta", delta, "grad", grad);
  const int64_t n = delta.numel(), d = sin.size(1);
  check_size(fn, "sin", sin, 0, n);
  check_size(fn, "grad", grad, 0, n);
  check_size(fn, "grad", grad, 1, d);
  at::Tensor dw = at::zeros({d}, delta.options()), db = at::zeros({d}, delta.options());
  if (n == 0 || d == 0) return {dw, db};
  if (delta.is_cpu()) {
    cpu::time_encode_backward(delta.const_data_ptr<float>(), n, d, sin.const_data_ptr<float>(),
                              grad.const_data_ptr<float>(), grad.stride(0), dw.mutable_data_ptr<float>(),
                              db.mutable_data_ptr<float>());
  } else {
#ifdef MLSYS_WITH_CUDA
    const c10::cuda::CUDAGuard guard(delta.device());
    cuda::time_encode_backward_cuda(delta.const_data_ptr<float>(), n, d, sin.const_data_ptr<float>(),
                                    grad.const_data_ptr<float>(), dw.mutable_data_ptr<float>(),
                                    db.mutable_data_ptr<float>(), stream_of(delta));
#endif
  }
  return {dw, db};
}

std::pair<at::Tensor, at::Tensor> segment_attention(const at::Tensor& q_in, const at::Tensor& kv_in,
                                                    const at::Tensor& offsets, int64_t heads, double slope,
                                                    const at::Tensor& keep_in) {
  constexpr const char* fn = "segment_attention";
  const AttentionArgs a = attention_args(fn, q_in, kv_in, offsets, heads, keep_in);
  at::Tensor out = at::empty({a.R, a.heads * a.dh}, a.q.options());
  at::Tensor att = at::empty({a.S, a.heads}, a.q.options());
  if (a.R == 0) return {out, att};
  if (a.q.is_cpu()) {
    cpu::segment_attention_forward(a.q.const_data_ptr<float>(), a.kv.const_data_ptr<float>(),
                                   a.offsets.const_data_ptr<int64_t>(), a.R, a.heads, a.dh, static_cast<float>(slope),
                                   ptr_or_null(a.keep), att.mutable_data_ptr<float>(), out.mutable_data_ptr<float>());
  } else {
#ifdef MLSYS_WITH_CUDA
    const c10::cuda::CUDAGuard guard(a.q.device());
    cuda::segment_attention_forward_cuda(a.q.const_data_ptr<float>(), a.kv.const_data_ptr<float>(),
                                         a.offsets.const_data_ptr<int64_t>(), a.R, a.heads, a.dh,
                                         static_cast<float>(slope), ptr_or_null(a.keep),
                                         att.mutable_data_ptr<float>(), out.mutable_data_ptr<float>(), stream_of(a.q));
#endif
  }
  return {out, att};
}

std::pair<at::Tensor, at::Tensor> segment_attention_backward(const at::Tensor& q_in, const at::Tensor& kv_in,
                                                             const at::Tensor& offsets, int64_t heads, double slope,
                                                             const at::Tensor& keep_in, const at::Tensor& att_in,
                                                             const at::Tensor& dout_in) {
  constexpr const char* fn = "segment_attention_backward";
  const AttentionArgs a = attention_args(fn, q_in, kv_in, offsets, heads, keep_in);
  const at::Tensor att = float_arg(fn, "att", att_in, 2), dout = float_arg(fn, "dout", dout_in, 2);
  check_same_device(fn, "q", a.q, "att", att);
  check_same_device(fn, "q", a.q, "dout", dout);
  check_size(fn, "att", att, 0, a.S);
  check_size(fn, "att", att, 1, a.heads);
  check_size(fn, "dout", dout, 0, a.R);
  check_size(fn, "dout", dout, 1, a.heads * a.dh);
  at::Tensor dq = at::empty_like(a.q), dkv = at::empty_like(a.kv);  // every slot row is written
  if (a.R == 0) return {dq, dkv};
  if (a.q.is_cpu()) {
    cpu::segment_attention_backward(a.q.const_data_ptr<float>(), a.kv.const_data_ptr<float>(),
                                    a.offsets.const_data_ptr<int64_t>(), a.R, a.heads, a.dh, static_cast<float>(slope),
                                    ptr_or_null(a.keep), att.const_data_ptr<float>(), dout.const_data_ptr<float>(),
                                    dq.mutable_data_ptr<float>(), dkv.mutable_data_ptr<float>());
  } else {
#ifdef MLSYS_WITH_CUDA
    const c10::cuda::CUDAGuard guard(a.q.device());
    cuda::segment_attention_backward_cuda(a.q.const_data_ptr<float>(), a.kv.const_data_ptr<float>(),
                                          a.offsets.const_data_ptr<int64_t>(), a.R, a.heads, a.dh,
                                          static_cast<float>(slope), ptr_or_null(a.keep), att.const_data_ptr<float>(),
                                          dout.const_data_ptr<float>(), dq.mutable_data_ptr<float>(),
                                          dkv.mutable_data_ptr<float>(), stream_of(a.q));
#endif
  }
  return {dq, dkv};
}

namespace {

struct SlotTensors {
  at::Tensor qk, c, x, offsets, keep;
  int64_t heads = 0, R = 0, S = 0, dx = 0;
};

SlotTensors slot_args(const char* fn, const at::Tensor& qk_in, const at::Tensor& c_in, const at::Tensor& x_in,
                      const at::Tensor& offsets, const at::Tensor& keep_in) {
  SlotTensors a;
  a.qk = float_arg(fn, "qk", qk_in, 3);
  a.c = float_arg(fn, "c", c_in, 2);
  a.x = float_arg(fn, "x", x_in, 2);
  check_same_device(fn, "qk", a.qk, "c", a.c);
  check_same_device(fn, "qk", a.qk, "x", a.x);
  a.heads = a.qk.size(0), a.R = a.qk.size(1), a.dx = a.qk.size(2), a.S = a.x.size(0);
  check_size(fn, "c", a.c, 0, a.heads);
  check_size(fn, "c", a.c, 1, a.R);
  check_size(fn, "x", a.x, 1, a.dx);
  a.offsets = offsets_arg(fn, offsets, a.R, a.S, a.qk, "qk", "x");
  if (keep_in.defined()) {
    a.keep = float_arg(fn, "keep", keep_in, 2);
    check_same_device(fn, "qk", a.qk, "keep", a.keep);
    check_size(fn, "keep", a.keep, 0, a.S);
    check_size(fn, "keep", a.keep, 1, a.heads);
  }
  return a;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> slot_attention(const at::Tensor& qk, const at::Tensor& c,
                                                              const at::Tensor& x, const at::Tensor& offsets,
                                                              double slope, const at::Tensor& keep) {
  constexpr const char* fn = "slot_attention";
  const SlotTensors a = slot_args(fn, qk, c, x, offsets, keep);
  at::Tensor ax = at::empty({a.heads, a.R, a.dx}, a.qk.options());
  at::Tensor asum = at::empty({a.heads, a.R}, a.qk.options());
  at::Tensor att = at::empty({a.S, a.heads}, a.qk.options());
  if (a.R == 0 || a.heads == 0) return {ax, asum, att};
  if (a.qk.is_cpu()) {
    cpu::slot_attention_forward(a.qk.const_data_ptr<float>(), a.c.const_data_ptr<float>(), a.x.const_data_ptr<float>(),
                                a.offsets.const_data_ptr<int64_t>(), a.R, a.heads, a.dx, static_cast<float>(slope),
                                ptr_or_null(a.keep), att.mutable_data_ptr<float>(), ax.mutable_data_ptr<float>(),
                                asum.mutable_data_ptr<float>());
  } else {
#ifdef MLSYS_WITH_CUDA
    const c10::cuda::CUDAGuard guard(a.qk.device());
    cuda::slot_attention_forward_cuda(a.qk.const_data_ptr<float>(), a.c.const_data_ptr<float>(),
                                      a.x.const_data_ptr<float>(), a.offsets.const_data_ptr<int64_t>(), a.R, a.heads,
                                      a.dx, static_cast<float>(slope), ptr_or_null(a.keep),
                                      att.mutable_data_ptr<float>(), ax.mutable_data_ptr<float>(),
                                      asum.mutable_data_ptr<float>(), stream_of(a.qk));
#endif
  }
  return {ax, asum, att};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> slot_attention_backward(const at::Tensor& qk, const at::Tensor& c,
                                                                       const at::Tensor& x, const at::Tensor& offsets,
                                                                       double slope, const at::Tensor& keep,
                                                                       const at::Tensor& att_in, const at::Tensor& dax_in,
                                                                       const at::Tensor& dasum_in, int64_t dx_cols) {
  constexpr const char* fn = "slot_attention_backward";
  const SlotTensors a = slot_args(fn, qk, c, x, offsets, keep);
  const at::Tensor att = float_arg(fn, "att", att_in, 2), dax = float_arg(fn, "dax", dax_in, 3),
                   dasum = float_arg(fn, "dasum", dasum_in, 2);
  check_same_device(fn, "qk", a.qk, "att", att);
  check_same_device(fn, "qk", a.qk, "dax", dax);
  check_same_device(fn, "qk", a.qk, "dasum", dasum);
  check_size(fn, "att", att, 0, a.S);
  check_size(fn, "att", att, 1, a.heads);
  if (dax.sizes() != a.qk.sizes()) fail(std::string(fn) + ": dax has shape " + shape_of(dax) + ", qk " + shape_of(a.qk));
  if (dasum.sizes() != a.c.sizes()) fail(std::string(fn) + ": dasum has shape " + shape_of(dasum) + ", c " + shape_of(a.c));
  // Every slot row belongs to one root, which writes it; so do the per-root outputs.
  if (dx_cols == -1) dx_cols = a.dx;
  if (dx_cols < 0 || dx_cols > a.dx) {
    fail(std::string(fn) + ": dx_cols must be -1 (all) or in [0, " + std::to_string(a.dx) + "] (x's columns), got " +
         std::to_string(dx_cols));
  }
  at::Tensor dqk = at::empty_like(a.qk), dc = at::empty_like(a.c), dxo = at::empty({a.S, dx_cols}, a.x.options());
  if (a.R == 0 || a.heads == 0) return {dqk.zero_(), dc.zero_(), dxo.zero_()};
  if (a.qk.is_cpu()) {
    cpu::slot_attention_backward(a.qk.const_data_ptr<float>(), a.c.const_data_ptr<float>(), a.x.const_data_ptr<float>(),
                                 a.offsets.const_data_ptr<int64_t>(), a.R, a.heads, a.dx, static_cast<float>(slope),
                                 ptr_or_null(a.keep), att.const_data_ptr<float>(), dax.const_data_ptr<float>(),
                                 dasum.const_data_ptr<float>(), dqk.mutable_data_ptr<float>(),
                                 dc.mutable_data_ptr<float>(), dxo.mutable_data_ptr<float>(), dx_cols);
  } else {
#ifdef MLSYS_WITH_CUDA
    const c10::cuda::CUDAGuard guard(a.qk.device());
    cuda::slot_attention_backward_cuda(a.qk.const_data_ptr<float>(), a.c.const_data_ptr<float>(),
                                       a.x.const_data_ptr<float>(), a.offsets.const_data_ptr<int64_t>(), a.R, a.heads,
                                       a.dx, static_cast<float>(slope), ptr_or_null(a.keep),
                                       att.const_data_ptr<float>(), dax.const_data_ptr<float>(),
                                       dasum.const_data_ptr<float>(), dqk.mutable_data_ptr<float>(),
                                       dc.mutable_data_ptr<float>(), dxo.mutable_data_ptr<float>(), dx_cols,
                                       stream_of(a.qk));
#endif
  }
  return {dqk, dc, dxo};
}

namespace {

struct GruShapes {
  int64_t U = 0, d = 0, hw = 0;
};

// gh (U x 3d or U x 4d) and m (U x d): defined, 2-D, matching; same device.
GruShapes gru_hidden(const char* fn, const at::Tensor& gh, const at::Tensor& m) {
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"gh", &gh}, {"m", &m}}) {
    check_defined(fn, name, *t);
    if (t->dim() != 2) fail(std::string(fn) + ": " + name + " must be 2-D, got shape " + shape_of(*t));
  }
  GruShapes s{m.size(0), m.size(1), gh.size(1)};
  if (gh.size(0) != s.U || (s.hw != 3 * s.d && s.hw != 4 * s.d)) {
    fail(std::string(fn) + ": gh has shape " + shape_of(gh) + "; expected [" + std::to_string(s.U) + ", " + std::to_string(3 * s.d) +
         " or " + std::to_string(4 * s.d) + "]");
  }
  check_same_device(fn, "m", m, "gh", gh);
  return s;
}

// a (U x cols): defined, that shape, m's device.
void gru_operand(const char* fn, const char* name, const at::Tensor& a, int64_t U, int64_t cols, const at::Tensor& m) {
  check_defined(fn, name, a);
  if (a.dim() != 2 || a.size(0) != U || a.size(1) != cols) {
    fail(std::string(fn) + ": " + name + " has shape " + shape_of(a) + "; expected [" + std::to_string(U) + ", " +
         std::to_string(cols) + "]");
  }
  check_same_device(fn, "m", m, name, a);
}

GruShapes gru_shapes(const char* fn, const at::Tensor& gi, const at::Tensor& gh, const at::Tensor& m) {
  const GruShapes s = gru_hidden(fn, gh, m);
  gru_operand(fn, "gi", gi, s.U, 3 * s.d, m);
  return s;
}

bool gru_fused(std::initializer_list<const at::Tensor*> ts) {
  for (const at::Tensor* t : ts) {
    if (!t->is_cpu() || t->scalar_type() != at::kFloat) return false;
  }
  return true;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_cell(const at::Tensor& gi_in, const at::Tensor& gh_in, const at::Tensor& m_in) {
  constexpr const char* fn = "gru_cell";
  const GruShapes s = gru_shapes(fn, gi_in, gh_in, m_in);
  const int64_t d = s.d;
  if (!gru_fused({&gi_in, &gh_in, &m_in})) {
    const at::Tensor rz = at::sigmoid(gi_in.narrow(1, 0, 2 * d) + gh_in.narrow(1, 0, 2 * d));
    at::Tensor pre = gi_in.narrow(1, 2 * d, d);
    if (s.hw == 4 * d) pre = pre + gh_in.narrow(1, 2 * d, d);
    const at::Tensor n = at::tanh(pre + rz.narrow(1, 0, d) * gh_in.narrow(1, s.hw - d, d));
    return {n + rz.narrow(1, d, d) * (m_in - n), rz, n};
  }
  const at::Tensor gi = gi_in.contiguous(), gh = gh_in.contiguous(), m = m_in.contiguous();
  at::Tensor rz = at::empty({s.U, 2 * d}, m.options()), n = at::empty({s.U, d}, m.options()), out = at::empty({s.U, d}, m.options());
  if (s.U == 0 || d == 0) return {out, rz, n};
  cpu::gru_gate_inputs(gi.const_data_ptr<float>(), gh.const_data_ptr<float>(), s.U, d, s.hw, rz.mutable_data_ptr<float>());
  rz.sigmoid_();
  cpu::gru_candidate_input(gi.const_data_ptr<float>(), gh.const_data_ptr<float>(), rz.const_data_ptr<float>(), s.U, d, s.hw,
                           n.mutable_data_ptr<float>());
  n.tanh_();
  cpu::gru_output(n.const_data_ptr<float>(), rz.const_data_ptr<float>(), m.const_data_ptr<float>(), s.U, d,
                  out.mutable_data_ptr<float>());
  return {out, rz, n};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_cell_backward(const at::Tensor& dout_in, const at::Tensor& rz_in,
                                                                 const at::Tensor& n_in, const at::Tensor& gh_in,
                                                                 const at::Tensor& m_in, bool with_dm) {
  constexpr const char* fn = "gru_cell_backward";
  const GruShapes s = gru_hidden(fn, gh_in, m_in);
  const int64_t U = s.U, d = s.d, hw = s.hw;
  gru_operand(fn, "dout", dout_in, U, d, m_in);
  gru_operand(fn, "rz", rz_in, U, 2 * d, m_in);
  gru_operand(fn, "n", n_in, U, d, m_in);
  if (!gru_fused({&dout_in, &rz_in, &n_in, &gh_in, &m_in})) {
    const at::Tensor r = rz_in.narrow(1, 0, d), z = rz_in.narrow(1, d, d);
    const at::Tensor dpre = dout_in * (1 - z) * (1 - n_in * n_in);
    const at::Tensor dar = dpre * gh_in.narrow(1, hw - d, d) * (1 - r) * r;
    const at::Tensor daz = dout_in * (m_in - n_in) * (1 - z) * z;
    std::vector<at::Tensor> h{dar, daz};
    if (hw == 4 * d) h.push_back(dpre);
    h.push_back(dpre * r);
    return {at::cat({dar, daz, dpre}, 1), at::cat(h, 1), with_dm ? dout_in * z : at::Tensor()};
  }
  const at::Tensor dout = dout_in.contiguous(), rz = rz_in.contiguous(), n = n_in.contiguous(), gh = gh_in.contiguous(),
                   m = m_in.contiguous();
  at::Tensor dgi = at::empty({U, 3 * d}, m.options()), dgh = at::empty({U, hw}, m.options());
  at::Tensor dm = with_dm ? at::empty({U, d}, m.options()) : at::Tensor();
  if (U == 0 || d == 0) return {dgi, dgh, dm};
  cpu::gru_backward(dout.const_data_ptr<float>(), rz.const_data_ptr<float>(), n.const_data_ptr<float>(), gh.const_data_ptr<float>(),
                    m.const_data_ptr<float>(), U, d, hw, dgi.mutable_data_ptr<float>(), dgh.mutable_data_ptr<float>(),
                    with_dm ? dm.mutable_data_ptr<float>() : nullptr);
  return {dgi, dgh, dm};
}

// ---- Dense layers

namespace {

// A 2-D float32 tensor (the GEMMs are float32 only).
void check_f32_matrix(const char* fn, const char* name, const at::Tensor& t) {
  check_defined(fn, name, t);
  if (t.dim() != 2) {
    fail(std::string(fn) + ": " + name + " must be 2-D (rows x cols), got a " + std::to_string(t.dim()) +
         "-D tensor of shape " + shape_of(t));
  }
  if (t.scalar_type() != at::kFloat) {
    fail(std::string(fn) + ": " + name + " must be float32, got " + c10::toString(t.scalar_type()));
  }
}

// t (rows x cols) as that shape, or a one-line error naming both.
void check_shape2(const char* fn, const char* name, const at::Tensor& t, int64_t rows, int64_t cols) {
  if (t.size(0) != rows || t.size(1) != cols) {
    fail(std::string(fn) + ": " + name + " has shape " + shape_of(t) + "; expected [" + std::to_string(rows) + ", " +
         std::to_string(cols) + "]");
  }
}

// x (M x K) and w (N x K), both float32 on one device.
void check_linear(const char* fn, const at::Tensor& x, const at::Tensor& w) {
  check_f32_matrix(fn, "x", x);
  check_f32_matrix(fn, "w", w);
  check_same_device(fn, "x", x, "w", w);
  if (w.size(1) != x.size(1)) {
    fail(std::string(fn) + ": w has shape " + shape_of(w) + " but x has " + std::to_string(x.size(1)) +
         " columns; expected w of shape [N, " + std::to_string(x.size(1)) + "]");
  }
}

// An operand as cpu::sgemm_rows reads it: in place when row-strided, else a contiguous copy.
at::Tensor gemm_operand(const at::Tensor& t) { return row_strided(t) ? t : t.contiguous(); }

}  // namespace

at::Tensor linear_rows(const at::Tensor& x_in, const at::Tensor& w_in, const at::Tensor& b_in) {
  constexpr const char* fn = "linear_rows";
  check_linear(fn, x_in, w_in);
  const int64_t M = x_in.size(0), K = x_in.size(1), N = w_in.size(0);
  if (b_in.defined()) {
    if (b_in.dim() != 1 || b_in.size(0) != N || b_in.scalar_type() != at::kFloat) {
      fail(std::string(fn) + ": b must be a 1-D float32 tensor of " + std::to_string(N) + " entries (w's rows), got " +
           c10::toString(b_in.scalar_type()) + " of shape " + shape_of(b_in));
    }
    check_same_device(fn, "x", x_in, "b", b_in);
  }
  if (!x_in.is_cpu()) return at::linear(x_in, w_in, b_in);
  // (clone, not contiguous(): with M == 1 the expanded bias is already contiguous, and
  // contiguous() would hand back the bias itself.)
  if (K == 0) return b_in.defined() ? b_in.unsqueeze(0).expand({M, N}).clone(at::MemoryFormat::Contiguous) : at::zeros({M, N}, x_in.options());
  const at::Tensor x = gemm_operand(x_in), w = gemm_operand(w_in);
  at::Tensor y = at::empty({M, N}, x.options());
  const at::Tensor b = b_in.defined() ? b_in.contiguous() : at::Tensor();
  // The bias is copied into y's rows by the GEMM tasks, so y never aliases b (a one-row
  // expanded bias once did, and the GEMM wrote into the parameter).
  cpu::sgemm_rows(false, true, M, N, K, x.const_data_ptr<float>(), x.stride(0), w.const_data_ptr<float>(), w.stride(0), 0.0F,
                  y.mutable_data_ptr<float>(), N, b.defined() ? b.const_data_ptr<float>() : nullptr);
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_rows_backward(const at::Tensor& dy_in, const at::Tensor& x_in,
                                                                    const at::Tensor& w_in, bool with_dx, bool with_dw,
                                                                    bool with_db) {
  constexpr const char* fn = "linear_rows_backward";
  check_linear(fn, x_in, w_in);
  const int64_t M = x_in.size(0), K = x_in.size(1), N = w_in.size(0);
  check_f32_matrix(fn, "dy", dy_in);
  check_shape2(fn, "dy", dy_in, M, N);
  check_same_device(fn, "x", x_in, "dy", dy_in);
  at::Tensor dx, dw, db;
  if (!x_in.is_cpu()) {
    if (with_dx) dx = dy_in.mm(w_in);
    if (with_dw) dw = dy_in.t().mm(x_in);
    if (with_db) db = dy_in.sum(0);
    return {dx, dw, db};
  }
  const at::Tensor dy = dy_in.contiguous();
  if (with_dx) {  // dx = dy W: M x K, summed over N
    dx = N > 0 ? at::empty({M, K}, dy.options()) : at::zeros({M, K}, dy.options());
    if (N > 0) {
      const at::Tensor w = gemm_operand(w_in);
      cpu::sgemm_rows(false, false, M, K, N, dy.const_data_ptr<float>(), N, w.const_data_ptr<float>(), w.stride(0), 0.0F,
                      dx.mutable_data_ptr<float>(), K, nullptr);
    }
  }
  if (with_dw) {  // dw = dy^T x: N x K, summed over M
    dw = M > 0 ? at::empty({N, K}, dy.options()) : at::zeros({N, K}, dy.options());
    if (M > 0) {
      const at::Tensor x = gemm_operand(x_in);
      cpu::sgemm_rows(true, false, N, K, M, dy.const_data_ptr<float>(), N, x.const_data_ptr<float>(), x.stride(0), 0.0F,
                      dw.mutable_data_ptr<float>(), K, nullptr);
    }
  }
  if (with_db) db = dy.sum(0);
  return {dx, dw, db};
}

}  // namespace mlsys::kernels
