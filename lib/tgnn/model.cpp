// TGN / JODIE / APAN / DyRep on ATen with autograd (the only LibTorch translation unit of the
// module): parameters are plain leaf tensors registered by name, the layers are ATen ops
// (linear, layer_norm, the RNN cell; the GRU cell's arithmetic is kernels::gru_cell), Adam
// is written out (Kingma & Ba, Alg. 1). Speed (bench/tgnn/README.md): every linear map is
// applied once per distinct input it sees in a batch (node, (node, time) pair) and the
// results gathered, rather than once per row of the concatenated input; the temporal
// attention runs in a factored form (GEMMs per root, kernels::slot_attention per slot);
// the time encoding is one kernel (kernels::time_encode); fp32 GEMMs go through OpenBLAS
// (blas_linear) with hand-written backward passes, as custom autograd functions.
#include "tgnn/model.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>

#include "core/error.hpp"
#include "core/timer.hpp"
#include "kernels/dispatch.hpp"
#include "tensor/h5_tensor.hpp"

namespace mlsys::tgnn {

void ModelConfig::resolve() {
  if (updater.empty()) updater = name == "tgn" ? "gru" : (name == "apan" ? "attention" : "rnn");
  if (embedding.empty()) embedding = name == "tgn" ? "attention" : (name == "jodie" ? "time" : "identity");
  if (deliver_to.empty()) deliver_to = name == "apan" ? "neighbors" : "self";
  if (message.empty()) message = name == "dyrep" ? "attention" : "memory";
}

void set_torch_threads(int n) {
  if (n <= 0) return;
  at::set_num_threads(n);
}

void dropout_scales(std::mt19937_64& rng, double p, float* out, int64_t n) {
  if (!(p >= 0.0 && p < 1.0)) throw std::invalid_argument("tgnn::dropout_scales: p must be in [0, 1), got " + std::to_string(p));
  const auto scale = static_cast<float>(1.0 / (1.0 - p));
  const auto threshold = static_cast<uint64_t>(std::ldexp(1.0 - p, 32));  // keep when u < threshold
  for (int64_t i = 0; i < n; i += 2) {
    const uint64_t w = rng();
    out[i] = (w & 0xffffffffULL) < threshold ? scale : 0.0F;
    if (i + 1 < n) out[i + 1] = (w >> 32) < threshold ? scale : 0.0F;
  }
}

namespace {

at::Tensor to_long(const std::vector<int64_t>& v) {
  return at::from_blob(const_cast<int64_t*>(v.data()), {static_cast<int64_t>(v.size())}, at::kLong).clone();
}
at::Tensor to_float(const std::vector<float>& v) {
  return at::from_blob(const_cast<float*>(v.data()), {static_cast<int64_t>(v.size())}, at::kFloat).clone();
}

// phi(delta) = cos(w delta + b) by kernels::time_encode (one pass for cos and the sin its
// backward needs); gradients for w and b only (delta is data).
struct TimeEncodeFn : torch::autograd::Function<TimeEncodeFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& delta, const at::Tensor& w,
                            const at::Tensor& b) {
    auto [co, si] = kernels::time_encode(delta, w, b, true);
    ctx->save_for_backward({delta, si});
    return co;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    auto [dw, db] = kernels::time_encode_backward(saved[0], saved[1], grad[0]);
    return {at::Tensor(), dw, db};
  }
};

// Per-root softmax attention over slots (kernels::segment_attention, LeakyReLU 0.2):
// gradients for q and kv. `keep` is the dropout scale per slot and head, or an empty
// tensor for none (autograd's apply takes no undefined tensors).
struct SegmentAttentionFn : torch::autograd::Function<SegmentAttentionFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q, const at::Tensor& kv,
                            const at::Tensor& offsets, const at::Tensor& keep, int64_t heads) {
    auto [out, att] = kernels::segment_attention(q, kv, offsets, heads, 0.2, keep.numel() > 0 ? keep : at::Tensor());
    ctx->save_for_backward({q, kv, offsets, keep, att});
    ctx->saved_data["heads"] = heads;
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto s = ctx->get_saved_variables();
    auto [dq, dkv] = kernels::segment_attention_backward(s[0], s[1], s[2], ctx->saved_data["heads"].toInt(), 0.2,
                                                         s[3].numel() > 0 ? s[3] : at::Tensor(), s[4], grad[0]);
    return {dq, dkv, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// y = x W^T (+ b) by OpenBLAS's sgemm, with W's row stride as its leading dimension so
// that column blocks of a weight (the K/V split by input) need no copy. On this project's
// CPUs OpenBLAS's sgemm runs these shapes ~10% faster than the MKL bundled with LibTorch
// (bench/tgnn/README.md); every other op stays ATen's.
int blas_int(int64_t v) {
  TORCH_CHECK(v <= std::numeric_limits<int>::max(), "tgnn: GEMM dimension ", v, " exceeds the BLAS int range");
  return static_cast<int>(v);
}

// C (m x n, ldc) = alpha op(A) op(B) + beta C with single-threaded OpenBLAS calls on row
// blocks of C spread over LibTorch's intra-op threads (at::parallel_for): OpenBLAS's own
// thread pool and LibTorch's OpenMP pool would spin against each other on shared cores
// (--threads 2 on 2 cores ran 2.4x slower than 1 thread). Row blocks of C are independent
// (no sums across tasks), but OpenBLAS may round a row differently with the block's row
// count, so results can differ in the last bits between thread counts.
// With `bias` (n floats), each task first writes it into its rows of C and accumulates onto
// it (beta is then ignored): C = op(A) op(B) + bias, the rows still in cache for the GEMM.
void sgemm_rows(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                int64_t ldb, float beta, float* c, int64_t ldc, const float* bias = nullptr) {
  if (m == 0 || n == 0) return;
  const int64_t grain = std::max<int64_t>(32, (int64_t{1} << 20) / std::max<int64_t>(1, n * k));  // rows per task
  TORCH_CHECK(bias == nullptr || beta == 0.0F, "tgnn: sgemm_rows takes a bias or a beta, not both");
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

// x as blas_linear takes it: rows with unit column stride (a column block of a wider
// matrix is used in place), else a contiguous copy.
at::Tensor gemm_rows(const at::Tensor& x) {
  return x.dim() == 2 && (x.size(1) <= 1 || x.stride(1) == 1) && x.stride(0) >= x.size(1) ? x : x.contiguous();
}

at::Tensor blas_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  TORCH_CHECK(w.stride(1) == 1 && w.size(1) == K && (K <= 1 || x.stride(1) == 1) && x.stride(0) >= K, "tgnn: blas_linear layout");
  // (clone, not contiguous(): with M == 1 the expanded bias is already contiguous, and
  // contiguous() would hand back the bias itself.)
  if (K == 0) return b.defined() ? b.unsqueeze(0).expand({M, N}).clone(at::MemoryFormat::Contiguous) : at::zeros({M, N});
  at::Tensor y = at::empty({M, N});
  const at::Tensor bc = b.defined() ? b.contiguous() : at::Tensor();
  // The bias is copied into y's rows by the GEMM tasks, so y never aliases b (a one-row
  // expanded bias once did, and the GEMM wrote into the parameter).
  sgemm_rows(false, true, M, N, K, x.const_data_ptr<float>(), x.stride(0), w.const_data_ptr<float>(), w.stride(0), 0.0F,
             y.mutable_data_ptr<float>(), N, b.defined() ? bc.const_data_ptr<float>() : nullptr);
  return y;
}

// blas_linear with autograd: dx = dy W, dW = dy^T x, db = the column sums of dy. `b` is
// an empty tensor for none (autograd's apply takes no undefined tensors).
struct BlasLinearFn : torch::autograd::Function<BlasLinearFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& w,
                            const at::Tensor& b) {
    // rows of x may be strided (a column block of a wider tensor), its columns not
    const at::Tensor x = gemm_rows(x_in);
    ctx->save_for_backward({x, w});
    ctx->saved_data["bias"] = b.numel() > 0;
    return blas_linear(x, w, b.numel() > 0 ? b : at::Tensor());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor &x = s[0], &w = s[1];
    const at::Tensor dy = grad[0].contiguous();
    const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
    at::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {
      dx = N > 0 ? at::empty({M, K}) : at::zeros({M, K});
      if (N > 0) {
        sgemm_rows(false, false, M, K, N, dy.const_data_ptr<float>(), N, w.const_data_ptr<float>(), w.stride(0), 0.0F,
                   dx.mutable_data_ptr<float>(), K);
      }
    }
    if (ctx->needs_input_grad(1)) {
      dw = M > 0 ? at::empty({N, K}) : at::zeros({N, K});
      if (M > 0) {
        sgemm_rows(true, false, N, K, M, dy.const_data_ptr<float>(), N, x.const_data_ptr<float>(), x.stride(0), 0.0F,
                   dw.mutable_data_ptr<float>(), K);
      }
    }
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) db = dy.sum(0);
    return {dx, dw, db};
  }
};

