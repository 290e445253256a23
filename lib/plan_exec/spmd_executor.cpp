// The per-rank interpreter of spmd-plan programs, its collectives as autograd functions,
// and the single-process reference it is checked against.
#include "plan_exec/spmd_executor.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/custom_function.h>

#include <chrono>
#include <cmath>
#include <map>
#include <unordered_map>

#include "core/error.hpp"
#include "tensor/distributed.hpp"

namespace mlsys::plan {

namespace {

using core::Json;
using torch::autograd::AutogradContext;
using torch::autograd::Function;
using torch::autograd::variable_list;

using Ranges = std::vector<std::pair<int64_t, int64_t>>;

struct Comm {
  tensor::ProcessGroup* pg = nullptr;
  int rank = 0, size = 1;
  int64_t collectives = 0;
  int tag = 1 << 20;  // point-to-point tags, in the same order on every rank
};

int64_t len_of(const Ranges& r, int i) { return r[static_cast<size_t>(i)].second - r[static_cast<size_t>(i)].first; }

std::vector<int64_t> with_dim(at::IntArrayRef s, int64_t d, int64_t v) {
  std::vector<int64_t> o(s.begin(), s.end());
  o[static_cast<size_t>(d)] = v;
  return o;
}

// Uneven all-gather along d. Padded: every shard padded to the largest, Gloo allgather,
// trimmed. Grouped: one broadcast per root of its own size.
at::Tensor gather_uneven(Comm& c, const at::Tensor& x, int64_t d, const Ranges& r, bool grouped) {
  std::vector<at::Tensor> parts;
  if (!grouped) {
    int64_t mx = 0;
    for (int i = 0; i < c.size; ++i) mx = std::max(mx, len_of(r, i));
    at::Tensor padded = x;
    if (x.size(d) < mx) padded = at::cat({x, at::zeros(with_dim(x.sizes(), d, mx - x.size(d)), x.options())}, d);
    auto all = c.pg->all_gather(padded.contiguous());
    for (int i = 0; i < c.size; ++i) parts.push_back(all[static_cast<size_t>(i)].narrow(d, 0, len_of(r, i)));
  } else {
    for (int i = 0; i < c.size; ++i) {
      const auto shape = with_dim(x.sizes(), d, len_of(r, i));
      if (len_of(r, i) == 0) {
        parts.push_back(at::empty(shape, x.options()));
        continue;
      }
      at::Tensor buf = i == c.rank ? x.contiguous().clone() : at::empty(shape, x.options());
      c.pg->broadcast(buf, i);
      parts.push_back(buf);
    }
  }
  return at::cat(parts, d);
}

// Reduce-scatter along d of a full-shape partial. Padded: all-reduce, keep the own slice
// (Gloo has no reduce_scatter). Grouped: one reduce per root, each of its slice.
at::Tensor scatter_reduce(Comm& c, const at::Tensor& full, int64_t d, const Ranges& r, bool grouped) {
  const int64_t start = r[static_cast<size_t>(c.rank)].first;
  if (!grouped) {
    at::Tensor t = full.contiguous().clone();
    c.pg->all_reduce_sum(t);
    return t.narrow(d, start, len_of(r, c.rank)).clone();
  }
  at::Tensor mine = at::empty(with_dim(full.sizes(), d, 0), full.options());
  for (int i = 0; i < c.size; ++i) {
    if (len_of(r, i) == 0) continue;
    at::Tensor chunk = full.narrow(d, r[static_cast<size_t>(i)].first, len_of(r, i)).contiguous().clone();
    c.pg->reduce_sum(chunk, i);
    if (i == c.rank) mine = chunk;
  }
  return mine;
}

// All-to-all from shards of dim i (dim j whole) to shards of dim j (dim i whole), with
// point-to-point transfers of the uneven pieces.
at::Tensor exchange(Comm& c, const at::Tensor& x, int64_t di, const Ranges& ri, int64_t dj, const Ranges& rj) {
  std::vector<at::Tensor> pieces(static_cast<size_t>(c.size));
  std::vector<tensor::PendingTransfer> pending;
  const int tag = c.tag++;
  for (int s = 0; s < c.size; ++s) {
    const at::Tensor mine = x.narrow(dj, rj[static_cast<size_t>(s)].first, len_of(rj, s)).contiguous();
    if (s == c.rank) {
      pieces[static_cast<size_t>(s)] = mine;
      continue;
    }
    if (mine.numel() > 0) pending.push_back(c.pg->send(mine, s, tag));
    auto shape = with_dim(x.sizes(), di, len_of(ri, s));
    shape[static_cast<size_t>(dj)] = len_of(rj, c.rank);
    pieces[static_cast<size_t>(s)] = at::empty(shape, x.options());
    if (pieces[static_cast<size_t>(s)].numel() > 0) pending.push_back(c.pg->recv(pieces[static_cast<size_t>(s)], s, tag));
  }
  for (auto& p : pending) p.wait();
  return at::cat(pieces, di);
}

Comm* comm_of(AutogradContext* ctx) { return reinterpret_cast<Comm*>(ctx->saved_data["comm"].toInt()); }
const Ranges* ranges_of(AutogradContext* ctx, const char* key) {
  return reinterpret_cast<const Ranges*>(ctx->saved_data[key].toInt());
}

// G(d) -> I; backward R -> G(d) (reduce-scatter of the gradient).
struct AllGatherFn : Function<AllGatherFn> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, Comm* c, int64_t d, const Ranges* r, bool grouped) {
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(c);
    ctx->saved_data["r"] = reinterpret_cast<int64_t>(r);
    ctx->saved_data["d"] = d;
    ctx->saved_data["grouped"] = grouped;
    return gather_uneven(*c, x, d, *r, grouped);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    return {scatter_reduce(*comm_of(ctx), g[0], ctx->saved_data["d"].toInt(), *ranges_of(ctx, "r"),
                           ctx->saved_data["grouped"].toBool()),
            {}, {}, {}, {}};
  }
};

