// A* (and uniform-cost) search over HAP's instruction set.
#include "plan/spmd_search.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <chrono>
#include <cmath>
#include <limits>
#include <queue>
#include <unordered_map>

#include "core/error.hpp"
#include "core/signals.hpp"

namespace mlsys::plan {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

int bit_index(Prop p) { return p.kind == Prop::G ? 2 + p.dim : p.kind; }
Prop prop_of_bit(int b) { return b == 0 ? Prop{Prop::I, 0} : b == 1 ? Prop{Prop::R, 0} : Prop::gather(b - 2); }

// Per input of a step: how it was made (enough to rebuild the Step).
struct InputCode {
  uint8_t source = InputUse::existing;
  uint8_t from = 0;    // bit index of the property converted from
  uint8_t option = 0;  // index into conversions(t, from, to)
  uint8_t grad = InputUse::none;
  uint8_t sfb_variant = 0;
};

struct Node {
  int k = 0;
  int parent = -1;
  int sig = -1;
  double g = 0, f = 0;
  std::vector<uint32_t> masks;  // available properties of live[k], in that order
  std::array<InputCode, 4> codes{};
  double mem_c = 0, mem_l = 0;  // bytes held on device i: mem_c + mem_l * ratio_i (never decreases)
};

struct FixedPart {  // what a (step, signature) costs whatever the state: compute + parameters
  int sig = -1;
  double cost = 0;
  std::array<InputCode, 4> codes{};
  bool ok = true;
  double mem_c = 0, mem_l = 0;  // memory of the output, parameters and placeholders
};

class Searcher {
 public:
  Searcher(const SpmdCostModel& m, const std::vector<double>& ratios, const SearchOptions& o)
      : m_(m), g_(m.graph()), b_(ratios), o_(o) {
    const size_t nops = g_.ops.size();
    live_.resize(nops + 1);
    pos_.assign((nops + 1) * g_.tensors.size(), -1);
    for (size_t k = 0; k <= nops; ++k) {
      for (size_t t = 0; t < g_.tensors.size(); ++t) {
        const auto& T = g_.tensors[t];
        if (T.kind != SpmdTensorKind::activation || T.producer < 0 || static_cast<size_t>(T.producer) >= k) continue;
        bool used_later = false;
        for (int c : T.consumers) used_later = used_later || static_cast<size_t>(c) >= k;
        if (!used_later) continue;
        pos_[k * g_.tensors.size() + t] = static_cast<int>(live_[k].size());
        live_[k].push_back(static_cast<int>(t));
      }
    }
    conv_cache_.assign(g_.tensors.size() * 64, {kInf, -1.0});
    fixed_.resize(nops);
    h_.assign(nops + 1, 0.0);
    for (size_t k = 0; k < nops; ++k) {
      const SpmdOp& op = g_.ops[k];
      sigs_.push_back(signatures(g_, op));
      double best_compute = kInf;
      for (size_t s = 0; s < sigs_[k].size(); ++s) {
        FixedPart fp = fixed_part(op, sigs_[k][s], static_cast<int>(s));
        if (!fp.ok) continue;
        std::vector<CostTerm> t;
        m_.compute_terms(op, sigs_[k][s], t);
        best_compute = std::min(best_compute, m_.term_max(t[0], b_));
        fixed_[k].push_back(fp);
      }
      if (fixed_[k].empty()) {
        throw core::RuntimeFailure("search (" + o_.policy.name + "): op '" + op.name + "' (" + to_string(op.kind) +
                                   ") has no signature this policy allows");
      }
      h_[k] = best_compute;
    }
    for (size_t k = nops; k-- > 0;) h_[k] += h_[k + 1];
  }

  SearchResult run() {
    const auto t0 = std::chrono::steady_clock::now();
    SearchResult res;
    const size_t nops = g_.ops.size();
    using QItem = std::pair<double, int>;  // f, node
    std::priority_queue<QItem, std::vector<QItem>, std::greater<>> open;
    std::unordered_map<std::string, double> best;
    nodes_.push_back(Node{});
    nodes_[0].f = heuristic(0);
    open.push({nodes_[0].f, 0});
    best[key(nodes_[0])] = 0;
    int goal = -1;
    while (!open.empty()) {
      const int id = open.top().second;
      open.pop();
      {
        const Node& n = nodes_[static_cast<size_t>(id)];
        if (n.g > best[key(n)]) continue;  // a cheaper path to this state was found after the push
      }
      if (static_cast<size_t>(nodes_[static_cast<size_t>(id)].k) == nops) {
        if (o_.policy.check_memory && !fits(rebuild(id))) {
          ++res.over_memory;
          continue;
        }
        goal = id;
        break;
      }
      ++res.expanded;
      if ((res.expanded & 0xfff) == 0) core::throw_if_stop_requested();
      expand(id, open, best);
      if (static_cast<int64_t>(nodes_.size()) > o_.max_nodes) {
        throw core::RuntimeFailure("search (" + o_.policy.name + "): more than " + std::to_string(o_.max_nodes) +
                                   " nodes generated (synth.max_nodes)");
      }
    }
    res.generated = static_cast<int64_t>(nodes_.size());
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (goal < 0) return res;
    res.found = true;
    res.program = rebuild(goal);
    res.cost = nodes_[static_cast<size_t>(goal)].g;
    return res;
  }

