// gnnflow-stream run as a program on small inputs: generate -> ingest -> sample -> bench,
// artifacts and their numbers, the default config file equal to the built-in defaults, bad
// input lines (file:line, exit 3), bad config (exit 2), and no `run` subcommand.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "tests/support/harness.hpp"

namespace fs = std::filesystem;

namespace {

using mlsys::test::Run;
using mlsys::test::slurp;
using mlsys::test::TempDir;

Run run(const std::string& args) { return mlsys::test::run_program(mlsys::test::program("gnnflow-stream"), args); }

size_t lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(slurp(p)); }

}  // namespace

TEST_CASE("gnnflow-stream: generate, ingest, sample and bench on the tiny preset", "[cli]") {
  const TempDir tmp("gnnflow-cli");
  const fs::path gen = tmp.path / "gen";
  Run r = run("generate --set generate.preset=tiny --set generate.csv=true --set generate.late_fraction=0.01 --quiet --out '" +
              gen.string() + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto man = read_json(gen / "manifest.json");
  CHECK(man["program"] == "gnnflow-stream");
  CHECK(man["events"] == 20000);
  CHECK(man["nodes"] == 1000);
  CHECK(man["out_of_order"].get<int64_t>() > 0);
  CHECK(fs::file_size(gen / "stream.bin") == 32 + 32 * 20000);

  // CSV and binary give the same store.
  nlohmann::json ing[2];
  int i = 0;
  for (const char* f : {"stream.csv", "stream.bin"}) {
    const fs::path out = tmp.path / (std::string("ingest-") + f);
    r = run("ingest --set data.path='" + (gen / f).string() + "' --set ingest.batch_size=1000 --quiet --out '" + out.string() + "'");
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("events/s") && Catch::Contains("edge data"));
    ing[i++] = read_json(out / "ingest.json");
  }
  CHECK(ing[0]["entries"] == 40000);
  CHECK(ing[0]["late_inserted"].get<int64_t>() > 0);
  CHECK(ing[0]["memory"] == ing[1]["memory"]);
  const auto& m = ing[0]["memory"];
  CHECK(m["used_edge_bytes"] == 40000 * 24);
  CHECK(m["edge_bytes"].get<int64_t>() >= 40000 * 24);
  CHECK(m["edges"] == 40000);

  // Reject policy: late entries counted, fewer stored.
  r = run("ingest --set data.path='" + (gen / "stream.bin").string() +
          "' --set ingest.batch_size=1000 --set store.late_policy=reject --json --quiet --out '" + (tmp.path / "rej").string() + "'");
  REQUIRE(r.code == 0);
  const auto rej = nlohmann::json::parse(r.out);
  CHECK(rej["late_rejected"].get<int64_t>() > 0);
  CHECK(rej["entries"].get<int64_t>() + rej["late_rejected"].get<int64_t>() == 40000);

  // Expiry after each batch: blocks older than a day behind the newest edge are freed.
  r = run("ingest --set data.path='" + (gen / "stream.bin").string() +
          "' --set ingest.batch_size=1000 --set ingest.expire_window=86400 --json --quiet --out '" + (tmp.path / "exp").string() + "'");
  REQUIRE(r.code == 0);
  const auto ex = nlohmann::json::parse(r.out);
  CHECK(ex["expired_entries"].get<int64_t>() > 20000);
  CHECK(ex["memory"]["edges"].get<int64_t>() == 40000 - ex["expired_entries"].get<int64_t>());
  CHECK(ex["memory"]["pool"]["free_listed_bytes"].get<int64_t>() > 0);

  r = run("sample --set data.path='" + (gen / "stream.bin").string() +
          "' --set 'sample.fanouts=[5,3]' --set sample.max_events=2000 --quiet --out '" + (tmp.path / "sample").string() + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto sm = read_json(tmp.path / "sample" / "sample.json");
  REQUIRE(sm["results"].size() == 4);  // recent, recent layers, uniform, uniform layers
  CHECK(sm["results"][0]["roots"] == 4000);
  CHECK(sm["results"][0]["sampled"].get<int64_t>() > 4000 * 3);

  r = run("bench --set generate.preset=tiny --set bench.repeats=2 --set bench.increments=4 --quiet --out '" +
          (tmp.path / "bench").string() + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto b = read_json(tmp.path / "bench" / "bench.json");
  CHECK(b["identical_samples"] == true);
  CHECK(b["store"]["update_seconds"].size() == 2);
  CHECK(b["tcsr_rebuild"]["update_seconds"].size() == 2);
  CHECK(b["initial_events"] == 6000);
  CHECK_THAT(r.out, Catch::Contains("samples identical: yes"));

  r = run("cache --set generate.preset=tiny --set 'cache.ratios=[0.001,0.2]' --quiet --out '" + (tmp.path / "cache").string() + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto ca = read_json(tmp.path / "cache" / "cache.json");
  REQUIRE(ca["results"].size() == 3 * 2 * 2);
  std::map<std::string, double> hit;
  for (const auto& x : ca["results"]) {
    CHECK(x["lookups"] == ca["lookups"]);
    hit[x["policy"].get<std::string>() + (x["restoration"].get<bool>() ? "+r " : " ") + std::to_string(x["capacity"].get<int64_t>())] =
        x["hit_rate"].get<double>();
  }
  // 20 slots: every batch misses more distinct ids than that, so every policy replaces the
  // whole cache each batch and the three coincide; 4000 slots: they differ, and
  // restoration (pre-warming with the increment's edges) helps each.
  CHECK(hit["lru 20"] == hit["lfu 20"]);
  CHECK(hit["lru 20"] == hit["fifo 20"]);
  CHECK(hit["lru 4000"] != hit["lfu 4000"]);
  for (const char* p : {"lru", "lfu", "fifo"}) {
    CHECK(hit[std::string(p) + "+r 4000"] > hit[std::string(p) + " 4000"]);
    CHECK(hit[std::string(p) + " 4000"] > hit[std::string(p) + " 20"]);
  }
}

TEST_CASE("gnnflow-stream: configs/gnnflow-stream/default.json is the built-in default", "[cli]") {
  const TempDir tmp("gnnflow-cli");
  const std::string small = " --set generate.preset=tiny --json --quiet";
  Run a = run("generate" + small + " --out '" + (tmp.path / "a").string() + "'");
  Run b = run("generate --config '" MLSYS_SOURCE_ROOT "/configs/gnnflow-stream/default.json'" + small + " --out '" +
              (tmp.path / "b").string() + "'");
  REQUIRE(a.code == 0);
  REQUIRE(b.code == 0);
  CHECK(read_json(tmp.path / "a" / "manifest.json")["config"] == read_json(tmp.path / "b" / "manifest.json")["config"]);
}

TEST_CASE("gnnflow-stream: bad input exits 3, bad config 2, each with one line", "[cli]") {
  const TempDir tmp("gnnflow-cli");
  const fs::path csv = tmp.path / "bad.csv";
  std::ofstream(csv) << "src,dst,time\n1,2,3\n4,five,6\n";
  Run r = run("ingest --set data.path='" + csv.string() + "' --out '" + (tmp.path / "o").string() + "'");
  CHECK(r.code == 3);
  CHECK(lines(r.err) == 1);
  CHECK_THAT(r.err, Catch::Contains("bad.csv:3") && Catch::Contains("column 'dst'") && Catch::Contains("found 'five'"));
  CHECK_FALSE(fs::exists(tmp.path / "o" / "ingest.json"));

  r = run("ingest --set data.path='" + (tmp.path / "missing.bin").string() + "' --out '" + (tmp.path / "o").string() + "'");
  CHECK(r.code == 3);
  CHECK_THAT(r.err, Catch::Contains("missing.bin"));

  r = run("ingest --set store.big_block=2 --set store.min_block=8 --out '" + (tmp.path / "o").string() + "'");
  CHECK(r.code == 2);
  CHECK(lines(r.err) == 1);
  CHECK_THAT(r.err, Catch::Contains("store.big_block") && Catch::Contains("found 2"));

  r = run("sample --set sample.snapshots=3 --out '" + (tmp.path / "o").string() + "'");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("sample.window"));

  r = run("generate --set generate.preset=XL --out '" + (tmp.path / "o").string() + "'");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("generate.preset"));

  r = run("run --out '" + (tmp.path / "o").string() + "'");
  CHECK(r.code == 2);  // the continuous-learning loop is not built: a usage error, not a stub
}
