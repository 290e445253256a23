// lib/graph's edge streams: the seeded generator (deterministic, the asked shape, ties,
// late events when asked, repeats) and the stream files (binary and CSV round trips, bad
// rows and headers named by file:line or event and byte offset).
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "core/error.hpp"
#include "graph/block_store.hpp"
#include "graph/edge_stream.hpp"
#include "tests/support/expect_error.hpp"
#include "tests/support/harness.hpp"

using namespace mlsys;
using namespace mlsys::graph;

TEST_CASE("edge stream: the generator is seeded, shaped as asked, with ties, repeats and new nodes") {
  StreamGenConfig c = stream_preset("tiny");
  const EdgeStream a = generate_stream(c, 7), b = generate_stream(c, 7), d = generate_stream(c, 8);
  REQUIRE(a.size() == 20000);
  CHECK(a.src == b.src);
  CHECK(a.ts == b.ts);
  CHECK(a.src != d.src);
  CHECK(a.num_nodes == 1000);
  CHECK(std::is_sorted(a.ts.begin(), a.ts.end()));
  size_t ties = 0, loops = 0;
  std::set<std::pair<int64_t, int64_t>> pairs;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a.src[i] >= 0);
    REQUIRE(a.src[i] < 1000);
    REQUIRE(a.dst[i] < 1000);
    REQUIRE(a.eid[i] == static_cast<int64_t>(i));
    if (i > 0 && a.ts[i] == a.ts[i - 1]) ++ties;
    if (a.src[i] == a.dst[i]) ++loops;
    pairs.insert({a.src[i], a.dst[i]});
  }
  CHECK(ties > 0);
  CHECK(loops == 0);
  CHECK(pairs.size() < a.size() / 2);  // repeat_prob 0.7: most events revisit a partner
  // New nodes: the last 2% of ids first appear late in the stream.
  const auto first_use = std::find(a.src.begin(), a.src.end(), 999) - a.src.begin();
  CHECK(first_use > 10000);
  // Late events and an offset that float32 cannot resolve.
  c.late_fraction = 0.01, c.time_offset = 1.5e9;
  const EdgeStream late = generate_stream(c, 7);
  CHECK_FALSE(std::is_sorted(late.ts.begin(), late.ts.end()));
  CHECK(late.ts.front() >= 1.5e9 - c.late_max);
  TimeIndexedBlockStore st;
  for (size_t b = 0; b < late.size(); b += 100) {  // within one batch, disorder is only sorted
    st.insert(std::span(late.src).subspan(b, 100), std::span(late.dst).subspan(b, 100), std::span(late.ts).subspan(b, 100),
              std::span(late.eid).subspan(b, 100));
  }
  CHECK(st.stats().late_inserted > 0);
  CHECK(st.check_invariants().empty());
  // Bipartite: sources below U, destinations at or above.
  c = stream_preset("tiny");
  c.bipartite = true;
  const EdgeStream bi = generate_stream(c, 3);
  for (size_t i = 0; i < bi.size(); ++i) {
    REQUIRE(bi.src[i] < 900);
    REQUIRE(bi.dst[i] >= 900);
  }
  test::expect_error<core::ConfigError>([] { (void)stream_preset("XL"); }, {"generate.preset", "found 'XL'"});
  c.repeat_prob = 1.5;
  test::expect_error<core::ConfigError>([&] { (void)generate_stream(c, 1); }, {"generate.repeat_prob", "found 1.5"});
}

TEST_CASE("edge stream: binary and CSV files round-trip exactly; bad files are named precisely") {
  test::TempDir dir;
  StreamGenConfig c = stream_preset("tiny");
  c.edges = 500, c.time_offset = 1.5e9 + 0.125, c.late_fraction = 0.05;
  const EdgeStream s = generate_stream(c, 2);
  write_stream_binary(dir.path / "s.bin", s);
  write_stream_csv(dir.path / "s.csv", s);
  for (const char* name : {"s.bin", "s.csv"}) {
    const EdgeStream r = load_stream(dir.path / name);
    CHECK(r.src == s.src);
    CHECK(r.dst == s.dst);
    CHECK(r.ts == s.ts);
    CHECK(r.eid == s.eid);
  }
  CHECK(load_stream(dir.path / "s.bin").num_nodes == 1000);
  const auto p = dir.path / "bad.csv";
  auto expect_csv = [&](const std::string& text, std::initializer_list<std::string> needles) {
    test::write_file(p, text);
    test::expect_error([&] { (void)load_stream(p); }, needles);
  };
  expect_csv("a,b,c\n1,2,3\n", {"bad.csv:1", "expected the header src,dst,time", "found 'a,b,c'"});
  expect_csv("src,dst,time\n1,2,3\n4,5\n", {"bad.csv:3", "expected 3 columns, found 2"});
  expect_csv("src,dst,time\n1,x,3\n", {"bad.csv:2", "column 'dst'", "found 'x'"});
  expect_csv("src,dst,time\n1,2,inf\n", {"bad.csv:2", "column 'time'", "expected a finite number", "found 'inf'"});
  expect_csv("src,dst,time,eid\n1,2,3,-1\n", {"bad.csv:2", "column 'eid'", "found -1"});
  expect_csv("src,dst,time\n1,2,3\n1,99999999,4\n", {"bad.csv:3", "node id 99999999 is above the limit"});
  expect_csv("", {"bad.csv", "expected a header", "found an empty file"});
  // CSV without eid: the row index; time may go backwards (late edges are the store's business).
  test::write_file(p, "src,dst,time\n1,2,5\n2,3,4\n");
  const EdgeStream ok = load_stream(p);
  CHECK(ok.eid == std::vector<int64_t>{0, 1});
  CHECK(ok.num_nodes == 4);
  // Binary: truncated body, bad id, bad time, bad magic.
  std::string bin = test::slurp(dir.path / "s.bin");
  const auto q = dir.path / "bad.bin";
  test::write_file(q, bin.substr(0, bin.size() - 5));
  test::expect_error([&] { (void)load_stream(q); }, {"bad.bin", "header says 500 events", "found 15995 bytes"});
  std::string b2 = bin;
  b2[kStreamHeaderBytes + 3 * kStreamRowBytes + 7] = '\x7f';  // event 3's src: huge
  test::write_file(q, b2);
  test::expect_error([&] { (void)load_stream(q); }, {"bad.bin: event 3 (byte 128)", "expected a node id below num_nodes 1000"});
  b2 = bin;
  const double nan = std::nan("");
  std::memcpy(b2.data() + kStreamHeaderBytes + 16, &nan, 8);
  test::write_file(q, b2);
  test::expect_error([&] { (void)load_stream(q); }, {"bad.bin: event 0 (byte 32)", "expected a finite time", "found nan"});
  test::write_file(q, "MLSGFS0");
  test::expect_error([&] { (void)load_stream(q, "binary"); }, {"bad.bin", "expected a binary stream", "found 7 bytes"});
  test::expect_error<core::ConfigError>([&] { (void)load_stream(q, "parquet"); }, {"data.format", "found 'parquet'"});
}
