// CUDA temporal-GNN kernels (see temporal.cuh and the CPU references in
// kernels/cpu/temporal.hpp): the time encoding and its parameter gradient, the per-root
// segment attention with its backward pass, and the factored (slot) attention with its
// backward pass. 64-bit offsets throughout.
#include "kernels/cuda/temporal.cuh"

#include <cuda_runtime.h>

#include <algorithm>
#include <initializer_list>
#include <stdexcept>
#include <string>

namespace mlsys::kernels::cuda {

namespace {

constexpr int kThreads = 256;
// Enough blocks to fill an H200 many times over; the grid-stride loops cover the rest.
constexpr int64_t kMaxBlocks = 65536;
constexpr unsigned kFullMask = 0xffffffffU;

int blocks_for(int64_t total, int64_t per_block) {
  return static_cast<int>(std::min<int64_t>((total + per_block - 1) / per_block, kMaxBlocks));
}

[[noreturn]] void throw_cuda(const char* what, cudaError_t err) {
  throw std::runtime_error(std::string(what) + ": CUDA kernel launch failed: " +
                           cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw_cuda(what, err);
}

// ---------------------------------------------------------------- time encoding
// One thread per (i, c). The phase is rounded like the CPU's (a float product, then a float
// sum: __fmul_rn / __fadd_rn keep nvcc from contracting them into an FMA); sincosf is the
// accurate version (the build does not use --use_fast_math).
__global__ void time_encode_forward_kernel(const float* __restrict__ delta, int64_t n,
                                           const float* __restrict__ w,
                                           const float* __restrict__ b, int64_t d,
                                           float* __restrict__ cos_out,
                                           float* __restrict__ sin_out) {
  const int64_t total = n * d;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += stride) {
    const int64_t i = t / d;
    const int64_t c = t - i * d;
    const float phase = __fadd_rn(__fmul_rn(w[c], delta[i]), b[c]);
    float s = 0.0F, co = 0.0F;
    sincosf(phase, &s, &co);
    cos_out[t] = co;
    if (sin_out != nullptr) sin_out[t] = s;
  }
}

// The parameter gradient: a block of kColTile x kRowThreads threads covers kColTile columns
// (coalesced row reads) and one chunk of rows; each thread sums its rows in double in row
// order, then the block adds the kRowThreads partial sums in a fixed tree. With one chunk
// (gridDim.y == 1) the block writes dw, db as floats; otherwise it writes its double
// partial sums to partial_w/partial_b (gridDim.y x d each) and time_encode_finish_kernel
// adds them in chunk order. Deterministic: no atomics, every order fixed by n and d alone.
constexpr int kColTile = 32;
constexpr int kRowThreads = 8;
// Rows per chunk at least, and at most this many chunks.
constexpr int64_t kMinRowsPerChunk = 1024;
constexpr int64_t kMaxChunks = 128;

__global__ void time_encode_backward_kernel(const float* __restrict__ delta, int64_t n, int64_t d,
                                            const float* __restrict__ sin,
                                            const float* __restrict__ grad, int64_t rows_per_chunk,
                                            float* __restrict__ dw, float* __restrict__ db,
                                            double* __restrict__ partial_w,
                                            double* __restrict__ partial_b) {
  __shared__ double sw[kRowThreads][kColTile];
  __shared__ double sb[kRowThreads][kColTile];
  const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kColTile + tx;
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * rows_per_chunk;
  const int64_t i1 = i0 + rows_per_chunk < n ? i0 + rows_per_chunk : n;
  double aw = 0.0, ab = 0.0;
  if (c < d) {
    for (int64_t i = i0 + ty; i < i1; i += kRowThreads) {
      const double v = -static_cast<double>(grad[i * d + c]) * static_cast<double>(sin[i * d + c]);
      ab += v;
      aw += v * static_cast<double>(delta[i]);
    }
  }
  sw[ty][tx] = aw;
  sb[ty][tx] = ab;
  __syncthreads();
  for (int half = kRowThreads / 2; half > 0; half /= 2) {
    if (ty < half) {
      sw[ty][tx] += sw[ty + half][tx];
      sb[ty][tx] += sb[ty + half][tx];
    }
    __syncthreads();
  }
  if (ty == 0 && c < d) {
    if (gridDim.y == 1) {
      dw[c] = static_cast<float>(sw[0][tx]);
      db[c] = static_cast<float>(sb[0][tx]);
    } else {
      partial_w[static_cast<int64_t>(blockIdx.y) * d + c] = sw[0][tx];
      partial_b[static_cast<int64_t>(blockIdx.y) * d + c] = sb[0][tx];
    }
  }
}

__global__ void time_encode_finish_kernel(const double* __restrict__ partial_w,
                                          const double* __restrict__ partial_b, int64_t chunks,
                                          int64_t d, float* __restrict__ dw,
                                          float* __restrict__ db) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < d;
       c += stride) {
    double aw = 0.0, ab = 0.0;
    for (int64_t g = 0; g < chunks; ++g) {
      aw += partial_w[g * d + c];
      ab += partial_b[g * d + c];
    }
    dw[c] = static_cast<float>(aw);
    db[c] = static_cast<float>(ab);
  }
}

