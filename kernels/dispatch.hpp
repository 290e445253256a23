// The kernel dispatch API (DESIGN.md, Kernels): one function per operation; each checks
// its arguments, then runs the CPU reference (kernels/cpu) or the CUDA version
// (kernels/cuda) according to the device of the tensors.
//
// Argument errors are the caller's programming errors, not bad user input: they throw
// std::invalid_argument with a message that names the function, the argument, what was
// expected and what was found. Running a CUDA tensor through a build without CUDA throws
// std::runtime_error. These functions bypass autograd: use them on tensors that do not
// require grad (or under at::NoGradGuard).
#pragma once

#include <ATen/core/Tensor.h>

namespace mlsys::kernels {

// out[i, :] = src[index[i], :] for a 2-D src (rows x cols) and a 1-D int64 or int32 index
// of length n with 0 <= index[i] < rows; returns a new contiguous (n x cols) tensor of
// src's dtype on src's device. Dtypes: float32, float64, float16, bfloat16.
at::Tensor gather_rows(const at::Tensor& src, const at::Tensor& index);

// dst[index[i], :] += src[i, :] for i in [0, n); repeated indices accumulate. dst is
// (rows x cols), src is (n x cols) of dst's dtype, index is 1-D int64 or int32 of length n
// with 0 <= index[i] < rows. On the CPU the result is deterministic (each element sums its
// contributions in index order, like at::index_add_); on CUDA the order of the atomic
// additions, and so the rounding, may vary between runs.
void scatter_add_rows(at::Tensor& dst, const at::Tensor& index, const at::Tensor& src);

// Whether this build compiled kernels/cuda (MLSYS_WITH_CUDA).
[[nodiscard]] bool built_with_cuda() noexcept;

}  // namespace mlsys::kernels
