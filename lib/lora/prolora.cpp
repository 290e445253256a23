// PRoLoRA adapters: layout and parameter counts, the chunked and materialised forward
// passes, attach/merge, the compact HDF5 file and the LoRA form (see prolora.hpp).
#include "lora/prolora.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "nn/checkpoint.hpp"
#include "nn/structured_dropout.hpp"
#include "tensor/h5_tensor.hpp"

namespace mlsys::lora {
namespace fs = std::filesystem;

int64_t ProloraLayout::parameters() const { return shared() * (chunk_a() + chunk_b()) + u * (d_in + d_out); }

int64_t lora_parameters(int64_t d_in, int64_t d_out, int64_t r) { return r * (d_in + d_out); }

ProloraLayout prolora_layout(int64_t d_in, int64_t d_out, int64_t r, int64_t u, int64_t m, int64_t n, bool rotation) {
  ProloraLayout l{d_in, d_out, r, u, m, n, 0, 0};
  const int64_t R = r - u;
  if (rotation) {
    l.stride_a = std::max<int64_t>(R / m, 1);  // §3.1: s_A = max(⌊R/m⌋, 1)
    l.stride_b = std::max<int64_t>(R / n, 1);
  }
  return l;
}

int64_t rolled_rank(int64_t i, int64_t k, int64_t stride, int64_t R) { return (i + k * stride) % R; }

namespace {

// [chunks·R] rank indices: entry k·R + i is the rank row (i + k·s) mod R (plus k·R when
// `offset_chunks`: an index into a flattened [chunks, R]).
at::Tensor rolled_index(int64_t chunks, int64_t R, int64_t stride, bool offset_chunks, int64_t sign = 1) {
  std::vector<int64_t> idx(static_cast<size_t>(chunks * R));
  for (int64_t k = 0; k < chunks; ++k) {
    for (int64_t i = 0; i < R; ++i) {
      const int64_t j = ((i + sign * k * stride) % R + R) % R;
      idx[static_cast<size_t>(k * R + i)] = (offset_chunks ? k * R : 0) + j;
    }
  }
  return at::tensor(idx, at::kLong);
}

}  // namespace

at::Tensor materialize_a(const at::Tensor& a0, const at::Tensor& a_u, const ProloraLayout& l) {
  const int64_t R = l.shared(), cA = l.chunk_a();
  std::vector<at::Tensor> parts;
  if (R > 0) {
    // rows (k, i) of A0 gathered, then chunk k placed at columns [k·c_A, (k+1)·c_A)
    at::Tensor idx = rolled_index(l.m, R, l.stride_a, false).to(a0.device());
    at::Tensor rows = a0.index_select(0, idx).view({l.m, R, cA});
    parts.push_back(rows.permute({1, 0, 2}).reshape({R, l.m * cA}).narrow(1, 0, l.d_in));
  }
  if (l.u > 0) parts.push_back(a_u);
  return parts.size() == 1 ? parts[0] : at::cat(parts, 0);
}

at::Tensor materialize_b(const at::Tensor& b0, const at::Tensor& b_u, const ProloraLayout& l) {
  const int64_t R = l.shared(), cB = l.chunk_b();
  std::vector<at::Tensor> parts;
  if (R > 0) {
    at::Tensor idx = rolled_index(l.n, R, l.stride_b, false).to(b0.device());
    at::Tensor cols = b0.index_select(1, idx).view({cB, l.n, R});
    parts.push_back(cols.permute({1, 0, 2}).reshape({l.n * cB, R}).narrow(0, 0, l.d_out));
  }
  if (l.u > 0) parts.push_back(b_u);
  return parts.size() == 1 ? parts[0] : at::cat(parts, 1);
}

ProloraAdapter::ProloraAdapter(at::Tensor a0, at::Tensor b0, at::Tensor a_u, at::Tensor b_u, ProloraLayout l,
                               double s, double p, ProloraForward f)
    : A0(std::move(a0)), B0(std::move(b0)), A_u(std::move(a_u)), B_u(std::move(b_u)), layout(l), scale(s),
      input_dropout(p), forward(f) {
  const int64_t R = layout.shared();
  if (R > 0) {
    gather_a_ = rolled_index(layout.m, R, layout.stride_a, true).to(A0.device());
    // chunk k of B0 reads the hidden ranks rolled back by k·s_B: g_k[i] = h[(i − k·s_B) mod R]
    gather_b_ = rolled_index(layout.n, R, layout.stride_b, false, -1).to(A0.device());
  }
}

void ProloraAdapter::to(const c10::Device& device) {
  if (gather_a_.defined()) gather_a_ = gather_a_.to(device);
  if (gather_b_.defined()) gather_b_ = gather_b_.to(device);
}

at::Tensor ProloraAdapter::delta_weight() const {
  return at::matmul(materialize_b(B0, B_u, layout), materialize_a(A0, A_u, layout)) * scale;
}

at::Tensor ProloraAdapter::delta(const at::Tensor& x, bool training) const {
  if (merged) return {};
  const at::Tensor in = (training && input_dropout > 0) ? nn::drop_elements(x, input_dropout) : x;
  if (forward == ProloraForward::materialized) {
    return at::linear(at::linear(in, materialize_a(A0, A_u, layout)), materialize_b(B0, B_u, layout)) * scale;
  }
  const ProloraLayout& l = layout;
  const int64_t R = l.shared();
  at::Tensor out;
  if (R > 0) {
    // A_full·x over the shared ranks = Σ_k roll_k(A0·x_k): A0 on each input chunk x_k, then
    // rank i of chunk k read from row (i + k·s_A) mod R (one index_select), summed over k
    at::Tensor h;
    if (l.m == 1) {
      h = at::linear(in, A0);
    } else {
      const int64_t cA = l.chunk_a(), pad = l.m * cA - l.d_in;
      at::Tensor xin = pad > 0 ? at::constant_pad_nd(in, {0, pad}) : in;
      std::vector<int64_t> shape(xin.sizes().begin(), xin.sizes().end() - 1);
      std::vector<int64_t> chunked = shape;
      chunked.push_back(l.m);
      chunked.push_back(cA);
      at::Tensor y = at::linear(xin.reshape(chunked), A0);  // [..., m, R]
      std::vector<int64_t> flat = shape;
      flat.push_back(l.m * R);
      std::vector<int64_t> back = shape;
      back.push_back(l.m);
      back.push_back(R);
      h = y.reshape(flat).index_select(-1, gather_a_).view(back).sum(-2);
    }
    // B_full·h over the shared ranks: chunk k of the output is B0·g_k with g_k the hidden
    // ranks rolled back by k·s_B (one index_select), the chunks laid end to end
    if (l.n == 1) {
      out = at::linear(h, B0);
    } else {
      std::vector<int64_t> shape(h.sizes().begin(), h.sizes().end() - 1);
      std::vector<int64_t> back = shape;
      back.push_back(l.n);
      back.push_back(R);
      at::Tensor g = h.index_select(-1, gather_b_).view(back);
      std::vector<int64_t> flat = shape;
      flat.push_back(l.n * l.chunk_b());
      out = at::linear(g, B0).reshape(flat);  // [..., n·c_B]
      if (l.n * l.chunk_b() != l.d_out) out = out.narrow(-1, 0, l.d_out);
    }
  }
  if (l.u > 0) {
    at::Tensor unshared = at::linear(at::linear(in, A_u), B_u);
    out = out.defined() ? out + unshared : unshared;
  }
  return out * scale;
}

// ------------------------------------------------------------------ attach, merge

namespace {

void check_layout_fits(const std::string& name, const ProloraLayout& l) {
  if (l.m > l.d_in) {
    throw core::ConfigError("key 'prolora.m': expected at most " + std::to_string(l.d_in) + " (the input width of '" +
                            name + "'), found " + std::to_string(l.m));
  }
  if (l.n > l.d_out) {
    throw core::ConfigError("key 'prolora.n': expected at most " + std::to_string(l.d_out) +
                            " (the output width of '" + name + "'), found " + std::to_string(l.n));
  }
}

void check_not_tied(const nn::TransformerModel& model, const std::string& name) {
  const at::Tensor& W = model.param(name + ".weight");
  for (const auto& [other, t] : model.params()) {
    if (other != name + ".weight" && t.is_same(W)) {
      throw core::ConfigError("cannot merge the adapter of '" + name + "': its weight is tied to '" + other +
                              "' (keep the adapter unmerged)");
    }
  }
}

}  // namespace

ProloraSet attach_prolora(nn::TransformerModel& model, const LoraConfig& lora, const ProloraConfig& cfg, uint64_t seed) {
  if (cfg.u > lora.r) {
    throw core::ConfigError("key 'prolora.u': expected at most lora.r = " + std::to_string(lora.r) + ", found " +
                            std::to_string(cfg.u));
  }
  ProloraSet set{lora, cfg, {}};
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& [n, t] : model.params()) t.set_requires_grad(false);
  for (const auto& name : resolve_targets(model.linear_names(), lora.targets, model.output_layer())) {
    const at::Tensor& W = model.param(name + ".weight");
    const ProloraLayout l = prolora_layout(W.size(1), W.size(0), lora.r, cfg.u, cfg.m, cfg.n, cfg.rotation);
    check_layout_fits(name, l);
    // §3.4: kaiming_uniform(a=√5) with the fan of the full input width gives U(±1/√d_in),
    // vanilla LoRA's A; nn.Linear's reset on the c_A-wide chunk would give U(±1/√c_A)
    const double full = 1.0 / std::sqrt(static_cast<double>(l.d_in));
    const double bound_a0 = cfg.rectified_init ? full : 1.0 / std::sqrt(static_cast<double>(l.chunk_a()));
    const int64_t R = l.shared();
    at::Tensor a0 = at::rand({R, l.chunk_a()}, gen) * (2 * bound_a0) - bound_a0;
    at::Tensor a_u = at::rand({l.u, l.d_in}, gen) * (2 * full) - full;
    auto leaf = [&](at::Tensor t) { return t.to(W.device()).set_requires_grad(true); };
    auto ad = std::make_shared<ProloraAdapter>(leaf(a0), leaf(at::zeros({l.chunk_b(), R}, W.options())), leaf(a_u),
                                               leaf(at::zeros({l.d_out, l.u}, W.options())), l, lora.scale(),
                                               lora.input_dropout, cfg.forward);
    model.set_adapter(name, ad);
    set.adapters[name] = ad;
  }
  return set;
}