// ---------------------------------------------------------------- segment attention
// One warp per (root, head), grid-stride over the R * heads pairs (warp-uniform, so the
// shuffles always run with the full warp). Slots are taken in chunks of 32, one slot per
// lane for the dot products and the softmax; the weighted sums over slots then run with one
// column per lane, the slot values broadcast from their lanes with __shfl_sync. Any segment
// length works: long segments just take more chunks.
constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = kThreads / kWarp;

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

__device__ __forceinline__ float dot(const float* __restrict__ a, const float* __restrict__ b,
                                     int64_t n) {
  float s = 0.0F;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

__device__ __forceinline__ float leaky(float s, float slope) { return s > 0.0F ? s : slope * s; }

// att is used as this warp's scratch for its own (slot, head) entries: raw scores, then
// exponentials, then the weights; each entry is only ever touched by the lane that owns its
// slot, so no cross-lane synchronisation through memory is needed.
__global__ void segment_attention_forward_kernel(const float* __restrict__ q,
                                                 const float* __restrict__ kv,
                                                 const int64_t* __restrict__ offsets, int64_t R,
                                                 int64_t heads, int64_t dh, float slope,
                                                 const float* __restrict__ keep, float* att,
                                                 float* __restrict__ out) {
  const int64_t de = heads * dh;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int64_t pairs = R * heads;
  const int64_t warp_stride = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
       p < pairs; p += warp_stride) {
    const int64_t r = p / heads;
    const int64_t h = p - r * heads;
    const int64_t j0 = offsets[r], j1 = offsets[r + 1];
    float* oh = out + r * de + h * dh;
    if (j0 >= j1) {
      for (int64_t c = lane; c < dh; c += kWarp) oh[c] = 0.0F;
      continue;
    }
    const float* qh = q + r * de + h * dh;
    // Scores and their maximum.
    float m = -INFINITY;
    for (int64_t jb = j0; jb < j1; jb += kWarp) {
      const int64_t j = jb + lane;
      if (j < j1) {
        const float s = leaky(dot(qh, kv + j * 2 * de + h * dh, dh), slope);
        att[j * heads + h] = s;
        m = fmaxf(m, s);
      }
    }
    m = warp_max(m);
    // Exponentials and their sum.
    float sum = 0.0F;
    for (int64_t jb = j0; jb < j1; jb += kWarp) {
      const int64_t j = jb + lane;
      if (j < j1) {
        const float e = expf(att[j * heads + h] - m);
        att[j * heads + h] = e;
        sum += e;
      }
    }
    sum = warp_sum(sum);
    const float inv = 1.0F / sum;
    // Weights, then out = sum_j att_j keep_j V_j, one column per lane.
    for (int64_t jb = j0; jb < j1; jb += kWarp) {
      const int64_t j = jb + lane;
      const int count = j1 - jb < kWarp ? static_cast<int>(j1 - jb) : kWarp;
      float aw = 0.0F;
      if (j < j1) {
        const float a = att[j * heads + h] * inv;
        att[j * heads + h] = a;
        aw = keep != nullptr ? a * keep[j * heads + h] : a;
      }
      for (int64_t cb = 0; cb < dh; cb += kWarp) {
        const int64_t c = cb + lane;
        float acc = 0.0F;
        for (int k = 0; k < count; ++k) {
          const float awk = __shfl_sync(kFullMask, aw, k);
          if (c < dh) acc += awk * kv[(jb + k) * 2 * de + de + h * dh + c];
        }
        if (c < dh) oh[c] = jb == j0 ? acc : oh[c] + acc;
      }
    }
  }
}

