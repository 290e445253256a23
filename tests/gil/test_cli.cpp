// ssrm-incremental run as a program: generate -> run (on the written folder) -> eval ->
// sweep on a small graph; --ssrm-weight recorded in the artifact's config; eval of the
// run's model on the same graph reproduces the run's AP; exit 2 for a bad option value and
// exit 3 for a bad graph folder, with no artifact written.
#include <catch2/catch.hpp>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/h5.hpp"
#include "tests/support/harness.hpp"

namespace fs = std::filesystem;
using mlsys::test::Run;
using mlsys::test::TempDir;
using Json = nlohmann::json;

namespace {

Run run(const std::string& args) { return mlsys::test::run_program(mlsys::test::program("ssrm-incremental"), args); }

const std::string kSmall =
    " --quiet --threads 1 --set generate.nodes_per_class=30 --set generate.mean_scale=0.6 --set train.epochs=15"
    " --set model.hidden=16 --set framework.ergnn.budget=6";

}  // namespace

TEST_CASE("cli: generate -> run -> eval -> sweep", "[cli]") {
  const TempDir tmp("ssrm-cli");
  const fs::path data = tmp.path / "data", out = tmp.path / "out";
  Run g = run("generate --json" + kSmall + " --set generate.shift=2 --out '" + data.string() + "'");
  INFO(g.err);
  REQUIRE(g.code == 0);
  for (const char* f : {"labels.csv", "edges.csv", "features.npy", "meta.json"}) CHECK(fs::exists(data / f));
  const Json meta = Json::parse(g.out);
  CHECK(meta["tasks"] == 5);
  CHECK(meta["nodes"] == 300);
  CHECK(meta["later_neighbour_share"][0].get<double>() > 0.0);
  CHECK(meta["later_neighbour_share"][4].get<double>() == 0.0);

  const std::string on_data = kSmall + " --set data.path='" + data.string() + "' --out '" + out.string() + "'";
  Run r = run("run --json --ssrm-weight 0.5 --ssrm-distance cmd" + on_data);
  INFO(r.err);
  REQUIRE(r.code == 0);
  const Json res = Json::parse(r.out);
  REQUIRE(res["acc_matrix"].size() == 5);
  const double ap = res["ap"].get<double>();
  CHECK(ap > 55);
  CHECK(ap <= 100);
  double last_row = 0;
  for (int j = 0; j < 5; ++j) last_row += res["acc_matrix"][4][j].get<double>() / 5;
  CHECK(ap == Approx(last_row));
  CHECK(res["stored_nodes"] == Json({6, 12, 18, 24, 30}));
  {
    const mlsys::core::H5Reader h(out / "results.h5");
    CHECK(h.shape("/metrics/acc_matrix") == std::vector<uint64_t>{5, 5});
    CHECK(h.has("/params/layer1.weight"));
    const Json cfg = Json::parse(h.attr_string("/", "config"));
    CHECK(cfg["ssrm"]["weight"] == 0.5);     // the shorthand options are recorded as overrides
    CHECK(cfg["ssrm"]["distance"] == "cmd");
    CHECK(h.attr_string("/", "program") == "ssrm-incremental");
  }

  // eval of the run's model on the same graph reproduces its last row of the matrix.
  Run e = run("eval --json" + on_data + " --set eval.results='" + (out / "results.h5").string() + "'");
  INFO(e.err);
  REQUIRE(e.code == 0);
  const Json ev = Json::parse(e.out);
  CHECK(ev["ap"].get<double>() == Approx(ap));
  CHECK(fs::exists(out / "eval.h5"));

  Run s = run("sweep --json" + on_data + " --set 'sweep.frameworks=[\"ergnn\",\"ewc\"]' --set 'sweep.ssrm_weights=[0,1]'"
              " --set 'sweep.seeds=[0,1]' --set train.epochs=3");
  INFO(s.err);
  REQUIRE(s.code == 0);
  const Json sw = Json::parse(s.out);
  CHECK(sw["runs"].size() == 8);
  CHECK(sw["table"].size() == 4);
  const mlsys::core::H5Reader h(out / "sweep.h5");
  CHECK(h.read_f64("/runs/ap").size() == 8);
  CHECK(h.read_strings("/runs/framework") == std::vector<std::string>{"ergnn", "ergnn", "ergnn", "ergnn", "ewc", "ewc", "ewc", "ewc"});
}

TEST_CASE("cli: bad values exit 2, bad graph folders exit 3, nothing is written", "[cli]") {
  const TempDir tmp("ssrm-bad");
  const fs::path out = tmp.path / "out";
  Run r = run("run --quiet --ssrm-distance wasserstein --out '" + out.string() + "'");
  CHECK(r.code == 2);
  CHECK(r.err.find("ssrm.distance") != std::string::npos);
  r = run("run --quiet --set framework.name=icarl --out '" + out.string() + "'");
  CHECK(r.code == 2);
  CHECK(r.err.find("framework.name") != std::string::npos);
  tmp.write("g/labels.csv", "label\n0\n1\n0\n1\n0\n1\n");
  tmp.write("g/edges.csv", "src,dst\n0,1\n2,9\n");
  tmp.write("g/features.csv", "1,2\n3,4\n5,6\n1,2\n3,4\n5,6\n");
  r = run("run --quiet --set data.path='" + (tmp.path / "g").string() + "' --out '" + out.string() + "'");
  CHECK(r.code == 3);
  CHECK(r.err.find("edges.csv:3") != std::string::npos);
  CHECK_FALSE(fs::exists(out / "results.h5"));
}
