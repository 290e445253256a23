// The heterogeneous cluster of spmd-plan (HAP §3): devices with their FLOP/s and memory,
// grouped into nodes, and per collective kind an alpha-beta cost (latency + bytes /
// algorithm bandwidth) inside a node and across nodes. DynaPipe's ClusterSpec describes a
// homogeneous pipeline (one peak TFLOP/s for all stages) and has no per-device speeds or
// collective kinds, so this is its own struct. Torch-free.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/json.hpp"

namespace mlsys::plan {

enum class Collective { all_gather = 0, reduce_scatter, all_reduce, broadcast, reduce, all_to_all };
inline constexpr int kCollectiveKinds = 6;
std::string to_string(Collective c);

struct CollectiveCost {
  double gbytes_per_s = 1.0;  // algorithm bandwidth: bytes of the full tensor / time
  double latency_us = 10.0;
  [[nodiscard]] double seconds(double bytes) const {
    return bytes <= 0 ? 0.0 : latency_us * 1e-6 + bytes / (gbytes_per_s * 1e9);
  }
};
using CollectiveTable = std::array<CollectiveCost, kCollectiveKinds>;

struct SpmdDevice {
  std::string name;
  double flops = 1e12;        // effective FLOP/s of the model's ops (measured or nominal)
  double memory_bytes = 16e9;
  int node = 0;
};

struct SpmdCluster {
  std::string name = "cluster";
  std::vector<SpmdDevice> devices;
  CollectiveTable intra{}, inter{};
  [[nodiscard]] int size() const { return static_cast<int>(devices.size()); }
  [[nodiscard]] int nodes() const;
  // The collectives over all devices cross nodes when there is more than one node.
  [[nodiscard]] const CollectiveCost& cost(Collective c) const;
  [[nodiscard]] double max_flops() const;
};

// {"name", "devices": [{"name", "flops" | "tflops", "memory_gb", "node", "count"?}],
//  "collectives": {"intra_node": {"all_gather": {"gbytes_per_s", "latency_us"}, ...},
//                  "inter_node": {...}}} with all six kinds in each table (inter_node may be
// absent for a one-node cluster). core::InputError naming `source` and the field.
SpmdCluster cluster_from_json(const core::Json& j, const std::string& source);
SpmdCluster read_cluster_file(const std::string& path);
core::Json cluster_to_json(const SpmdCluster& c);

}  // namespace mlsys::plan