// Backward: per (root, head), da_j = (dout . V_j) keep_j and dot_att = sum_j att_j da_j
// (one slot per lane), then per slot ds_j = att_j (da_j - dot_att) LeakyReLU'(q . K_j) and
// the writes dK_j = ds_j q, dV_j = att_j keep_j dout, dq = sum_j ds_j K_j (one column per
// lane). da_j is kept in a register when the segment fits one chunk, else recomputed.
__global__ void segment_attention_backward_kernel(const float* __restrict__ q,
                                                  const float* __restrict__ kv,
                                                  const int64_t* __restrict__ offsets, int64_t R,
                                                  int64_t heads, int64_t dh, float slope,
                                                  const float* __restrict__ keep,
                                                  const float* __restrict__ att,
                                                  const float* __restrict__ dout,
                                                  float* __restrict__ dq, float* __restrict__ dkv) {
  const int64_t de = heads * dh;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int64_t pairs = R * heads;
  const int64_t warp_stride = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
       p < pairs; p += warp_stride) {
    const int64_t r = p / heads;
    const int64_t h = p - r * heads;
    const int64_t j0 = offsets[r], j1 = offsets[r + 1];
    float* dqh = dq + r * de + h * dh;
    if (j0 >= j1) {
      for (int64_t c = lane; c < dh; c += kWarp) dqh[c] = 0.0F;
      continue;
    }
    const float* qh = q + r * de + h * dh;
    const float* gh = dout + r * de + h * dh;
    const bool one_chunk = j1 - j0 <= kWarp;
    // d(att_j) through the dropout and the weighted sum.
    float da = 0.0F, part = 0.0F;
    for (int64_t jb = j0; jb < j1; jb += kWarp) {
      const int64_t j = jb + lane;
      if (j < j1) {
        const float k = keep != nullptr ? keep[j * heads + h] : 1.0F;
        da = dot(gh, kv + j * 2 * de + de + h * dh, dh) * k;
        part += att[j * heads + h] * da;
      }
    }
    const float dot_att = warp_sum(part);
    // Softmax, then LeakyReLU (its slope from the recomputed raw score), then q . K.
    for (int64_t jb = j0; jb < j1; jb += kWarp) {
      const int64_t j = jb + lane;
      const int count = j1 - jb < kWarp ? static_cast<int>(j1 - jb) : kWarp;
      float ds = 0.0F, aw = 0.0F;
      if (j < j1) {
        const float a = att[j * heads + h];
        const float k = keep != nullptr ? keep[j * heads + h] : 1.0F;
        if (!one_chunk) da = dot(gh, kv + j * 2 * de + de + h * dh, dh) * k;
        const float raw = dot(qh, kv + j * 2 * de + h * dh, dh);
        ds = a * (da - dot_att) * (raw > 0.0F ? 1.0F : slope);
        aw = a * k;
      }
      for (int64_t cb = 0; cb < dh; cb += kWarp) {
        const int64_t c = cb + lane;
        const float qc = c < dh ? qh[c] : 0.0F;
        const float gc = c < dh ? gh[c] : 0.0F;
        float acc = 0.0F;
        for (int k = 0; k < count; ++k) {
          const float dsk = __shfl_sync(kFullMask, ds, k);
          const float awk = __shfl_sync(kFullMask, aw, k);
          if (c < dh) {
            const int64_t row = (jb + k) * 2 * de + h * dh + c;
            dkv[row] = dsk * qc;
            dkv[row + de] = awk * gc;
            acc += dsk * kv[row];
          }
        }
        if (c < dh) dqh[c] = jb == j0 ? acc : dqh[c] + acc;
      }
    }
  }
}

