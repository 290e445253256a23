// Static attributed graphs: CSR construction, induced subgraphs, k-hop sets, and the
// labels.csv + edges.csv + features.{npy,csv,bin} folder format.
#include "graph/attributed_graph.hpp"

#include <algorithm>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/signals.hpp"
#include "graph/csv_text.hpp"
#include "graph/events.hpp"

namespace mlsys::graph {
namespace fs = std::filesystem;

AttributedGraph build_graph(int64_t num_nodes, const std::vector<std::pair<int64_t, int64_t>>& edges,
                            std::vector<float> features, int64_t feature_dim, std::vector<int64_t> labels) {
  if (num_nodes < 0 || static_cast<int64_t>(labels.size()) != num_nodes ||
      static_cast<int64_t>(features.size()) != num_nodes * feature_dim) {
    throw core::RuntimeFailure("build_graph: " + std::to_string(num_nodes) + " nodes but " +
                               std::to_string(labels.size()) + " labels and " + std::to_string(features.size()) +
                               " feature values of dimension " + std::to_string(feature_dim));
  }
  AttributedGraph g;
  g.num_nodes = num_nodes;
  g.feature_dim = feature_dim;
  g.features = std::move(features);
  g.labels = std::move(labels);
  for (int64_t y : g.labels) {
    if (y < 0 || y >= kMaxClasses) throw core::RuntimeFailure("build_graph: label " + std::to_string(y) + " out of range");
    g.num_classes = std::max(g.num_classes, y + 1);
  }
  std::vector<int64_t> deg(static_cast<size_t>(num_nodes) + 1, 0);
  for (const auto& [a, b] : edges) {
    if (a < 0 || b < 0 || a >= num_nodes || b >= num_nodes) {
      throw core::RuntimeFailure("build_graph: edge (" + std::to_string(a) + ", " + std::to_string(b) + ") out of range");
    }
    if (a == b) continue;
    ++deg[static_cast<size_t>(a) + 1];
    ++deg[static_cast<size_t>(b) + 1];
  }
  for (size_t v = 1; v < deg.size(); ++v) deg[v] += deg[v - 1];
  std::vector<int64_t> fill(deg.begin(), deg.end() - 1), adj(static_cast<size_t>(deg.back()));
  for (const auto& [a, b] : edges) {
    if (a == b) continue;
    adj[static_cast<size_t>(fill[static_cast<size_t>(a)]++)] = b;
    adj[static_cast<size_t>(fill[static_cast<size_t>(b)]++)] = a;
  }
  // Sort and de-duplicate each list, compacting into the final CSR.
  g.indptr.assign(static_cast<size_t>(num_nodes) + 1, 0);
  g.indices.reserve(adj.size());
  for (int64_t v = 0; v < num_nodes; ++v) {
    auto first = adj.begin() + deg[static_cast<size_t>(v)], last = adj.begin() + deg[static_cast<size_t>(v) + 1];
    std::sort(first, last);
    last = std::unique(first, last);
    g.indices.insert(g.indices.end(), first, last);
    g.indptr[static_cast<size_t>(v) + 1] = static_cast<int64_t>(g.indices.size());
  }
  return g;
}

Subgraph induced_subgraph(const AttributedGraph& g, const std::vector<int64_t>& nodes) {
  std::vector<int64_t> local(static_cast<size_t>(g.num_nodes), -1);
  for (size_t i = 0; i < nodes.size(); ++i) {
    const int64_t v = nodes[i];
    if (v < 0 || v >= g.num_nodes || (i > 0 && v <= nodes[i - 1])) {
      throw core::RuntimeFailure("induced_subgraph: node ids must be ascending, unique and below " +
                                 std::to_string(g.num_nodes));
    }
    local[static_cast<size_t>(v)] = static_cast<int64_t>(i);
  }
  Subgraph s;
  s.nodes = nodes;
  AttributedGraph& h = s.graph;
  h.num_nodes = static_cast<int64_t>(nodes.size());
  h.num_classes = g.num_classes;
  h.feature_dim = g.feature_dim;
  h.source = g.source;
  h.indptr.assign(nodes.size() + 1, 0);
  h.labels.reserve(nodes.size());
  h.features.reserve(nodes.size() * static_cast<size_t>(g.feature_dim));
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto v = static_cast<size_t>(nodes[i]);
    // Parent lists are ascending and local ids keep the parent's order: lists stay ascending.
    for (int64_t e = g.indptr[v]; e < g.indptr[v + 1]; ++e) {
      const int64_t u = local[static_cast<size_t>(g.indices[static_cast<size_t>(e)])];
      if (u >= 0) h.indices.push_back(u);
    }
    h.indptr[i + 1] = static_cast<int64_t>(h.indices.size());
    h.labels.push_back(g.labels[v]);
    const auto row = g.features.begin() + static_cast<std::ptrdiff_t>(v * static_cast<size_t>(g.feature_dim));
    h.features.insert(h.features.end(), row, row + g.feature_dim);
  }
  return s;
}

