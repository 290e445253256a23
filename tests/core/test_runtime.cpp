// The program runtime: --seed in the resolved config, the one artifact header (HDF5 and
// JSON), the one --device parser.
#include <catch2/catch.hpp>

#include "core/artifact.hpp"
#include "core/atomic_file.hpp"
#include "core/build_info.hpp"
#include "core/cli.hpp"
#include "core/device_spec.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/output_dir.hpp"

#include <unistd.h>
#include "tests/support/harness.hpp"

using namespace mlsys::core;

TEST_CASE("--seed is an override of the config's seed, recorded in the resolved config", "[runtime]") {
  mlsys::test::TempDir tmp{"mlsys-runtime"};
  write_file_atomic(tmp.path / "c.json", R"({"seed": 3, "x": 1})");
  CommonOptions opts;
  opts.config = (tmp.path / "c.json").string();
  opts.seed = 7;
  ConfigDoc doc = load_config(opts);
  ConfigNode root(doc);
  uint64_t seed = 0;
  int x = 0;
  root.get("seed", seed).get("x", x);
  root.finish();
  CHECK(seed == 7);
  CHECK(root.resolved()["seed"] == 7);
  // a bad value names --seed as its source
  CHECK(doc.override_of.at("seed") == "--seed 7");
  opts.seed.reset();
  CHECK(ConfigNode(load_config(opts)).resolved().is_object());
  uint64_t unset = 0;
  ConfigNode(load_config(opts)).get("seed", unset);
  CHECK(unset == 3);
}

TEST_CASE("one artifact header for HDF5 and JSON", "[runtime]") {
  mlsys::test::TempDir tmp{"mlsys-runtime"};
  CommonOptions opts;
  opts.program = "prog";
  opts.command = "fit";
  opts.command_line = "prog fit --seed 7";
  const Json resolved = {{"seed", 7}};
  const ArtifactInfo info = artifact_info(opts, resolved);
  {
    H5Writer w(tmp.path / "a.h5", info);
    w.commit();
  }
  H5Reader r(tmp.path / "a.h5");
  write_json_artifact(tmp.path / "a.json", info, Json{{"ap", 0.5}});
  const Json j = Json::parse(read_file(tmp.path / "a.json"));
  for (const char* key : {"program", "version", "git_commit", "command", "command_line"}) {
    CHECK(r.attr_string("/", key) == j[key].get<std::string>());
  }
  CHECK(j["program"] == "prog");
  CHECK(j["command"] == "fit");
  CHECK(j["command_line"] == "prog fit --seed 7");
  CHECK(j["version"] == std::string(version()));
  CHECK(j["config"]["seed"] == 7);
  CHECK(Json::parse(r.attr_string("/", "config"))["seed"] == 7);
  CHECK(j["ap"] == 0.5);
  CHECK(r.attr_string("/", "created").size() == 20);  // 2026-12-07T21:52:16Z
  CHECK(j["created"].get<std::string>().size() == 20);
}

TEST_CASE("one --device parser", "[runtime]") {
  CHECK_FALSE(parse_device_spec("cpu").cuda);
  CHECK(parse_device_spec("cuda").cuda);
  CHECK(parse_device_spec("cuda").index == 0);
  CHECK(parse_device_spec("cuda:3").index == 3);
  CHECK(parse_device_spec("cuda:3").str() == "cuda:3");
  for (const std::string bad : {"gpu", "cuda:", "cuda:-1", "cuda: 1", "cuda:x", "cudax", "CPU", ""}) {
    CHECK_THROWS_AS(parse_device_spec(bad), UsageError);
    CHECK_THROWS_WITH(parse_device_spec(bad), Catch::Contains("'" + bad + "'"));
  }
}