// ---------------------------------------------------------------- slot attention
// Forward: one warp per (root, head), grid-stride over the R * heads pairs (warp-uniform).
// Each score qk_hr . x_j + c_hr is a whole-warp dot product (one column per lane, so the
// reads of x_j are coalesced; the xor butterfly leaves the same sum in every lane), kept
// by the lane that owns slot j in the softmax (lane (j - j0) % 32), in att: att is again
// this warp's scratch for its own (slot, head) entries, each only ever touched by the lane
// that owns its slot. Then the exponentials and their sum, the weights, and
// ax = sum_j att_j keep_j x_j with one column per lane (weights broadcast by __shfl_sync),
// asum = sum_j att_j keep_j. Any segment length and any dx.
__global__ void slot_attention_forward_kernel(const float* __restrict__ qk, const float* __restrict__ cv,
                                              const float* __restrict__ x,
                                              const int64_t* __restrict__ offsets, int64_t R,
                                              int64_t heads, int64_t dx, float slope,
                                              const float* __restrict__ keep, float* att,
                                              float* __restrict__ ax, float* __restrict__ asum) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int64_t pairs = R * heads;
  const int64_t warp_stride = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
       p < pairs; p += warp_stride) {
    // Head-major pairs: p = h * R + r, the row of qk, c, ax and asum.
    const int64_t h = p / R;
    const int64_t r = p - h * R;
    const int64_t j0 = offsets[r], j1 = offsets[r + 1];
    float* axr = ax + p * dx;
    if (j0 >= j1) {
      for (int64_t c = lane; c < dx; c += kWarp) axr[c] = 0.0F;
      if (lane == 0) asum[p] = 0.0F;
      continue;
    }
    const float* q = qk + p * dx;
    const float cr = cv[p];
    // Scores and their maximum.
    float m = -INFINITY;
    for (int64_t j = j0; j < j1; ++j) {
      const float* xj = x + j * dx;
      float part = 0.0F;
      for (int64_t c = lane; c < dx; c += kWarp) part += q[c] * xj[c];
      const float s = leaky(warp_sum(part) + cr, slope);
      if ((j - j0) % kWarp == lane) att[j * heads + h] = s;
      m = fmaxf(m, s);
    }
    // Exponentials and their sum (one slot per lane).
    float sum = 0.0F;
    for (int64_t jb = j0; jb < j1; jb += kWarp) {
      const int64_t j = jb + lane;
      if (j < j1) {
        const float e = expf(att[j * heads + h] - m);
        att[j * heads + h] = e;
        sum += e;
      }
    }
    sum = warp_sum(sum);
    const float inv = 1.0F / sum;
    // Weights, then ax and asum.
    float total = 0.0F;
    for (int64_t jb = j0; jb < j1; jb += kWarp) {
      const int64_t j = jb + lane;
      const int count = j1 - jb < kWarp ? static_cast<int>(j1 - jb) : kWarp;
      float aw = 0.0F;
      if (j < j1) {
        const float a = att[j * heads + h] * inv;
        att[j * heads + h] = a;
        aw = keep != nullptr ? a * keep[j * heads + h] : a;
        total += aw;
      }
      for (int64_t cb = 0; cb < dx; cb += kWarp) {
        const int64_t c = cb + lane;
        float acc = 0.0F;
        for (int k = 0; k < count; ++k) {
          const float awk = __shfl_sync(kFullMask, aw, k);
          if (c < dx) acc += awk * x[(jb + k) * dx + c];
        }
        if (c < dx) axr[c] = jb == j0 ? acc : axr[c] + acc;
      }
    }
    total = warp_sum(total);
    if (lane == 0) asum[p] = total;
  }
}