 private:
  [[nodiscard]] double heuristic(int k) const { return o_.astar ? h_[static_cast<size_t>(k)] : 0.0; }

  static std::string key(const Node& n) {
    std::string s(sizeof(int) + n.masks.size() * sizeof(uint32_t), '\0');
    std::memcpy(s.data(), &n.k, sizeof(int));
    if (!n.masks.empty()) std::memcpy(s.data() + sizeof(int), n.masks.data(), n.masks.size() * sizeof(uint32_t));
    return s;
  }

  [[nodiscard]] bool allowed(const SpmdTensor& t, Prop p) const {
    const auto& pol = o_.policy;
    if (t.rank() == 0) return p.kind != Prop::G;
    if (t.kind == SpmdTensorKind::param) return !pol.data_parallel_only || p.kind == Prop::I;
    if (pol.data_parallel_only) return p.kind == Prop::G && p.dim == 0;
    if (pol.no_data_split) return p.kind != Prop::G || p.dim >= t.data_dims;
    return true;
  }

  double value(const std::vector<CostTerm>& terms) const {
    double v = 0;
    for (const auto& t : terms) v += m_.term_max(t, b_);
    return v;
  }

  FixedPart fixed_part(const SpmdOp& op, const Signature& s, int si) {
    FixedPart fp;
    fp.sig = si;
    if (o_.policy.shard_weights && si == 0 &&
        (op.kind == SpmdOpKind::linear || op.kind == SpmdOpKind::matmul || op.kind == SpmdOpKind::attention ||
         op.kind == SpmdOpKind::embedding || op.kind == SpmdOpKind::conv2d || op.kind == SpmdOpKind::moe)) {
      fp.ok = false;  // signature 0 is the all-Identity one
      return fp;
    }
    if (!allowed(g_.tensors[static_cast<size_t>(op.output)], s.out)) {
      fp.ok = false;
      return fp;
    }
    std::vector<CostTerm> terms;
    m_.compute_terms(op, s, terms);
    fp.cost = value(terms);
    bool weight_sfb = false;
    for (size_t i = 0; i < op.inputs.size(); ++i) {
      const auto& t = g_.tensors[static_cast<size_t>(op.inputs[i])];
      if (!allowed(t, s.in[i])) {
        fp.ok = false;
        return fp;
      }
      if (t.kind == SpmdTensorKind::activation) continue;
      InputCode& c = fp.codes[i];
      if (t.kind != SpmdTensorKind::param) {
        c.source = InputUse::placeholder;
        continue;
      }
      c.source = InputUse::parameter;
      if (s.in[i].kind != Prop::I) continue;
      if (weight_sfb && i == 2) {  // the bias gradient comes from the gathered dy as well
        c.grad = InputUse::sfb;
        continue;
      }
      InputUse u;
      u.prop = s.in[i];
      u.grad = InputUse::all_reduce;
      terms.clear();
      m_.param_terms(op, s, static_cast<int>(i), u, terms);
      double bestv = value(terms);
      c.grad = InputUse::all_reduce;
      if (o_.policy.sfb && s.batch_split_linear && i == 1) {
        for (int v = 0; v < (o_.policy.grouped_collectives ? 2 : 1); ++v) {
          u.grad = InputUse::sfb;
          u.sfb_variant = static_cast<Variant>(v);
          terms.clear();
          m_.param_terms(op, s, 1, u, terms);
          // SFB also spares the bias all-reduce.
          const auto& bias = g_.tensors[static_cast<size_t>(op.inputs[2])];
          std::vector<CostTerm> bt;
          InputUse ub;
          ub.prop = s.in[2];
          ub.grad = InputUse::all_reduce;
          m_.param_terms(op, s, 2, ub, bt);
          const double sv = value(terms) - (bias.kind == SpmdTensorKind::param ? value(bt) : 0.0);
          if (sv < bestv) {
            bestv = sv;
            c.grad = InputUse::sfb;
            c.sfb_variant = static_cast<uint8_t>(v);
          }
        }
        weight_sfb = c.grad == InputUse::sfb;
      }
      fp.cost += bestv;
    }
    if (weight_sfb) {  // the bias term was subtracted above; its own all-reduce is not added
      std::vector<CostTerm> bt;
      InputUse ub;
      ub.prop = s.in[2];
      ub.grad = InputUse::all_reduce;
      m_.param_terms(op, s, 2, ub, bt);
      fp.cost += value(bt);
    }
    Step st;  // the state-independent part: activation inputs counted where they are made
    st.out = s.out;
    st.op = static_cast<int>(&op - g_.ops.data());
    for (size_t i = 0; i < op.inputs.size(); ++i) {
      InputUse u;
      u.prop = s.in[i];
      u.source = static_cast<InputUse::Source>(fp.codes[i].source);
      st.inputs.push_back(u);
    }
    std::vector<CostTerm> mem;
    m_.memory_terms(st, mem);
    for (const auto& t : mem) fp.mem_c += t.c_uniform, fp.mem_l += t.l_uniform;
    return fp;
  }