TEST_CASE("--out is checked, created and locked before any work", "[runtime]") {
  mlsys::test::TempDir tmp{"mlsys-runtime"};
  CHECK_THROWS_AS(check_output_path(""), UsageError);
  write_file_atomic(tmp.path / "file", "x");
  CHECK_THROWS_WITH(check_output_path(tmp.path / "file"), Catch::Contains("expected a folder, found a file"));
  CHECK_THROWS_AS(OutputDir(tmp.path / "file"), UsageError);
  {
    // a stale temporary of a process that no longer runs is removed; one of a live process is kept
    std::filesystem::create_directories(tmp.path / "out");
    write_file_atomic(tmp.path / "out" / ".model.h5.tmp.999999999.0", "stale");
    const std::string live = ".model.h5.tmp." + std::to_string(::getpid()) + ".0";
    write_file_atomic(tmp.path / "out" / live, "live");
    OutputDir first(tmp.path / "out");
    CHECK_FALSE(std::filesystem::exists(tmp.path / "out" / ".model.h5.tmp.999999999.0"));
    CHECK(std::filesystem::exists(tmp.path / "out" / live));
    // a second writer is refused while the first holds the folder
    CHECK_THROWS_WITH(OutputDir(tmp.path / "out"), Catch::Contains("another run is writing into this folder"));
  }
  OutputDir again(tmp.path / "out");  // released at scope exit
  OutputDir created(tmp.path / "new" / "deeper");
  CHECK(std::filesystem::is_directory(tmp.path / "new" / "deeper"));
}

TEST_CASE("artifact names from configs resolve under --out and never leave it", "[runtime][artifact]") {
  mlsys::test::TempDir tmp{"mlsys-runtime"};
  CommonOptions opts;
  opts.out = (tmp.path / "out").string();
  std::filesystem::create_directories(tmp.path / "out" / "sub");
  CHECK(artifact_path(opts, "k.svg", "t.svg") == tmp.path / "out" / "t.svg");
  CHECK(artifact_path(opts, "k.svg", "figs/./a/../t.svg") == tmp.path / "out" / "figs" / "t.svg");
  for (const std::string bad : {"", ".", "..", "sub/", "sub/..", "sub/.", "../x.svg", "sub/../../x.svg", "/etc/x.svg"}) {
    INFO("name '" << bad << "'");
    CHECK_FALSE(artifact_name_problem(bad).empty());
    CHECK_THROWS_AS(artifact_path(opts, "k.svg", bad), ConfigError);
    CHECK_THROWS_WITH(artifact_path(opts, "k.svg", bad), Catch::Contains("key 'k.svg'") && Catch::Contains("--out"));
  }
  // an existing folder, and a symbolic link inside --out that leads out of it
  CHECK_THROWS_WITH(artifact_path(opts, "k", "sub"), Catch::Contains("is a folder"));
  std::filesystem::create_directory_symlink(tmp.path, tmp.path / "out" / "up");
  CHECK_THROWS_WITH(artifact_path(opts, "k", "up/x.svg"), Catch::Contains("symbolic link"));
  // an export (eval.negatives_out): absolute paths as given, relative ones as artifacts
  CHECK(export_path(opts, "k", (tmp.path / "n.csv").string()) == tmp.path / "n.csv");
  CHECK(export_path(opts, "k", "n.csv") == tmp.path / "out" / "n.csv");
  CHECK_THROWS_AS(export_path(opts, "k", "../n.csv"), ConfigError);
  CHECK_THROWS_AS(export_path(opts, "k", (tmp.path / "d/").string()), ConfigError);
  CHECK_THROWS_WITH(export_path(opts, "k", tmp.path.string()), Catch::Contains("folder"));
  CHECK_FALSE(export_name_problem("").empty());
}

TEST_CASE("error excerpts of long strings never cut a UTF-8 character (fuzz finding)", "[runtime]") {
  // 56 ASCII bytes, then a 2-byte character across the 57-byte cut: nlohmann's dump threw
  // type_error.316 (exit 1) where a message quoted the value
  const Json v = std::string(56, 'a') + "\xc7\xbf" + std::string(20, 'b');
  const std::string d = describe_json(v), s = short_json(v);
  CHECK(d.find("aaaa") != std::string::npos);
  CHECK(d.find("...") != std::string::npos);
  CHECK(s.find("...") != std::string::npos);
  CHECK(excerpt(std::string("a\nb\x9e", 4)) == "a\\x0ab\\x9e");
}