// R -> G(d); backward G(d) -> I (all-gather of the gradient).
struct ReduceScatterFn : Function<ReduceScatterFn> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, Comm* c, int64_t d, const Ranges* r, bool grouped) {
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(c);
    ctx->saved_data["r"] = reinterpret_cast<int64_t>(r);
    ctx->saved_data["d"] = d;
    ctx->saved_data["grouped"] = grouped;
    return scatter_reduce(*c, x, d, *r, grouped);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    return {gather_uneven(*comm_of(ctx), g[0].contiguous(), ctx->saved_data["d"].toInt(), *ranges_of(ctx, "r"),
                          ctx->saved_data["grouped"].toBool()),
            {}, {}, {}, {}};
  }
};

// R -> I and its dual I-gradient... the gradient of an Identity output is a Reduce partial,
// made whole again by an all-reduce.
struct AllReduceFn : Function<AllReduceFn> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, Comm* c) {
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(c);
    at::Tensor t = x.contiguous().clone();
    c->pg->all_reduce_sum(t);
    return t;
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    at::Tensor t = g[0].contiguous().clone();
    comm_of(ctx)->pg->all_reduce_sum(t);
    return {t, {}};
  }
};

// An Identity parameter: forward as is, backward all-reduces its (partial) gradient.
struct ReplicateFn : Function<ReplicateFn> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, Comm* c) {
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(c);
    return x.clone();
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    at::Tensor t = g[0].contiguous().clone();
    comm_of(ctx)->pg->all_reduce_sum(t);
    return {t, {}};
  }
};

