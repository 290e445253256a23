// Reading a cost table and merging its layers into virtual stages.
#include "plan/cost_table.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

#include "core/error.hpp"
#include "core/json.hpp"

namespace mlsys::plan {

using nlohmann::json;

double CostTableCluster::transfer_ms(int from, int to, double mb) const {
  const bool same_node = !device_node.empty() && device_node[static_cast<size_t>(from)] == device_node[static_cast<size_t>(to)];
  const double gbps = same_node ? bandwidth_gbps : inter_bandwidth_gbps;
  const double lat_us = same_node ? latency_us : inter_latency_us;
  // The reference's t_comm (µs) = latency + MB * 8 / 1e3 / Gbps * 1e6.
  return lat_us / 1e3 + mb * 8.0 / 1e3 / gbps * 1e3;
}

int CostTable::devices() const {
  int d = 0;
  for (int x : device_assignment) d = std::max(d, x + 1);
  return d;
}

namespace {

// Field-by-field reader of one JSON object: every error names the source and the field.
class Reader {
 public:
  Reader(const json& j, std::string source, std::string path) : j_(j), source_(std::move(source)), path_(std::move(path)) {
    if (!j_.is_object()) fail("", "an object", core::describe_json(j_));
  }
  [[noreturn]] void fail(const std::string& key, const std::string& expected, const std::string& found) const {
    throw core::InputError(source_ + ": " + name(key) + ": expected " + expected + ", found " + found);
  }
  [[nodiscard]] std::string name(const std::string& key) const {
    if (key.empty()) return path_.empty() ? "(root)" : path_;
    return path_.empty() ? key : path_ + "." + key;
  }
  [[nodiscard]] bool has(const std::string& key) const {
    seen_.insert(key);
    return j_.contains(key);
  }
  [[nodiscard]] const json& at(const std::string& key) const {
    if (!has(key)) fail(key, "a value (the field is required)", "nothing");
    return j_.at(key);
  }
  [[nodiscard]] double number(const std::string& key, double lo, double hi, const json& v) const {
    if (!v.is_number()) fail(key, "a number", core::describe_json(v));
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < lo || x > hi) {
      fail(key, "a number in [" + core::short_json(lo) + ", " + core::short_json(hi) + "]", core::short_json(v));
    }
    return x;
  }
  [[nodiscard]] double number(const std::string& key, double lo, double hi) const { return number(key, lo, hi, at(key)); }
  [[nodiscard]] int64_t integer(const std::string& key, int64_t lo, int64_t hi, const json& v) const {
    if (!v.is_number_integer()) fail(key, "an integer", core::describe_json(v));
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi) fail(key, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", core::short_json(v));
    return x;
  }
  [[nodiscard]] std::vector<double> numbers(const std::string& key, size_t n, double lo, double hi) const {
    const json& v = at(key);
    if (!v.is_array()) fail(key, "an array of " + std::to_string(n) + " numbers", core::describe_json(v));
    if (v.size() != n) fail(key, "an array of " + std::to_string(n) + " numbers", core::describe_json(v));
    std::vector<double> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) out.push_back(number(key + "[" + std::to_string(i) + "]", lo, hi, v[i]));
    return out;
  }
  [[nodiscard]] std::string choice(const std::string& key, const std::vector<std::string>& options) const {
    const json& v = at(key);
    std::string list;
    for (const auto& o : options) list += (list.empty() ? "" : "|") + o;
    if (!v.is_string()) fail(key, "one of " + list, core::describe_json(v));
    const auto s = v.get<std::string>();
    if (std::find(options.begin(), options.end(), s) == options.end()) fail(key, "one of " + list, core::short_json(v));
    return s;
  }
  // Every key of the object was read: a misspelt one is an error, not silently ignored.
  void finish() const {
    for (const auto& [k, v] : j_.items()) {
      if (!seen_.count(k)) fail(k, "no such field (a misspelt key?)", core::describe_json(v));
    }
  }
  [[nodiscard]] const json& raw() const { return j_; }

 private:
  const json& j_;
  std::string source_, path_;
  mutable std::set<std::string> seen_;
};

constexpr double kMaxMs = 1e9;
constexpr double kMaxMb = 1e12;

}  // namespace