  // Whether bytes mem_c + mem_l * ratio_i exceed some device's budget.
  [[nodiscard]] bool over_memory(double mem_c, double mem_l) const {
    for (int i = 0; i < m_.devices(); ++i) {
      if (mem_c + mem_l * b_[static_cast<size_t>(i)] >
          m_.options().memory_fraction * m_.cluster().devices[static_cast<size_t>(i)].memory_bytes) {
        return true;
      }
    }
    return false;
  }

  // Cheapest conversion of tensor t from property bit `from` to `to`: {cost, option} (option
  // -1 when none).
  std::pair<double, double> conversion(int t, int from, int to) {
    auto& c = conv_cache_[static_cast<size_t>(t) * 64 + static_cast<size_t>(from * 8 + to)];
    if (c.second != -1.0) return c;  // computed before (-2: no conversion)
    const auto& T = g_.tensors[static_cast<size_t>(t)];
    const auto opts = conversions(T, prop_of_bit(from), prop_of_bit(to));
    c = {kInf, -2.0};
    for (size_t i = 0; i < opts.size(); ++i) {
      if (!o_.policy.grouped_collectives && opts[i].variant == Variant::grouped) continue;
      std::vector<CostTerm> terms;
      m_.conversion_terms(T, opts[i], terms);
      const double v = value(terms);
      if (v < c.first) c = {v, static_cast<double>(i)};
    }
    return c;
  }

  void expand(int id, std::priority_queue<std::pair<double, int>, std::vector<std::pair<double, int>>, std::greater<>>& open,
              std::unordered_map<std::string, double>& best) {
    const int k = nodes_[static_cast<size_t>(id)].k;
    const SpmdOp& op = g_.ops[static_cast<size_t>(k)];
    const size_t nt = g_.tensors.size();
    const auto& next_live = live_[static_cast<size_t>(k) + 1];
    for (const FixedPart& fp : fixed_[static_cast<size_t>(k)]) {
      const Signature& s = sigs_[static_cast<size_t>(k)][static_cast<size_t>(fp.sig)];
      std::vector<uint32_t> masks = nodes_[static_cast<size_t>(id)].masks;  // of live[k]
      std::array<InputCode, 4> codes = fp.codes;
      double cost = fp.cost;
      double mem_c = nodes_[static_cast<size_t>(id)].mem_c + fp.mem_c, mem_l = nodes_[static_cast<size_t>(id)].mem_l + fp.mem_l;
      bool ok = true;
      for (size_t i = 0; i < op.inputs.size() && ok; ++i) {
        const int t = op.inputs[i];
        if (g_.tensors[static_cast<size_t>(t)].kind != SpmdTensorKind::activation) continue;
        const int p = pos_[static_cast<size_t>(k) * nt + static_cast<size_t>(t)];
        uint32_t& mask = masks[static_cast<size_t>(p)];
        const int want = bit_index(s.in[i]);
        if (mask & (1u << want)) continue;
        if (!o_.policy.conversions) {
          ok = false;
          break;
        }
        double bestv = kInf;
        for (int from = 0; from < 8; ++from) {
          if (!(mask & (1u << from))) continue;
          auto [v, option] = conversion(t, from, want);
          if (option >= 0 && v < bestv) {
            bestv = v;
            codes[i].source = InputUse::converted;
            codes[i].from = static_cast<uint8_t>(from);
            codes[i].option = static_cast<uint8_t>(option);
          }
        }
        if (bestv == kInf) {
          ok = false;
          break;
        }
        cost += bestv;
        mask |= 1u << want;
        const double bytes = static_cast<double>(g_.tensors[static_cast<size_t>(t)].bytes()) * m_.options().activation_factor;
        (s.in[i].kind == Prop::G ? mem_l : mem_c) += bytes;
      }
      if (!ok) continue;
      // Memory only grows along a program: a prefix over budget has no feasible completion.
      if (o_.policy.check_memory && over_memory(mem_c, mem_l)) {
        ++pruned_memory_;
        continue;
      }
      Node child;
      child.k = k + 1;
      child.parent = id;
      child.sig = fp.sig;
      child.codes = codes;
      child.g = nodes_[static_cast<size_t>(id)].g + cost;
      child.mem_c = mem_c;
      child.mem_l = mem_l;
      child.f = child.g + heuristic(k + 1);
      child.masks.resize(next_live.size());
      for (size_t j = 0; j < next_live.size(); ++j) {
        const int t = next_live[j];
        if (t == op.output) {
          child.masks[j] = s.out.bit();
        } else {
          child.masks[j] = masks[static_cast<size_t>(pos_[static_cast<size_t>(k) * nt + static_cast<size_t>(t)])];
        }
      }
      const std::string ck = key(child);
      auto it = best.find(ck);
      if (it != best.end() && it->second <= child.g) continue;
      best[ck] = child.g;
      nodes_.push_back(std::move(child));
      open.push({nodes_.back().f, static_cast<int>(nodes_.size()) - 1});
    }
  }