AttributedGraph disjoint_union(const std::vector<const AttributedGraph*>& parts) {
  AttributedGraph u;
  u.indptr.push_back(0);
  for (const AttributedGraph* p : parts) {
    if (!u.labels.empty() && p->feature_dim != u.feature_dim) {
      throw core::RuntimeFailure("disjoint_union: feature dimensions " + std::to_string(u.feature_dim) + " and " +
                                 std::to_string(p->feature_dim) + " differ");
    }
    u.feature_dim = p->feature_dim;
    const int64_t base = u.num_nodes, edge_base = static_cast<int64_t>(u.indices.size());
    for (int64_t v = 0; v < p->num_nodes; ++v) u.indptr.push_back(edge_base + p->indptr[static_cast<size_t>(v) + 1]);
    for (int64_t w : p->indices) u.indices.push_back(base + w);
    u.features.insert(u.features.end(), p->features.begin(), p->features.end());
    u.labels.insert(u.labels.end(), p->labels.begin(), p->labels.end());
    u.num_nodes += p->num_nodes;
    u.num_classes = std::max(u.num_classes, p->num_classes);
  }
  return u;
}

std::vector<int64_t> k_hop_nodes(const AttributedGraph& g, const std::vector<int64_t>& seeds, int hops) {
  std::vector<uint8_t> seen(static_cast<size_t>(g.num_nodes), 0);
  std::vector<int64_t> frontier;
  for (int64_t v : seeds) {
    if (v < 0 || v >= g.num_nodes) throw core::RuntimeFailure("k_hop_nodes: seed " + std::to_string(v) + " out of range");
    if (!seen[static_cast<size_t>(v)]) {
      seen[static_cast<size_t>(v)] = 1;
      frontier.push_back(v);
    }
  }
  for (int h = 0; h < hops && !frontier.empty(); ++h) {
    std::vector<int64_t> next;
    for (int64_t v : frontier) {
      for (int64_t e = g.indptr[static_cast<size_t>(v)]; e < g.indptr[static_cast<size_t>(v) + 1]; ++e) {
        const int64_t u = g.indices[static_cast<size_t>(e)];
        if (!seen[static_cast<size_t>(u)]) {
          seen[static_cast<size_t>(u)] = 1;
          next.push_back(u);
        }
      }
    }
    frontier = std::move(next);
  }
  std::vector<int64_t> out;
  for (int64_t v = 0; v < g.num_nodes; ++v) {
    if (seen[static_cast<size_t>(v)]) out.push_back(v);
  }
  return out;
}

namespace {

void expect_header(const fs::path& file, Lines& lines, const std::vector<std::string_view>& want) {
  std::string_view line;
  if (!lines.next(line)) throw core::InputError(file.string() + ": empty file (expected the header line)");
  const auto cols = split_commas(line);
  bool ok = cols.size() == want.size();
  for (size_t i = 0; ok && i < cols.size(); ++i) ok = cols[i] == want[i];
  if (!ok) {
    std::string w;
    for (auto c : want) w += (w.empty() ? "" : ",") + std::string(c);
    bad_line(file, lines.number, "expected the header '" + w + "', found '" + core::excerpt(line) + "'");
  }
}

}  // namespace

