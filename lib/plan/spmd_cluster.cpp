// Reading and writing spmd-plan cluster files.
#include "plan/spmd_cluster.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.hpp"

namespace mlsys::plan {

namespace {

using core::Json;

const char* const kNames[kCollectiveKinds] = {"all_gather", "reduce_scatter", "all_reduce", "broadcast", "reduce",
                                              "all_to_all"};

std::string join(const std::string& where, const std::string& key) {
  return !where.empty() && where.back() == ':' ? where + " " + key : where + "." + key;
}

[[noreturn]] void fail(const std::string& where, const std::string& expected, const std::string& found) {
  throw core::InputError(where + ": expected " + expected + ", found " + found);
}

double number(const Json& obj, const std::string& key, const std::string& where, double lo, double hi, bool required,
              double dflt) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) fail(join(where, key), "a number (the field is required)", "nothing");
    return dflt;
  }
  if (!it->is_number()) fail(join(where, key), "a number", core::describe_json(*it));
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    fail(join(where, key), "a number in [" + core::short_json(Json(lo)) + ", " + core::short_json(Json(hi)) + "]",
         core::short_json(*it));
  }
  return v;
}

void only_keys(const Json& obj, std::initializer_list<const char*> keys, const std::string& where) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (std::none_of(keys.begin(), keys.end(), [&](const char* k) { return it.key() == k; })) {
      fail(where, "only known keys", "unknown key '" + core::excerpt(it.key()) + "'");
    }
  }
}

CollectiveTable table_from(const Json& t, const std::string& where) {
  if (!t.is_object()) fail(where, "an object of collective kinds", core::describe_json(t));
  only_keys(t, {"all_gather", "reduce_scatter", "all_reduce", "broadcast", "reduce", "all_to_all"}, where);
  CollectiveTable out{};
  for (int k = 0; k < kCollectiveKinds; ++k) {
    const std::string w = where + "." + kNames[k];
    auto it = t.find(kNames[k]);
    if (it == t.end()) fail(w, "an object {gbytes_per_s, latency_us} (every kind is required)", "nothing");
    if (!it->is_object()) fail(w, "an object {gbytes_per_s, latency_us}", core::describe_json(*it));
    only_keys(*it, {"gbytes_per_s", "latency_us"}, w);
    out[static_cast<size_t>(k)].gbytes_per_s = number(*it, "gbytes_per_s", w, 1e-6, 1e6, true, 0);
    out[static_cast<size_t>(k)].latency_us = number(*it, "latency_us", w, 0, 1e7, true, 0);
  }
  return out;
}

}  // namespace

std::string to_string(Collective c) { return kNames[static_cast<int>(c)]; }

int SpmdCluster::nodes() const {
  std::set<int> n;
  for (const auto& d : devices) n.insert(d.node);
  return static_cast<int>(n.size());
}

const CollectiveCost& SpmdCluster::cost(Collective c) const {
  return (nodes() > 1 ? inter : intra)[static_cast<size_t>(c)];
}

double SpmdCluster::max_flops() const {
  double m = 0;
  for (const auto& d : devices) m = std::max(m, d.flops);
  return m;
}

SpmdCluster cluster_from_json(const Json& j, const std::string& source) {
  if (!j.is_object()) fail(source, "a JSON object (a cluster)", core::describe_json(j));
  only_keys(j, {"name", "devices", "collectives", "program", "version", "git_commit", "created", "command", "command_line", "config", "measured"},
            source);
  SpmdCluster c;
  if (auto it = j.find("name"); it != j.end()) {
    if (!it->is_string()) fail(source + ": name", "a string", core::describe_json(*it));
    c.name = it->get<std::string>();
  }
  auto devs = j.find("devices");
  if (devs == j.end() || !devs->is_array() || devs->empty()) {
    fail(source + ": devices", "a non-empty array of devices", devs == j.end() ? "nothing" : core::describe_json(*devs));
  }
  for (size_t i = 0; i < devs->size(); ++i) {
    const Json& d = (*devs)[i];
    const std::string w = source + ": devices[" + std::to_string(i) + "]";
    if (!d.is_object()) fail(w, "an object", core::describe_json(d));
    only_keys(d, {"name", "flops", "tflops", "memory_gb", "node", "count"}, w);
    SpmdDevice dev;
    dev.name = "device" + std::to_string(i);
    if (auto it = d.find("name"); it != d.end()) {
      if (!it->is_string()) fail(w + ".name", "a string", core::describe_json(*it));
      dev.name = it->get<std::string>();
    }
    if (d.contains("flops") == d.contains("tflops")) {
      fail(w, "exactly one of flops or tflops", d.contains("flops") ? "both" : "neither");
    }
    dev.flops = d.contains("flops") ? number(d, "flops", w, 1e3, 1e18, true, 0) : number(d, "tflops", w, 1e-9, 1e6, true, 0) * 1e12;
    dev.memory_bytes = number(d, "memory_gb", w, 1e-6, 1e6, true, 0) * 1e9;
    dev.node = static_cast<int>(number(d, "node", w, 0, 1e6, false, 0));
    if (static_cast<double>(dev.node) != number(d, "node", w, 0, 1e6, false, 0)) {
      fail(w + ".node", "an integer", core::short_json(d["node"]));
    }
    const double count = number(d, "count", w, 1, 4096, false, 1);
    if (count != std::floor(count)) fail(w + ".count", "an integer", core::short_json(d["count"]));
    for (int k = 0; k < static_cast<int>(count); ++k) {
      SpmdDevice e = dev;
      if (count > 1) e.name = dev.name + "#" + std::to_string(k);
      c.devices.push_back(e);
    }
    if (c.devices.size() > 4096) fail(source + ": devices", "at most 4096 devices in all", std::to_string(c.devices.size()));
  }
  auto col = j.find("collectives");
  if (col == j.end() || !col->is_object()) {
    fail(source + ": collectives", "an object {intra_node, inter_node}", col == j.end() ? "nothing" : core::describe_json(*col));
  }
  only_keys(*col, {"intra_node", "inter_node"}, source + ": collectives");
  if (!col->contains("intra_node")) fail(source + ": collectives.intra_node", "a table of collective costs", "nothing");
  c.intra = table_from((*col)["intra_node"], source + ": collectives.intra_node");
  if (col->contains("inter_node")) {
    c.inter = table_from((*col)["inter_node"], source + ": collectives.inter_node");
  } else if (c.nodes() > 1) {
    fail(source + ": collectives.inter_node", "a table of collective costs (the devices span " + std::to_string(c.nodes()) + " nodes)",
         "nothing");
  } else {
    c.inter = c.intra;
  }
  return c;
}

SpmdCluster read_cluster_file(const std::string& path) { return cluster_from_json(core::read_json_file(path), path); }

Json cluster_to_json(const SpmdCluster& c) {
  Json devs = Json::array();
  for (const auto& d : c.devices) {
    devs.push_back({{"name", d.name}, {"flops", d.flops}, {"memory_gb", d.memory_bytes / 1e9}, {"node", d.node}});
  }
  auto table = [](const CollectiveTable& t) {
    Json o = Json::object();
    for (int k = 0; k < kCollectiveKinds; ++k) {
      o[kNames[k]] = {{"gbytes_per_s", t[static_cast<size_t>(k)].gbytes_per_s},
                      {"latency_us", t[static_cast<size_t>(k)].latency_us}};
    }
    return o;
  };
  return {{"name", c.name}, {"devices", devs}, {"collectives", {{"intra_node", table(c.intra)}, {"inter_node", table(c.inter)}}}};
}

}  // namespace mlsys::plan