// G(i) -> G(j); backward G(j) -> G(i).
struct AllToAllFn : Function<AllToAllFn> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, Comm* c, int64_t di, const Ranges* ri, int64_t dj,
                            const Ranges* rj) {
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(c);
    ctx->saved_data["ri"] = reinterpret_cast<int64_t>(ri);
    ctx->saved_data["rj"] = reinterpret_cast<int64_t>(rj);
    ctx->saved_data["di"] = di;
    ctx->saved_data["dj"] = dj;
    return exchange(*c, x, di, *ri, dj, *rj);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    return {exchange(*comm_of(ctx), g[0].contiguous(), ctx->saved_data["dj"].toInt(), *ranges_of(ctx, "rj"),
                     ctx->saved_data["di"].toInt(), *ranges_of(ctx, "ri")),
            {}, {}, {}, {}, {}};
  }
};

// A batch-sharded linear whose weight gradient uses sufficient factor broadcasting: the
// backward all-gathers x and dy along the batch dim and computes the full dW and db on
// every rank (no all-reduce of dW).
struct SfbLinearFn : Function<SfbLinearFn> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, at::Tensor w, at::Tensor b, Comm* c, int64_t d,
                            const Ranges* r, bool grouped) {
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(c);
    ctx->saved_data["r"] = reinterpret_cast<int64_t>(r);
    ctx->saved_data["d"] = d;
    ctx->saved_data["grouped"] = grouped;
    ctx->save_for_backward({x, w});
    return at::linear(x, w, b);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& w = saved[1];
    Comm& c = *comm_of(ctx);
    const int64_t d = ctx->saved_data["d"].toInt();
    const bool grouped = ctx->saved_data["grouped"].toBool();
    const at::Tensor dy = g[0].contiguous();
    const at::Tensor dx = at::matmul(dy, w);
    const at::Tensor xf = gather_uneven(c, x.contiguous(), d, *ranges_of(ctx, "r"), grouped).reshape({-1, x.size(-1)});
    const at::Tensor dyf = gather_uneven(c, dy, d, *ranges_of(ctx, "r"), grouped).reshape({-1, dy.size(-1)});
    return {dx, at::matmul(dyf.t(), xf), dyf.sum(0), {}, {}, {}, {}};
  }
};

