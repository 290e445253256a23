// CPU reference kernels of the temporal-GNN layers; see temporal.hpp.
#include "kernels/cpu/temporal.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace mlsys::kernels::cpu {

namespace {

// One row of the time encoding: ph[c] = w[c] * t + b[c], then cos and (WithSin) sin.
// Branch-free so that GCC vectorises it; cloned for AVX-512 and AVX2 and picked at load.
template <bool WithSin>
__attribute__((target_clones("avx512f", "avx2", "default"))) void encode_row(float t, const float* __restrict__ w,
                                                                             const float* __restrict__ b, int64_t d,
                                                                             float* __restrict__ co,
                                                                             float* __restrict__ si) {
  for (int64_t c = 0; c < d; ++c) {
    const float prod = w[c] * t;
    const float x = prod + b[c];
    // x = k pi/2 + r with |r| <= pi/4: the reduction in double keeps r accurate for
    // |x| up to ~1e9 (k * 6e-17, the error of pi/2 as a double).
    const double xd = x;
    const double kd = std::nearbyint(xd * 0.63661977236758134308);
    const auto r = static_cast<float>(xd - kd * 1.57079632679489661923);
    // k mod 4, exact for any |k| < 2^53: k - 4 round(k/4) is in {-2..2}, and & 3 maps it
    // into {0..3} (nearbyint, not floor: GCC 12 vectorises only the former).
    const int q = static_cast<int>(kd - 4.0 * std::nearbyint(kd * 0.25)) & 3;
    const float z = r * r;
    // Minimax polynomials for sin and cos on [-pi/4, pi/4] (the classic single-precision
    // coefficients, ~1 ulp there).
    const float sn = r + r * z * (-1.6666654611E-1F + z * (8.3321608736E-3F + z * -1.9515295891E-4F));
    const float cs = 1.0F - 0.5F * z + z * z * (4.166664568298827E-2F + z * (-1.388731625493765E-3F + z * 2.443315711809948E-5F));
    // sin(k pi/2 + r), cos(k pi/2 + r) by quadrant.
    const float sv = (q & 1) != 0 ? cs : sn;
    const float cv = (q & 1) != 0 ? sn : cs;
    co[c] = ((q + 1) & 2) != 0 ? -cv : cv;
    if constexpr (WithSin) si[c] = (q & 2) != 0 ? -sv : sv;
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void accumulate_row(float t, const float* g, const float* s,
                                                                                 int64_t d, double* dw, double* db) {
  for (int64_t c = 0; c < d; ++c) {
    const double v = -static_cast<double>(g[c]) * static_cast<double>(s[c]);
    db[c] += v;
    dw[c] += v * static_cast<double>(t);
  }
}

float dot(const float* a, const float* b, int64_t n) {
  float s = 0.0F;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// att[j * H + h] = softmax over j in [j0, j1) of LeakyReLU_slope(score(j)): the weights of
// both attention kernels (a non-empty range).
template <class Score>
inline void leaky_softmax(Score score, int64_t j0, int64_t j1, int64_t H, int64_t h, float slope, float* att) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t j = j0; j < j1; ++j) {
    float s = score(j);
    s = s > 0.0F ? s : slope * s;
    att[j * H + h] = s;
    m = std::max(m, s);
  }
  float sum = 0.0F;
  for (int64_t j = j0; j < j1; ++j) {
    const float e = std::exp(att[j * H + h] - m);
    att[j * H + h] = e;
    sum += e;
  }
  const float inv = 1.0F / sum;
  for (int64_t j = j0; j < j1; ++j) att[j * H + h] *= inv;
}

// 16 floats as one GCC vector: a zmm register in the AVX-512 clone, two ymm in the AVX2
// one, four xmm in the baseline one; lane arithmetic is the same in all three. Loads and
// stores through memcpy (unaligned). The helpers are always inlined into the cloned
// kernels, so no v16 ever crosses a call (GCC's -Wpsabi note about passing 64-byte vectors
// without AVX-512 does not apply). GCC reports it at the end of the file, so it is silenced
// for the whole file: keep v16 out of function signatures that are not always inlined.
#pragma GCC diagnostic ignored "-Wpsabi"
using v16 = float __attribute__((vector_size(64)));
__attribute__((always_inline)) inline v16 ld16(const float* p) {
  v16 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
__attribute__((always_inline)) inline void st16(float* p, v16 v) { __builtin_memcpy(p, &v, sizeof v); }
// The first m < 16 floats of p, zero-padded.
__attribute__((always_inline)) inline v16 ld_tail(const float* p, int64_t m) {
  float t[16] = {};
  for (int64_t l = 0; l < m; ++l) t[l] = p[l];
  return ld16(t);
}

// out[k] = v[k] . x for K vectors against one x: per dot 16 partial sums (element i into
// lane i mod 16, then the lanes summed in order), so that a dot's value depends neither on K
// nor on the ISA clone (the forward pass's scores and the backward pass's recomputed ones
// agree bit for bit); the K chains overlap their add latencies and share the loads of x.
template <int K>
__attribute__((always_inline)) inline void dots(const float* const* v, const float* x, int64_t n, float* out) {
  v16 acc[K] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const v16 xv = ld16(x + i);
    for (int k = 0; k < K; ++k) acc[k] += ld16(v[k] + i) * xv;
  }
  if (i < n) {
    const v16 xv = ld_tail(x + i, n - i);
    for (int k = 0; k < K; ++k) acc[k] += ld_tail(v[k] + i, n - i) * xv;
  }
  for (int k = 0; k < K; ++k) {
    float s = 0.0F;
    for (int l = 0; l < 16; ++l) s += acc[k][l];
    out[k] = s;
  }
}

// y0 += a0 x, y1 += a1 x (n floats).
__attribute__((always_inline)) inline void axpy2(float a0, float a1, const float* x, float* y0, float* y1, int64_t n) {
  int64_t c = 0;
  for (; c + 16 <= n; c += 16) {
    const v16 xv = ld16(x + c);
    st16(y0 + c, ld16(y0 + c) + a0 * xv);
    st16(y1 + c, ld16(y1 + c) + a1 * xv);
  }
  for (; c < n; ++c) {
    y0[c] += a0 * x[c];
    y1[c] += a1 * x[c];
  }
}

// y += alpha x
inline void axpy(float alpha, const float* __restrict__ x, float* __restrict__ y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

struct SlotArgs {
  const float *qk, *c, *x;
  const int64_t* offsets;
  int64_t R, heads, dx;
  float slope;
  const float* keep;
};

// One root of slot_attention_forward, all heads; cloned per ISA. The raw scores of a slot
// for every head first (two heads: one pass over x_j), then the softmax per head, then the
// weighted sums slot by slot.
__attribute__((target_clones("avx512f", "avx2", "default"))) void slot_forward_root(const SlotArgs& a, int64_t r,
                                                                                    float* att, float* ax,
                                                                                    float* asum) {
  const int64_t j0 = a.offsets[r], j1 = a.offsets[r + 1], H = a.heads, D = a.dx;
  for (int64_t h = 0; h < H; ++h) {
    std::fill(ax + (h * a.R + r) * D, ax + (h * a.R + r + 1) * D, 0.0F);
    asum[h * a.R + r] = 0.0F;
  }
  if (j0 == j1) return;
  for (int64_t j = j0; j < j1; ++j) {
    if (H == 2) {
      const float* q[2] = {a.qk + r * D, a.qk + (a.R + r) * D};
      dots<2>(q, a.x + j * D, D, att + j * 2);
      att[j * 2] += a.c[r];
      att[j * 2 + 1] += a.c[a.R + r];
      continue;
    }
    for (int64_t h = 0; h < H; ++h) {
      const float* q[1] = {a.qk + (h * a.R + r) * D};
      dots<1>(q, a.x + j * D, D, att + j * H + h);
      att[j * H + h] += a.c[h * a.R + r];
    }
  }
  for (int64_t h = 0; h < H; ++h) leaky_softmax([&](int64_t j) { return att[j * H + h]; }, j0, j1, H, h, a.slope, att);
  for (int64_t j = j0; j < j1; ++j) {
    const float* xj = a.x + j * D;
    if (H == 2) {
      const float w0 = a.keep != nullptr ? att[j * 2] * a.keep[j * 2] : att[j * 2];
      const float w1 = a.keep != nullptr ? att[j * 2 + 1] * a.keep[j * 2 + 1] : att[j * 2 + 1];
      asum[r] += w0;
      asum[a.R + r] += w1;
      axpy2(w0, w1, xj, ax + r * D, ax + (a.R + r) * D, D);
      continue;
    }
    for (int64_t h = 0; h < H; ++h) {
      const float w = att[j * H + h];
      const float aw = a.keep != nullptr ? w * a.keep[j * H + h] : w;
      asum[h * a.R + r] += aw;
      axpy(aw, xj, ax + (h * a.R + r) * D, D);
    }
  }
}

// One root of slot_attention_backward, all heads; dx_out rows hold x's first `dx_cols`
// columns. Pass 1 over the slots: d_jh = (g_h . x_j + gs_h) keep_jh and the LeakyReLU slope
// from the raw score qk_h . x_j + c_h (recomputed exactly as the forward pass computed it),
// all 2H dot products in one pass over x_j. Pass 2: ds_jh, then dqk_h += ds_jh x_j and
// dx_j = sum_h (aw_jh g_h + ds_jh qk_h), each row of dx written once (two heads: one pass
// over x_j for both).
__attribute__((target_clones("avx512f", "avx2", "default"))) void slot_backward_root(
    const SlotArgs& a, int64_t r, const float* att, const float* dax, const float* dasum, float* dqk, float* dc,
    float* dx_out, int64_t dx_cols, std::vector<float>& scratch) {
  const int64_t j0 = a.offsets[r], j1 = a.offsets[r + 1], H = a.heads, D = a.dx;
  for (int64_t h = 0; h < H; ++h) {
    std::fill(dqk + (h * a.R + r) * D, dqk + (h * a.R + r + 1) * D, 0.0F);
    dc[h * a.R + r] = 0.0F;
  }
  if (j0 == j1) return;
  const int64_t n = j1 - j0;
  scratch.resize(static_cast<size_t>(4 * n * H + H));
  float* d = scratch.data();    // n x H: d_jh
  float* f = d + n * H;         // n x H: LeakyReLU'(raw score)
  float* ds = f + n * H;        // n x H
  float* aw = ds + n * H;       // n x H: att_jh keep_jh
  float* dot_att = aw + n * H;  // H: sum_j att_jh d_jh
  for (int64_t h = 0; h < H; ++h) dot_att[h] = 0.0F;
  for (int64_t j = j0; j < j1; ++j) {
    const float* xj = a.x + j * D;
    for (int64_t h0 = 0; h0 < H; h0 += H == 2 ? 2 : 1) {
      float gq[4];  // g_h . x_j, then qk_h . x_j (per head of this step)
      if (H == 2) {
        const float* v[4] = {dax + r * D, dax + (a.R + r) * D, a.qk + r * D, a.qk + (a.R + r) * D};
        dots<4>(v, xj, D, gq);
      } else {
        const float* v[2] = {dax + (h0 * a.R + r) * D, a.qk + (h0 * a.R + r) * D};
        dots<2>(v, xj, D, gq);
        gq[2] = gq[1];
      }
      for (int64_t h = h0; h < h0 + (H == 2 ? 2 : 1); ++h) {
        const int64_t p = h * a.R + r, o = (j - j0) * H + h, i = h - h0;
        const float k = a.keep != nullptr ? a.keep[j * H + h] : 1.0F;
        d[o] = (gq[i] + dasum[p]) * k;
        f[o] = gq[2 + i] + a.c[p] > 0.0F ? 1.0F : a.slope;
        dot_att[h] += att[j * H + h] * d[o];
      }
    }
  }
  for (int64_t j = j0; j < j1; ++j) {
    const int64_t o = (j - j0) * H;
    for (int64_t h = 0; h < H; ++h) {
      const float w = att[j * H + h];
      aw[o + h] = a.keep != nullptr ? w * a.keep[j * H + h] : w;
      ds[o + h] = w * (d[o + h] - dot_att[h]) * f[o + h];
      dc[h * a.R + r] += ds[o + h];
    }
    const float* xj = a.x + j * D;
    float* dxj = dx_out + j * dx_cols;
    if (H == 2) {
      const float* g0 = dax + r * D;
      const float* g1 = dax + (a.R + r) * D;
      const float* k0 = a.qk + r * D;
      const float* k1 = a.qk + (a.R + r) * D;
      const float s0 = ds[o], s1 = ds[o + 1], w0 = aw[o], w1 = aw[o + 1];
      axpy2(s0, s1, xj, dqk + r * D, dqk + (a.R + r) * D, D);
      int64_t c = 0;
      for (; c + 16 <= dx_cols; c += 16) {
        st16(dxj + c, (w0 * ld16(g0 + c) + s0 * ld16(k0 + c)) + (w1 * ld16(g1 + c) + s1 * ld16(k1 + c)));
      }
      for (; c < dx_cols; ++c) dxj[c] = (w0 * g0[c] + s0 * k0[c]) + (w1 * g1[c] + s1 * k1[c]);
      continue;
    }
    for (int64_t h = 0; h < H; ++h) {
      const float* __restrict__ q = a.qk + (h * a.R + r) * D;
      const float* __restrict__ g = dax + (h * a.R + r) * D;
      const float sh = ds[o + h], wh = aw[o + h];
      axpy(sh, xj, dqk + (h * a.R + r) * D, D);
      if (h == 0) {
        for (int64_t c = 0; c < dx_cols; ++c) dxj[c] = wh * g[c] + sh * q[c];
      } else {
        for (int64_t c = 0; c < dx_cols; ++c) dxj[c] += wh * g[c] + sh * q[c];
      }
    }
  }
}

// Roots per parallel task: each root is a few hundred to a few thousand flops.
constexpr int64_t kRootGrain = 64;

}  // namespace

void time_encode_forward(const float* delta, int64_t n, const float* w, const float* b, int64_t d, float* cos_out,
                         int64_t cos_ld, float* sin_out) {
  at::parallel_for(0, n, std::max<int64_t>(1, 16384 / std::max<int64_t>(d, 1)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      if (sin_out != nullptr) {
        encode_row<true>(delta[i], w, b, d, cos_out + i * cos_ld, sin_out + i * d);
      } else {
        encode_row<false>(delta[i], w, b, d, cos_out + i * cos_ld, nullptr);
      }
    }
  });
}

void time_encode_backward(const float* delta, int64_t n, int64_t d, const float* sin, const float* grad,
                          int64_t grad_ld, float* dw, float* db) {
  std::vector<double> aw(static_cast<size_t>(d), 0.0), ab(static_cast<size_t>(d), 0.0);
  for (int64_t i = 0; i < n; ++i) accumulate_row(delta[i], grad + i * grad_ld, sin + i * d, d, aw.data(), ab.data());
  for (int64_t c = 0; c < d; ++c) {
    dw[c] = static_cast<float>(aw[static_cast<size_t>(c)]);
    db[c] = static_cast<float>(ab[static_cast<size_t>(c)]);
  }
}

void segment_attention_forward(const float* q, const float* kv, const int64_t* offsets, int64_t R, int64_t heads,
                               int64_t dh, float slope, const float* keep, float* att, float* out) {
  const int64_t de = heads * dh;
  at::parallel_for(0, R, kRootGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* o = out + r * de;
      std::fill(o, o + de, 0.0F);
      const int64_t j0 = offsets[r], j1 = offsets[r + 1];
      if (j0 == j1) continue;
      for (int64_t h = 0; h < heads; ++h) {
        const float* qh = q + r * de + h * dh;
        leaky_softmax([&](int64_t j) { return dot(qh, kv + j * 2 * de + h * dh, dh); }, j0, j1, heads, h, slope, att);
        float* oh = o + h * dh;
        for (int64_t j = j0; j < j1; ++j) {
          const float a = att[j * heads + h];
          const float aw = keep != nullptr ? a * keep[j * heads + h] : a;
          const float* v = kv + j * 2 * de + de + h * dh;
          for (int64_t c = 0; c < dh; ++c) oh[c] += aw * v[c];
        }
      }
    }
  });
}