// Backward: one block of kSlotThreads per root (grid-stride over roots, block-uniform), its
// heads in turn, so that the rows dx_out[j] of the root's slots sum the contributions of all
// heads without atomics (each thread owns the same columns of every row for every head:
// the first head writes them, the later ones add). Per head h, with g = dax_hr, gs = dasum_hr:
//   d_j = (g . x_j + gs) keep_j, dot_att = sum_j att_j d_j,
//   ds_j = att_j (d_j - dot_att) LeakyReLU'(qk_hr . x_j + c_hr),
//   dx_j += att_j keep_j g + ds_j qk_hr, dqk_hr = sum_j ds_j x_j, dc_hr = sum_j ds_j.
// The per-slot dot products are whole-warp ones (the warps take the slots in turn); their
// results for up to kSlotTile slots wait in shared memory, and the column pass takes the
// slots in tiles of kSlotTile, recomputing the dot products for any tile after the first.
constexpr int kSlotThreads = 128;
constexpr int kSlotWarps = kSlotThreads / kWarp;
constexpr int kSlotTile = 256;

// d_j and the LeakyReLU slope of slot j (whole-warp dot products: every lane gets them).
__device__ __forceinline__ void slot_scalars(const float* __restrict__ q, const float* __restrict__ g,
                                             const float* __restrict__ xj, int64_t dx, int lane,
                                             float gs, float cr, float k, float slope, float& d,
                                             float& f) {
  float gd = 0.0F, qd = 0.0F;
  for (int64_t c = lane; c < dx; c += kWarp) {
    const float xv = xj[c];
    gd += g[c] * xv;
    qd += q[c] * xv;
  }
  d = (warp_sum(gd) + gs) * k;
  f = warp_sum(qd) + cr > 0.0F ? 1.0F : slope;
}