// out = src[index] by kernels::gather_rows; backward: kernels::scatter_add_rows of the
// gradient into zeros (deterministic; ATen's index_select backward goes through a generic
// scatter that took ~6% of a TGN epoch).
struct GatherRowsFn : torch::autograd::Function<GatherRowsFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& src, const at::Tensor& index) {
    ctx->save_for_backward({index});
    ctx->saved_data["rows"] = src.size(0);
    return kernels::gather_rows(src, index);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const at::Tensor index = ctx->get_saved_variables()[0];
    at::Tensor dsrc = at::zeros({ctx->saved_data["rows"].toInt(), grad[0].size(1)}, grad[0].options());
    kernels::scatter_add_rows(dsrc, index, grad[0].contiguous());
    return {dsrc, at::Tensor()};
  }
};

// src[index] along dimension 0 (any trailing shape), with gradient when autograd records.
at::Tensor gather(const at::Tensor& src, const at::Tensor& index) {
  if (src.dim() != 2) {
    std::vector<int64_t> shape(src.sizes().begin(), src.sizes().end());
    shape[0] = index.size(0);
    return gather(src.reshape({src.size(0), -1}), index).view(shape);
  }
  if (!at::GradMode::is_enabled() || !src.requires_grad()) return kernels::gather_rows(src, index);
  return GatherRowsFn::apply(src, index);
}

// The factored per-root attention (kernels::slot_attention) with its slot inputs built in
// place: x = [h[pair] || phi(delta) || edges[eid]] (S x (dm + dt + De); the columns with a
// gradient first) written block by block into one buffer by kernels::gather_rows_into and
// kernels::time_encode_into, with no per-block tensors and no concatenation. Outputs {ax,
// asum}; gradients for qk, c, h (the slots' rows scatter-added by pair) and the time
// encoder's w and b (the edge features are data). `grad` (0/1): whether a backward pass
// may follow (the forward of a custom function runs with grad mode off).
struct SlotAttentionFn : torch::autograd::Function<SlotAttentionFn> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& qk,
                                                const at::Tensor& c, const at::Tensor& h, const at::Tensor& w,
                                                const at::Tensor& b, const at::Tensor& pair, const at::Tensor& delta,
                                                const at::Tensor& edges, const at::Tensor& eid, const at::Tensor& offsets,
                                                const at::Tensor& keep, int64_t grad) {
    const int64_t S = pair.size(0), dm = h.size(1), dt = w.size(0), De = edges.dim() == 2 ? edges.size(1) : 0;
    at::Tensor x = at::empty({S, dm + dt + De});
    kernels::gather_rows_into(x.narrow(1, 0, dm), h, pair);
    const at::Tensor si = kernels::time_encode_into(x.narrow(1, dm, dt), delta, w, b, grad != 0);
    if (De > 0) kernels::gather_rows_into(x.narrow(1, dm + dt, De), edges, eid);
    auto [ax, asum, att] = kernels::slot_attention(qk, c, x, offsets, 0.2, keep.numel() > 0 ? keep : at::Tensor());
    if (grad != 0) {
      ctx->save_for_backward({qk, c, x, offsets, keep, att, pair, delta, si});
      ctx->saved_data["rows"] = h.size(0);
      ctx->saved_data["dm"] = dm;
    }
    return {ax, asum};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor dax = grad[0].defined() ? grad[0] : at::zeros_like(s[0]);
    const at::Tensor dasum = grad[1].defined() ? grad[1] : at::zeros_like(s[1]);
    const int64_t dm = ctx->saved_data["dm"].toInt(), dt = s[8].size(1);
    auto [dqk, dc, dx] = kernels::slot_attention_backward(s[0], s[1], s[2], s[3], 0.2,
                                                          s[4].numel() > 0 ? s[4] : at::Tensor(), s[5], dax, dasum, dm + dt);
    at::Tensor dh = at::zeros({ctx->saved_data["rows"].toInt(), dm});
    kernels::scatter_add_rows(dh, s[6], dx.narrow(1, 0, dm));
    auto [dw, db] = kernels::time_encode_backward(s[7], s[8], dx.narrow(1, dm, dt));
    return {dqk, dc, dh, dw, db, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// torch.nn.GRUCell's arithmetic from its pre-activations (kernels::gru_cell: gi U x 3d, gh
// U x 3d or 4d, m U x d), with the backward pass written out (kernels::gru_cell_backward)
// instead of autograd's dozen elementwise nodes.
struct GruCellFn : torch::autograd::Function<GruCellFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& gi, const at::Tensor& gh,
                            const at::Tensor& m) {
    auto [out, rz, n] = kernels::gru_cell(gi, gh, m);
    ctx->save_for_backward({rz, n, gh, m});
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto s = ctx->get_saved_variables();
    auto [dgi, dgh, dm] = kernels::gru_cell_backward(grad[0], s[0], s[1], s[2], s[3], ctx->needs_input_grad(2));
    return {dgi, dgh, dm};
  }
};

// The rows a batch needs updated memory for (its roots, then the non-empty neighbour
// slots), collapsed to distinct (node, query time) pairs: the updater's output depends on
// nothing else, so equal pairs share one computation, and the parts that depend on the
// node only (mail and hidden-state projections) run once per distinct node.
struct Rows {
  std::vector<int64_t> nodes;      // distinct nodes
  std::vector<int64_t> pair_node;  // per pair: index into nodes
  std::vector<double> pair_t;      // per pair: query time
  std::vector<int64_t> root_pair;  // per root: its pair
  std::vector<int64_t> slot;       // non-empty neighbour slots (index into roots x k)
  std::vector<int64_t> slot_pair;  // per non-empty slot: the neighbour's pair
  [[nodiscard]] int64_t pairs() const { return static_cast<int64_t>(pair_t.size()); }
  // Pair p is node p (one pair per node, created together).
  [[nodiscard]] bool one_per_node() const { return pair_t.size() == nodes.size(); }
};