// One op on local tensors: the same formula on full tensors (the reference) and on shards.
// `offset`: the first global row of a vocabulary-parallel embedding table or the first
// expert of an expert-parallel MoE shard.
at::Tensor apply_op(const SpmdGraph& g, const SpmdOp& op, const std::vector<at::Tensor>& in, int64_t offset) {
  const auto& full_in0 = g.tensors[static_cast<size_t>(op.inputs[0])];
  switch (op.kind) {
    case SpmdOpKind::linear:
      return at::linear(in[0], in[1], in[2]);
    case SpmdOpKind::matmul:
      return at::matmul(in[0], in[1]);
    case SpmdOpKind::attention: {
      const int64_t hd = full_in0.shape[2] / op.heads;
      const at::Tensor &q = in[0], &k = in[1], &v = in[2];
      const int64_t B = q.size(0), Sq = q.size(1), Sk = k.size(1), h = q.size(2) / hd;
      auto heads = [&](const at::Tensor& t, int64_t s) { return t.reshape({B, s, h, hd}).permute({0, 2, 1, 3}); };
      at::Tensor scores = at::matmul(heads(q, Sq), heads(k, Sk).transpose(-1, -2)) / std::sqrt(static_cast<double>(hd));
      if (op.causal) {
        const at::Tensor mask = at::ones({Sq, Sk}, at::TensorOptions().dtype(at::kBool)).triu(1);
        scores = scores.masked_fill(mask, -std::numeric_limits<double>::infinity());
      }
      const at::Tensor out = at::matmul(at::softmax(scores, -1), heads(v, Sk));
      return out.permute({0, 2, 1, 3}).reshape({B, Sq, h * hd});
    }
    case SpmdOpKind::layer_norm:
      return at::layer_norm(in[0], {in[0].size(-1)}, in[1], in[2], 1e-5);
    case SpmdOpKind::gelu:
      return at::gelu(in[0]);
    case SpmdOpKind::relu:
      return at::relu(in[0]);
    case SpmdOpKind::add:
      return in[0] + in[1];
    case SpmdOpKind::embedding: {
      const auto& table = g.tensors[static_cast<size_t>(op.inputs[1])];
      const int64_t rows = in[1].size(0);
      if (rows == table.shape[0]) return at::embedding(in[1], in[0]);
      // Vocabulary-parallel: look up the rows held here, zeros for the others (a partial).
      std::vector<int64_t> shape(in[0].sizes().begin(), in[0].sizes().end());
      shape.push_back(in[1].size(1));
      if (rows == 0) return at::zeros(shape, in[1].options()) + in[1].sum();
      const at::Tensor here = (in[0] >= offset).logical_and(in[0] < offset + rows);
      const at::Tensor idx = (in[0] - offset).clamp(0, rows - 1);
      return at::embedding(in[1], idx) * here.unsqueeze(-1).to(in[1].scalar_type());
    }
    case SpmdOpKind::conv2d: {
      if (in[0].numel() == 0 || in[1].numel() == 0) {
        // A shard with no samples, channels or filters (ATen's conv refuses empty weights):
        // the bias alone, kept on the autograd graph of x and W.
        const auto& out = g.tensors[static_cast<size_t>(op.output)].shape;
        return at::zeros({in[0].size(0), in[1].size(0), out[2], out[3]}, in[1].options()) + in[2].view({1, -1, 1, 1}) +
               0.0 * (in[0].sum() + in[1].sum());
      }
      return at::conv2d(in[0], in[1], in[2], {op.stride, op.stride}, {op.padding, op.padding});
    }
    case SpmdOpKind::max_pool2d:
      return at::max_pool2d(in[0], {op.kernel, op.kernel}, {op.stride, op.stride});
    case SpmdOpKind::flatten:
      return in[0].flatten(1);
    case SpmdOpKind::mean:
      // Divided by the whole dim's length: a sharded dim's local sums are then partials.
      return in[0].sum(op.dim) / static_cast<double>(full_in0.shape[static_cast<size_t>(op.dim)]);
    case SpmdOpKind::cross_entropy: {
      const int64_t v = in[0].size(-1);
      return at::nll_loss(at::log_softmax(in[0].reshape({-1, v}), -1), in[1].reshape({-1}), {}, at::Reduction::Sum);
    }
    case SpmdOpKind::moe: {
      const at::Tensor x = in[0].reshape({-1, in[0].size(-1)});
      const at::Tensor logits = at::matmul(x, in[1]);
      const auto [topv, topi] = logits.topk(op.top_k, -1);
      const at::Tensor p = at::softmax(topv, -1);
      at::Tensor y = at::zeros_like(x);
      for (int64_t e = 0; e < in[2].size(0); ++e) {
        const at::Tensor w = (p * (topi == offset + e).to(p.scalar_type())).sum(-1, true);
        y = y + w * at::matmul(at::gelu(at::matmul(x, in[2][e])), in[3][e]);
      }
      return y.reshape(in[0].sizes());
    }
  }
  throw core::RuntimeFailure("run: op kind " + to_string(op.kind) + " not executable");
}