void merge(nn::TransformerModel& model, ProloraSet& set) {
  c10::NoGradGuard g;
  for (auto& [name, ad] : set.adapters) {
    if (ad->merged) continue;
    check_not_tied(model, name);
    model.param(name + ".weight").add_(ad->delta_weight());
    ad->merged = true;
  }
}

// ------------------------------------------------------------------ state

ProloraState prolora_state_of(const nn::TransformerModel& model, const ProloraSet& set,
                              const std::vector<std::string>& labels, const std::string& base_model) {
  ProloraState s;
  s.lora = set.lora;
  s.cfg = set.cfg;
  const LoraSet no_lora{set.lora, {}};
  s.common = state_of(model, no_lora, labels, base_model);  // head, labels, task type, targets
  auto copy = [](const at::Tensor& t) { return t.detach().cpu().clone(); };
  for (const auto& [name, ad] : set.adapters) {
    s.modules[name] = {ad->layout, copy(ad->A0), copy(ad->B0), copy(ad->A_u), copy(ad->B_u)};
  }
  return s;
}

ProloraSet attach_prolora_state(nn::TransformerModel& model, const ProloraState& state, const std::string& source) {
  (void)attach_state(model, state.common, source);  // the head and the checks of task type and targets
  ProloraSet set{state.lora, state.cfg, {}};
  const auto linears = model.linear_names();
  for (const auto& [name, mod] : state.modules) {
    if (std::find(linears.begin(), linears.end(), name) == linears.end()) {
      throw core::InputError(source + ": adapter module '" + name + "' is not a Linear of the model");
    }
    const at::Tensor& W = model.param(name + ".weight");
    if (mod.layout.d_in != W.size(1) || mod.layout.d_out != W.size(0)) {
      throw core::InputError(source + ": adapter module '" + name + "': made for a " + std::to_string(mod.layout.d_out) +
                             "x" + std::to_string(mod.layout.d_in) + " Linear, the model's is " +
                             nn::shape_str(W.sizes()));
    }
    auto dev = [&](const at::Tensor& t) { return t.to(W.device()).clone(); };
    auto ad = std::make_shared<ProloraAdapter>(dev(mod.a0), dev(mod.b0), dev(mod.a_u), dev(mod.b_u), mod.layout,
                                               state.lora.scale(), state.lora.input_dropout, state.cfg.forward);
    model.set_adapter(name, ad);
    set.adapters[name] = ad;
  }
  return set;
}