// The attention read-out of APAN's updater: weights over the mailbox and their sum of V.
struct Readout {
  at::Tensor value;  // P x dm
  at::Tensor att;    // P x S x H
  at::Tensor V;      // P x S x dm
};

}  // namespace

struct TemporalModel::Impl {
  ModelConfig cfg;
  const graph::EventStream& data;
  int64_t N, De, Dn, dm, dt, dz, S, mail_dim;
  bool attention, time_proj, apan_updater, dyrep_message, deliver_neighbors, by_time, bf16;
  // A node's mail starts with its own memory: mails go to the endpoints only and are built
  // from the updated memory that write_back also stores, and without query times a batch
  // computes one updated memory per node (so the occurrence each picks does not matter).
  // Holds from reset_memory (both zero) on: nothing else writes mem or mail.
  bool self_mail;
  at::Tensor edge_feat, node_feat;
  // Node memory and mailbox (TGL memorys.py): one mail per node (TGN's "last" aggregator),
  // or for the attention updater a ring of S mails with their times and an empty flag.
  at::Tensor mem, mail;
  std::vector<double> mem_ts;
  std::vector<float> mail_dt;  // per node: time between its last two events (mail's dt)
  std::vector<double> mail_ts;     // N x S (attention updater)
  std::vector<uint8_t> mail_full;  // N x S: slot holds a mail
  std::vector<int64_t> next_slot;  // N: ring position of the next mail
  std::vector<std::pair<std::string, at::Tensor>> params;
  std::vector<at::Tensor> adam_m, adam_v, snapshot;
  int64_t adam_step = 0;
  std::mt19937_64 rng;
  // Dropout masks (keep_scales); its own stream, so that the uniform sampler's draws do not
  // depend on the dropout rates.
  mutable std::mt19937_64 drop_rng;
  // Scratch, -1 between uses: last batch position of a node (write-back), a node's index
  // in Rows::nodes, an event's index among a batch's distinct edges.
  std::vector<int64_t> stamp, node_slot, edge_slot;

  Impl(const ModelConfig& c, const graph::EventStream& d, uint64_t seed) : cfg(c), data(d), rng(seed), drop_rng(seed ^ 0x9e3779b97f4a7c15ULL) {
    cfg.resolve();
    at::manual_seed(seed);
    openblas_set_num_threads(1);  // sgemm_rows spreads the GEMMs over LibTorch's threads
    N = d.num_nodes, De = d.edge_dim, Dn = d.node_dim;
    dm = cfg.memory_dim, dt = cfg.time_dim;
    attention = cfg.embedding == "attention";
    time_proj = cfg.embedding == "time";
    apan_updater = cfg.updater == "attention";
    dyrep_message = cfg.message == "attention";
    deliver_neighbors = cfg.deliver_to == "neighbors";
    by_time = apan_updater || cfg.memory_time == "query";
    self_mail = cfg.use_memory && !apan_updater && !by_time && !deliver_neighbors;
    bf16 = cfg.precision == "bf16";
    S = apan_updater ? cfg.mailbox_size : 1;
    dz = attention ? cfg.embed_dim : dm;
    // A mail is [s_self || s_other || e]; DyRep puts the other endpoint's attention
    // embedding (embed_dim wide) in place of its memory.
    mail_dim = dm + (dyrep_message ? cfg.embed_dim : dm) + De;
    if (De > 0) edge_feat = to_float(d.edge_feat).view({static_cast<int64_t>(d.size()), De});
    if (Dn > 0) node_feat = to_float(d.node_feat).view({N, Dn});
    // Time encoding phi(dt) = cos(w dt + b), w_i = 10^(-9 i / (d_t - 1)) (TGL TimeEncode).
    add("time_encoder.w", at::pow(10.0, at::linspace(0, -9, dt, at::kFloat)));
    add("time_encoder.b", at::zeros({dt}));
    if (apan_updater) {
      // TGL's TransformerMemoryUpdater: w_q on the memory, w_k/w_v on [mail || phi].
      linear("memory_updater.w_q", dm, dm);
      linear("memory_updater.w_k", dm, mail_dim + dt);
      linear("memory_updater.w_v", dm, mail_dim + dt);
      add("memory_updater.layer_norm.weight", at::ones({dm}));
      add("memory_updater.layer_norm.bias", at::zeros({dm}));
      linear("memory_updater.mlp", dm, dm);
    } else {
      const int64_t gates = cfg.updater == "gru" ? 3 * dm : dm;
      const double bu = 1.0 / std::sqrt(static_cast<double>(dm));
      add("memory_updater.weight_ih", uniform({gates, mail_dim + dt}, bu));
      add("memory_updater.weight_hh", uniform({gates, dm}, bu));
      add("memory_updater.bias_ih", uniform({gates}, bu));
      add("memory_updater.bias_hh", uniform({gates}, bu));
    }
    if (Dn > 0) linear("node_proj", dm, Dn);
    if (attention || dyrep_message) {
      const int64_t de = cfg.embed_dim;
      linear("attention.w_q", de, dm + dt);
      linear("attention.w_k", de, dm + De + dt);
      linear("attention.w_v", de, dm + De + dt);
      linear("attention.w_out", de, de + dm);
      add("attention.layer_norm.weight", at::ones({de}));
      add("attention.layer_norm.bias", at::zeros({de}));
    }
    if (time_proj) {
      add("time_projection.weight", at::randn({dm, 1}) * 0.1);
      add("time_projection.bias", at::zeros({dm}));
    }
    linear("edge_predictor.src", dz, dz);
    linear("edge_predictor.dst", dz, dz);
    linear("edge_predictor.out", 1, dz);
    for (auto& [n, p] : params) {
      adam_m.push_back(at::zeros_like(p));
      adam_v.push_back(at::zeros_like(p));
    }
    stamp.assign(static_cast<size_t>(N), -1);
    node_slot.assign(static_cast<size_t>(N), -1);
    edge_slot.assign(d.size(), -1);
    reset_memory();
  }