CostTable parse_cost_table(const json& j, const std::string& source) {
  CostTable t;
  const Reader r(j, source, "");
  const json& asg = r.at("device_assignment");
  if (!asg.is_array() || asg.empty() || asg.size() > 100000) {
    r.fail("device_assignment", "a non-empty array of device ids (one per layer)", core::describe_json(asg));
  }
  for (size_t l = 0; l < asg.size(); ++l) {
    t.device_assignment.push_back(static_cast<int>(r.integer("device_assignment[" + std::to_string(l) + "]", 0, 65535, asg[l])));
  }
  const size_t L = t.device_assignment.size();
  const int D = t.devices();
  {
    std::vector<char> used(static_cast<size_t>(D), 0);
    for (int d : t.device_assignment) used[static_cast<size_t>(d)] = 1;
    for (int d = 0; d < D; ++d) {
      if (!used[static_cast<size_t>(d)]) {
        r.fail("device_assignment", "every device 0.." + std::to_string(D - 1) + " used", "no layer on device " + std::to_string(d));
      }
    }
  }
  if (r.has("schedule")) t.schedule = r.choice("schedule", {"1f1b", "interleaved-1f1b", "wait-free-cyclic"});
  if (r.has("backward_peak")) {
    t.backward_peak = r.choice("backward_peak", {"reference", "working_set"}) == "reference" ? BackwardPeak::reference
                                                                                             : BackwardPeak::working_set;
  }
  if (r.has("max_in_flight")) t.max_in_flight = static_cast<int>(r.integer("max_in_flight", 0, 1 << 20, r.at("max_in_flight")));
  t.model_state_mb = r.has("model_state_mb") ? r.numbers("model_state_mb", L, 0, kMaxMb) : std::vector<double>(L, 0.0);

  if (r.has("cluster")) {
    const Reader c(r.at("cluster"), source, "cluster");
    auto& cl = t.cluster;
    if (c.has("bandwidth_gbps")) cl.bandwidth_gbps = c.number("bandwidth_gbps", 1e-6, 1e9);
    if (c.has("latency_us")) cl.latency_us = c.number("latency_us", 0, 1e9);
    cl.inter_bandwidth_gbps = c.has("inter_node_bandwidth_gbps") ? c.number("inter_node_bandwidth_gbps", 1e-6, 1e9) : cl.bandwidth_gbps;
    cl.inter_latency_us = c.has("inter_node_latency_us") ? c.number("inter_node_latency_us", 0, 1e9) : cl.latency_us;
    if (c.has("device_to_node")) {
      const json& v = c.at("device_to_node");
      if (!v.is_array() || v.size() != static_cast<size_t>(D)) {
        c.fail("device_to_node", "an array of " + std::to_string(D) + " node ids (one per device)", core::describe_json(v));
      }
      for (size_t d = 0; d < v.size(); ++d) {
        cl.device_node.push_back(static_cast<int>(c.integer("device_to_node[" + std::to_string(d) + "]", 0, 65535, v[d])));
      }
    }
    if (c.has("memory_limit_mb")) {
      const json& v = c.at("memory_limit_mb");
      if (v.is_array()) {
        cl.memory_limit_mb = c.numbers("memory_limit_mb", static_cast<size_t>(D), 0, 1e300);
      } else {
        cl.memory_limit_mb.assign(static_cast<size_t>(D), c.number("memory_limit_mb", 0, 1e300));
      }
    }
    c.finish();
  }

  const json& mbs = r.at("micro_batches");
  if (!mbs.is_array() || mbs.empty()) r.fail("micro_batches", "a non-empty array of objects", core::describe_json(mbs));
  for (size_t m = 0; m < mbs.size(); ++m) {
    const Reader b(mbs[m], source, "micro_batches[" + std::to_string(m) + "]");
    LayerCosts lc;
    // µs in the file (the reference's unit), ms inside.
    lc.fw_ms = b.numbers("fw_us", L, 0, kMaxMs * 1e3);
    lc.bw_ms = b.numbers("bw_us", L, 0, kMaxMs * 1e3);
    for (auto* v : {&lc.fw_ms, &lc.bw_ms}) {
      for (double& x : *v) x /= 1e3;
    }
    lc.activation_mb = b.numbers("activation_mb", L - 1, 0, kMaxMb);
    lc.gradient_mb = b.has("gradient_mb") ? b.numbers("gradient_mb", L - 1, 0, kMaxMb) : lc.activation_mb;
    lc.stored_mb = b.numbers("stored_activation_mb", L, 0, kMaxMb);
    lc.peak_mb = b.numbers("peak_activation_mb", L, 0, kMaxMb);
    const int64_t repeat = b.has("repeat") ? b.integer("repeat", 1, 100000, b.at("repeat")) : 1;
    b.finish();
    for (int64_t k = 0; k < repeat; ++k) t.microbatches.push_back(lc);
    if (t.microbatches.size() > 100000) r.fail("micro_batches", "at most 100000 micro-batches (repeat included)", std::to_string(t.microbatches.size()));
  }
  r.finish();
  return t;
}

CostTable read_cost_table(const std::filesystem::path& path) {
  return parse_cost_table(core::read_json_file(path), path.string());
}

