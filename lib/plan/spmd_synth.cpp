// Alternation of search and LP, and the baselines.
#include "plan/spmd_synth.hpp"

#include <chrono>

#include "core/error.hpp"
#include "core/log.hpp"
#include "plan/spmd_lp.hpp"

namespace mlsys::plan {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::vector<double> even_ratios(int n) { return std::vector<double>(static_cast<size_t>(n), 1.0 / n); }

std::vector<double> proportional_ratios(const SpmdCluster& c) {
  double s = 0;
  for (const auto& d : c.devices) s += d.flops;
  std::vector<double> r;
  for (const auto& d : c.devices) r.push_back(d.flops / s);
  return r;
}

SynthResult synthesize(const SpmdCostModel& m, const SynthOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  SynthResult res;
  res.method = o.policy.name;
  SearchOptions so;
  so.astar = o.astar;
  so.max_nodes = o.max_nodes;
  so.policy = o.policy;
  std::vector<double> b = o.fixed_ratios.empty() ? proportional_ratios(m.cluster()) : o.fixed_ratios;
  double best = std::numeric_limits<double>::infinity();
  for (int it = 0; it < std::max(1, o.max_iterations); ++it) {
    SynthIteration h;
    const SearchResult sr = search_program(m, b, so);
    h.expanded = sr.expanded;
    h.generated = sr.generated;
    h.over_memory = sr.over_memory;
    h.search_s = sr.seconds;
    res.expanded += sr.expanded;
    res.generated += sr.generated;
    if (!sr.found) {
      h.lp_status = "no program fits every device's memory at these ratios";
      h.ratios = b;
      res.history.push_back(h);
      break;
    }
    h.search_cost = sr.cost;
    // Fixed point: the search found nothing cheaper than the last LP's program.
    if (res.found && sr.cost >= best * (1 - 1e-9)) {
      h.lp_cost = sr.cost;
      h.lp_status = "fixed point";
      h.ratios = b;
      res.history.push_back(h);
      break;
    }
    res.found = true;
    res.program = sr.program;
    res.ratios = b;
    best = sr.cost;
    if (!o.fixed_ratios.empty()) {
      h.lp_cost = sr.cost;
      h.lp_status = "ratios fixed";
      h.ratios = b;
      res.history.push_back(h);
      break;
    }
    const auto tl = std::chrono::steady_clock::now();
    const LpResult lp = solve_ratios(m, sr.program);
    h.lp_s = seconds_since(tl);
    if (lp.optimal && lp.objective < sr.cost) {
      b = lp.ratios;
      best = lp.objective;
      res.ratios = b;
      h.lp_status = "optimal";
    } else {
      h.lp_status = lp.optimal ? "optimal, no better than the search's ratios" : lp.status;
    }
    h.lp_cost = best;
    h.ratios = b;
    res.history.push_back(h);
    log::debug("synth {}: iteration {}: search {:.6f} s, LP {:.6f} s ({} nodes expanded)", o.policy.name, it,
               sr.cost, best, sr.expanded);
    if (!lp.optimal || lp.objective >= sr.cost) break;
  }
  if (res.found) {
    res.cost = best;
    res.prediction = predict(m, res.program, res.ratios, true);
  }
  res.seconds = seconds_since(t0);
  return res;
}

SynthResult baseline(const SpmdCostModel& m, const std::string& method, const SynthOptions& o) {
  SynthOptions b = o;
  b.policy = SearchPolicy{};
  b.policy.name = method;
  b.policy.sfb = false;
  b.policy.check_memory = false;  // a baseline is what it is; its memory is reported
  if (method == "dp-even" || method == "dp-proportional") {
    b.policy.data_parallel_only = true;
    b.policy.conversions = false;
    b.policy.grouped_collectives = false;
    b.fixed_ratios = method == "dp-even" ? even_ratios(m.devices()) : proportional_ratios(m.cluster());
  } else if (method == "tp") {
    b.policy.no_data_split = true;
    b.policy.shard_weights = true;
    b.policy.grouped_collectives = false;
    b.fixed_ratios = even_ratios(m.devices());
  } else {
    throw core::ConfigError("baselines: expected dp-even, dp-proportional or tp, found '" + core::excerpt(method) + "'");
  }
  return synthesize(m, b);
}

}  // namespace mlsys::plan