  static at::Tensor uniform(at::IntArrayRef shape, double bound) { return at::rand(shape) * (2 * bound) - bound; }
  void add(const std::string& name, at::Tensor t) { params.emplace_back(name, t.contiguous().set_requires_grad(true)); }
  // torch.nn.Linear's initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  void linear(const std::string& name, int64_t out, int64_t in) {
    const double b = 1.0 / std::sqrt(static_cast<double>(in));
    add(name + ".weight", uniform({out, in}, b));
    add(name + ".bias", uniform({out}, b));
  }
  const at::Tensor& P(const std::string& name) const {
    for (const auto& [n, p] : params) {
      if (n == name) return p;
    }
    throw std::logic_error("tgnn: no parameter " + name);
  }
  // x W^T (+ b) in the configured precision. fp32: blas_linear (OpenBLAS) with its own
  // backward. bf16: both factors rounded to bfloat16, the
  // rows padded to a multiple of 256 (oneDNN compiles a kernel per GEMM shape; a batch's
  // row counts vary, their buckets repeat), the product back in float32, then the bias.
  at::Tensor mm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = {}) const {
    if (!bf16) {
      if (cfg.aten_gemm) return at::linear(x, w, b);
      if (!at::GradMode::is_enabled()) return blas_linear(gemm_rows(x), w, b);
      return BlasLinearFn::apply(x, w, b.defined() ? b : at::empty({0}));
    }
    const int64_t M = x.size(0), Mp = (M + 255) / 256 * 256;
    at::Tensor xb = x.to(at::kBFloat16);
    if (Mp != M) xb = at::constant_pad_nd(xb, {0, 0, 0, Mp - M});
    at::Tensor y = at::linear(xb, w.to(at::kBFloat16)).narrow(0, 0, M).to(at::kFloat);
    return b.defined() ? y + b : y;
  }
  at::Tensor lin(const at::Tensor& x, const std::string& name) const { return mm(x, P(name + ".weight"), P(name + ".bias")); }
  // K and V of an attention as one GEMM: [W_k; W_v] and [b_k; b_v].
  std::pair<at::Tensor, at::Tensor> fused_kv(const std::string& prefix) const {
    return {at::cat({P(prefix + ".w_k.weight"), P(prefix + ".w_v.weight")}, 0),
            at::cat({P(prefix + ".w_k.bias"), P(prefix + ".w_v.bias")}, 0)};
  }

  void reset_memory() {
    mem = at::zeros({N, dm});
    mail = apan_updater ? at::zeros({N, S, mail_dim}) : at::zeros({N, mail_dim});
    mem_ts.assign(static_cast<size_t>(N), 0.0);
    mail_dt.assign(static_cast<size_t>(N), 0.0F);
    mail_ts.assign(static_cast<size_t>(N * S), 0.0);
    mail_full.assign(static_cast<size_t>(N * S), 0);
    next_slot.assign(static_cast<size_t>(N), 0);
  }

  at::Tensor phi(const at::Tensor& delta) const {
    const at::Tensor &w = P("time_encoder.w"), &b = P("time_encoder.b");
    if (!at::GradMode::is_enabled()) return kernels::time_encode(delta, w, b, false).first;
    return TimeEncodeFn::apply(delta, w, b);
  }

  // TGL's edge predictor on [src (B) || dst (B) || neg (B q)] embeddings: scores of
  // (src, dst) and of (src, each negative). W_s z_src runs once and is shared by the
  // positive and the negative pairs; W_d runs on dst and negatives in one GEMM.
  std::pair<at::Tensor, at::Tensor> predict(const at::Tensor& z, int64_t B, int64_t q) const {
    // split, not narrow: one backward node that assembles the gradient, where each narrow
    // would build a zero tensor of the full size for its block.
    const auto zs = z.split_with_sizes({B, B * (1 + q)});
    const at::Tensor ps = lin(zs[0], "edge_predictor.src");
    const at::Tensor pd = lin(zs[1], "edge_predictor.dst");
    auto head = [&](const at::Tensor& x) { return lin(at::relu(x), "edge_predictor.out").squeeze(1); };
    if (q == 0) return {head(ps + pd), at::Tensor()};
    const auto pds = pd.split_with_sizes({B, B * q});
    return {head(ps + pds[0]), head((q == 1 ? ps : ps.repeat_interleave(q, 0)) + pds[1])};
  }

  // Roots and (when nb) the non-empty slots of their neighbour block as distinct pairs;
  // without `keyed_by_time` one pair per node (the updater ignores the query time).
  Rows build_rows(const std::vector<int64_t>& roots, const std::vector<double>& ts, const graph::NeighborBlock* nb, bool keyed_by_time) {
    Rows rw;
    std::vector<int64_t> head, next;  // per node: its latest pair; per pair: the node's previous pair
    auto pair_of = [&](int64_t v, double t) {
      auto& slot = node_slot[static_cast<size_t>(v)];
      if (slot < 0) {
        slot = static_cast<int64_t>(rw.nodes.size());
        rw.nodes.push_back(v);
        head.push_back(-1);
      }
      for (int64_t p = head[static_cast<size_t>(slot)]; p >= 0; p = next[static_cast<size_t>(p)]) {
        if (!keyed_by_time || rw.pair_t[static_cast<size_t>(p)] == t) return p;
      }
      const auto p = static_cast<int64_t>(rw.pair_t.size());
      rw.pair_t.push_back(t);
      rw.pair_node.push_back(slot);
      next.push_back(head[static_cast<size_t>(slot)]);
      head[static_cast<size_t>(slot)] = p;
      return p;
    };
    rw.root_pair.reserve(roots.size());
    for (size_t i = 0; i < roots.size(); ++i) rw.root_pair.push_back(pair_of(roots[i], ts[i]));
    if (nb != nullptr) {
      const auto k = static_cast<size_t>(nb->k);
      for (size_t i = 0; i < nb->nbr.size(); ++i) {
        if (nb->nbr[i] < 0) continue;  // an empty slot: masked, needs no memory
        rw.slot.push_back(static_cast<int64_t>(i));
        rw.slot_pair.push_back(pair_of(nb->nbr[i], ts[i / k]));
      }
    }
    for (int64_t v : rw.nodes) node_slot[static_cast<size_t>(v)] = -1;
    return rw;
  }

  // APAN's read-out (TGL TransformerMemoryUpdater, with empty slots masked): per pair,
  // att = softmax_s(LeakyReLU(Q . K_s)) per head with Q = W_q mem and K/V =
  // W_{k,v}[mail_s || phi(t - mail_ts_s)]; `kv_mail` is the mail part of K/V (with bias),
  // `dts` the P x S times, `mask` P x S x 1. A node without mails reads out 0.
  Readout mailbox_readout(const at::Tensor& mem_p, const at::Tensor& kv_mail, const at::Tensor& w_kv, const at::Tensor& dts,
                          const at::Tensor& mask, bool train) const {
    const int64_t Pn = mem_p.size(0), H = cfg.heads, dh = dm / H;
    const at::Tensor kv = kv_mail + mm(phi(dts), w_kv.narrow(1, mail_dim, dt)).view({Pn, S, 2 * dm});
    const at::Tensor K = kv.narrow(2, 0, dm).reshape({Pn, S, H, dh});
    Readout r;
    r.V = kv.narrow(2, dm, dm);
    const at::Tensor q = lin(mem_p, "memory_updater.w_q").view({Pn, 1, H, dh});
    at::Tensor att = at::leaky_relu((q * K).sum(-1), 0.2);                 // P x S x H
    att = at::softmax(att.masked_fill(mask == 0, -1e9), 1) * mask;         // empty slots: 0
    r.att = dropout(att, cfg.att_dropout, train);
    r.value = (r.att.unsqueeze(-1) * r.V.reshape({Pn, S, H, dh})).sum(1).reshape({Pn, dm});
    return r;
  }

  // Memory of the rows' pairs updated from their mails (the lazy update, with gradient into
  // the updater). GRU/RNN: s' = Cell([mail || phi(dt)], mem), with dt the pair's query time
  // minus the node's memory time ("query", TGL) or the time between the node's last two
  // events ("message", TGN); the gates are split as W_mail mail (per node) + W_t phi(dt)
  // (per pair) + W_hh mem (per node), the same sum as one GEMM on the concatenation.
  // Attention (APAN): s' = ReLU(Dropout(MLP(LayerNorm(readout + mem)))).
  at::Tensor updated_memory(const Rows& rw, bool train, StageTimes& times) {
    const int64_t Pn = rw.pairs();
    if (!cfg.use_memory) return at::zeros({Pn, dm});
    core::Timer tf;
    const at::Tensor idx = to_long(rw.nodes);
    const bool same = rw.one_per_node();
    const at::Tensor pn = same ? at::Tensor() : to_long(rw.pair_node);
    auto per_pair = [&](const at::Tensor& x) { return same ? x : gather(x, pn); };
    const at::Tensor m = kernels::gather_rows(mem, idx);
    const auto U = static_cast<int64_t>(rw.nodes.size());
    if (apan_updater) {
      const at::Tensor mails = kernels::gather_rows(mail.view({N, S * mail_dim}), idx).view({U * S, mail_dim});
      std::vector<float> dts(static_cast<size_t>(Pn * S)), full(static_cast<size_t>(Pn * S));
      for (size_t p = 0; p < static_cast<size_t>(Pn); ++p) {
        const auto v = static_cast<size_t>(rw.nodes[static_cast<size_t>(rw.pair_node[p])]);
        for (size_t s = 0; s < static_cast<size_t>(S); ++s) {
          const size_t f = v * static_cast<size_t>(S) + s, o = p * static_cast<size_t>(S) + s;
          full[o] = mail_full[f] ? 1.0F : 0.0F;
          dts[o] = mail_full[f] ? static_cast<float>(rw.pair_t[p] - mail_ts[f]) : 0.0F;
        }
      }
      times.fetch += tf.seconds();
      const auto [w_kv, b_kv] = fused_kv("memory_updater");
      const at::Tensor kv_mail = per_pair(mm(mails, w_kv.narrow(1, 0, mail_dim), b_kv).view({U, S, 2 * dm}));
      const at::Tensor mp = per_pair(m);
      const Readout r = mailbox_readout(mp, kv_mail, w_kv, to_float(dts), to_float(full).view({Pn, S, 1}), train);
      const at::Tensor x = at::layer_norm(r.value + mp, {dm}, P("memory_updater.layer_norm.weight"), P("memory_updater.layer_norm.bias"));
      return at::relu(dropout(lin(x, "memory_updater.mlp"), cfg.dropout, train));
    }
    const at::Tensor mails = kernels::gather_rows(mail, idx);
    std::vector<float> delta(static_cast<size_t>(Pn));
    for (size_t p = 0; p < delta.size(); ++p) {
      const auto v = static_cast<size_t>(rw.nodes[static_cast<size_t>(rw.pair_node[p])]);
      delta[p] = by_time ? static_cast<float>(rw.pair_t[p] - mem_ts[v]) : mail_dt[v];
    }
    times.fetch += tf.seconds();
    const at::Tensor& w_ih = P("memory_updater.weight_ih");
    const at::Tensor &w_hh = P("memory_updater.weight_hh"), &b_hh = P("memory_updater.bias_hh");
    if (self_mail && !cfg.unfolded_self_mail && same) {  // (self_mail implies one pair per node)
      // The mail is [mem || rest] (see self_mail), so W_ih,self mail_self + W_hh mem =
      // (W_ih,self + W_hh) mem wherever the two sums are added: all of the RNN's, the GRU's
      // r and z gates (its n gate multiplies W_hh mem + b_hh by r). One GEMM of mem against
      // [W_ih,self + W_hh (r, z); W_ih,self (n); W_hh (n)] replaces the mail GEMM's first
      // dm columns and the hidden-state GEMM (U x dm x 4dm multiply-adds instead of 6dm).
      const auto wi = w_ih.split_with_sizes({dm, mail_dim - dm, dt}, 1);  // self, other + edge, time
      const at::Tensor gi = mm(mails.narrow(1, dm, mail_dim - dm), wi[1], P("memory_updater.bias_ih")) + mm(phi(to_float(delta)), wi[2]);
      if (cfg.updater != "gru") return at::tanh(gi + mm(m, wi[0] + w_hh, b_hh));
      const auto ws = wi[0].split_with_sizes({2 * dm, dm}), wh = w_hh.split_with_sizes({2 * dm, dm});
      const auto bh = b_hh.split_with_sizes({2 * dm, dm});
      const at::Tensor g = mm(m, at::cat({ws[0] + wh[0], ws[1], wh[1]}), at::cat({bh[0], at::zeros({dm}), bh[1]}));  // U x 4dm
      return GruCellFn::apply(gi, g, m);
    }
    const auto wi = w_ih.split_with_sizes({mail_dim, dt}, 1);
    const at::Tensor gi = per_pair(mm(mails, wi[0], P("memory_updater.bias_ih"))) + mm(phi(to_float(delta)), wi[1]);
    const at::Tensor gh = per_pair(mm(m, w_hh, b_hh));
    if (cfg.updater != "gru") return at::tanh(gi + gh);
    // torch.nn.GRUCell: r, z, n gates in that order.
    return GruCellFn::apply(gi, gh, per_pair(m));
  }

  // TGN eq. 5-9 in TGL's form: one layer, H heads, LeakyReLU(0.2) scores, over the
  // non-empty neighbour slots of each root (no neighbours: h~ = 0), with a slot's input
  // x_j = [h_j || e_j || phi(dt_j)], K_j = W_k x_j + b_k and V_j = W_v x_j + b_v.
  //
  // Factored form (the default): K and V are never formed per slot. Per root and head,
  // q . K_j = (W_k,h^T q_h) . x_j + q_h . b_k,h and sum_j a_j V_j = W_v,h (sum_j a_j x_j)
  // + b_v,h sum_j a_j, so the GEMMs run on the roots (2 x R x d_h x d_x each way) instead
  // of the slots (S x d_x x 2 d_e), ~3x fewer multiply-adds, and kernels::slot_attention
  // does the per-slot work (scores, softmax, dropout, the weighted sum of x) and its
  // backward. cfg.kv_attention (test-only) runs the K/V form instead: the same function
  // up to float rounding.
  at::Tensor attend(const at::Tensor& h_root, const at::Tensor& h, const Rows& rw, const graph::NeighborBlock& nb,
                    const std::vector<double>& ts, bool train, StageTimes& times) {
    if (cfg.kv_attention) return attend_kv(h_root, h, rw, nb, ts, train, times);
    core::Timer tf;
    const int64_t R = h_root.size(0), k = nb.k, H = cfg.heads, de = cfg.embed_dim, dh = de / H;
    const int64_t Dx = dm + De + dt;
    const size_t nv = rw.slot.size();
    std::vector<float> dnb(nv);
    std::vector<int64_t> offsets(static_cast<size_t>(R + 1), 0), slot_eid(De > 0 ? nv : 0);
    for (size_t s = 0; s < nv; ++s) {
      const auto i = static_cast<size_t>(rw.slot[s]);
      if (De > 0) slot_eid[s] = nb.eid[i];
      dnb[s] = static_cast<float>(ts[i / static_cast<size_t>(k)] - nb.t[i]);
      ++offsets[i / static_cast<size_t>(k) + 1];
    }
    for (size_t r = 0; r < static_cast<size_t>(R); ++r) offsets[r + 1] += offsets[r];
    times.fetch += tf.seconds();
    // The kernel sees x_j = [h_j || phi(dt_j) || e_j] (the columns with a gradient first),
    // so W_k and W_v (TGL's column order [h || e || phi]) are permuted to match.
    auto permuted = [&](const at::Tensor& w) {
      if (De == 0) return w;
      const auto b = w.split_with_sizes({dm, De, dt}, 1);
      return at::cat({b[0], b[2], b[1]}, 1);
    };
    const at::Tensor q = attention_query(h_root);
    const at::Tensor qh = q.view({R, H, dh}).transpose(0, 1);                                  // H x R x dh
    const at::Tensor qk = at::bmm(qh, permuted(P("attention.w_k.weight")).view({H, dh, Dx}));  // H x R x Dx
    const at::Tensor c = (qh * P("attention.w_k.bias").view({H, 1, dh})).sum(-1);             // H x R
    const auto ax = SlotAttentionFn::apply(qk, c, h, P("time_encoder.w"), P("time_encoder.b"), to_long(rw.slot_pair), to_float(dnb),
                                           De > 0 ? edge_feat : at::empty({0}), De > 0 ? to_long(slot_eid) : at::empty({0}, at::kLong),
                                           to_long(offsets), dropout_keep(static_cast<int64_t>(nv), train),
                                           at::GradMode::is_enabled() ? 1 : 0);
    // W_v,h (sum_j a_j x_j) + b_v,h sum_j a_j, per head; then heads side by side.
    const at::Tensor vh = at::baddbmm(ax[1].unsqueeze(-1) * P("attention.w_v.bias").view({H, 1, dh}), ax[0],
                                      permuted(P("attention.w_v.weight")).view({H, dh, Dx}).transpose(1, 2));  // H x R x dh
    const at::Tensor agg = vh.transpose(0, 1).reshape({R, de});
    return attention_output(agg, h_root, train);
  }

  // dropout_scales as a tensor, from drop_rng. (ATen's bernoulli_ draws one 64-bit number
  // per unit through its generator and took ~2% of a TGN epoch; this is ~10x cheaper.)
  at::Tensor keep_scales(int64_t n, double p) const {
    at::Tensor k = at::empty({n});
    dropout_scales(drop_rng, p, k.mutable_data_ptr<float>(), n);
    return k;
  }

  // Dropout with rate p (identity unless training).
  at::Tensor dropout(const at::Tensor& x, double p, bool train) const {
    if (!train || p <= 0) return x;
    if (p >= 1) return x * 0.0;
    return x * keep_scales(x.numel(), p).view(x.sizes());
  }

  // The attention's query of each root: W_q [h_root || phi(0)] + b_q (the time part is the
  // same for every root: one row, broadcast as a bias). Both attention forms.
  at::Tensor attention_query(const at::Tensor& h_root) const {
    const auto wq = P("attention.w_q.weight").split_with_sizes({dm, dt}, 1);
    return mm(h_root, wq[0], at::linear(phi(at::zeros({1})), wq[1], P("attention.w_q.bias")).squeeze(0));
  }

  // TGN's attention output: LayerNorm(ReLU(Dropout(W_out [agg || h_root] + b_out))).
  at::Tensor attention_output(const at::Tensor& agg, const at::Tensor& h_root, bool train) const {
    const at::Tensor out = at::relu(dropout(lin(at::cat({agg, h_root}, 1), "attention.w_out"), cfg.dropout, train));
    return at::layer_norm(out, {cfg.embed_dim}, P("attention.layer_norm.weight"), P("attention.layer_norm.bias"));
  }

  // The attention dropout's keep scales (slots x heads), or an empty tensor when off.
  at::Tensor dropout_keep(int64_t slots, bool train) const {
    if (!train || cfg.att_dropout <= 0) return at::empty({0});
    if (cfg.att_dropout >= 1) return at::zeros({slots, cfg.heads});
    return keep_scales(slots * cfg.heads, cfg.att_dropout).view({slots, cfg.heads});
  }

  // The K/V form of attend (test-only reference): K and V as one GEMM on [W_k; W_v], split
  // by input block: the node part once per distinct neighbour pair, the edge part once per
  // distinct edge, the time part per slot; then kernels::segment_attention.
  at::Tensor attend_kv(const at::Tensor& h_root, const at::Tensor& h, const Rows& rw, const graph::NeighborBlock& nb,
                       const std::vector<double>& ts, bool train, StageTimes& times) {
    core::Timer tf;
    const int64_t R = h_root.size(0), k = nb.k, H = cfg.heads;
    const size_t nv = rw.slot.size();
    std::vector<int64_t> local(static_cast<size_t>(rw.pairs()), -1), nb_pairs, slot_nb, eids, slot_e;
    std::vector<float> dnb(nv);
    std::vector<int64_t> offsets(static_cast<size_t>(R + 1), 0);  // root r's slots: [offsets[r], offsets[r+1])
    slot_nb.reserve(nv);
    for (size_t s = 0; s < nv; ++s) {
      const auto i = static_cast<size_t>(rw.slot[s]);
      auto& lp = local[static_cast<size_t>(rw.slot_pair[s])];
      if (lp < 0) {
        lp = static_cast<int64_t>(nb_pairs.size());
        nb_pairs.push_back(rw.slot_pair[s]);
      }
      slot_nb.push_back(lp);
      if (De > 0) {
        auto& le = edge_slot[static_cast<size_t>(nb.eid[i])];
        if (le < 0) {
          le = static_cast<int64_t>(eids.size());
          eids.push_back(nb.eid[i]);
        }
        slot_e.push_back(le);
      }
      dnb[s] = static_cast<float>(ts[i / static_cast<size_t>(k)] - nb.t[i]);
      ++offsets[i / static_cast<size_t>(k) + 1];
    }
    for (size_t r = 0; r < static_cast<size_t>(R); ++r) offsets[r + 1] += offsets[r];
    for (int64_t e : eids) edge_slot[static_cast<size_t>(e)] = -1;
    const at::Tensor e_feat = De > 0 ? kernels::gather_rows(edge_feat, to_long(eids)) : at::Tensor();
    times.fetch += tf.seconds();
    const auto [w_kv, b_kv] = fused_kv("attention");
    at::Tensor kv = mm(h.index_select(0, to_long(nb_pairs)), w_kv.narrow(1, 0, dm)).index_select(0, to_long(slot_nb));
    if (De > 0) kv = kv + mm(e_feat, w_kv.narrow(1, dm, De)).index_select(0, to_long(slot_e));
    kv = mm(phi(to_float(dnb)), w_kv.narrow(1, dm + De, dt), b_kv) + kv;  // nv x 2de
    const at::Tensor q = attention_query(h_root);
    const at::Tensor agg = SegmentAttentionFn::apply(q, kv, to_long(offsets), dropout_keep(static_cast<int64_t>(nv), train), H);
    return attention_output(agg, h_root, train);
  }

  struct Forward {
    at::Tensor z;       // roots x dz
    at::Tensor s_root;  // roots x dm: updated memory of the roots (for write-back)
  };

  void sample(const graph::TemporalGraph& g, const std::vector<int64_t>& roots, const std::vector<double>& ts, graph::NeighborBlock& nb) {
    if (cfg.sampler == "uniform") {
      graph::sample_uniform(g, roots, ts, cfg.neighbors, rng, nb);
    } else {
      graph::sample_recent(g, roots, ts, cfg.neighbors, nb, cfg.leak_own_edge);
    }
  }

  // Embeddings of `roots` at `ts`: memory update, node features, then the embedding module
  // (temporal attention when `with_attention`).
  Forward embed(const std::vector<int64_t>& roots, const std::vector<double>& ts, const graph::TemporalGraph& g, bool train,
                StageTimes& times, bool with_attention) {
    graph::NeighborBlock nb;
    if (with_attention) {
      core::Timer t0;
      sample(g, roots, ts, nb);
      times.sample += t0.seconds();
    }
    const Rows rw = build_rows(roots, ts, with_attention ? &nb : nullptr, by_time);
    const at::Tensor s = updated_memory(rw, train, times);
    at::Tensor h = s;
    if (Dn > 0) {
      const at::Tensor x = lin(kernels::gather_rows(node_feat, to_long(rw.nodes)), "node_proj");
      h = h + (rw.one_per_node() ? x : gather(x, to_long(rw.pair_node)));
    }
    const at::Tensor ri = to_long(rw.root_pair);
    Forward f;
    f.s_root = gather(s, ri);
    const at::Tensor h_root = gather(h, ri);
    if (with_attention) {
      f.z = attend(h_root, h, rw, nb, ts, train, times);
    } else if (time_proj) {
      // JODIE's projection h * (1 + w (t - mem_ts) / (t + 1)) (TGL's normalised form).
      std::vector<float> rel(roots.size());
      for (size_t i = 0; i < roots.size(); ++i) {
        rel[i] = static_cast<float>((ts[i] - mem_ts[static_cast<size_t>(roots[i])]) / (ts[i] + 1.0));
      }
      f.z = h_root * (1 + at::linear(to_float(rel).unsqueeze(1), P("time_projection.weight"), P("time_projection.bias")));
    } else {
      f.z = h_root;
    }
    return f;
  }

  // Adam (Kingma & Ba, Alg. 1) as ATen ops. (A fused one-pass kernel was tried: equal
  // per step up to an ulp, ~3% faster per epoch, but over 7 seeds its one-epoch test AP
  // averaged 0.930 against 0.935 with these ops, 6 of 7 seeds lower; unexplained, so not
  // kept. bench/tgnn/README.md.)
  void adam() {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    ++adam_step;
    const double c1 = 1 - std::pow(b1, static_cast<double>(adam_step));
    const double c2 = 1 - std::pow(b2, static_cast<double>(adam_step));
    at::NoGradGuard ng;
    for (size_t i = 0; i < params.size(); ++i) {
      at::Tensor& p = params[i].second;
      const at::Tensor g = p.grad();
      if (!g.defined()) continue;
      adam_m[i].mul_(b1).add_(g, 1 - b1);
      adam_v[i].mul_(b2).addcmul_(g, g, 1 - b2);
      p.addcdiv_(adam_m[i], (adam_v[i] / c2).sqrt_().add_(eps), -cfg.lr / c1);
      p.mutable_grad() = at::Tensor();
    }
  }

  // Write-back after the loss (no gradient). Memory of the true src/dst only, the last
  // occurrence in the batch winning (TGL's unique scatter; TGN's "last"). Mails: src gets
  // [s_src || s_dst || e] and dst [s_dst || s_src || e] (DyRep: the other endpoint's
  // attention embedding in place of its memory); with deliver_to "neighbors" (APAN) each
  // endpoint's mail also goes to its most recent neighbours before t. One mail per node
  // per batch (TGL's "last" combine): the node's own last mail if it had an event in the
  // batch, else the last mail delivered to it as a neighbour (TGL lets neighbour mails win;
  // here they would flood the mailbox of every active node, so own mails take priority);
  // the attention updater keeps it in its ring of S mails.
  void write_back(const std::vector<size_t>& events, size_t b0, size_t B, const std::vector<int64_t>& roots,
                  const std::vector<double>& ts, const Forward& f, const graph::TemporalGraph& g, StageTimes& times) {
    at::NoGradGuard ng;
    const auto Bi = static_cast<int64_t>(B);
    const at::Tensor s_src = f.s_root.narrow(0, 0, Bi).detach(), s_dst = f.s_root.narrow(0, Bi, Bi).detach();
    const std::vector<int64_t> ends(roots.begin(), roots.begin() + static_cast<long>(2 * B));
    const std::vector<double> ends_t(ts.begin(), ts.begin() + static_cast<long>(2 * B));
    at::Tensor other_of_src = s_dst, other_of_dst = s_src;
    if (dyrep_message) {
      // DyRep (TGN's --use_destination_embedding_in_message): the other endpoint's temporal
      // attention embedding over its neighbours at t. Built here, without gradient, as TGN
      // detaches stored messages, so the attention weights keep their initialisation.
      StageTimes inner;
      const at::Tensor z = embed(ends, ends_t, g, false, inner, true).z;
      times.sample += inner.sample;
      other_of_src = z.narrow(0, Bi, Bi);
      other_of_dst = z.narrow(0, 0, Bi);
    }
    std::vector<at::Tensor> src_mail{s_src, other_of_src}, dst_mail{s_dst, other_of_dst};
    if (De > 0) {
      std::vector<int64_t> eids(B);
      for (size_t i = 0; i < B; ++i) eids[i] = static_cast<int64_t>(events[b0 + i]);
      const at::Tensor e = kernels::gather_rows(edge_feat, to_long(eids));
      src_mail.push_back(e);
      dst_mail.push_back(e);
    }
    const at::Tensor mails = at::cat({at::cat(src_mail, 1), at::cat(dst_mail, 1)}, 0);  // 2B x mail_dim
    // Deliveries (node, mail row) in event order.
    std::vector<int64_t> to, from;
    graph::NeighborBlock nb;
    if (deliver_neighbors) {
      core::Timer t0;
      sample(g, ends, ends_t, nb);
      times.sample += t0.seconds();
    }
    const auto k = static_cast<size_t>(nb.k);
    for (size_t i = 0; deliver_neighbors && i < B; ++i) {
      for (size_t side : {i, B + i}) {
        for (size_t j = 0; j < k; ++j) {
          const int64_t v = nb.nbr[side * k + j];
          if (v < 0) continue;
          to.push_back(v);
          from.push_back(static_cast<int64_t>(side));
        }
      }
    }
    for (size_t i = 0; i < B; ++i) {
      to.push_back(roots[i]);
      from.push_back(static_cast<int64_t>(i));
      to.push_back(roots[B + i]);
      from.push_back(static_cast<int64_t>(B + i));
    }
    for (size_t p = 0; p < to.size(); ++p) stamp[static_cast<size_t>(to[p])] = static_cast<int64_t>(p);
    std::vector<int64_t> mail_at, mail_rows;
    for (size_t p = 0; p < to.size(); ++p) {
      const auto v = static_cast<size_t>(to[p]);
      if (stamp[v] != static_cast<int64_t>(p)) continue;
      stamp[v] = -1;
      const double t_event = data.t[events[b0 + static_cast<size_t>(from[p]) % B]];
      mail_dt[v] = static_cast<float>(t_event - mem_ts[v]);
      if (apan_updater) {
        const int64_t slot = next_slot[v];
        next_slot[v] = (slot + 1) % S;
        const size_t fl = v * static_cast<size_t>(S) + static_cast<size_t>(slot);
        mail_ts[fl] = t_event;
        mail_full[fl] = 1;
        mail_at.push_back(static_cast<int64_t>(fl));
      } else {
        mail_at.push_back(to[p]);
      }
      mail_rows.push_back(from[p]);
    }
    (apan_updater ? mail.view({N * S, mail_dim}) : mail).index_copy_(0, to_long(mail_at), mails.index_select(0, to_long(mail_rows)));
    // Memory and its time: the true src/dst, last occurrence (dst after src within an event).
    std::vector<int64_t> nodes, rows;
    for (size_t i = 0; i < B; ++i) {
      stamp[static_cast<size_t>(roots[i])] = static_cast<int64_t>(i);
      stamp[static_cast<size_t>(roots[B + i])] = static_cast<int64_t>(B + i);
    }
    for (size_t r = 0; r < 2 * B; ++r) {
      const auto v = static_cast<size_t>(roots[r]);
      if (stamp[v] != static_cast<int64_t>(r)) continue;
      stamp[v] = -1;
      nodes.push_back(roots[r]);
      rows.push_back(static_cast<int64_t>(r));
      mem_ts[v] = data.t[events[b0 + (r % B)]];
    }
    mem.index_copy_(0, to_long(nodes), at::cat({s_src, s_dst}, 0).index_select(0, to_long(rows)));
  }

  PassOutput run(const std::vector<size_t>& events, const std::vector<int64_t>& negs, int64_t q, const graph::TemporalGraph& g,
                 bool train, size_t batch_size, StageTimes& times) {
    PassOutput out;
    out.pos.reserve(events.size());
    out.neg.reserve(events.size() * static_cast<size_t>(q));
    std::optional<at::NoGradGuard> no_grad;
    if (!train) no_grad.emplace();
    for (size_t b0 = 0; b0 < events.size(); b0 += batch_size) {
      const size_t B = std::min(batch_size, events.size() - b0);
      const auto Bi = static_cast<int64_t>(B);
      core::Timer ts0;
      std::vector<int64_t> roots;
      std::vector<double> ts;
      roots.reserve(B * (2 + static_cast<size_t>(q)));
      for (size_t i = 0; i < B; ++i) roots.push_back(data.src[events[b0 + i]]);
      for (size_t i = 0; i < B; ++i) roots.push_back(data.dst[events[b0 + i]]);
      for (size_t i = 0; i < B * static_cast<size_t>(q); ++i) roots.push_back(negs[b0 * static_cast<size_t>(q) + i]);
      for (size_t r = 0; r < roots.size(); ++r) {
        const size_t i = r < 2 * B ? r % B : (r - 2 * B) / static_cast<size_t>(q);
        ts.push_back(data.t[events[b0 + i]]);
      }
      times.sample += ts0.seconds();
      core::Timer tt;
      StageTimes inner;
      Forward f = embed(roots, ts, g, train, inner, attention);
      times.sample += inner.sample;
      times.fetch += inner.fetch;
      const auto [pos, neg] = predict(f.z, Bi, q);
      if (train) {
        at::Tensor loss = at::binary_cross_entropy_with_logits(pos, at::ones_like(pos));
        if (q > 0) {
          const at::Tensor n0 = neg.view({Bi, q}).select(1, 0);
          loss = loss + at::binary_cross_entropy_with_logits(n0, at::zeros_like(n0));
        }
        loss.backward();
        adam();
        out.loss_sum += loss.item<double>();
      }
      {
        at::NoGradGuard ng;
        const at::Tensor ps = at::sigmoid(pos).to(at::kDouble).contiguous();
        out.pos.insert(out.pos.end(), ps.data_ptr<double>(), ps.data_ptr<double>() + B);
        if (q > 0) {
          const at::Tensor ns = at::sigmoid(neg).to(at::kDouble).contiguous();
          out.neg.insert(out.neg.end(), ns.data_ptr<double>(), ns.data_ptr<double>() + ns.numel());
        }
      }
      times.train += tt.seconds() - inner.sample - inner.fetch;
      ++out.batches;
      if (cfg.use_memory) {
        core::Timer tu;
        StageTimes wb;
        write_back(events, b0, B, roots, ts, f, g, wb);
        times.sample += wb.sample;
        times.update += tu.seconds() - wb.sample;
      }
    }
    return out;
  }
};