__global__ void __launch_bounds__(kSlotThreads)
    slot_attention_backward_kernel(const float* __restrict__ qk, const float* __restrict__ cv,
                                   const float* __restrict__ x, const int64_t* __restrict__ offsets,
                                   int64_t R, int64_t heads, int64_t dx, float slope,
                                   const float* __restrict__ keep, const float* __restrict__ att,
                                   const float* __restrict__ dax, const float* __restrict__ dasum,
                                   float* __restrict__ dqk, float* __restrict__ dc,
                                   float* __restrict__ dx_out, int64_t dx_cols) {
  __shared__ float s_d[kSlotTile];   // d_j
  __shared__ float s_f[kSlotTile];   // LeakyReLU'(raw score)
  __shared__ float s_ds[kSlotTile];  // ds_j
  __shared__ float s_aw[kSlotTile];  // att_j keep_j
  __shared__ float s_part[kSlotWarps];
  const int t = static_cast<int>(threadIdx.x);
  const int lane = t % kWarp, warp = t / kWarp;
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const int64_t j0 = offsets[r], j1 = offsets[r + 1];
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t p = h * R + r;
      float* dq = dqk + p * dx;
      if (j0 >= j1) {
        for (int64_t c = t; c < dx; c += kSlotThreads) dq[c] = 0.0F;
        if (t == 0) dc[p] = 0.0F;
        continue;
      }
      const float* q = qk + p * dx;
      const float* g = dax + p * dx;
      const float gs = dasum[p], cr = cv[p];
      // d_j for every slot (kept for the first tile) and dot_att.
      float part = 0.0F;
      for (int64_t j = j0 + warp; j < j1; j += kSlotWarps) {
        const float k = keep != nullptr ? keep[j * heads + h] : 1.0F;
        float d = 0.0F, f = 0.0F;
        slot_scalars(q, g, x + j * dx, dx, lane, gs, cr, k, slope, d, f);
        part += att[j * heads + h] * d;
        if (lane == 0 && j - j0 < kSlotTile) {
          s_d[j - j0] = d;
          s_f[j - j0] = f;
        }
      }
      if (lane == 0) s_part[warp] = part;
      __syncthreads();
      float dot_att = 0.0F;
      for (int w = 0; w < kSlotWarps; ++w) dot_att += s_part[w];
      float dcr = 0.0F;  // in warp 0
      for (int64_t tb = j0; tb < j1; tb += kSlotTile) {
        const int count = j1 - tb < kSlotTile ? static_cast<int>(j1 - tb) : kSlotTile;
        if (tb != j0) {
          for (int k = warp; k < count; k += kSlotWarps) {
            const int64_t j = tb + k;
            const float kj = keep != nullptr ? keep[j * heads + h] : 1.0F;
            float d = 0.0F, f = 0.0F;
            slot_scalars(q, g, x + j * dx, dx, lane, gs, cr, kj, slope, d, f);
            if (lane == 0) {
              s_d[k] = d;
              s_f[k] = f;
            }
          }
          __syncthreads();
        }
        if (warp == 0) {
          float dpart = 0.0F;
          for (int k = lane; k < count; k += kWarp) {
            const int64_t j = tb + k;
            const float a = att[j * heads + h];
            const float ds = a * (s_d[k] - dot_att) * s_f[k];
            s_ds[k] = ds;
            s_aw[k] = keep != nullptr ? a * keep[j * heads + h] : a;
            dpart += ds;
          }
          dcr += warp_sum(dpart);
        }
        __syncthreads();
        for (int64_t c = t; c < dx; c += kSlotThreads) {
          const float qc = q[c], gc = g[c];
          float acc = 0.0F;
          for (int k = 0; k < count; ++k) {
            const float ds = s_ds[k];
            acc += ds * x[(tb + k) * dx + c];
            if (c < dx_cols) {
              const int64_t o = (tb + k) * dx_cols + c;
              const float v = s_aw[k] * gc + ds * qc;
              dx_out[o] = h == 0 ? v : dx_out[o] + v;
            }
          }
          dq[c] = tb == j0 ? acc : dq[c] + acc;
        }
        // The shared tiles and s_part are rewritten next.
        __syncthreads();
      }
      if (t == 0) dc[p] = dcr;
    }
  }
}

}  // namespace

// ---------------------------------------------------------------- launchers
void time_encode_forward_cuda(const float* delta, int64_t n, const float* w, const float* b, int64_t d,
                              float* cos_out, float* sin_out, cudaStream_t stream) {
  if (n == 0 || d == 0) return;
  time_encode_forward_kernel<<<blocks_for(n * d, kThreads), kThreads, 0, stream>>>(delta, n, w, b, d,
                                                                                    cos_out, sin_out);
  check_launch("time_encode_forward_cuda");
}