// The full inputs and parameters, generated from the seed (the same on every rank).
std::vector<at::Tensor> make_full_tensors(const SpmdGraph& g, uint64_t seed, at::ScalarType dtype) {
  std::vector<at::Tensor> out(g.tensors.size());
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    const auto& t = g.tensors[i];
    if (t.kind == SpmdTensorKind::activation) continue;
    at::Generator gen = at::detail::createCPUGenerator(seed * 1000003 + i);
    const auto opts = at::TensorOptions().dtype(dtype);
    const SpmdOp& use = g.ops[static_cast<size_t>(t.consumers.at(0))];
    if (t.kind == SpmdTensorKind::label || (t.kind == SpmdTensorKind::input && use.kind == SpmdOpKind::embedding)) {
      int64_t high = 2;
      if (use.kind == SpmdOpKind::embedding) high = g.tensors[static_cast<size_t>(use.inputs[1])].shape[0];
      if (use.kind == SpmdOpKind::cross_entropy) high = g.tensors[static_cast<size_t>(use.inputs[0])].shape.back();
      out[i] = at::randint(high, t.shape, gen, at::TensorOptions().dtype(at::kLong));
      continue;
    }
    at::Tensor r = at::randn(t.shape, gen, opts);
    if (t.kind == SpmdTensorKind::param) {
      if (t.rank() >= 2) {
        r = r / std::sqrt(static_cast<double>(t.numel() / t.shape[0]));
      } else {
        r = r * 0.1;
        if (use.kind == SpmdOpKind::layer_norm && use.inputs[1] == static_cast<int>(i)) r = r + 1.0;
      }
    }
    out[i] = r;
  }
  return out;
}

double max_err(const at::Tensor& a, const at::Tensor& b, double rtol, double atol) {
  if (a.numel() == 0) return 0.0;
  return ((a - b).abs() / (atol + rtol * b.abs())).max().item<double>();
}

struct ParamUse {
  std::string prop;
  std::string grad;
  int64_t dim = -1;
  const Ranges* ranges = nullptr;
  bool grouped = false;  // sfb: gather the factors with broadcasts
};

class RankInterpreter {
 public:
  RankInterpreter(const SpmdGraph& g, const Json& programs, Comm& c) : g_(g), c_(c) {
    if (!programs.is_object() || !programs.contains("shards") || !programs.contains("ranks")) {
      throw core::RuntimeFailure("run: the plan has no per-rank programs (programs.shards, programs.ranks)");
    }
    const Json& ranks = programs["ranks"];
    if (!ranks.is_array() || static_cast<int>(ranks.size()) != c.size) {
      throw core::RuntimeFailure("run: the plan has programs for " + std::to_string(ranks.size()) + " ranks, this run " +
                                 std::to_string(c.size));
    }
    for (const auto& [key, r] : programs["shards"].items()) {
      Ranges rr;
      for (const auto& p : r) rr.emplace_back(p[0].get<int64_t>(), p[1].get<int64_t>());
      if (static_cast<int>(rr.size()) != c.size) throw core::RuntimeFailure("run: shards." + key + ": one range per rank expected");
      shards_[key] = rr;
    }
    instructions_ = ranks[static_cast<size_t>(c.rank)]["instructions"];
    for (size_t i = 0; i < g.ops.size(); ++i) op_index_[g.ops[i].name] = static_cast<int>(i);
  }

  const Ranges& ranges(const std::string& tensor, int64_t d) const {
    auto it = shards_.find(tensor + ":" + std::to_string(d));
    if (it == shards_.end()) throw core::RuntimeFailure("run: no shard ranges for " + tensor + " dim " + std::to_string(d));
    return it->second;
  }

  static int64_t gdim(const std::string& prop) { return prop.size() == 4 && prop[0] == 'G' ? prop[2] - '0' : -1; }

