// A seeded synthetic evolving graph with a controllable structural shift (research notes
// dot_ssrm.md §B.9), the offline stand-in for CGLB's data sets: classes arrive in tasks;
// each class has Gaussian features around its own mean; within a task, edges follow a
// stochastic block model (mostly same-class, homophily about 0.8); when a task arrives,
// each of its nodes also links to Poisson(shift) nodes of *older* tasks (the target class
// drawn from an affinity row that favours one related old class, the node within the
// class by preferential attachment). Those arrival edges change the neighbourhoods of old
// nodes after their task was learned: the structural shift, with `shift` (lambda_x) its knob.
// Node ids are ordered by class, and classes by task, so tasks 0..t are a prefix.
#pragma once

#include <cstdint>

#include "graph/attributed_graph.hpp"

namespace mlsys::graph {

struct EvolvingGraphConfig {
  int64_t classes = 10;
  int64_t classes_per_task = 2;    // arrival unit (a task brings this many classes)
  int64_t nodes_per_class = 200;
  int64_t feature_dim = 32;
  double mean_scale = 0.15;        // class means ~ N(0, I) x mean_scale
  double feature_noise = 1.0;      // features = mean + feature_noise x N(0, I)
  double same_class_degree = 6;    // expected neighbours of the same class (within the task)
  double cross_class_degree = 1.5; // expected neighbours of the task's other classes
  double shift = 3;                // lambda_x: expected edges from each new node to older nodes
  double related_affinity = 0.7;   // share of arrival edges aimed at the class's related old class
};

// core::ConfigError when a count or rate is out of range (the config reader checks the
// same ranges with the key's name first): fewer classes than classes_per_task, fewer than
// 3 nodes per class, a negative rate or degree.
AttributedGraph generate_evolving_graph(const EvolvingGraphConfig& c, uint64_t seed);

}  // namespace mlsys::graph
