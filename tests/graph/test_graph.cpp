// lib/graph: the temporal samplers against a brute-force scan on random streams, the
// loaders' handling of bad rows (file:line), feature files, splits and the generator.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>

#include "core/error.hpp"
#include "core/signals.hpp"
#include "graph/events.hpp"
#include "graph/generator.hpp"
#include "graph/sampler.hpp"
#include "graph/split.hpp"
#include "tests/support/expect_error.hpp"
#include "tests/support/harness.hpp"

namespace fs = std::filesystem;
using namespace mlsys;
using namespace mlsys::graph;

namespace {

EventStream random_stream(uint64_t seed, int64_t nodes, size_t events, int max_dt) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> node(0, nodes - 1);
  std::uniform_int_distribution<int> dt(0, max_dt);  // 0 gives ties in time
  EventStream s;
  double t = 0;
  for (size_t e = 0; e < events; ++e) {
    t += dt(rng);
    s.src.push_back(node(rng));
    s.dst.push_back(node(rng));  // self-loops allowed
    s.t.push_back(t);
  }
  s.num_nodes = nodes;
  return s;
}

struct Hit {
  int64_t nbr, eid;
  double t;
};

// Every event of v strictly before t among `allowed`, in (time, event, src-then-dst) order.
std::vector<Hit> brute(const EventStream& s, const std::vector<uint8_t>& allowed, int64_t v, double t) {
  std::vector<Hit> out;
  for (size_t e = 0; e < s.size(); ++e) {
    if (!allowed[e] || s.t[e] >= t) continue;
    if (s.src[e] == v) out.push_back({s.dst[e], static_cast<int64_t>(e), s.t[e]});
    if (s.dst[e] == v) out.push_back({s.src[e], static_cast<int64_t>(e), s.t[e]});
  }
  return out;
}

using mlsys::test::TempDir;

std::string input_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const core::InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

}  // namespace