  // One forward pass: returns this rank's part of the loss as a Reduce partial.
  at::Tensor forward(const std::vector<at::Tensor>& full, std::vector<at::Tensor>& leaves) {
    std::unordered_map<std::string, at::Tensor> v;
    auto key = [](const std::string& t, const std::string& p) { return t + "|" + p; };
    auto get = [&](const std::string& t, const std::string& p) -> at::Tensor& {
      auto it = v.find(key(t, p));
      if (it == v.end()) throw core::RuntimeFailure("run: rank " + std::to_string(c_.rank) + ": " + t + ":" + p + " used before it is made");
      return it->second;
    };
    auto idx = [&](const std::string& t) {
      const int i = g_.find(t);
      if (i < 0) throw core::RuntimeFailure("run: the program names an unknown tensor '" + core::excerpt(t) + "'");
      return static_cast<size_t>(i);
    };
    auto local_of = [&](const at::Tensor& x, const std::string& t, const std::string& p) {
      const int64_t d = gdim(p);
      if (d < 0) return x;
      const Ranges& r = ranges(t, d);
      return x.narrow(d, r[static_cast<size_t>(c_.rank)].first, len_of(r, c_.rank));
    };
    const double own = c_.rank == 0 ? 1.0 : 0.0;
    for (const auto& ins : instructions_) {
      const std::string op = ins.at("op").get<std::string>();
      if (op == "compute") {
        const SpmdOp& o = g_.ops[static_cast<size_t>(op_index_.at(ins.at("name").get<std::string>()))];
        std::vector<at::Tensor> in;
        std::vector<std::string> props;
        for (const auto& i : ins.at("inputs")) {
          in.push_back(get(i.at("tensor").get<std::string>(), i.at("prop").get<std::string>()));
          props.push_back(i.at("prop").get<std::string>());
        }
        int64_t offset = 0;
        if ((o.kind == SpmdOpKind::embedding && props[1] == "G(0)") || (o.kind == SpmdOpKind::moe && props[2] == "G(0)")) {
          const auto& w = g_.tensors[static_cast<size_t>(o.inputs[o.kind == SpmdOpKind::moe ? 2 : 1])];
          offset = ranges(w.name, 0)[static_cast<size_t>(c_.rank)].first;
        }
        at::Tensor y;
        const auto sfb = o.kind == SpmdOpKind::linear ? params_.find(g_.tensors[static_cast<size_t>(o.inputs[1])].name) : params_.end();
        if (sfb != params_.end() && sfb->second.grad == "sfb") {
          const int64_t d = gdim(props[0]);
          y = SfbLinearFn::apply(in[0], in[1], in[2], &c_, d, &ranges(g_.tensors[static_cast<size_t>(o.inputs[0])].name, d),
                                 sfb->second.grouped);
        } else {
          y = apply_op(g_, o, in, offset);
        }
        const auto& out = ins.at("output");
        v[key(out.at("tensor").get<std::string>(), out.at("prop").get<std::string>())] = y;
        continue;
      }
      const std::string t = ins.at("tensor").get<std::string>();
      const size_t ti = idx(t);
      if (op == "placeholder") {
        const std::string p = ins.at("prop").get<std::string>();
        v[key(t, p)] = p == "R" ? full[ti] * own : local_of(full[ti], t, p);
      } else if (op == "parameter") {
        const std::string p = ins.at("prop").get<std::string>();
        const std::string grad = ins.at("grad").get<std::string>();
        const at::Tensor& leaf = leaves[ti];
        ParamUse u{p, grad, gdim(p), nullptr, ins.value("variant", std::string("padded")) == "grouped"};
        if (p == "I") {
          // sfb: the weight enters SfbLinearFn whole; its backward makes the full gradient.
          v[key(t, p)] = grad == "all_reduce" ? ReplicateFn::apply(leaf, &c_) : leaf;
        } else if (p == "R") {
          v[key(t, p)] = leaf * own;  // the rank-0 copy is the parameter; the others add zeros
        } else {
          u.ranges = &ranges(t, u.dim);
          v[key(t, p)] = local_of(leaf, t, p);
        }
        params_[t] = u;
      } else {
        const std::string from = ins.at("from").get<std::string>(), to = ins.at("to").get<std::string>();
        const bool grouped = ins.at("variant").get<std::string>() == "grouped";
        const at::Tensor& x = get(t, from);
        at::Tensor y;
        if (op == "all_gather") {
          y = AllGatherFn::apply(x, &c_, gdim(from), &ranges(t, gdim(from)), grouped);
        } else if (op == "reduce_scatter") {
          y = ReduceScatterFn::apply(x, &c_, gdim(to), &ranges(t, gdim(to)), grouped);
        } else if (op == "all_reduce") {
          y = AllReduceFn::apply(x, &c_);
        } else if (op == "all_to_all") {
          y = AllToAllFn::apply(x, &c_, gdim(from), &ranges(t, gdim(from)), gdim(to), &ranges(t, gdim(to)));
        } else if (op == "slice") {
          y = local_of(x, t, to);
        } else if (op == "pad") {
          const int64_t d = gdim(from);
          const Ranges& r = ranges(t, d);
          const int64_t before = r[static_cast<size_t>(c_.rank)].first;
          const int64_t after = g_.tensors[ti].shape[static_cast<size_t>(d)] - r[static_cast<size_t>(c_.rank)].second;
          std::vector<int64_t> pad(2 * static_cast<size_t>(x.dim() - d), 0);
          pad[pad.size() - 2] = before;
          pad[pad.size() - 1] = after;
          y = at::constant_pad_nd(x, pad, 0);
        } else if (op == "mask") {
          y = x * own;
        } else {
          throw core::RuntimeFailure("run: unknown instruction '" + core::excerpt(op) + "'");
        }
        if (op != "slice" && op != "pad" && op != "mask") ++c_.collectives;
        v[key(t, to)] = y;
      }
    }
    const std::string loss = g_.tensors[static_cast<size_t>(g_.loss)].name;
    if (v.count(key(loss, "R"))) return v[key(loss, "R")];
    return get(loss, "I") * own;
  }

