// The instruction set, cost terms, memory model and program forms of spmd-plan.
#include "plan/spmd_program.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "core/error.hpp"
#include "core/report.hpp"

namespace mlsys::plan {

using core::Json;

std::string Prop::str() const {
  if (kind == I) return "I";
  if (kind == R) return "R";
  return "G(" + std::to_string(dim) + ")";
}

Prop parse_prop(const std::string& s, const std::string& where) {
  if (s == "I") return {Prop::I, 0};
  if (s == "R") return {Prop::R, 0};
  if (s.size() == 4 && s[0] == 'G' && s[1] == '(' && s[3] == ')' && s[2] >= '0' && s[2] <= '5') return Prop::gather(s[2] - '0');
  throw core::InputError(where + ": expected a property I, R or G(d) with d in 0..5, found '" + core::excerpt(s) + "'");
}

Prop gradient_prop(Prop p) {
  if (p.kind == Prop::I) return {Prop::R, 0};
  if (p.kind == Prop::R) return {Prop::I, 0};
  return p;
}

std::string to_string(ConvKind k) {
  switch (k) {
    case ConvKind::all_gather: return "all_gather";
    case ConvKind::reduce_scatter: return "reduce_scatter";
    case ConvKind::all_reduce: return "all_reduce";
    case ConvKind::rs_ag: return "reduce_scatter+all_gather";
    case ConvKind::all_to_all: return "all_to_all";
    case ConvKind::slice: return "slice";
    case ConvKind::pad: return "pad";
    case ConvKind::mask: return "mask";
  }
  return "?";
}
std::string to_string(Variant v) { return v == Variant::padded ? "padded" : "grouped"; }

std::vector<Signature> signatures(const SpmdGraph& g, const SpmdOp& op) {
  std::vector<Signature> out;
  const auto& x = g.tensors[static_cast<size_t>(op.inputs[0])];
  const int r = x.rank();
  const size_t n = op.inputs.size();
  const Prop I{Prop::I, 0}, R{Prop::R, 0};
  auto G = [](int d) { return Prop::gather(d); };
  auto add = [&](std::vector<Prop> in, Prop o, int si = -1, int sd = -1, double rep = -1, bool bsl = false) {
    Signature s;
    s.in = std::move(in);
    s.out = o;
    s.split_input = si;
    s.split_dim = sd;
    if (si < 0) {
      s.rep_flops = op.flops;
    } else {
      s.rep_flops = rep < 0 ? 0 : rep;
      s.split_flops = op.flops - s.rep_flops;
    }
    s.batch_split_linear = bsl;
    out.push_back(std::move(s));
  };
  add(std::vector<Prop>(n, I), I);
  switch (op.kind) {
    case SpmdOpKind::linear:
      for (int d = 0; d < r - 1; ++d) add({G(d), I, I}, G(d), 0, d, -1, true);
      add({I, G(0), G(0)}, G(r - 1), 1, 0);
      add({G(r - 1), G(1), R}, R, 1, 1);
      break;
    case SpmdOpKind::matmul:
      for (int d = 0; d < r - 2; ++d) add({G(d), G(d)}, G(d), 0, d);
      add({G(r - 2), I}, G(r - 2), 0, r - 2);
      add({I, G(r - 1)}, G(r - 1), 1, r - 1);
      add({G(r - 1), G(r - 2)}, R, 0, r - 1);
      break;
    case SpmdOpKind::attention:
      add({G(0), G(0), G(0)}, G(0), 0, 0);
      add({G(2), G(2), G(2)}, G(2), 0, 2);
      if (!op.causal) add({G(1), I, I}, G(1), 0, 1);
      break;
    case SpmdOpKind::layer_norm:
      for (int d = 0; d < r - 1; ++d) add({G(d), I, I}, G(d), 0, d);
      break;
    case SpmdOpKind::gelu:
    case SpmdOpKind::relu:
      for (int d = 0; d < r; ++d) add({G(d)}, G(d), 0, d);
      break;
    case SpmdOpKind::add:
      for (int d = 0; d < r; ++d) add({G(d), G(d)}, G(d), 0, d);
      add({R, R}, R);
      break;
    case SpmdOpKind::embedding:
      for (int d = 0; d < r; ++d) add({G(d), I}, G(d), 0, d);
      add({I, G(1)}, G(r), 1, 1);
      add({I, G(0)}, R, 1, 0);
      break;
    case SpmdOpKind::conv2d:
      add({G(0), I, I}, G(0), 0, 0);
      add({I, G(0), G(0)}, G(1), 1, 0);
      add({G(1), G(1), R}, R, 1, 1);
      break;
    case SpmdOpKind::max_pool2d:
    case SpmdOpKind::flatten:
      add({G(0)}, G(0), 0, 0);
      add({G(1)}, G(1), 0, 1);
      break;
    case SpmdOpKind::mean:
      add({R}, R);
      for (int d = 0; d < r; ++d) {
        if (d == op.dim) {
          add({G(d)}, R, 0, d);
        } else {
          add({G(d)}, G(d > op.dim ? d - 1 : d), 0, d);
        }
      }
      break;
    case SpmdOpKind::cross_entropy:
      for (int d = 0; d < r - 1; ++d) add({G(d), G(d)}, R, 0, d);
      break;
    case SpmdOpKind::moe: {
      for (int d = 0; d < r - 1; ++d) add({G(d), I, I, I}, G(d), 0, d);
      const int64_t e = x.shape.back();
      const double tokens = static_cast<double>(x.numel() / e);
      const double nx = static_cast<double>(g.tensors[static_cast<size_t>(op.inputs[1])].shape[1]);
      add({I, I, G(0), G(0)}, R, 2, 0, 2.0 * tokens * static_cast<double>(e) * nx);  // gating stays replicated
      break;
    }
  }
  return out;
}

std::vector<Conversion> conversions(const SpmdTensor& t, Prop from, Prop to) {
  std::vector<Conversion> out;
  if (from == to) return out;
  auto both = [&](ConvKind k, int dim = 0) {
    out.push_back({k, from, to, Variant::padded, dim});
    out.push_back({k, from, to, Variant::grouped, dim});
  };
  if (t.rank() == 0) {
    if (from.kind == Prop::R && to.kind == Prop::I) out.push_back({ConvKind::all_reduce, from, to, Variant::padded, 0});
    if (from.kind == Prop::I && to.kind == Prop::R) out.push_back({ConvKind::mask, from, to, Variant::padded, 0});
    return out;
  }
  if (from.kind == Prop::G && to.kind == Prop::I) both(ConvKind::all_gather, from.dim);
  if (from.kind == Prop::R && to.kind == Prop::I) {
    out.push_back({ConvKind::all_reduce, from, to, Variant::padded, 0});
    int best = 0;
    for (int d = 1; d < t.rank(); ++d) {
      if (t.shape[static_cast<size_t>(d)] / t.granule[static_cast<size_t>(d)] >
          t.shape[static_cast<size_t>(best)] / t.granule[static_cast<size_t>(best)]) {
        best = d;
      }
    }
    both(ConvKind::rs_ag, best);
  }
  if (from.kind == Prop::R && to.kind == Prop::G) both(ConvKind::reduce_scatter, to.dim);
  if (from.kind == Prop::I && to.kind == Prop::G) out.push_back({ConvKind::slice, from, to, Variant::padded, to.dim});
  if (from.kind == Prop::G && to.kind == Prop::R) out.push_back({ConvKind::pad, from, to, Variant::padded, from.dim});
  if (from.kind == Prop::I && to.kind == Prop::R) out.push_back({ConvKind::mask, from, to, Variant::padded, 0});
  if (from.kind == Prop::G && to.kind == Prop::G) out.push_back({ConvKind::all_to_all, from, to, Variant::padded, from.dim});
  return out;
}

SpmdCostModel::SpmdCostModel(const SpmdGraph& g, const SpmdCluster& c, CostOptions o) : g_(g), c_(c), o_(o) {}

void SpmdCostModel::compute_terms(const SpmdOp& op, const Signature& s, std::vector<CostTerm>& out) const {
  CostTerm t;
  const double f = 1.0 + o_.backward_factor;
  t.c_per_flops = f * s.rep_flops;
  t.l_per_flops = f * s.split_flops;
  if (s.split_input >= 0) {
    const auto& st = g_.tensors[static_cast<size_t>(op.inputs[static_cast<size_t>(s.split_input)])];
    t.split_len = st.shape[static_cast<size_t>(s.split_dim)];
    t.split_granule = st.granule[static_cast<size_t>(s.split_dim)];
  }
  out.push_back(t);
}

namespace {

// One collective of `bytes` (the full tensor) over all devices: padded (a real collective
// whose per-device part is padded to the largest shard) or grouped (n broadcasts or n
// reduces with per-root sizes, HAP's "by group call").
CostTerm collective_term(const SpmdCluster& c, Collective kind, double bytes, Variant v, int64_t len, int64_t gran) {
  CostTerm t;
  t.comm = true;
  const double n = static_cast<double>(c.size());
  if (c.size() == 1 || bytes <= 0) return t;
  if (kind == Collective::all_reduce) {
    t.c_uniform = c.cost(kind).seconds(bytes);
    return t;
  }
  if (v == Variant::grouped && (kind == Collective::all_gather || kind == Collective::reduce_scatter)) {
    const auto& k = c.cost(kind == Collective::all_gather ? Collective::broadcast : Collective::reduce);
    t.c_uniform = n * k.latency_us * 1e-6 + bytes / (k.gbytes_per_s * 1e9);
    return t;
  }
  const auto& k = c.cost(kind);
  t.c_uniform = k.latency_us * 1e-6;
  t.l_uniform = n * bytes / (k.gbytes_per_s * 1e9);
  t.split_len = len;
  t.split_granule = gran;
  return t;
}

}  // namespace

void SpmdCostModel::conversion_terms(const SpmdTensor& t, const Conversion& cv, std::vector<CostTerm>& out) const {
  const double b = static_cast<double>(t.bytes());
  auto dim_of = [&](int d) -> std::pair<int64_t, int64_t> {
    if (t.rank() == 0) return {0, 1};
    return {t.shape[static_cast<size_t>(d)], t.granule[static_cast<size_t>(d)]};
  };
  auto coll = [&](Collective k, int d) {
    auto [len, g] = dim_of(d);
    out.push_back(collective_term(c_, k, b, cv.variant, len, g));
  };
  switch (cv.kind) {
    case ConvKind::all_gather:  // forward all-gather, backward reduce-scatter (G <-> G, I <-> R)
      coll(Collective::all_gather, cv.from.dim);
      coll(Collective::reduce_scatter, cv.from.dim);
      break;
    case ConvKind::reduce_scatter:
      coll(Collective::reduce_scatter, cv.to.dim);
      coll(Collective::all_gather, cv.to.dim);
      break;
    case ConvKind::all_reduce:
      coll(Collective::all_reduce, 0);
      coll(Collective::all_reduce, 0);
      break;
    case ConvKind::rs_ag:
      for (int i = 0; i < 2; ++i) {
        coll(Collective::reduce_scatter, cv.dim);
        coll(Collective::all_gather, cv.dim);
      }
      break;
    case ConvKind::all_to_all:
      coll(Collective::all_to_all, cv.from.dim);
      coll(Collective::all_to_all, cv.to.dim);
      break;
    case ConvKind::slice:
    case ConvKind::pad:
    case ConvKind::mask:
      break;
  }
}

void SpmdCostModel::param_terms(const SpmdOp& op, const Signature& s, int input, const InputUse& use,
                                std::vector<CostTerm>& out) const {
  if (use.prop.kind != Prop::I) return;  // G: each device owns its slice's gradient; R: the gradient is I
  const auto& p = g_.tensors[static_cast<size_t>(op.inputs[static_cast<size_t>(input)])];
  if (use.grad == InputUse::all_reduce) {
    out.push_back(collective_term(c_, Collective::all_reduce, static_cast<double>(p.bytes()), Variant::padded, 0, 1));
  } else if (use.grad == InputUse::sfb && input == 1) {
    // Sufficient factor broadcasting: gather x and dy (the factors) instead of reducing dW,
    // then every device computes the full dW (its own share was already counted).
    const auto& x = g_.tensors[static_cast<size_t>(op.inputs[0])];
    const auto& y = g_.tensors[static_cast<size_t>(op.output)];
    const int d = s.split_dim;
    out.push_back(collective_term(c_, Collective::all_gather, static_cast<double>(x.bytes()), use.sfb_variant,
                                  x.shape[static_cast<size_t>(d)], x.granule[static_cast<size_t>(d)]));
    out.push_back(collective_term(c_, Collective::all_gather, static_cast<double>(y.bytes()), use.sfb_variant,
                                  y.shape[static_cast<size_t>(d)], y.granule[static_cast<size_t>(d)]));
    CostTerm extra;
    extra.c_per_flops = op.flops;
    extra.l_per_flops = -op.flops;
    extra.split_len = x.shape[static_cast<size_t>(d)];
    extra.split_granule = x.granule[static_cast<size_t>(d)];
    out.push_back(extra);
  }
}

void SpmdCostModel::step_terms(const Step& st, std::vector<CostTerm>& out) const {
  const SpmdOp& op = g_.ops[static_cast<size_t>(st.op)];
  const auto sigs = signatures(g_, op);
  const Signature& s = sigs[static_cast<size_t>(st.sig)];
  compute_terms(op, s, out);
  for (size_t i = 0; i < st.inputs.size(); ++i) {
    const auto& u = st.inputs[i];
    if (u.source == InputUse::converted) conversion_terms(g_.tensors[static_cast<size_t>(op.inputs[i])], u.conv, out);
    if (u.source == InputUse::parameter) param_terms(op, s, static_cast<int>(i), u, out);
  }
}

void SpmdCostModel::memory_terms(const Step& st, std::vector<CostTerm>& out) const {
  const SpmdOp& op = g_.ops[static_cast<size_t>(st.op)];
  auto held = [&](const SpmdTensor& t, Prop p, double factor) {
    CostTerm m;
    const double b = static_cast<double>(t.bytes()) * factor;
    if (p.kind == Prop::G) {
      m.l_uniform = b;
      m.split_len = t.shape[static_cast<size_t>(p.dim)];
      m.split_granule = t.granule[static_cast<size_t>(p.dim)];
    } else {
      m.c_uniform = b;
    }
    out.push_back(m);
  };
  held(g_.tensors[static_cast<size_t>(op.output)], st.out, o_.activation_factor);
  for (size_t i = 0; i < st.inputs.size(); ++i) {
    const auto& u = st.inputs[i];
    const auto& t = g_.tensors[static_cast<size_t>(op.inputs[i])];
    if (u.source == InputUse::parameter) held(t, u.prop, 2.0 + o_.optimizer_bytes_per_param_byte);
    if (u.source == InputUse::placeholder || u.source == InputUse::converted) held(t, u.prop, o_.activation_factor);
  }
}

std::vector<int64_t> shard_lengths(int64_t len, int64_t granule, const std::vector<double>& ratios) {
  const int64_t units = len / granule;
  const size_t n = ratios.size();
  double sum = 0;
  for (double r : ratios) sum += std::max(0.0, r);
  std::vector<int64_t> out(n, 0);
  std::vector<std::pair<double, size_t>> rem;
  int64_t given = 0;
  for (size_t i = 0; i < n; ++i) {
    const double want = sum > 0 ? std::max(0.0, ratios[i]) / sum * static_cast<double>(units) : 0.0;
    out[i] = std::min<int64_t>(units - given, static_cast<int64_t>(std::floor(want)));
    given += out[i];
    rem.emplace_back(want - static_cast<double>(out[i]), i);
  }
  // One more unit to the largest remainders (ties: the lower index) until they sum up.
  std::stable_sort(rem.begin(), rem.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < units && n > 0; k = (k + 1) % n, ++given) out[rem[k].second] += 1;
  for (auto& v : out) v *= granule;
  return out;
}

double SpmdCostModel::fraction(const CostTerm& t, const std::vector<double>& ratios, int device, bool rounded) const {
  if (t.split_len == 0) return 0.0;
  if (!rounded) return ratios[static_cast<size_t>(device)];
  const auto l = shard_lengths(t.split_len, t.split_granule, ratios);
  return static_cast<double>(l[static_cast<size_t>(device)]) / static_cast<double>(t.split_len);
}

double SpmdCostModel::term_max(const CostTerm& t, const std::vector<double>& ratios, bool rounded) const {
  double m = -1e300;
  std::vector<int64_t> l;
  if (rounded && t.split_len > 0) l = shard_lengths(t.split_len, t.split_granule, ratios);
  for (int i = 0; i < c_.size(); ++i) {
    double x = 0;
    if (t.split_len > 0) {
      x = rounded ? static_cast<double>(l[static_cast<size_t>(i)]) / static_cast<double>(t.split_len)
                  : ratios[static_cast<size_t>(i)];
    }
    m = std::max(m, t.at(x, c_.devices[static_cast<size_t>(i)].flops));
  }
  return m;
}

Prediction predict(const SpmdCostModel& m, const Program& p, const std::vector<double>& ratios, bool rounded) {
  const int n = m.devices();
  Prediction out;
  out.device_compute_s.assign(static_cast<size_t>(n), 0.0);
  out.device_comm_s.assign(static_cast<size_t>(n), 0.0);
  out.device_memory_bytes.assign(static_cast<size_t>(n), 0.0);
  std::vector<CostTerm> terms, mem;
  for (const auto& st : p.steps) {
    m.step_terms(st, terms);
    m.memory_terms(st, mem);
  }
  for (const auto& t : terms) {
    const double v = m.term_max(t, ratios, rounded);
    out.iteration_s += v;
    (t.comm ? out.comm_s : out.compute_s) += v;
    for (int i = 0; i < n; ++i) {
      const double x = m.fraction(t, ratios, i, rounded);
      (t.comm ? out.device_comm_s : out.device_compute_s)[static_cast<size_t>(i)] +=
          t.at(x, m.cluster().devices[static_cast<size_t>(i)].flops);
    }
  }
  for (const auto& t : mem) {
    for (int i = 0; i < n; ++i) out.device_memory_bytes[static_cast<size_t>(i)] += t.at(m.fraction(t, ratios, i, rounded), 1.0);
  }
  for (int i = 0; i < n; ++i) {
    if (out.device_memory_bytes[static_cast<size_t>(i)] >
        m.options().memory_fraction * m.cluster().devices[static_cast<size_t>(i)].memory_bytes) {
      out.fits_memory = false;
      if (out.over_memory_device < 0) out.over_memory_device = i;
    }
  }
  return out;
}

namespace {

std::string source_name(InputUse::Source s) {
  switch (s) {
    case InputUse::existing: return "existing";
    case InputUse::converted: return "converted";
    case InputUse::placeholder: return "placeholder";
    case InputUse::parameter: return "parameter";
  }
  return "?";
}
std::string grad_name(InputUse::Grad g) {
  return g == InputUse::all_reduce ? "all_reduce" : g == InputUse::sfb ? "sfb" : "none";
}

}  // namespace

Json program_to_json(const SpmdCostModel& m, const Program& p) {
  const auto& g = m.graph();
  Json steps = Json::array();
  for (const auto& st : p.steps) {
    const SpmdOp& op = g.ops[static_cast<size_t>(st.op)];
    Json ins = Json::array();
    for (size_t i = 0; i < st.inputs.size(); ++i) {
      const auto& u = st.inputs[i];
      Json ji = {{"tensor", g.tensors[static_cast<size_t>(op.inputs[i])].name}, {"prop", u.prop.str()},
                 {"source", source_name(u.source)}};
      if (u.source == InputUse::converted) {
        ji["from"] = u.conv.from.str();
        ji["collective"] = to_string(u.conv.kind);
        ji["variant"] = to_string(u.conv.variant);
        ji["dim"] = u.conv.dim;
      }
      if (u.source == InputUse::parameter) {
        ji["grad"] = grad_name(u.grad);
        if (u.grad == InputUse::sfb) ji["variant"] = to_string(u.sfb_variant);
      }
      ins.push_back(std::move(ji));
    }
    steps.push_back({{"op", op.name}, {"kind", to_string(op.kind)}, {"signature", st.sig}, {"inputs", std::move(ins)},
                     {"output", {{"tensor", g.tensors[static_cast<size_t>(op.output)].name}, {"prop", st.out.str()}}}});
  }
  return steps;
}

Program program_from_json(const SpmdGraph& g, const Json& j, const std::string& source) {
  auto fail = [&](const std::string& where, const std::string& expected, const std::string& found) {
    throw core::InputError(source + ": " + where + ": expected " + expected + ", found " + found);
  };
  auto str = [&](const Json& o, const char* key, const std::string& where) {
    if (!o.is_object() || !o.contains(key) || !o[key].is_string()) {
      fail(where + "." + key, "a string", o.is_object() && o.contains(key) ? core::describe_json(o[key]) : "nothing");
    }
    return o[key].get<std::string>();
  };
  if (!j.is_array() || j.size() != g.ops.size()) {
    fail("steps", "an array of one step per op (" + std::to_string(g.ops.size()) + ")", core::describe_json(j));
  }
  Program p;
  std::vector<uint32_t> avail(g.tensors.size(), 0);
  for (size_t k = 0; k < j.size(); ++k) {
    const std::string w = "steps[" + std::to_string(k) + "]";
    const Json& js = j[k];
    const SpmdOp& op = g.ops[k];
    if (str(js, "op", w) != op.name) fail(w + ".op", "'" + op.name + "' (the graph's op order)", "'" + core::excerpt(str(js, "op", w)) + "'");
    Step st;
    st.op = static_cast<int>(k);
    if (!js.contains("inputs") || !js["inputs"].is_array() || js["inputs"].size() != op.inputs.size()) {
      fail(w + ".inputs", std::to_string(op.inputs.size()) + " inputs", js.contains("inputs") ? core::describe_json(js["inputs"]) : "nothing");
    }
    std::vector<Prop> in;
    for (size_t i = 0; i < op.inputs.size(); ++i) {
      const std::string wi = w + ".inputs[" + std::to_string(i) + "]";
      const Json& ji = js["inputs"][i];
      const auto& t = g.tensors[static_cast<size_t>(op.inputs[i])];
      InputUse u;
      u.prop = parse_prop(str(ji, "prop", wi), source + ": " + wi + ".prop");
      const std::string src = str(ji, "source", wi);
      if (u.prop.kind == Prop::G && u.prop.dim >= std::max(1, t.rank())) fail(wi + ".prop", "a dim of '" + t.name + "'", u.prop.str());
      if (t.kind == SpmdTensorKind::param) {
        if (src != "parameter") fail(wi + ".source", "parameter", "'" + core::excerpt(src) + "'");
        u.source = InputUse::parameter;
        const std::string gr = str(ji, "grad", wi);
        u.grad = gr == "all_reduce" ? InputUse::all_reduce : gr == "sfb" ? InputUse::sfb : InputUse::none;
        if (gr != "all_reduce" && gr != "sfb" && gr != "none") fail(wi + ".grad", "all_reduce, sfb or none", "'" + core::excerpt(gr) + "'");
        if ((u.prop.kind == Prop::I) != (u.grad != InputUse::none)) {
          fail(wi + ".grad", u.prop.kind == Prop::I ? "all_reduce or sfb for an Identity parameter" : "none", "'" + gr + "'");
        }
        if (u.grad == InputUse::sfb) u.sfb_variant = ji.value("variant", std::string("padded")) == "grouped" ? Variant::grouped : Variant::padded;
      } else if (t.kind != SpmdTensorKind::activation) {
        if (src != "placeholder") fail(wi + ".source", "placeholder", "'" + core::excerpt(src) + "'");
        u.source = InputUse::placeholder;
      } else if (src == "existing") {
        u.source = InputUse::existing;
        if (!(avail[static_cast<size_t>(op.inputs[i])] & u.prop.bit())) fail(wi + ".prop", "a property made earlier", u.prop.str());
      } else if (src == "converted") {
        u.source = InputUse::converted;
        const Prop from = parse_prop(str(ji, "from", wi), source + ": " + wi + ".from");
        if (!(avail[static_cast<size_t>(op.inputs[i])] & from.bit())) fail(wi + ".from", "a property made earlier", from.str());
        const std::string coll = str(ji, "collective", wi), var = str(ji, "variant", wi);
        bool found = false;
        for (const auto& cv : conversions(t, from, u.prop)) {
          if (to_string(cv.kind) == coll && to_string(cv.variant) == var) {
            u.conv = cv;
            found = true;
          }
        }
        if (!found) fail(wi + ".collective", "a collective that makes " + u.prop.str() + " from " + from.str(), "'" + core::excerpt(coll) + "'");
        avail[static_cast<size_t>(op.inputs[i])] |= u.prop.bit();
      } else {
        fail(wi + ".source", "existing or converted", "'" + core::excerpt(src) + "'");
      }
      in.push_back(u.prop);
      st.inputs.push_back(u);
    }
    const auto sigs = signatures(g, op);
    st.sig = -1;
    for (size_t s = 0; s < sigs.size(); ++s) {
      if (sigs[s].in == in) st.sig = static_cast<int>(s);
    }
    if (st.sig < 0) fail(w + ".inputs", "properties of a signature of " + to_string(op.kind), "none matches");
    st.out = sigs[static_cast<size_t>(st.sig)].out;
    for (const auto& u : st.inputs) {
      if (u.grad == InputUse::sfb && !sigs[static_cast<size_t>(st.sig)].batch_split_linear) {
        fail(w, "sfb only on a batch-sharded linear", "sfb on " + to_string(op.kind));
      }
    }
    avail[static_cast<size_t>(op.output)] |= st.out.bit();
    p.steps.push_back(std::move(st));
  }
  return p;
}

Json rank_programs(const SpmdCostModel& m, const Program& p, const std::vector<double>& ratios) {
  const auto& g = m.graph();
  const int n = m.devices();
  Json shards = Json::object();
  auto ranges_of = [&](const SpmdTensor& t, int d) {
    const std::string key = t.name + ":" + std::to_string(d);
    if (!shards.contains(key)) {
      const auto l = shard_lengths(t.shape[static_cast<size_t>(d)], t.granule[static_cast<size_t>(d)], ratios);
      Json r = Json::array();
      int64_t at = 0;
      for (auto v : l) {
        r.push_back({at, at + v});
        at += v;
      }
      shards[key] = r;
    }
    return shards[key];
  };
  auto local_shape = [&](const SpmdTensor& t, Prop pr, int rank) {
    std::vector<int64_t> s = t.shape;
    if (pr.kind == Prop::G) {
      const Json r = ranges_of(t, pr.dim)[static_cast<size_t>(rank)];
      s[static_cast<size_t>(pr.dim)] = r[1].get<int64_t>() - r[0].get<int64_t>();
    }
    return s;
  };
  Json programs = Json::array();
  for (int r = 0; r < n; ++r) {
    Json ins = Json::array();
    for (const auto& st : p.steps) {
      const SpmdOp& op = g.ops[static_cast<size_t>(st.op)];
      Json cin = Json::array();
      for (size_t i = 0; i < st.inputs.size(); ++i) {
        const auto& u = st.inputs[i];
        const auto& t = g.tensors[static_cast<size_t>(op.inputs[i])];
        if (u.source == InputUse::placeholder) {
          ins.push_back({{"op", "placeholder"}, {"tensor", t.name}, {"prop", u.prop.str()}, {"shape", local_shape(t, u.prop, r)}});
        } else if (u.source == InputUse::parameter) {
          ins.push_back({{"op", "parameter"}, {"tensor", t.name}, {"prop", u.prop.str()}, {"shape", local_shape(t, u.prop, r)},
                         {"grad", grad_name(u.grad)}, {"variant", to_string(u.sfb_variant)}});
        } else if (u.source == InputUse::converted) {
          auto emit = [&](const std::string& kind, Prop from, Prop to, Variant v) {
            ins.push_back({{"op", kind}, {"tensor", t.name}, {"from", from.str()}, {"to", to.str()}, {"variant", to_string(v)},
                           {"shape", local_shape(t, to, r)}});
          };
          if (u.conv.kind == ConvKind::rs_ag) {
            emit("reduce_scatter", u.conv.from, Prop::gather(u.conv.dim), u.conv.variant);
            emit("all_gather", Prop::gather(u.conv.dim), u.prop, u.conv.variant);
          } else {
            emit(to_string(u.conv.kind), u.conv.from, u.prop, u.conv.variant);
          }
        }
        if (u.prop.kind == Prop::G) ranges_of(t, u.prop.dim);
        cin.push_back({{"tensor", t.name}, {"prop", u.prop.str()}});
      }
      const auto& ot = g.tensors[static_cast<size_t>(op.output)];
      if (st.out.kind == Prop::G) ranges_of(ot, st.out.dim);
      ins.push_back({{"op", "compute"}, {"name", op.name}, {"kind", to_string(op.kind)}, {"inputs", cin},
                     {"output", {{"tensor", ot.name}, {"prop", st.out.str()}, {"shape", local_shape(ot, st.out, r)}}}});
    }
    // The shard of each G input/param/conversion above, as ranges of every rank.
    for (auto& in : ins) {
      if (in.contains("to") && in["to"].get<std::string>()[0] == 'G') {
        const auto& t = g.tensors[static_cast<size_t>(g.find(in["tensor"].get<std::string>()))];
        ranges_of(t, in["to"].get<std::string>()[2] - '0');
      }
      if (in.contains("from") && in["from"].get<std::string>()[0] == 'G') {
        const auto& t = g.tensors[static_cast<size_t>(g.find(in["tensor"].get<std::string>()))];
        ranges_of(t, in["from"].get<std::string>()[2] - '0');
      }
    }
    programs.push_back({{"rank", r}, {"device", m.cluster().devices[static_cast<size_t>(r)].name}, {"instructions", std::move(ins)}});
  }
  return {{"ratios", ratios}, {"shards", shards}, {"ranks", programs}};
}

std::string program_listing(const SpmdCostModel& m, const Program& p, const std::vector<double>& ratios) {
  const auto& g = m.graph();
  std::string out;
  std::vector<CostTerm> terms;
  for (size_t k = 0; k < p.steps.size(); ++k) {
    const auto& st = p.steps[k];
    const SpmdOp& op = g.ops[static_cast<size_t>(st.op)];
    std::string line = "  " + std::to_string(k) + "  " + op.name + " = " + to_string(op.kind) + "(";
    std::string comm;
    for (size_t i = 0; i < st.inputs.size(); ++i) {
      const auto& u = st.inputs[i];
      const auto& t = g.tensors[static_cast<size_t>(op.inputs[i])];
      line += (i ? ", " : "") + t.name + ":" + u.prop.str();
      if (u.source == InputUse::converted) {
        comm += "  " + to_string(u.conv.kind) + "(" + t.name + " " + u.conv.from.str() + "->" + u.prop.str() + ", " +
                to_string(u.conv.variant) + ")";
      }
      if (u.source == InputUse::parameter && u.grad != InputUse::none) {
        if (u.grad == InputUse::sfb && i == 1) comm += "  sfb(d" + t.name + ", " + to_string(u.sfb_variant) + ")";
        if (u.grad == InputUse::all_reduce) comm += "  grad all_reduce(" + t.name + ")";
      }
    }
    terms.clear();
    m.step_terms(st, terms);
    double ms = 0;
    for (const auto& t : terms) ms += m.term_max(t, ratios, true);
    line += ") -> " + st.out.str() + "   [" + core::fixed(ms * 1e3, 3) + " ms]" + comm + "\n";
    out += line;
  }
  return out;
}

}  // namespace mlsys::plan