StagedPipeline merge_layers(const CostTable& t) {
  StagedPipeline p;
  const size_t L = t.device_assignment.size();
  const int D = t.devices();
  for (size_t l = 0; l < L; ++l) {
    if (l == 0 || t.device_assignment[l] != t.device_assignment[l - 1]) {
      p.stage_layers.emplace_back();
      p.spec.stage_device.push_back(t.device_assignment[l]);
    }
    p.stage_layers.back().push_back(static_cast<int>(l));
  }
  const size_t V = p.stage_layers.size();
  p.spec.devices = D;
  p.spec.state_mb.assign(static_cast<size_t>(D), 0.0);
  for (size_t l = 0; l < L; ++l) p.spec.state_mb[static_cast<size_t>(t.device_assignment[l])] += t.model_state_mb[l];
  p.spec.memory_limit_mb = t.cluster.memory_limit_mb;
  p.spec.backward_peak = t.backward_peak;
  for (const auto& lc : t.microbatches) {
    MicroBatchWork w;
    for (size_t v = 0; v < V; ++v) {
      double fw = 0, bw = 0, stored = 0, peak = 0;
      for (int l : p.stage_layers[v]) {
        const auto li = static_cast<size_t>(l);
        peak = std::max(peak, stored + lc.peak_mb[li]);
        fw += lc.fw_ms[li];
        bw += lc.bw_ms[li];
        stored += lc.stored_mb[li];
      }
      w.fw_ms.push_back(fw);
      w.bw_ms.push_back(bw);
      w.stored_mb.push_back(stored);
      w.peak_mb.push_back(peak);
      if (v + 1 < V) {
        const auto last = static_cast<size_t>(p.stage_layers[v].back());
        const int a = p.spec.stage_device[v], b = p.spec.stage_device[v + 1];
        w.send_mb.push_back(lc.activation_mb[last]);
        w.fw_comm_ms.push_back(t.cluster.transfer_ms(a, b, lc.activation_mb[last]));
        w.bw_comm_ms.push_back(t.cluster.transfer_ms(b, a, lc.gradient_mb[last]));
      }
    }
    w.send_mb.push_back(0.0);  // after the last stage: nothing
    p.work.push_back(std::move(w));
  }
  return p;
}

Schedule table_schedule(const CostTable& table, const StagedPipeline& p, const std::string& source) {
  try {
    return make_schedule(table.schedule, p.spec, p.work, CyclicOptions{table.max_in_flight, true});
  } catch (const std::invalid_argument& e) {
    throw core::InputError(source + ": schedule: expected " + e.what() + ", found \"" + table.schedule + "\"");
  }
}

CostTable uniform_cost_table(const std::vector<int>& device_assignment, const std::string& schedule) {
  CostTable t;
  t.device_assignment = device_assignment;
  t.schedule = schedule;
  const size_t L = device_assignment.size();
  t.model_state_mb.assign(L, 0.0);
  LayerCosts lc;
  lc.fw_ms.assign(L, 1.0);
  lc.bw_ms.assign(L, 1.0);
  lc.stored_mb.assign(L, 1000.0);
  lc.peak_mb.assign(L, 2000.0);
  lc.activation_mb.assign(L - 1, 1.25);
  lc.gradient_mb.assign(L - 1, 1.25);
  t.microbatches.assign(8, lc);
  return t;
}

json to_json(const CostTable& t) {
  json mbs = json::array();
  auto us = [](std::vector<double> v) {
    for (double& x : v) x *= 1e3;
    return v;
  };
  for (const auto& lc : t.microbatches) {
    mbs.push_back({{"fw_us", us(lc.fw_ms)},
                   {"bw_us", us(lc.bw_ms)},
                   {"activation_mb", lc.activation_mb},
                   {"gradient_mb", lc.gradient_mb},
                   {"stored_activation_mb", lc.stored_mb},
                   {"peak_activation_mb", lc.peak_mb}});
  }
  json cluster = {{"bandwidth_gbps", t.cluster.bandwidth_gbps},
                  {"latency_us", t.cluster.latency_us},
                  {"inter_node_bandwidth_gbps", t.cluster.inter_bandwidth_gbps},
                  {"inter_node_latency_us", t.cluster.inter_latency_us}};
  if (!t.cluster.device_node.empty()) cluster["device_to_node"] = t.cluster.device_node;
  if (!t.cluster.memory_limit_mb.empty()) cluster["memory_limit_mb"] = t.cluster.memory_limit_mb;
  return {{"device_assignment", t.device_assignment},
          {"schedule", t.schedule},
          {"backward_peak", t.backward_peak == BackwardPeak::reference ? "reference" : "working_set"},
          {"max_in_flight", t.max_in_flight},
          {"model_state_mb", t.model_state_mb},
          {"cluster", std::move(cluster)},
          {"micro_batches", std::move(mbs)}};
}

}  // namespace mlsys::plan