TemporalModel::TemporalModel(const ModelConfig& cfg, const graph::EventStream& data, uint64_t seed)
    : impl_(std::make_unique<Impl>(cfg, data, seed)) {}
TemporalModel::~TemporalModel() = default;

void TemporalModel::reset_memory() { impl_->reset_memory(); }

PassOutput TemporalModel::run(const std::vector<size_t>& events, const std::vector<int64_t>& negatives, int64_t q,
                              const graph::TemporalGraph& graph, bool train, size_t batch_size, StageTimes& times) {
  return impl_->run(events, negatives, q, graph, train, batch_size, times);
}

NodeStates TemporalModel::node_states(const graph::TemporalGraph& graph, double t) {
  at::NoGradGuard ng;
  NodeStates st;
  st.nodes = impl_->N;
  st.memory_dim = impl_->dm;
  st.embed_dim = impl_->dz;
  const at::Tensor m = impl_->mem.contiguous();
  st.memory.assign(m.data_ptr<float>(), m.data_ptr<float>() + m.numel());
  st.memory_ts = impl_->mem_ts;
  StageTimes unused;
  for (int64_t b = 0; b < st.nodes; b += 1000) {
    std::vector<int64_t> roots;
    for (int64_t v = b; v < std::min(st.nodes, b + 1000); ++v) roots.push_back(v);
    const std::vector<double> ts(roots.size(), t);
    const at::Tensor z = impl_->embed(roots, ts, graph, false, unused, impl_->attention).z.contiguous();
    st.embeddings.insert(st.embeddings.end(), z.data_ptr<float>(), z.data_ptr<float>() + z.numel());
  }
  return st;
}