AttributedGraph load_attributed_graph(const fs::path& dir) {
  if (!fs::is_directory(dir)) {
    throw core::InputError(dir.string() + ": expected a graph folder (labels.csv, edges.csv, features.npy)");
  }
  // Labels first: their count is the node count every other file is checked against.
  const fs::path lf = dir / "labels.csv";
  Lines ll{core::read_file(lf)};
  expect_header(lf, ll, {"label"});
  std::vector<int64_t> labels;
  std::string_view line;
  while (ll.next(line)) {
    core::poll_stop(labels.size());
    const auto cols = split_commas(line);
    if (cols.size() != 1) bad_line(lf, ll.number, "expected 1 column, found " + std::to_string(cols.size()));
    const int64_t y = parse_id(lf, ll.number, "label", cols[0]);
    if (y >= kMaxClasses) {
      bad_line(lf, ll.number, "label " + std::to_string(y) + " is above the limit " + std::to_string(kMaxClasses - 1));
    }
    labels.push_back(y);
  }
  if (labels.empty()) throw core::InputError(lf.string() + ": no nodes (expected one label line per node)");
  const auto n = static_cast<int64_t>(labels.size());

  const fs::path ef = dir / "edges.csv";
  Lines el{core::read_file(ef)};
  expect_header(ef, el, {"src", "dst"});
  std::vector<std::pair<int64_t, int64_t>> edges;
  while (el.next(line)) {
    core::poll_stop(edges.size());
    const auto cols = split_commas(line);
    if (cols.size() != 2) bad_line(ef, el.number, "expected 2 columns (src,dst), found " + std::to_string(cols.size()));
    const int64_t a = parse_id(ef, el.number, "src", cols[0]);
    const int64_t b = parse_id(ef, el.number, "dst", cols[1]);
    for (auto [id, name] : {std::pair{a, "src"}, std::pair{b, "dst"}}) {
      if (id >= n) {
        bad_line(ef, el.number, "column '" + std::string(name) + "': node id " + std::to_string(id) +
                                    " is not below the node count " + std::to_string(n) + " (the lines of labels.csv)");
      }
    }
    edges.emplace_back(a, b);
  }

  fs::path ff;
  for (const char* name : {"features.npy", "features.csv", "features.bin"}) {
    if (fs::exists(dir / name)) {
      ff = dir / name;
      break;
    }
  }
  if (ff.empty()) throw core::InputError((dir / "features.npy").string() + ": missing (also looked for features.csv and features.bin)");
  Matrix m = load_matrix(ff, n);
  if (m.cols < 1) throw core::InputError(ff.string() + ": expected at least one feature column, found none");
  AttributedGraph g = build_graph(n, edges, std::move(m.data), m.cols, std::move(labels));
  g.source = dir.string();
  return g;
}

void write_attributed_graph(const fs::path& dir, const AttributedGraph& g) {
  fs::create_directories(dir);
  std::string labels = "label\n";
  for (int64_t y : g.labels) labels += std::to_string(y) + "\n";
  std::string edges = "src,dst\n";
  for (int64_t v = 0; v < g.num_nodes; ++v) {
    for (int64_t e = g.indptr[static_cast<size_t>(v)]; e < g.indptr[static_cast<size_t>(v) + 1]; ++e) {
      const int64_t u = g.indices[static_cast<size_t>(e)];
      if (v < u) edges += std::to_string(v) + "," + std::to_string(u) + "\n";
    }
  }
  core::write_file_atomic(dir / "labels.csv", labels);
  core::write_file_atomic(dir / "edges.csv", edges);
  write_npy(dir / "features.npy", g.features, g.num_nodes, g.feature_dim);
}

}  // namespace mlsys::graph