void time_encode_backward_cuda(const float* delta, int64_t n, int64_t d, const float* sin, const float* grad,
                               float* dw, float* db, cudaStream_t stream) {
  constexpr const char* what = "time_encode_backward_cuda";
  if (d == 0) return;
  if (n == 0) {
    // Empty sums: zero gradients (the dispatcher returns before this; kept for other callers).
    for (float* g : {dw, db}) {
      const cudaError_t err = cudaMemsetAsync(g, 0, static_cast<size_t>(d) * sizeof(float), stream);
      if (err != cudaSuccess) {
        (void)cudaGetLastError();
        throw_cuda(what, err);
      }
    }
    return;
  }
  const int64_t col_tiles = (d + kColTile - 1) / kColTile;
  int64_t chunks = std::min<int64_t>((n + kMinRowsPerChunk - 1) / kMinRowsPerChunk, kMaxChunks);
  double* partial = nullptr;
  if (chunks > 1) {
    // Stream-ordered workspace for the per-chunk partial sums; without memory pools
    // (cudaMallocAsync unsupported) fall back to one chunk per column tile.
    const size_t bytes = static_cast<size_t>(2 * chunks * d) * sizeof(double);
    if (cudaMallocAsync(reinterpret_cast<void**>(&partial), bytes, stream) != cudaSuccess) {
      (void)cudaGetLastError();  // clear the (non-sticky) error
      partial = nullptr;
      chunks = 1;
    }
  }
  const int64_t rows_per_chunk = (n + chunks - 1) / chunks;
  const dim3 grid(static_cast<unsigned>(col_tiles), static_cast<unsigned>(chunks));
  const dim3 block(kColTile, kRowThreads);
  double* partial_w = partial;
  double* partial_b = partial != nullptr ? partial + chunks * d : nullptr;
  time_encode_backward_kernel<<<grid, block, 0, stream>>>(delta, n, d, sin, grad, rows_per_chunk, dw, db,
                                                          partial_w, partial_b);
  if (partial != nullptr) {
    const cudaError_t launch = cudaGetLastError();
    if (launch == cudaSuccess) {
      time_encode_finish_kernel<<<blocks_for(d, kThreads), kThreads, 0, stream>>>(partial_w, partial_b, chunks,
                                                                                  d, dw, db);
    }
    const cudaError_t finish = launch == cudaSuccess ? cudaGetLastError() : launch;
    (void)cudaFreeAsync(partial, stream);
    if (finish != cudaSuccess) throw_cuda(what, finish);
  }
  check_launch(what);
}

void segment_attention_forward_cuda(const float* q, const float* kv, const int64_t* offsets, int64_t R,
                                    int64_t heads, int64_t dh, float slope, const float* keep, float* att,
                                    float* out, cudaStream_t stream) {
  if (R == 0 || heads == 0) return;
  segment_attention_forward_kernel<<<blocks_for(R * heads, kWarpsPerBlock), kThreads, 0, stream>>>(
      q, kv, offsets, R, heads, dh, slope, keep, att, out);
  check_launch("segment_attention_forward_cuda");
}

void segment_attention_backward_cuda(const float* q, const float* kv, const int64_t* offsets, int64_t R,
                                     int64_t heads, int64_t dh, float slope, const float* keep, const float* att,
                                     const float* dout, float* dq, float* dkv, cudaStream_t stream) {
  // dq (R x de) and dkv (S x 2de) have no elements when dh == 0.
  if (R == 0 || heads == 0 || dh == 0) return;
  segment_attention_backward_kernel<<<blocks_for(R * heads, kWarpsPerBlock), kThreads, 0, stream>>>(
      q, kv, offsets, R, heads, dh, slope, keep, att, dout, dq, dkv);
  check_launch("segment_attention_backward_cuda");
}

void slot_attention_forward_cuda(const float* qk, const float* c, const float* x, const int64_t* offsets, int64_t R,
                                 int64_t heads, int64_t dx, float slope, const float* keep, float* att, float* ax,
                                 float* asum, cudaStream_t stream) {
  if (R == 0 || heads == 0) return;
  slot_attention_forward_kernel<<<blocks_for(R * heads, kWarpsPerBlock), kThreads, 0, stream>>>(
      qk, c, x, offsets, R, heads, dx, slope, keep, att, ax, asum);
  check_launch("slot_attention_forward_cuda");
}

void slot_attention_backward_cuda(const float* qk, const float* c, const float* x, const int64_t* offsets, int64_t R,
                                  int64_t heads, int64_t dx, float slope, const float* keep, const float* att,
                                  const float* dax, const float* dasum, float* dqk, float* dc, float* dx_out,
                                  int64_t dx_cols, cudaStream_t stream) {
  if (R == 0 || heads == 0) return;
  slot_attention_backward_kernel<<<blocks_for(R, 1), kSlotThreads, 0, stream>>>(
      qk, c, x, offsets, R, heads, dx, slope, keep, att, dax, dasum, dqk, dc, dx_out, dx_cols);
  check_launch("slot_attention_backward_cuda");
}

}  // namespace mlsys::kernels::cuda
