// lib/graph's static side: CSR construction, induced subgraphs and k-hop sets, the folder
// loader (round trip and bad files naming file:line), class-incremental tasks (per-class
// 60/20/20, G_t holds only tasks <= t) and the evolving-graph generator (seeded; lambda_x = 0
// means no edge between tasks; the shift grows with lambda_x).
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "core/error.hpp"
#include "graph/attributed_graph.hpp"
#include "graph/evolving_graph.hpp"
#include "graph/incremental_tasks.hpp"
#include "tests/support/expect_error.hpp"
#include "tests/support/harness.hpp"

using namespace mlsys;
using namespace mlsys::graph;

namespace {

AttributedGraph path5() {
  // 0-1-2-3-4 with a repeated edge, a reversed one and a self loop.
  return build_graph(5, {{0, 1}, {1, 0}, {2, 1}, {2, 3}, {3, 4}, {4, 4}}, std::vector<float>(10, 1.f), 2, {0, 0, 1, 1, 2});
}

EvolvingGraphConfig small_config(double shift) {
  EvolvingGraphConfig c;
  c.classes = 6;
  c.nodes_per_class = 60;
  c.feature_dim = 8;
  c.shift = shift;
  return c;
}

}  // namespace

TEST_CASE("build_graph: symmetric CSR without self loops or repeats", "[attributed]") {
  const AttributedGraph g = path5();
  CHECK(g.num_edges() == 4);
  CHECK(g.num_classes == 3);
  CHECK(g.indptr == std::vector<int64_t>{0, 1, 3, 5, 7, 8});
  CHECK(g.indices == std::vector<int64_t>{1, 0, 2, 1, 3, 2, 4, 3});
}

TEST_CASE("induced_subgraph keeps exactly the edges among the chosen nodes", "[attributed]") {
  const AttributedGraph g = path5();
  const Subgraph s = induced_subgraph(g, {1, 2, 4});
  CHECK(s.graph.num_nodes == 3);
  CHECK(s.graph.num_edges() == 1);  // only 1-2 survives; 3 is gone, so 4 is isolated
  CHECK(s.graph.indices == std::vector<int64_t>{1, 0});
  CHECK(s.graph.labels == std::vector<int64_t>{0, 1, 2});
  CHECK(k_hop_nodes(g, {0}, 2) == std::vector<int64_t>{0, 1, 2});
  CHECK(k_hop_nodes(g, {4, 0}, 1) == std::vector<int64_t>{0, 1, 3, 4});
  CHECK_THROWS_AS(induced_subgraph(g, {2, 1}), core::RuntimeFailure);
  // Side by side: the second part's ids shift by the first's node count.
  const AttributedGraph u = disjoint_union({&s.graph, &g});
  CHECK(u.num_nodes == 8);
  CHECK(u.num_edges() == 5);
  CHECK(u.indptr == std::vector<int64_t>{0, 1, 2, 2, 3, 5, 7, 9, 10});
  CHECK(u.indices == std::vector<int64_t>{1, 0, 4, 3, 5, 4, 6, 5, 7, 6});
  CHECK(u.labels == std::vector<int64_t>{0, 1, 2, 0, 0, 1, 1, 2});
  CHECK(u.features.size() == 16);
}

TEST_CASE("graph folder: round trip, and bad files named with their line", "[attributed][loader]") {
  const test::TempDir tmp("attributed");
  const AttributedGraph g = generate_evolving_graph(small_config(2), 3);
  write_attributed_graph(tmp.path / "g", g);
  const AttributedGraph r = load_attributed_graph(tmp.path / "g");
  CHECK(r.num_nodes == g.num_nodes);
  CHECK(r.indptr == g.indptr);
  CHECK(r.indices == g.indices);
  CHECK(r.labels == g.labels);
  CHECK(r.features == g.features);

  const auto dir = tmp.path / "bad";
  tmp.write("bad/labels.csv", "label\n0\n1\n1\n");
  tmp.write("bad/features.csv", "1,2\n3,4\n5,6\n");
  tmp.write("bad/edges.csv", "src,dst\n0,1\n1,3\n");
  test::expect_error([&] { (void)load_attributed_graph(dir); }, {"edges.csv:3", "node id 3", "node count 3"});
  tmp.write("bad/edges.csv", "src,dst\n0,x\n");
  test::expect_error([&] { (void)load_attributed_graph(dir); }, {"edges.csv:2", "column 'dst'"});
  tmp.write("bad/edges.csv", "a,b\n0,1\n");
  test::expect_error([&] { (void)load_attributed_graph(dir); }, {"edges.csv:1", "src,dst"});
  tmp.write("bad/edges.csv", "src,dst\n0,1\n");
  tmp.write("bad/labels.csv", "label\n0\n-1\n1\n");
  test::expect_error([&] { (void)load_attributed_graph(dir); }, {"labels.csv:3", "non-negative"});
  tmp.write("bad/labels.csv", "label\n0\n1\n");
  test::expect_error([&] { (void)load_attributed_graph(dir); }, {"features.csv", "expected 2 rows, found 3"});
  tmp.write("bad/labels.csv", "label\n0\n1\n1\n");
  CHECK(load_attributed_graph(dir).num_edges() == 1);
}

