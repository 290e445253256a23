// CPU GEMM on row blocks over OpenBLAS; see gemm.hpp.
#include "kernels/cpu/gemm.hpp"

#include <ATen/Parallel.h>
#include <cblas.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace mlsys::kernels::cpu {

namespace {

int blas_int(int64_t v) {
  if (v > std::numeric_limits<int>::max()) {
    throw std::invalid_argument("sgemm_rows: GEMM dimension " + std::to_string(v) + " exceeds the BLAS int range");
  }
  return static_cast<int>(v);
}

}  // namespace

void sgemm_rows(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                int64_t ldb, float beta, float* c, int64_t ldc, const float* bias) {
  if (m == 0 || n == 0) return;
  if (bias != nullptr && beta != 0.0F) throw std::invalid_argument("sgemm_rows takes a bias or a beta, not both");
  for (int64_t v : {m, n, k, lda, ldb, ldc}) (void)blas_int(v);  // before any task starts
  // once per process, before the first call (thread-safe static initialisation)
  static const bool single_threaded = (openblas_set_num_threads(1), true);
  (void)single_threaded;
  const int64_t grain = std::max<int64_t>(32, (int64_t{1} << 20) / std::max<int64_t>(1, n * k));  // rows per task
  const float beta_c = bias != nullptr ? 1.0F : beta;
  at::parallel_for(0, m, grain, [&](int64_t r0, int64_t r1) {
    if (bias != nullptr) {
      for (int64_t r = r0; r < r1; ++r) std::copy(bias, bias + n, c + r * ldc);
    }
    // Row r of op(A) starts at a + r*lda (not transposed) or a + r (transposed).
    const float* a0 = trans_a ? a + r0 : a + r0 * lda;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, blas_int(r1 - r0),
                blas_int(n), blas_int(k), 1.0F, a0, blas_int(lda), b, blas_int(ldb), beta_c, c + r0 * ldc, blas_int(ldc));
  });
}

}  // namespace mlsys::kernels::cpu