void TemporalModel::snapshot_params() {
  at::NoGradGuard ng;
  impl_->snapshot.clear();
  for (const auto& [n, p] : impl_->params) impl_->snapshot.push_back(p.detach().clone());
}

void TemporalModel::restore_params() {
  if (impl_->snapshot.empty()) return;
  at::NoGradGuard ng;
  for (size_t i = 0; i < impl_->params.size(); ++i) impl_->params[i].second.copy_(impl_->snapshot[i]);
}

void TemporalModel::save(core::H5Writer& w) const {
  for (const auto& [n, p] : impl_->params) tensor::write_tensor(w, "/params/" + n, p.detach());
}

void TemporalModel::load(const core::H5Reader& r) {
  at::NoGradGuard ng;
  for (auto& [n, p] : impl_->params) {
    const std::string name = "/params/" + n;
    if (!r.has(name)) throw core::InputError(r.path().string() + ": no dataset " + name + " (a checkpoint of another model?)");
    const at::Tensor t = tensor::read_tensor(r, name);
    if (t.sizes() != p.sizes()) {
      throw core::InputError(r.path().string() + ": " + name + " has shape " + c10::str(t.sizes()) + ", the configured model expects " +
                             c10::str(p.sizes()));
    }
    p.copy_(t);
  }
}