TEST_CASE("incremental tasks: per-class 60/20/20 splits, G_t holds only tasks <= t", "[attributed][tasks]") {
  const AttributedGraph g = generate_evolving_graph(small_config(3), 1);
  const IncrementalTasks tk = make_incremental_tasks(g, 2, {}, 7);
  REQUIRE(tk.num_tasks == 3);
  for (int64_t t = 0; t < tk.num_tasks; ++t) {
    CHECK(tk.train[static_cast<size_t>(t)].size() == 2 * 36);
    CHECK(tk.val[static_cast<size_t>(t)].size() == 2 * 12);
    CHECK(tk.test[static_cast<size_t>(t)].size() == 2 * 12);
    const Subgraph s = task_graph(g, tk, t);
    CHECK(s.graph.num_nodes == (t + 1) * 120);
    for (size_t i = 0; i < s.nodes.size(); ++i) {
      CHECK(tk.task_of_node[static_cast<size_t>(s.nodes[i])] <= t);
      CHECK(s.graph.labels[i] < 2 * (t + 1));
    }
    // Every edge of G among nodes of tasks <= t is in G_t, and no other.
    int64_t expect = 0;
    for (int64_t v = 0; v < g.num_nodes; ++v) {
      for (int64_t e = g.indptr[static_cast<size_t>(v)]; e < g.indptr[static_cast<size_t>(v) + 1]; ++e) {
        const int64_t u = g.indices[static_cast<size_t>(e)];
        expect += tk.task_of_node[static_cast<size_t>(v)] <= t && tk.task_of_node[static_cast<size_t>(u)] <= t ? 1 : 0;
      }
    }
    CHECK(s.graph.num_edges() * 2 == expect);
  }
  // Seeded: the same seed gives the same split, another seed another.
  CHECK(make_incremental_tasks(g, 2, {}, 7).train == tk.train);
  CHECK(make_incremental_tasks(g, 2, {}, 8).train != tk.train);
  // A fifth class would be left out (CGLB: tasks = range(0, n_cls - 1, 2)).
  EvolvingGraphConfig odd = small_config(1);
  odd.classes = 5;
  const AttributedGraph g5 = generate_evolving_graph(odd, 1);
  const IncrementalTasks t5 = make_incremental_tasks(g5, 2, {}, 7);
  CHECK(t5.num_tasks == 2);
  CHECK(std::count(t5.task_of_node.begin(), t5.task_of_node.end(), -1) == 60);
  test::expect_error<core::ConfigError>([&] { (void)make_incremental_tasks(g5, 6, {}, 7); }, {"5 classes", "6 classes"});
}

TEST_CASE("evolving graph: seeded, homophilous, and lambda_x is the structural shift", "[attributed][generator]") {
  const AttributedGraph a = generate_evolving_graph(small_config(3), 11);
  const AttributedGraph b = generate_evolving_graph(small_config(3), 11);
  const AttributedGraph c = generate_evolving_graph(small_config(3), 12);
  CHECK(a.indices == b.indices);
  CHECK(a.features == b.features);
  CHECK(a.indices != c.indices);

  const AttributedGraph none = generate_evolving_graph(small_config(0), 11);
  const IncrementalTasks tk = make_incremental_tasks(none, 2, {}, 1);
  // lambda_x = 0: no edge joins two tasks, so no old node ever gains a neighbour.
  for (double s : later_neighbour_share(none, tk)) CHECK(s == 0.0);
  CHECK(edge_homophily(none) > 0.7);
  CHECK(edge_homophily(none) < 0.9);

  // The shift grows with lambda_x, and arrival edges always join a new node to an older one.
  double prev = 0;
  for (double lambda : {1.0, 3.0, 6.0}) {
    const AttributedGraph g = generate_evolving_graph(small_config(lambda), 11);
    const IncrementalTasks t = make_incremental_tasks(g, 2, {}, 1);
    const std::vector<double> share = later_neighbour_share(g, t);
    CHECK(share[0] > prev);
    CHECK(share.back() == 0.0);
    prev = share[0];
  }
  CHECK(prev > 0.3);
}