AdapterState prolora_as_lora(const ProloraState& state) {
  AdapterState s = state.common;
  s.cfg = state.lora;
  s.cfg.targets = state.common.cfg.targets;
  for (const auto& [name, mod] : state.modules) {
    s.ab[name] = {materialize_a(mod.a0, mod.a_u, mod.layout).contiguous(),
                  materialize_b(mod.b0, mod.b_u, mod.layout).contiguous()};
  }
  return s;
}

// ------------------------------------------------------------------ HDF5

void save_prolora_h5(const fs::path& path, const ProloraState& s, const core::ArtifactInfo& info) {
  core::H5Writer w(path, info);
  for (const auto& [name, mod] : s.modules) {
    const std::string g = "/prolora/" + name;
    const ProloraLayout& l = mod.layout;
    const std::vector<int64_t> layout = {l.d_in, l.d_out, l.r, l.u, l.m, l.n, l.stride_a, l.stride_b};
    w.write(g + "/layout", std::span<const int64_t>(layout));
    if (l.shared() > 0) {
      tensor::write_tensor(w, g + "/A0", mod.a0);
      tensor::write_tensor(w, g + "/B0", mod.b0);
    }
    if (l.u > 0) {
      tensor::write_tensor(w, g + "/A_u", mod.a_u);
      tensor::write_tensor(w, g + "/B_u", mod.b_u);
    }
  }
  AdapterState common = s.common;
  common.cfg = s.lora;
  common.cfg.targets = s.common.cfg.targets;
  write_adapter_common(w, common);
  w.set_attr("/", "adapter", std::string("prolora"));
  w.set_attr("/", "variant", s.cfg.variant);
  w.set_attr("/", "u", s.cfg.u);
  w.set_attr("/", "m", s.cfg.m);
  w.set_attr("/", "n", s.cfg.n);
  w.set_attr("/", "rotation", static_cast<int64_t>(s.cfg.rotation));
  w.set_attr("/", "rectified_init", static_cast<int64_t>(s.cfg.rectified_init));
  w.commit();
}