  [[nodiscard]] const std::map<std::string, ParamUse>& params() const { return params_; }
  [[nodiscard]] int64_t instructions() const { return static_cast<int64_t>(instructions_.size()); }

 private:
  const SpmdGraph& g_;
  Comm& c_;
  std::map<std::string, Ranges> shards_;
  Json instructions_;
  std::map<std::string, int> op_index_;
  std::map<std::string, ParamUse> params_;
};

at::Tensor reference_forward(const SpmdGraph& g, const std::vector<at::Tensor>& full, const std::vector<at::Tensor>& leaves) {
  std::vector<at::Tensor> v(g.tensors.size());
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    if (g.tensors[i].kind == SpmdTensorKind::param) v[i] = leaves[i];
    else if (g.tensors[i].kind != SpmdTensorKind::activation) v[i] = full[i];
  }
  for (const auto& op : g.ops) {
    std::vector<at::Tensor> in;
    for (int t : op.inputs) in.push_back(v[static_cast<size_t>(t)]);
    v[static_cast<size_t>(op.output)] = apply_op(g, op, in, 0);
  }
  return v[static_cast<size_t>(g.loss)];
}

std::vector<at::Tensor> make_leaves(const SpmdGraph& g, const std::vector<at::Tensor>& full) {
  std::vector<at::Tensor> leaves(g.tensors.size());
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    if (g.tensors[i].kind == SpmdTensorKind::param) leaves[i] = full[i].clone().set_requires_grad(true);
  }
  return leaves;
}

void sgd_step(const SpmdGraph& g, std::vector<at::Tensor>& leaves, double lr) {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    if (g.tensors[i].kind != SpmdTensorKind::param || !leaves[i].grad().defined()) continue;
    leaves[i].sub_(leaves[i].grad(), lr);
  }
}

}  // namespace