void segment_attention_backward(const float* q, const float* kv, const int64_t* offsets, int64_t R, int64_t heads,
                                int64_t dh, float slope, const float* keep, const float* att, const float* dout,
                                float* dq, float* dkv) {
  const int64_t de = heads * dh;
  at::parallel_for(0, R, kRootGrain, [&](int64_t r0, int64_t r1) {
    std::vector<float> da;
    for (int64_t r = r0; r < r1; ++r) {
      float* dqr = dq + r * de;
      std::fill(dqr, dqr + de, 0.0F);
      const int64_t j0 = offsets[r], j1 = offsets[r + 1];
      if (j0 == j1) continue;
      da.resize(static_cast<size_t>(j1 - j0));
      for (int64_t h = 0; h < heads; ++h) {
        const float* qh = q + r * de + h * dh;
        const float* gh = dout + r * de + h * dh;
        // d(att_j) through the dropout and the weighted sum; dV_j = att_j keep_j dout.
        float dot_att = 0.0F;
        for (int64_t j = j0; j < j1; ++j) {
          const float a = att[j * heads + h];
          const float k = keep != nullptr ? keep[j * heads + h] : 1.0F;
          const float* v = kv + j * 2 * de + de + h * dh;
          float* dv = dkv + j * 2 * de + de + h * dh;
          const float aw = a * k;
          for (int64_t c = 0; c < dh; ++c) dv[c] = aw * gh[c];
          const float d = dot(gh, v, dh) * k;
          da[static_cast<size_t>(j - j0)] = d;
          dot_att += a * d;
        }
        // Softmax, then LeakyReLU (its slope from the recomputed raw score), then q . K.
        float* dqh = dqr + h * dh;
        for (int64_t j = j0; j < j1; ++j) {
          const float* kj = kv + j * 2 * de + h * dh;
          float* dk = dkv + j * 2 * de + h * dh;
          const float raw = dot(qh, kj, dh);
          const float ds = att[j * heads + h] * (da[static_cast<size_t>(j - j0)] - dot_att) * (raw > 0.0F ? 1.0F : slope);
          for (int64_t c = 0; c < dh; ++c) {
            dk[c] = ds * qh[c];
            dqh[c] += ds * kj[c];
          }
        }
      }
    }
  });
}

void slot_attention_forward(const float* qk, const float* c, const float* x, const int64_t* offsets, int64_t R,
                            int64_t heads, int64_t dx, float slope, const float* keep, float* att, float* ax,
                            float* asum) {
  const SlotArgs a{qk, c, x, offsets, R, heads, dx, slope, keep};
  at::parallel_for(0, R, kRootGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) slot_forward_root(a, r, att, ax, asum);
  });
}

void slot_attention_backward(const float* qk, const float* c, const float* x, const int64_t* offsets, int64_t R,
                             int64_t heads, int64_t dx, float slope, const float* keep, const float* att,
                             const float* dax, const float* dasum, float* dqk, float* dc, float* dx_out,
                             int64_t dx_cols) {
  const SlotArgs a{qk, c, x, offsets, R, heads, dx, slope, keep};
  at::parallel_for(0, R, kRootGrain, [&](int64_t r0, int64_t r1) {
    std::vector<float> scratch;
    for (int64_t r = r0; r < r1; ++r) slot_backward_root(a, r, att, dax, dasum, dqk, dc, dx_out, dx_cols, scratch);
  });
}

}  // namespace mlsys::kernels::cpu
