// Fused GRU cell passes; see rnn.hpp.
#include "kernels/cpu/rnn.hpp"

#include <ATen/Parallel.h>

#include <algorithm>

namespace mlsys::kernels::cpu {

namespace {

// Rows per parallel task.
int64_t row_grain(int64_t d) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, d)); }

__attribute__((target_clones("avx512f", "avx2", "default"))) void gate_inputs_row(const float* __restrict__ gi,
                                                                                  const float* __restrict__ gh,
                                                                                  int64_t n, float* __restrict__ a) {
  for (int64_t c = 0; c < n; ++c) a[c] = gi[c] + gh[c];
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void candidate_row(const float* __restrict__ gin,
                                                                                const float* __restrict__ ghin,
                                                                                const float* __restrict__ ghn,
                                                                                const float* __restrict__ r, int64_t d,
                                                                                float* __restrict__ p) {
  if (ghin != nullptr) {
    for (int64_t c = 0; c < d; ++c) p[c] = (gin[c] + ghin[c]) + r[c] * ghn[c];
  } else {
    for (int64_t c = 0; c < d; ++c) p[c] = gin[c] + r[c] * ghn[c];
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void output_row(const float* __restrict__ n,
                                                                             const float* __restrict__ z,
                                                                             const float* __restrict__ m, int64_t d,
                                                                             float* __restrict__ out) {
  for (int64_t c = 0; c < d; ++c) out[c] = n[c] + z[c] * (m[c] - n[c]);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void backward_row(
    const float* __restrict__ dout, const float* __restrict__ r, const float* __restrict__ z,
    const float* __restrict__ n, const float* __restrict__ ghn, const float* __restrict__ m, int64_t d,
    float* __restrict__ dgi, float* __restrict__ dgh, float* __restrict__ dgh_nin, float* __restrict__ dgh_n,
    float* __restrict__ dm) {
  for (int64_t c = 0; c < d; ++c) {
    const float g = dout[c];
    const float dn = g * (1.0F - z[c]);
    const float dz = g * (m[c] - n[c]);
    const float dpre = dn * (1.0F - n[c] * n[c]);
    const float dr = dpre * ghn[c];
    const float dar = dr * (1.0F - r[c]) * r[c];
    const float daz = dz * (1.0F - z[c]) * z[c];
    dgi[c] = dar;
    dgi[d + c] = daz;
    dgi[2 * d + c] = dpre;
    dgh[c] = dar;
    dgh[d + c] = daz;
    if (dgh_nin != nullptr) dgh_nin[c] = dpre;
    dgh_n[c] = dpre * r[c];
    if (dm != nullptr) dm[c] = g * z[c];
  }
}

}  // namespace

void gru_gate_inputs(const float* gi, const float* gh, int64_t U, int64_t d, int64_t hw, float* a) {
  at::parallel_for(0, U, row_grain(d), [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) gate_inputs_row(gi + u * 3 * d, gh + u * hw, 2 * d, a + u * 2 * d);
  });
}

void gru_candidate_input(const float* gi, const float* gh, const float* rz, int64_t U, int64_t d, int64_t hw, float* p) {
  at::parallel_for(0, U, row_grain(d), [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const float* h = gh + u * hw;
      candidate_row(gi + u * 3 * d + 2 * d, hw == 4 * d ? h + 2 * d : nullptr, h + hw - d, rz + u * 2 * d, d, p + u * d);
    }
  });
}

void gru_output(const float* n, const float* rz, const float* m, int64_t U, int64_t d, float* out) {
  at::parallel_for(0, U, row_grain(d), [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) output_row(n + u * d, rz + u * 2 * d + d, m + u * d, d, out + u * d);
  });
}

void gru_backward(const float* dout, const float* rz, const float* n, const float* gh, const float* m, int64_t U,
                  int64_t d, int64_t hw, float* dgi, float* dgh, float* dm) {
  at::parallel_for(0, U, row_grain(d), [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      float* g = dgh + u * hw;
      backward_row(dout + u * d, rz + u * 2 * d, rz + u * 2 * d + d, n + u * d, gh + u * hw + hw - d, m + u * d, d,
                   dgi + u * 3 * d, g, hw == 4 * d ? g + 2 * d : nullptr, g + hw - d, dm != nullptr ? dm + u * d : nullptr);
    }
  });
}

}  // namespace mlsys::kernels::cpu