ProloraState load_prolora_h5(const fs::path& path) {
  if (!fs::exists(path)) {
    throw core::InputError(path.string() + ": adapter file not found (run prolora-finetune train first)");
  }
  core::H5Reader r(path);
  const std::string file = path.string();
  if (!r.has("/prolora")) {
    throw core::InputError(file + ": not a prolora-finetune adapter (expected a /prolora group" +
                           (r.has("/lora") ? std::string("; this is a lora-finetune adapter") : std::string()) + ")");
  }
  ProloraState s;
  read_adapter_common(r, s.common, file);
  read_adapter_head(r, s.common, file);
  s.common.targets_source = file + ": /targets";
  check_adapter_tensors(s.common, file);  // the head
  s.lora = s.common.cfg;
  s.cfg.variant = r.attr_string("/", "variant");
  s.cfg.u = r.attr_int("/", "u");
  s.cfg.m = r.attr_int("/", "m");
  s.cfg.n = r.attr_int("/", "n");
  s.cfg.rotation = r.attr_int("/", "rotation") != 0;
  s.cfg.rectified_init = r.attr_int("/", "rectified_init") != 0;
  if (s.lora.r < 1 || s.lora.r > 4096 || !std::isfinite(s.lora.alpha) || s.lora.alpha <= 0) {
    throw core::InputError(file + ": root attributes r and alpha: expected 1 <= r <= 4096 and alpha > 0, found r=" +
                           std::to_string(s.lora.r) + ", alpha=" + std::to_string(s.lora.alpha));
  }
  for (const auto& name : r.list("/prolora")) {
    const std::string g = "/prolora/" + name;
    const std::string where = file + ": module '" + name + "'";
    if (!r.has(g + "/layout")) throw core::InputError(where + ": expected " + g + "/layout");
    const auto v = r.read_i64(g + "/layout");
    if (v.size() != 8) throw core::InputError(where + ": layout: expected 8 integers, found " + std::to_string(v.size()));
    ProloraLayout l{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
    const int64_t R = l.r - l.u;
    const bool ok = l.d_in >= 1 && l.d_out >= 1 && l.d_in <= (1 << 20) && l.d_out <= (1 << 20) && l.r == s.lora.r &&
                    l.u >= 0 && l.u <= l.r && l.m >= 1 && l.m <= l.d_in && l.n >= 1 && l.n <= l.d_out &&
                    l.stride_a >= 0 && l.stride_a <= std::max<int64_t>(R, 1) && l.stride_b >= 0 &&
                    l.stride_b <= std::max<int64_t>(R, 1);
    if (!ok) {
      throw core::InputError(where + ": layout: expected [d_in, d_out, r, u, m, n, stride_a, stride_b] with r = " +
                             std::to_string(s.lora.r) + ", 0 <= u <= r, 1 <= m <= d_in, 1 <= n <= d_out and strides in "
                             "[0, r-u]");
    }
    ProloraState::Module mod{l, {}, {}, {}, {}};
    auto read = [&](const char* t, std::vector<int64_t> shape) {
      const std::string ds = g + "/" + t;
      if (!r.has(ds)) throw core::InputError(where + ": expected " + ds);
      at::Tensor x = tensor::read_tensor(r, ds);
      if (!at::isFloatingType(x.scalar_type())) throw core::InputError(where + ": " + t + ": expected floating point");
      if (x.sizes() != at::IntArrayRef(shape)) {
        throw core::InputError(where + ": " + t + ": expected shape " + nn::shape_str(shape) + ", found " +
                               nn::shape_str(x.sizes()));
      }
      x = x.to(at::kFloat);
      if (!at::isfinite(x).all().item<bool>()) throw core::InputError(where + ": " + t + ": expected finite values");
      return x;
    };
    if (R > 0) {
      mod.a0 = read("A0", {R, l.chunk_a()});
      mod.b0 = read("B0", {l.chunk_b(), R});
    } else {
      mod.a0 = at::zeros({0, l.chunk_a()});
      mod.b0 = at::zeros({l.chunk_b(), 0});
    }
    if (l.u > 0) {
      mod.a_u = read("A_u", {l.u, l.d_in});
      mod.b_u = read("B_u", {l.d_out, l.u});
    } else {
      mod.a_u = at::zeros({0, l.d_in});
      mod.b_u = at::zeros({l.d_out, 0});
    }
    s.modules[name] = std::move(mod);
  }
  if (s.modules.empty()) throw core::InputError(file + ": /prolora holds no modules");
  return s;
}

}  // namespace mlsys::lora
