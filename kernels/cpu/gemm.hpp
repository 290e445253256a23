// CPU GEMM on row blocks (kernels::linear_rows and its backward): single-threaded OpenBLAS
// sgemm calls on blocks of the output's rows, spread over LibTorch's intra-op threads. On
// this project's CPUs OpenBLAS's sgemm runs lib/tgnn's shapes ~10% faster than the MKL
// bundled with LibTorch (bench/tgnn/README.md). Over raw row-major float32 buffers with
// leading dimensions; the caller (kernels/dispatch.cpp) has validated shapes.
#pragma once

#include <cstdint>

namespace mlsys::kernels::cpu {

// C = op(A) op(B) + beta C, C m x n with rows ldc apart; op(A) is m x k (A is m x k with
// rows lda apart, or k x m when trans_a), op(B) is k x n (B is k x n with rows ldb apart,
// or n x k when trans_b). With `bias` (n floats; beta must then be 0) each row of C is
// first set to the bias and the product accumulated onto it: C = op(A) op(B) + bias, with
// the rows still in cache for the GEMM.
//
// Threads: OpenBLAS is switched to one thread on first use (its own pool and LibTorch's
// OpenMP pool would spin against each other on shared cores: --threads 2 on 2 cores ran
// 2.4x slower than 1 thread); rows [0, m) are cut into blocks of at least
// max(32, 2^20 / (n k)) rows by at::parallel_for, one sgemm call per block. Row blocks are
// independent (no sums across tasks).
//
// Rounding: each entry is a float32 sum of k float32 products (plus beta C or the bias) in
// OpenBLAS's order, so |C - C_exact| <= (k + 1) 2^-23 (|op(A)| |op(B)| + |beta C or bias|)
// entrywise (the standard bound, with room for OpenBLAS's blocked order). Results are
// deterministic for fixed shapes and thread count and do not depend on the leading
// dimensions (OpenBLAS packs its operands first); OpenBLAS may round a row differently with
// its block's row count, so they can differ in the last bits between thread counts.
void sgemm_rows(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                int64_t ldb, float beta, float* c, int64_t ldc, const float* bias);

}  // namespace mlsys::kernels::cpu