int64_t TemporalModel::mail_dim() const { return impl_->mail_dim; }

TemporalModel::MailboxReadout TemporalModel::mailbox_attention(const std::vector<float>& memory, const std::vector<float>& mails,
                                                               const std::vector<double>& mail_ts, const std::vector<uint8_t>& valid,
                                                               double t) const {
  const Impl& m = *impl_;
  if (!m.apan_updater) throw std::logic_error("tgnn: mailbox_attention needs the attention updater");
  at::NoGradGuard ng;
  const int64_t S = m.S, n = static_cast<int64_t>(memory.size()) / m.dm;
  std::vector<float> dts(mail_ts.size()), full(valid.size());
  for (size_t i = 0; i < dts.size(); ++i) {
    full[i] = valid[i] ? 1.0F : 0.0F;
    dts[i] = valid[i] ? static_cast<float>(t - mail_ts[i]) : 0.0F;
  }
  const auto [w_kv, b_kv] = m.fused_kv("memory_updater");
  const at::Tensor kv_mail = m.mm(to_float(mails).view({n * S, m.mail_dim}), w_kv.narrow(1, 0, m.mail_dim), b_kv).view({n, S, 2 * m.dm});
  const Readout r = m.mailbox_readout(to_float(memory).view({n, m.dm}), kv_mail, w_kv, to_float(dts), to_float(full).view({n, S, 1}), false);
  auto vec = [](const at::Tensor& x) {
    const at::Tensor c = x.contiguous();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  };
  return {vec(r.value), vec(r.att), vec(r.V)};
}

int64_t TemporalModel::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, p] : impl_->params) n += p.numel();
  return n;
}

}  // namespace mlsys::tgnn
