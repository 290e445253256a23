// lib/gil's torch-free parts: AP and AF (CGLB's sign) on a hand-made accuracy matrix,
// class-balanced accuracy, the ER-GNN samplers (budget split per class, coverage
// maximisation and mean feature picking the nodes they should), and the config defaults.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "core/config.hpp"
#include "gil/metrics.hpp"
#include "gil/replay_sampler.hpp"
#include "gil/ssrm_config.hpp"
#include "graph/attributed_graph.hpp"

using namespace mlsys;
using namespace mlsys::gil;

TEST_CASE("AP and AF on a hand-made 3x3 accuracy matrix (CGLB sign: negative = forgetting)", "[metrics]") {
  AccuracyMatrix m;
  m.tasks = 3;
  // after task 0: 90; after 1: 70, 80; after 2: 50, 60, 95 (above the diagonal: never read)
  m.acc = {90, -1, -1, 70, 80, -1, 50, 60, 95};
  CHECK(average_performance(m) == Approx((50.0 + 60.0 + 95.0) / 3));
  CHECK(average_forgetting(m) == Approx(((50.0 - 90.0) + (60.0 - 80.0)) / 2));  // -30
  CHECK(average_forgetting(m) < 0);
  AccuracyMatrix one;
  one.tasks = 1;
  one.acc = {42};
  CHECK(average_performance(one) == 42);
  CHECK(average_forgetting(one) == 0);
}

TEST_CASE("class-balanced accuracy is the mean of per-class accuracies", "[metrics]") {
  // class 0: 3 of 4 right; class 1: 0 of 1 right -> (0.75 + 0) / 2, not 3/5.
  CHECK(class_balanced_accuracy({0, 0, 0, 1, 0}, {0, 0, 0, 0, 1}) == Approx(0.375));
  CHECK(class_balanced_accuracy({}, {}) == 0);
  CHECK_THROWS_AS(class_balanced_accuracy({0}, {0, 1}), core::RuntimeFailure);
  const MeanStd s = mean_std({1, 2, 3, 4});
  CHECK(s.mean == Approx(2.5));
  CHECK(s.std == Approx(1.2909944));
}

namespace {

// Two classes on a line: class 0 at x = 0..9, class 1 at x = 8..17 (overlap at 8, 9).
graph::AttributedGraph line_graph() {
  std::vector<float> f;
  std::vector<int64_t> y;
  for (int i = 0; i < 10; ++i) {
    f.push_back(static_cast<float>(i));
    y.push_back(0);
  }
  for (int i = 0; i < 10; ++i) {
    f.push_back(static_cast<float>(8 + i));
    y.push_back(1);
  }
  return graph::build_graph(20, {}, f, 1, y);
}

}  // namespace

TEST_CASE("ER-GNN samplers: budget split per class; CM avoids the overlap, MF takes the middle", "[sampler]") {
  const graph::AttributedGraph g = line_graph();
  std::vector<int64_t> train(20);
  for (int64_t i = 0; i < 20; ++i) train[static_cast<size_t>(i)] = i;
  ReplaySamplerConfig c;
  for (const char* s : {"cm", "mf", "random"}) {
    c.sampler = s;
    for (int64_t budget : {1, 4, 7, 40}) {
      const auto chosen = select_replay_nodes(g, train, budget, c, 3);
      CHECK(static_cast<int64_t>(chosen.size()) == std::min<int64_t>(budget, 20));
      const auto zeros = std::count_if(chosen.begin(), chosen.end(), [](int64_t v) { return v < 10; });
      CHECK(zeros == std::min<int64_t>(budget / 2 + budget % 2, 10));  // the remainder goes to the first class
      CHECK(std::set<int64_t>(chosen.begin(), chosen.end()).size() == chosen.size());
    }
  }
  // CM with a radius of 0.9 x the mean cross-class distance (about 8, so 7.2): x = 0 has no
  // class-1 node within it, x = 1 one (8), x = 2 two, ...; the same mirrored for class 1.
  c.sampler = "cm";
  c.radius = 0.9;
  const auto cm = select_replay_nodes(g, train, 4, c, 3);
  CHECK(cm == std::vector<int64_t>{0, 1, 18, 19});
  c.sampler = "mf";
  const auto mf = select_replay_nodes(g, train, 2, c, 3);
  CHECK((mf[0] == 4 || mf[0] == 5));     // class 0's mean is 4.5
  CHECK((mf[1] == 14 || mf[1] == 15));   // class 1 (x = 8..17) has mean 12.5: nodes 14, 15
  CHECK_THROWS_AS(select_replay_nodes(g, train, 2, {"kmeans", 0.5}, 3), core::ConfigError);
}

TEST_CASE("the built-in defaults equal configs/ssrm-incremental/default.json", "[config]") {
  const auto builtin = read_ssrm_config(core::parse_config("{}", "<builtin>"));
  const auto file = read_ssrm_config(core::load_config(std::string(MLSYS_SOURCE_ROOT) + "/configs/ssrm-incremental/default.json"));
  CHECK(builtin.resolved.dump() == file.resolved.dump());
  CHECK(builtin.run.ssrm.weight == 1.0);
  CHECK(builtin.run.framework.name == "ergnn");
  CHECK(builtin.generate.shift == 3.0);
  // Every key a reader takes is in the file, and a misspelt one is refused with its path.
  CHECK_THROWS_WITH(read_ssrm_config(core::parse_config(R"({"ssrm": {"wieght": 1}})", "<t>")),
                    Catch::Contains("ssrm.wieght"));
  CHECK_THROWS_WITH(read_ssrm_config(core::parse_config(R"({"model": {"name": "gat", "hidden": 30}})", "<t>")),
                    Catch::Contains("model.hidden"));
}