TEST_CASE("most-recent sampler equals a brute-force scan (ids, times, order)", "[sampler]") {
  for (uint64_t seed : {1, 2, 3}) {
    const EventStream s = random_stream(seed, 25, 600, 3);
    std::mt19937_64 rng(seed + 100);
    // The full graph and a subset graph (every other event), as for train-only sampling.
    std::vector<size_t> subset;
    for (size_t e = 0; e < s.size(); e += 2) subset.push_back(e);
    for (bool use_subset : {false, true}) {
      std::vector<uint8_t> allowed(s.size(), use_subset ? 0 : 1);
      for (size_t e : subset) allowed[e] = 1;
      const TemporalGraph g(s, use_subset ? &subset : nullptr);
      std::vector<int64_t> roots;
      std::vector<double> times;
      std::uniform_real_distribution<double> ut(0, s.t.back() + 2);
      for (int i = 0; i < 300; ++i) {
        roots.push_back(static_cast<int64_t>(rng() % 25));
        // Half the queries at exact event times (the strictly-before boundary).
        times.push_back(i % 2 ? s.t[rng() % s.size()] : std::floor(ut(rng)));
      }
      for (int64_t k : {1, 3, 10}) {
        NeighborBlock nb;
        sample_recent(g, roots, times, k, nb);
        for (size_t i = 0; i < roots.size(); ++i) {
          const auto want = brute(s, allowed, roots[i], times[i]);
          const size_t m = std::min(want.size(), static_cast<size_t>(k));
          REQUIRE(g.degree_before(roots[i], times[i]) == static_cast<int64_t>(want.size()));
          for (size_t j = 0; j < static_cast<size_t>(k); ++j) {
            const size_t o = i * static_cast<size_t>(k) + j;
            if (j < m) {
              const Hit& h = want[want.size() - m + j];
              REQUIRE(nb.nbr[o] == h.nbr);
              REQUIRE(nb.eid[o] == h.eid);
              REQUIRE(nb.t[o] == h.t);
              REQUIRE(nb.t[o] < times[i]);
            } else {
              REQUIRE(nb.nbr[o] == -1);
              REQUIRE(nb.eid[o] == -1);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("uniform sampler draws only strictly earlier events, in time order", "[sampler]") {
  const EventStream s = random_stream(7, 20, 500, 2);
  const TemporalGraph g(s);
  std::vector<uint8_t> allowed(s.size(), 1);
  std::mt19937_64 rng(5);
  std::vector<int64_t> roots;
  std::vector<double> times;
  for (int i = 0; i < 200; ++i) {
    roots.push_back(i % 20);
    times.push_back(s.t[static_cast<size_t>(i) * 2]);
  }
  NeighborBlock nb;
  sample_uniform(g, roots, times, 5, rng, nb);
  std::map<int64_t, int> drawn;  // spread: not always the same event
  for (size_t i = 0; i < roots.size(); ++i) {
    const auto want = brute(s, allowed, roots[i], times[i]);
    std::set<std::pair<int64_t, int64_t>> ok;
    for (const auto& h : want) ok.insert({h.eid, h.nbr});
    for (size_t j = 0; j < 5; ++j) {
      const size_t o = i * 5 + j;
      if (want.empty()) {
        REQUIRE(nb.nbr[o] == -1);
        continue;
      }
      REQUIRE(ok.count({nb.eid[o], nb.nbr[o]}) == 1);
      REQUIRE(nb.t[o] < times[i]);
      if (j > 0) REQUIRE(nb.t[o] >= nb.t[o - 1]);
      ++drawn[nb.eid[o]];
    }
  }
  REQUIRE(drawn.size() > 100);
}

TEST_CASE("TGL loader reads edges, ext_roll and .npy edge features", "[loader]") {
  const TempDir d("graph");
  d.write("edges.csv", ",src,dst,time,int_roll,ext_roll\n0,0,3,1.0,0,0\n1,1,4,2.5,0,1\n2,0,4,2.5,0,2\n");
  write_npy(d.path / "edge_features.npy", {1, 2, 3, 4, 5, 6}, 3, 2);
  const EventStream s = load_events(d.path);
  REQUIRE(s.size() == 3);
  REQUIRE(s.num_nodes == 5);
  REQUIRE(s.dst[1] == 4);
  REQUIRE(s.t[2] == 2.5);
  REQUIRE(s.ext_roll == std::vector<int8_t>{0, 1, 2});
  REQUIRE(s.edge_dim == 2);
  REQUIRE(s.edge_feat[5] == 6.0F);
}

TEST_CASE("JODIE loader shifts item ids after the users and reads features", "[loader]") {
  const TempDir d("graph");
  const auto f = d.write("w.csv", "user_id,item_id,timestamp,state_label,comma_separated_list_of_features\n"
                                  "0,0,0.0,0,0.5,1\n2,1,1.0,1,0.25,2\n1,0,3.0,0,-1,3\n");
  const EventStream s = load_events(f);
  REQUIRE(s.num_sources == 3);
  REQUIRE(s.num_nodes == 5);
  REQUIRE(s.dst == std::vector<int64_t>{3, 4, 3});
  REQUIRE(s.label == std::vector<int8_t>{0, 1, 0});
  REQUIRE(s.edge_dim == 2);
  REQUIRE(s.edge_feat[4] == -1.0F);
}

TEST_CASE("loaders reject bad rows with file:line", "[loader]") {
  const TempDir d("graph");
  const std::string h = ",src,dst,time,int_roll,ext_roll\n";
  auto tgl = [&](const std::string& body) { return input_error([&] { load_tgl(d.write("edges.csv", h + body)); }); };
  std::string e = tgl("0,0,1,5.0,0,0\n1,1,2,6.0,0,0\n2,1,2,4.0,0,0\n");
  CHECK_THAT(e, Catch::Contains("edges.csv:4") && Catch::Contains("earlier"));
  e = tgl("0,0,1,5.0,0,0\n1,-3,2,6.0,0,0\n");
  CHECK_THAT(e, Catch::Contains("edges.csv:3") && Catch::Contains("non-negative"));
  e = tgl("0,0,1,5.0,0,0\n1,1,2,6.0,0\n");
  CHECK_THAT(e, Catch::Contains("edges.csv:3") && Catch::Contains("expected 6 columns, found 5"));
  e = tgl("0,0,x,5.0,0,0\n");
  CHECK_THAT(e, Catch::Contains("edges.csv:2") && Catch::Contains("'dst'"));
  e = tgl("0,0,1,nan,0,0\n");
  CHECK_THAT(e, Catch::Contains("edges.csv:2") && Catch::Contains("finite"));
  e = input_error([&] { load_tgl(d.write("edges.csv", "a,b,c\n1,2,3\n")); });
  CHECK_THAT(e, Catch::Contains("edges.csv:1") && Catch::Contains("src, dst and time"));

  const std::string jh = "user_id,item_id,timestamp,state_label,features\n";
  auto jodie = [&](const std::string& body) { return input_error([&] { load_jodie(d.write("j.csv", jh + body)); }); };
  e = jodie("0,0,1.0,0,0.1\n1,1,0.5,0,0.2\n");
  CHECK_THAT(e, Catch::Contains("j.csv:3") && Catch::Contains("earlier"));
  e = jodie("0,0,1.0,0,0.1\n1,1,2.0,0\n");
  CHECK_THAT(e, Catch::Contains("j.csv:3") && Catch::Contains("expected 5 columns"));
  e = jodie("0,-1,1.0,0,0.1\n");
  CHECK_THAT(e, Catch::Contains("j.csv:2") && Catch::Contains("item_id"));
  e = jodie("0,1,1.0,0,abc\n");
  CHECK_THAT(e, Catch::Contains("j.csv:2") && Catch::Contains("feature column 1"));
  e = input_error([&] { load_events(d.path / "missing.csv"); });
  CHECK_THAT(e, Catch::Contains("missing.csv"));
}

TEST_CASE("feature files: .npy round trip, row-count mismatch is an input error", "[loader]") {
  const TempDir d("graph");
  write_npy(d.path / "m.npy", {1.5F, -2, 3, 4, 5, 6}, 2, 3);
  const Matrix m = load_matrix(d.path / "m.npy");
  REQUIRE(m.rows == 2);
  REQUIRE(m.cols == 3);
  REQUIRE(m.data[1] == -2.0F);
  const Matrix c = load_matrix(d.write("m.csv", "a,b\n1,2\n3,4\n"));
  REQUIRE(c.rows == 2);
  REQUIRE(c.data[3] == 4.0F);
  d.write("edges.csv", ",src,dst,time\n0,0,1,1\n1,1,2,2\n2,1,2,3\n");
  write_npy(d.path / "edge_features.npy", {1, 2}, 2, 1);
  CHECK_THAT(input_error([&] { load_tgl(d.path); }), Catch::Contains("edge_features.npy") && Catch::Contains("edge id 2"));
}

TEST_CASE("loaders reject huge node ids and decreasing ext_roll as input errors", "[loader]") {
  const TempDir d("graph");
  const std::string h = ",src,dst,time,int_roll,ext_roll\n";
  auto tgl = [&](const std::string& body) { return input_error([&] { load_tgl(d.write("edges.csv", h + body)); }); };
  // One id of 1e13 would size every per-node table at 1e13 rows: bad input, not OOM.
  std::string e = tgl("0,0,1,1.0,0,0\n1,1,10000000000000,2.0,0,0\n2,1,2,3.0,0,0\n");
  CHECK_THAT(e, Catch::Contains("edges.csv:3") && Catch::Contains("'dst'") && Catch::Contains("10000000000000"));
  e = tgl("0,3000000000,1,1.0,0,0\n");
  CHECK_THAT(e, Catch::Contains("edges.csv:2") && Catch::Contains("'src'") && Catch::Contains("limit"));
  // Up to max(100 x events, 2^20) is fine.
  REQUIRE(load_tgl(d.write("edges.csv", h + "0,0,1048576,1.0,0,0\n")).num_nodes == 1048577);
  const std::string jh = "user_id,item_id,timestamp,state_label\n";
  e = input_error([&] { load_jodie(d.write("j.csv", jh + "0,0,1.0,0\n5000000000,1,2.0,0\n")); });
  CHECK_THAT(e, Catch::Contains("j.csv:3") && Catch::Contains("user_id"));

  e = tgl("0,0,1,1.0,0,0\n1,1,2,2.0,0,1\n2,1,2,3.0,0,0\n");
  CHECK_THAT(e, Catch::Contains("edges.csv:4") && Catch::Contains("ext_roll") && Catch::Contains("non-decreasing"));
  e = tgl("0,0,1,1.0,0,2\n1,1,2,2.0,0,1\n");
  CHECK_THAT(e, Catch::Contains("edges.csv:3") && Catch::Contains("ext_roll"));
  REQUIRE(load_tgl(d.write("edges.csv", h + "0,0,1,1.0,0,0\n1,1,2,2.0,0,0\n2,0,2,3.0,0,2\n")).ext_roll ==
          std::vector<int8_t>{0, 0, 2});
}

TEST_CASE("node_features.bin: raw float32, one row per node id", "[loader]") {
  const TempDir d("graph");
  d.write("edges.csv", ",src,dst,time\n0,0,1,1\n1,1,2,2\n");  // 3 nodes
  const std::vector<float> f{1, 2, 3, 4, 5, 6};                  // 3 x 2
  std::ofstream(d.path / "node_features.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(f.data()), static_cast<std::streamsize>(f.size() * sizeof(float)));
  const EventStream s = load_tgl(d.path);
  REQUIRE(s.num_nodes == 3);
  REQUIRE(s.node_dim == 2);
  REQUIRE(s.node_feat == f);
  // 5 floats do not split into 3 rows: an input error naming the file.
  std::ofstream(d.path / "node_features.bin", std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(f.data()), 5 * sizeof(float));
  CHECK_THAT(input_error([&] { load_tgl(d.path); }), Catch::Contains("node_features.bin") && Catch::Contains("3 rows"));
}

TEST_CASE("chronological split: 70/15/15 by time; hidden nodes never in training", "[split]") {
  EventStream s = random_stream(11, 200, 2000, 1);
  for (size_t e = 0; e < s.size(); ++e) s.t[e] = static_cast<double>(e);  // distinct times
  const Split sp = chronological_split(s, SplitOptions{});
  REQUIRE(sp.train_all.size() == 1400);  // quantile 0.7 of 0..1999 = 1399.3
  REQUIRE(sp.val.size() == 300);
  REQUIRE(sp.test.size() == 300);
  size_t hidden = 0, late = 0;
  std::set<int64_t> late_nodes;
  for (size_t e : sp.val) late_nodes.insert(s.src[e]), late_nodes.insert(s.dst[e]);
  for (size_t e : sp.test) late_nodes.insert(s.src[e]), late_nodes.insert(s.dst[e]);
  late = late_nodes.size();
  for (auto h : sp.hidden) hidden += h;
  REQUIRE(hidden == static_cast<size_t>(0.1 * static_cast<double>(late)));
  for (size_t e : sp.train) {
    REQUIRE(!sp.hidden[static_cast<size_t>(s.src[e])]);
    REQUIRE(!sp.hidden[static_cast<size_t>(s.dst[e])]);
    REQUIRE(!sp.is_inductive(s, e));
  }
  for (size_t v = 0; v < sp.hidden.size(); ++v) {
    if (sp.hidden[v]) REQUIRE(sp.new_node[v]);
  }
}

TEST_CASE("synthetic generator: seeded, sorted, bipartite, oracle probabilities", "[generator]") {
  SyntheticConfig c = synthetic_preset("tiny");
  const SyntheticData a = generate_synthetic(c, 3), b = generate_synthetic(c, 3), other = generate_synthetic(c, 4);
  REQUIRE(a.events.size() == 5000);
  REQUIRE(a.events.dst == b.events.dst);
  REQUIRE(a.events.t == b.events.t);
  REQUIRE(a.events.dst != other.events.dst);
  size_t repeats = 0;
  std::set<std::pair<int64_t, int64_t>> seen;
  for (size_t e = 0; e < a.events.size(); ++e) {
    REQUIRE(a.events.src[e] < 200);
    REQUIRE(a.events.dst[e] >= 200);
    REQUIRE(a.events.dst[e] < 250);
    if (e > 0) REQUIRE(a.events.t[e] >= a.events.t[e - 1]);
    REQUIRE(a.oracle_pos[e] > 0.0);
    REQUIRE(a.oracle_pos[e] <= 1.0);
    repeats += seen.count({a.events.src[e], a.events.dst[e]});
    seen.insert({a.events.src[e], a.events.dst[e]});
  }
  REQUIRE(a.events.t.back() == Approx(30 * 86400.0));
  // Repeat visits are planted (rho_rep = 0.6), so most pairs recur.
  REQUIRE(repeats > a.events.size() / 2);
  CHECK_THROWS_AS(synthetic_preset("huge"), core::ConfigError);
}

// Issue 20 (hardening): the loaders against the files of tests/bad-inputs/tgnn-train and the
// bad inputs generated below. Each must end in one InputError line naming the file and the
// field, row or line: never a crash, a hang, an out-of-bounds read or a silent misread.
namespace {

using mlsys::test::expect_error;

// The catalogue's files (tests/bad-inputs/tgnn-train, which runs them through the program
// too): a CSV by its name; a feature file by the name of the TGL folder that holds it as
// edge_features.npy or node_features.bin ("npy-nan-value.npy" -> npy-nan-value/edge_features.npy).
fs::path bad_input(const std::string& name) {
  const fs::path root = fs::path(MLSYS_SOURCE_ROOT) / "tests/bad-inputs/tgnn-train";
  const fs::path p(name);
  if (p.extension() == ".npy") return root / p.stem() / "edge_features.npy";
  if (p.extension() == ".bin") return root / p.stem() / "node_features.bin";
  return root / name;
}

// A TGL folder of `events` events whose edge ids cycle over 0..3, with `feature_file`
// copied in as `as` (edge_features.npy, node_features.bin, ...).
void tgl_folder_with(const TempDir& d, size_t events, const std::string& feature_file, const std::string& as) {
  std::string csv = ",src,dst,time\n";
  for (size_t i = 0; i < events; ++i) {
    csv += std::to_string(i % 4) + "," + std::to_string(i % 3) + "," + std::to_string(3 + i % 5) + "," + std::to_string(i) + "\n";
  }
  d.write("edges.csv", csv);
  fs::copy_file(bad_input(feature_file), d.path / as, fs::copy_options::overwrite_existing);
}

}  // namespace

TEST_CASE("hardening: a .npy shape whose size overflows 64 bits is an input error, not a segfault", "[loader][hardening]") {
  const TempDir d("graph");
  // (2^62, 4): rows x cols x 4 bytes overflows; the old loader read out of bounds.
  tgl_folder_with(d, 40, "npy-shape-overflow.npy", "edge_features.npy");
  expect_error([&] { load_tgl(d.path); }, {"edge_features.npy", "'shape'", "(4611686018427387904, 4)", "more than 2^64",
                                           "found 64"});
  expect_error([&] { load_matrix(bad_input("npy-shape-overflow.npy")); }, {"npy-shape-overflow/edge_features.npy", "'shape'"});
}

TEST_CASE("hardening: a .npy shape whose element count wraps to the data size is an input error", "[loader][hardening]") {
  const TempDir d("graph");
  // (2^62 + 1, 4): rows x cols wraps to 4, which the 16 data bytes "satisfy"; the old
  // loader then took 2^62 + 1 rows as real and read past the heap buffer.
  tgl_folder_with(d, 40, "npy-shape-wraps-to-small.npy", "edge_features.npy");
  expect_error([&] { load_tgl(d.path); }, {"edge_features.npy", "'shape'", "(4611686018427387905, 4)", "found 64"});
}

TEST_CASE("hardening: .npy shape digits beyond 64 bits name the file and the field", "[loader][hardening]") {
  // The old loader let std::stoll's out_of_range escape: "stoll", exit 1.
  expect_error([] { load_matrix(bad_input("npy-shape-huge-digits.npy")); },
               {"npy-shape-huge-digits/edge_features.npy", "'shape'", "99999999999999999999999", "64-bit"});
}

TEST_CASE("hardening: .npy and .bin data must match the header and the row count exactly", "[loader][hardening]") {
  const TempDir d("graph");
  // A shape of fewer elements than the data, or more: both a mismatch, with both sizes.
  write_npy(d.path / "m.npy", {1, 2, 3, 4, 5, 6}, 2, 3);
  std::string bytes = mlsys::test::slurp(d.path / "m.npy");
  d.write("long.npy", bytes + std::string(4, '\0'));
  expect_error([&] { load_matrix(d.path / "long.npy"); }, {"long.npy", "(2, 3)", "needs 24 bytes", "found 28"});
  d.write("short.npy", bytes.substr(0, bytes.size() - 4));
  expect_error([&] { load_matrix(d.path / "short.npy"); }, {"short.npy", "needs 24 bytes", "found 20"});
  // A header length beyond the file.
  bytes[8] = '\xff';
  bytes[9] = '\x7f';
  d.write("hlen.npy", bytes);
  expect_error([&] { load_matrix(d.path / "hlen.npy"); }, {"hlen.npy", "truncated .npy header"});
  // Raw .bin: the size must split into the rows given, at least one float32 each.
  d.write("empty.bin", "");
  expect_error([&] { load_matrix(d.path / "empty.bin", 3); }, {"empty.bin", "3 rows", "0 bytes"});
  d.write("odd.bin", std::string(13, '\0'));
  expect_error([&] { load_matrix(d.path / "odd.bin", 1); }, {"odd.bin", "13 bytes"});
}

TEST_CASE("hardening: NaN or inf in .npy/.bin/.csv features is an input error naming file, row and column",
          "[loader][hardening]") {
  const TempDir d("graph");
  // The old loaders took these as features; the scores became NaN and AP never ended.
  tgl_folder_with(d, 40, "npy-nan-value.npy", "edge_features.npy");
  expect_error([&] { load_tgl(d.path); }, {"edge_features.npy", "row 2, column 1", "finite", "nan"});
  fs::remove(d.path / "edge_features.npy");
  tgl_folder_with(d, 40, "npy-f8-overflows-float32.npy", "node_features.npy");
  expect_error([&] { load_tgl(d.path); }, {"node_features.npy", "row 3, column 0", "1e+300", "float32"});
  fs::remove(d.path / "node_features.npy");
  tgl_folder_with(d, 4, "bin-inf-value.bin", "edge_features.bin");
  expect_error([&] { load_tgl(d.path); }, {"edge_features.bin", "row 1, column 1", "inf"});
  fs::remove(d.path / "edge_features.bin");
  // CSV: a nan on the first line is not a header; 1e39 is beyond float32.
  d.write("node_features.csv", "nan,1\n2,3\n4,5\n6,7\n8,9\n10,11\n");
  expect_error([&] { load_tgl(d.path); }, {"node_features.csv:1", "column 1", "'nan'"});
  d.write("node_features.csv", "a,b\n1,2\n2,1e39\n");
  expect_error([&] { load_tgl(d.path); }, {"node_features.csv:3", "column 2", "'1e39'"});
  // JODIE features and the generator's oracle file too.
  const auto j = d.write("j.csv", "user_id,item_id,timestamp,state_label,f\n0,0,1.0,0,0.5\n1,0,2.0,0,inf\n");
  expect_error([&] { load_jodie(j); }, {"j.csv:3", "feature column 1", "'inf'"});
  d.write("oracle.csv", "event,p_pos,neg_dst,p_neg\n0,0.5,1,nan\n");
  expect_error([&] { load_oracle(d.path, 1); }, {"oracle.csv:2", "p_neg", "nan"});
}

TEST_CASE("hardening: the CSV format comes from the header; an unrecognised or ambiguous header is refused",
          "[loader][hardening]") {
  const TempDir d("graph");
  // A TGL file without its dst column used to be read as JODIE (and trained on).
  const fs::path no_dst = bad_input("tgl-missing-dst.csv");
  expect_error([&] { load_events(no_dst); },
               {"tgl-missing-dst.csv:1", "',src,time,int_roll,ext_roll'", "TGL ',src,dst,time", "JODIE 'user_id,item_id,timestamp,state_label"});
  expect_error([&] { load_events(no_dst, "jodie"); }, {"tgl-missing-dst.csv:1", "JODIE", "',src,time,int_roll,ext_roll'"});
  expect_error([&] { load_events(no_dst, "tgl"); }, {"tgl-missing-dst.csv:1", "src, dst and time"});
  const fs::path both = bad_input("csv-header-both-formats.csv");
  expect_error([&] { load_events(both); }, {"csv-header-both-formats.csv:1", "ambiguous", "data.format"});
  REQUIRE(load_events(both, "jodie").size() == 1);  // forcing a format settles it
  // A forced format that does not fit the header is refused, naming the other one.
  const auto tgl = d.write("e.csv", ",src,dst,time\n0,0,1,1.0\n");
  expect_error([&] { load_events(tgl, "jodie"); }, {"e.csv:1", "',src,dst,time'", "a TGL header"});
  const auto jodie = d.write("w.csv", "user_id,item_id,timestamp,state_label\n0,0,1.0,0\n");
  expect_error([&] { load_events(jodie, "tgl"); }, {"w.csv:1", "a JODIE header"});
  REQUIRE(load_events(jodie).num_sources == 1);
  REQUIRE(load_events(tgl).num_nodes == 2);
  // Blank lines before the header still give its line number.
  expect_error([&] { load_events(d.write("b.csv", "\n\nid,a,b\n1,2,3\n")); }, {"b.csv:3", "unrecognised header 'id,a,b'"});
  expect_error([&] { load_events(d.write("empty.csv", "\n")); }, {"empty.csv", "empty file"});
}

TEST_CASE("hardening: the loaders stop on a stop request, with a run-time failure", "[loader][hardening]") {
  const TempDir d("graph");
  d.write("edges.csv", ",src,dst,time\n0,0,1,1.0\n1,1,2,2.0\n");
  write_npy(d.path / "m.npy", {1, 2}, 2, 1);
  core::request_stop();
  const std::string tgl = [&] {
    try {
      load_tgl(d.path);
    } catch (const core::RuntimeFailure& e) {
      return std::string(e.what());
    }
    return std::string("(no RuntimeFailure)");
  }();
  bool matrix_stopped = false;
  try {
    load_matrix(d.path / "m.npy");
  } catch (const core::RuntimeFailure&) {
    matrix_stopped = true;
  }
  core::clear_stop_request();
  CHECK_THAT(tgl, Catch::Contains("interrupted"));
  CHECK(matrix_stopped);
  REQUIRE(load_tgl(d.path).size() == 2);
}

TEST_CASE("hardening: a .npy of no rows or no columns, and a dtype error quoting a hostile header (fuzz findings)",
          "[loader][hardening]") {
  const TempDir d("graph");
  // (N, 0) edge features were accepted and indexed as empty rows (UBSan: null reference)
  auto npy = [&](const std::string& header, const std::string& data) {
    std::string h = header;
    while ((10 + h.size() + 1) % 64 != 0) h += ' ';
    h += '\n';
    std::string out = std::string("\x93NUMPY\x01\x00", 8);
    out += static_cast<char>(h.size() & 0xff);
    out += static_cast<char>(h.size() >> 8);
    return out + h + data;
  };
  d.write("zero-cols.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0), }", ""));
  expect_error([&] { load_matrix(d.path / "zero-cols.npy"); },
               {"zero-cols.npy", "'shape'", "at least one row and one column", "(3, 0)"});
  d.write("zero-rows.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", ""));
  expect_error([&] { load_matrix(d.path / "zero-rows.npy"); }, {"zero-rows.npy", "(0, 4)"});
  // a descr error quotes the header escaped and cut: one line, however long the header
  d.write("bad-descr.npy", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (3, 2), }\n\n" +
                                   std::string(3000, 'x'),
                               std::string(24, '\0')));
  try {
    load_matrix(d.path / "bad-descr.npy");
    FAIL("no error");
  } catch (const core::InputError& e) {
    const std::string msg = e.what();
    CHECK(msg.find("'descr'") != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
    CHECK(msg.size() < 400);
  }
}

TEST_CASE("hardening: a .npy shape field with newlines and control bytes is quoted on one line", "[loader][hardening]") {
  // fuzz_matrix (10-minute run of 2026-12-08): the shape field was quoted raw.
  const TempDir d("graph");
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (0\x11\n\x11" "0, 2\r\n), }";
  header.resize(118, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' + header;
  d.write("ctl.npy", bytes);
  try {
    (void)load_matrix(d.path / "ctl.npy");
    FAIL("no error");
  } catch (const mlsys::core::InputError& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Matchers::Contains("ctl.npy: .npy header field 'shape': expected non-negative integers"));
    CHECK(what.find('\n') == std::string::npos);
    CHECK(what.find('\x11') == std::string::npos);
  }
}
