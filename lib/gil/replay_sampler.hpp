// ER-GNN's experience node selection (Zhou and Cao, AAAI 2021; CGLB's ergnn_utils.py): a
// task's budget of replay nodes, split evenly over its classes, chosen from its training
// nodes by coverage maximisation (the nodes with the fewest other-class nodes within a
// radius: they cover their class's region of attribute space without overlapping
// others), by mean feature (the nodes closest to their class's mean attribute vector), or
// at random. No LibTorch: it reads the attribute vectors of lib/graph's graph.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph/attributed_graph.hpp"

namespace mlsys::gil {

struct ReplaySamplerConfig {
  std::string sampler = "cm";  // "cm" (coverage maximisation) | "mf" (mean feature) | "random"
  // CM's radius, as a fraction of the mean distance between the class's nodes and the other
  // classes' (CGLB's d = 0.5 is an absolute distance on its representations; a fraction keeps
  // the criterion meaningful whatever the feature scale).
  double radius = 0.5;
};

// Up to `budget` node ids (ascending) from `train` (the task's training nodes; their labels
// in g), budget / classes per class (the remainder to the first classes), never more than
// a class has. Seeded: ties and the random sampler draw from `seed`.
std::vector<int64_t> select_replay_nodes(const graph::AttributedGraph& g, const std::vector<int64_t>& train,
                                         int64_t budget, const ReplaySamplerConfig& c, uint64_t seed);

}  // namespace mlsys::gil