  Program rebuild(int id) const {
    Program p;
    for (int n = id; nodes_[static_cast<size_t>(n)].parent >= 0; n = nodes_[static_cast<size_t>(n)].parent) {
      const Node& node = nodes_[static_cast<size_t>(n)];
      const int k = node.k - 1;
      const SpmdOp& op = g_.ops[static_cast<size_t>(k)];
      const Signature& s = sigs_[static_cast<size_t>(k)][static_cast<size_t>(node.sig)];
      Step st;
      st.op = k;
      st.sig = node.sig;
      st.out = s.out;
      for (size_t i = 0; i < op.inputs.size(); ++i) {
        InputUse u;
        const InputCode& c = node.codes[i];
        u.prop = s.in[i];
        u.source = static_cast<InputUse::Source>(c.source);
        u.grad = static_cast<InputUse::Grad>(c.grad);
        u.sfb_variant = static_cast<Variant>(c.sfb_variant);
        if (u.source == InputUse::converted) {
          u.conv = conversions(g_.tensors[static_cast<size_t>(op.inputs[i])], prop_of_bit(c.from), u.prop)[c.option];
        }
        st.inputs.push_back(u);
      }
      p.steps.push_back(std::move(st));
    }
    std::reverse(p.steps.begin(), p.steps.end());
    return p;
  }

  bool fits(const Program& p) const {
    std::vector<CostTerm> mem;
    for (const auto& st : p.steps) m_.memory_terms(st, mem);
    for (int i = 0; i < m_.devices(); ++i) {
      double bytes = 0;
      for (const auto& t : mem) bytes += t.at(t.split_len > 0 ? b_[static_cast<size_t>(i)] : 0.0, 1.0);
      if (bytes > m_.options().memory_fraction * m_.cluster().devices[static_cast<size_t>(i)].memory_bytes) return false;
    }
    return true;
  }

  const SpmdCostModel& m_;
  const SpmdGraph& g_;
  std::vector<double> b_;
  SearchOptions o_;
  std::vector<std::vector<int>> live_;
  std::vector<int> pos_;
  std::vector<std::vector<Signature>> sigs_;
  std::vector<std::vector<FixedPart>> fixed_;
  std::vector<double> h_;
  std::vector<std::pair<double, double>> conv_cache_;
  std::vector<Node> nodes_;
  int64_t pruned_memory_ = 0;

 public:
  [[nodiscard]] int64_t pruned_memory() const { return pruned_memory_; }
};

}  // namespace

SearchResult search_program(const SpmdCostModel& m, const std::vector<double>& ratios, const SearchOptions& o) {
  if (static_cast<int>(ratios.size()) != m.devices()) {
    throw core::RuntimeFailure("search: " + std::to_string(ratios.size()) + " ratios for " + std::to_string(m.devices()) +
                               " devices");
  }
  Searcher s(m, ratios, o);
  SearchResult r = s.run();
  r.over_memory += s.pruned_memory();
  return r;
}

double program_cost(const SpmdCostModel& m, const Program& p, const std::vector<double>& ratios) {
  std::vector<CostTerm> terms;
  for (const auto& st : p.steps) m.step_terms(st, terms);
  double c = 0;
  for (const auto& t : terms) c += m.term_max(t, ratios);
  return c;
}

}  // namespace mlsys::plan