SpmdRankReport execute_spmd_rank(const SpmdGraph& g, const Json& programs, tensor::ProcessGroup& pg,
                                 const SpmdExecOptions& o) {
  Comm comm;
  comm.pg = &pg;
  comm.rank = pg.rank();
  comm.size = pg.size();
  SpmdRankReport rep;
  rep.rank = comm.rank;
  const at::ScalarType dtype = o.float64 ? at::kDouble : at::kFloat;
  const std::vector<at::Tensor> full = make_full_tensors(g, o.seed, dtype);

  // The single-process reference: the whole model, forward, backward, one SGD step.
  std::vector<at::Tensor> ref = make_leaves(g, full);
  const at::Tensor ref_loss = reference_forward(g, full, ref);
  ref_loss.backward();
  std::vector<at::Tensor> ref_grad(g.tensors.size()), ref_new(g.tensors.size());
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    if (g.tensors[i].kind != SpmdTensorKind::param) continue;
    ref_grad[i] = ref[i].grad().defined() ? ref[i].grad().clone() : at::zeros_like(ref[i]);
    ref_new[i] = (ref[i] - o.lr * ref_grad[i]).detach();
  }
  rep.reference_loss = ref_loss.item<double>();

  // The distributed program.
  RankInterpreter interp(g, programs, comm);
  std::vector<at::Tensor> leaves = make_leaves(g, full);
  const at::Tensor part = interp.forward(full, leaves);
  part.backward();
  at::Tensor total = part.detach().clone().reshape({1});
  pg.all_reduce_sum(total);
  rep.loss = total.item<double>();
  rep.instructions = interp.instructions();
  rep.collectives = comm.collectives;
  rep.loss_error = std::abs(rep.loss - rep.reference_loss) / std::max(std::abs(rep.reference_loss), 1e-300);

  // Every parameter's gradient as this rank holds it, against the reference.
  for (const auto& [name, use] : interp.params()) {
    const size_t i = static_cast<size_t>(g.find(name));
    const at::Tensor grad = leaves[i].grad().defined() ? leaves[i].grad() : at::zeros_like(leaves[i]);
    double e = 0;
    if (use.prop == "I") {
      e = max_err(grad, ref_grad[i], o.rtol, o.atol);
    } else if (use.prop == "R") {
      e = max_err(grad, comm.rank == 0 ? ref_grad[i] : at::zeros_like(ref_grad[i]), o.rtol, o.atol);
    } else {
      const auto& r = (*use.ranges)[static_cast<size_t>(comm.rank)];
      at::Tensor want = at::zeros_like(ref_grad[i]);
      want.narrow(use.dim, r.first, r.second - r.first).copy_(ref_grad[i].narrow(use.dim, r.first, r.second - r.first));
      e = max_err(grad, want, o.rtol, o.atol);
    }
    if (e >= rep.max_grad_error) {
      rep.max_grad_error = e;
      rep.worst = name;
    }
    ++rep.parameters_checked;
  }
  // One SGD step, then the parameters this rank owns against the reference's.
  sgd_step(g, leaves, o.lr);
  for (const auto& [name, use] : interp.params()) {
    const size_t i = static_cast<size_t>(g.find(name));
    double e = 0;
    if (use.prop == "I" || (use.prop == "R" && comm.rank == 0)) {
      e = max_err(leaves[i].detach(), ref_new[i], o.rtol, o.atol);
    } else if (use.prop != "R") {
      const auto& r = (*use.ranges)[static_cast<size_t>(comm.rank)];
      e = max_err(leaves[i].detach().narrow(use.dim, r.first, r.second - r.first),
                  ref_new[i].narrow(use.dim, r.first, r.second - r.first), o.rtol, o.atol);
    }
    rep.max_param_error = std::max(rep.max_param_error, e);
  }
  rep.ok = rep.loss_error <= o.rtol + o.atol && rep.max_grad_error <= 1.0 && rep.max_param_error <= 1.0 &&
           rep.parameters_checked == static_cast<int64_t>(std::count_if(g.tensors.begin(), g.tensors.end(), [](const SpmdTensor& t) {
             return t.kind == SpmdTensorKind::param;
           }));

  // Timed iterations: forward, backward, SGD step, as training would run them.
  for (int it = 0; it < o.timed_iterations; ++it) {
    for (auto& l : leaves) {
      if (l.defined() && l.grad().defined()) l.mutable_grad().zero_();
    }
    pg.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    const at::Tensor p = interp.forward(full, leaves);
    p.backward();
    sgd_step(g, leaves, o.lr);
    pg.barrier();
    rep.iteration_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return rep;
}

}  // namespace mlsys::plan
