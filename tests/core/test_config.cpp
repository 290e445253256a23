// Config loading: values, defaults, resolved config, and every kind of bad input.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <limits>

#include "core/config.hpp"
#include "core/training_loop.hpp"
#include "tests/support/harness.hpp"

using namespace mlsys::core;
using Catch::Matchers::Contains;

namespace {

struct Optim {
  double lr = 1e-3;
  int warmup = 10;
};
struct Train {
  int epochs = 3;
  std::string mode = "fast";
  bool shuffle = true;
  std::vector<int> dims{8, 8};
  Optim optim;
  uint64_t seed = 0;
};

Train read_train(const ConfigNode& root) {
  Train t;
  auto n = root.child("train");
  n.get("epochs", t.epochs, in_range(1, 1000))
      .get("mode", t.mode, one_of({"fast", "slow"}))
      .get("shuffle", t.shuffle)
      .get("dims", t.dims)
      .get("seed", t.seed);
  auto o = n.child("optim");
  o.get("lr", t.optim.lr, positive<double>()).get("warmup", t.optim.warmup, at_least(0));
  root.finish();
  return t;
}

std::string error_of(const std::string& text, const std::vector<std::string>& sets = {}) {
  try {
    read_train(ConfigNode(parse_config(text, "cfg.json", sets)));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("config values and defaults are read", "[config]") {
  auto t = read_train(ConfigNode(parse_config(R"({"train": {"epochs": 7, "optim": {"lr": 0.5}}})", "cfg.json")));
  CHECK(t.epochs == 7);
  CHECK(t.optim.lr == 0.5);
  CHECK(t.optim.warmup == 10);
  CHECK(t.mode == "fast");
  CHECK(t.dims == std::vector<int>{8, 8});
}

TEST_CASE("resolved config holds defaults, file values and overrides", "[config]") {
  ConfigNode root(parse_config(R"({"train": {"epochs": 7}})", "cfg.json", {"train.optim.lr=0.25", "train.mode=slow"}));
  auto t = read_train(root);
  CHECK(t.optim.lr == 0.25);
  CHECK(t.mode == "slow");
  auto r = root.resolved();
  CHECK(r["train"]["epochs"] == 7);
  CHECK(r["train"]["optim"]["lr"] == 0.25);
  CHECK(r["train"]["optim"]["warmup"] == 10);
  CHECK(r["train"]["mode"] == "slow");
  CHECK(r["train"]["dims"] == Json::array({8, 8}));
}

TEST_CASE("--set values are typed as JSON, bare words as strings", "[config]") {
  auto t = read_train(ConfigNode(parse_config("{}", "cfg.json", {"train.dims=[1,2,3]", "train.shuffle=false", "train.epochs=4.0"})));
  CHECK(t.dims == std::vector<int>{1, 2, 3});
  CHECK_FALSE(t.shuffle);
  CHECK(t.epochs == 4);
}

TEST_CASE("unknown keys are errors naming file and key", "[config]") {
  auto e = error_of(R"({"train": {"epochz": 3}})");
  CHECK_THAT(e, Contains("cfg.json") && Contains("unknown key 'train.epochz'") && Contains("epochs"));
  CHECK_THAT(error_of(R"({"trian": {}})"), Contains("unknown key 'trian'"));
  CHECK_THAT(error_of(R"({"train": {"optim": {"beta": 1}}})"), Contains("unknown key 'train.optim.beta'"));
}

TEST_CASE("wrong types are errors with expected and found", "[config]") {
  CHECK_THAT(error_of(R"({"train": {"epochs": "many"}})"),
             Contains("cfg.json: key 'train.epochs': expected an integer, found string \"many\""));
  CHECK_THAT(error_of(R"({"train": {"epochs": 2.5}})"), Contains("expected an integer"));
  CHECK_THAT(error_of(R"({"train": {"shuffle": 1}})"), Contains("key 'train.shuffle': expected true or false"));
  CHECK_THAT(error_of(R"({"train": {"dims": [1, "x"]}})"), Contains("key 'train.dims[1]': expected an integer"));
  CHECK_THAT(error_of(R"({"train": 5})"), Contains("key 'train': expected an object"));
  CHECK_THAT(error_of(R"({"train": {"seed": -1}})"), Contains("non-negative"));
}

TEST_CASE("out-of-range values are errors", "[config]") {
  CHECK_THAT(error_of(R"({"train": {"epochs": 0}})"), Contains("key 'train.epochs': expected a value in [1, 1000], found 0"));
  CHECK_THAT(error_of(R"({"train": {"optim": {"lr": -1}}})"), Contains("expected a value > 0, found -1"));
  CHECK_THAT(error_of(R"({"train": {"mode": "medium"}})"), Contains("expected one of fast|slow"));
}

TEST_CASE("errors from overrides name the --set", "[config]") {
  CHECK_THAT(error_of("{}", {"train.epochs=abc"}),
             Contains("--set train.epochs=abc: key 'train.epochs': expected an integer, found string"));
  CHECK_THAT(error_of("{}", {"train.epoch=3"}), Contains("--set train.epoch=3: unknown key 'train.epoch'"));
  // an override below a scalar key (it made the key an object) is named too, not the file
  CHECK_THAT(error_of("{}", {"train.seed.x=1"}),
             Contains("--set train.seed.x=1: key 'train.seed': expected an integer, found an object"));
  CHECK_THROWS_AS(parse_config("{}", "cfg.json", {"novalue"}), ConfigError);
  CHECK_THROWS_WITH(parse_config(R"({"a": 1})", "cfg.json", {"a.b=2"}), Contains("'a' is not an object"));
}

TEST_CASE("malformed and truncated JSON give line and column", "[config]") {
  CHECK_THROWS_WITH(parse_config("{\n  \"train\": {\"epochs\": 3,}\n}", "bad.json"),
                    Contains("bad.json: malformed JSON") && Contains("line 2"));
  CHECK_THROWS_WITH(parse_config("{\"train\": {\"epochs\": 3", "trunc.json"),
                    Contains("trunc.json: malformed JSON") && Contains("end of input"));
  CHECK_THROWS_WITH(parse_config("", "empty.json"), Contains("empty.json: malformed JSON"));
  CHECK_THROWS_WITH(parse_config("[1, 2]", "arr.json"), Contains("expected a JSON object at the top level, found array"));
}

TEST_CASE("missing config file is a ConfigError naming it", "[config]") {
  CHECK_THROWS_AS(load_config("/nonexistent/dir/cfg.json"), ConfigError);
  CHECK_THROWS_WITH(load_config("/nonexistent/dir/cfg.json"), Contains("/nonexistent/dir/cfg.json"));
}

TEST_CASE("config files load from disk", "[config]") {
  const mlsys::test::TempDir dir("config");
  const auto p = dir.write("cfg.json", R"({"train": {"epochs": 9}})");
  auto t = read_train(ConfigNode(load_config(p.string(), {"train.optim.warmup=2"})));
  CHECK(t.epochs == 9);
  CHECK(t.optim.warmup == 2);
}

TEST_CASE("arrays of objects are read with items()", "[config]") {
  ConfigNode root(parse_config(R"({"tasks": [{"name": "a", "w": 1.5}, {"name": "b"}]})", "cfg.json"));
  std::vector<std::pair<std::string, double>> tasks;
  for (const auto& item : root.items("tasks")) {
    std::pair<std::string, double> t{"", 1.0};
    item.require("name", t.first).get("w", t.second);
    tasks.push_back(t);
  }
  root.finish();
  REQUIRE(tasks.size() == 2);
  CHECK(tasks[0] == std::pair<std::string, double>{"a", 1.5});
  CHECK(tasks[1] == std::pair<std::string, double>{"b", 1.0});
  CHECK(root.resolved()["tasks"][1]["w"] == 1.0);

  ConfigNode bad(parse_config(R"({"tasks": [{"name": "a", "x": 1}]})", "cfg.json"));
  for (const auto& item : bad.items("tasks")) {
    std::string name;
    item.require("name", name);
  }
  CHECK_THROWS_WITH(bad.finish(), Contains("unknown key 'tasks[0].x'"));

  ConfigNode missing(parse_config(R"({"tasks": [{}]})", "cfg.json"));
  std::string name;
  CHECK_THROWS_WITH(missing.items("tasks")[0].require("name", name),
                    Contains("key 'tasks[0].name': expected a value (the key is required), found nothing"));
}

TEST_CASE("hostile configs give ConfigError, never a crash or exit 1", "[config]") {
  // A million levels of nesting: dump() or a recursive walk would overflow the stack.
  std::string deep = R"({"train": {"dims": )" + std::string(1000000, '[') + std::string(1000000, ']') + "}}";
  CHECK_THROWS_WITH(parse_config(deep, "deep.json"), Contains("deep.json: malformed JSON: JSON nested deeper than 64"));
  // Nesting within the limit still parses; the error describes the value without dumping it.
  std::string nested = R"({"train": {"epochs": )" + std::string(40, '[') + std::string(40, ']') + "}}";
  CHECK_THAT(error_of(nested), Contains("expected an integer, found an array of 1 element"));
  // 1e19 does not fit int64: an error, not undefined behaviour.
  CHECK_THAT(error_of(R"({"train": {"epochs": 1e19}})"), Contains("key 'train.epochs': expected an integer"));
  CHECK_THAT(error_of(R"({"train": {"epochs": 1e300}})"), Contains("expected an integer"));
  // Keys that would alias real key paths are unknown keys.
  CHECK_THAT(error_of(R"({"train": {"optim": {"lr": 0.5}}, "train.optim.lr": 5})"), Contains("unknown key 'train.optim.lr'"));
  CHECK_THAT(error_of(R"({"train": {"": 1}})"), Contains("unknown key 'train.'"));
  CHECK_THAT(error_of(R"({"train": {"dims[0]": 1}})"), Contains("unknown key 'train.dims[0]'"));
  // A huge array index in --set.
  CHECK_THROWS_WITH(parse_config(R"({"a": [1, 2]})", "cfg.json", {"a.99999999999999999999=2"}),
                    Contains("--set a.99999999999999999999=2: key 'a.99999999999999999999': index") &&
                        Contains("past the end"));
  CHECK_THROWS_WITH(parse_config("{}", "cfg.json", {"a=" + std::string(100, '[')}), Contains("nested deeper than 64"));
}

TEST_CASE("unknown keys inside a --set value are blamed on the --set", "[config]") {
  ConfigNode root(parse_config("{}", "cfg.json", {R"(tasks=[{"name": "a", "bogus": 2}])"}));
  for (const auto& item : root.items("tasks")) {
    std::string name;
    item.require("name", name);
  }
  CHECK_THROWS_WITH(root.finish(), Contains("--set tasks=") && Contains("unknown key 'tasks[0].bogus'"));
}

TEST_CASE("JSONL objects are read with their line numbers; bad lines name file:line", "[jsonl]") {
  std::vector<std::pair<size_t, int>> seen;
  for_each_jsonl_object("d.jsonl", "{\"a\": 1}\n\n  \r\n{\"a\": 2}\n{\"a\": 3}", [&](const Json& o, size_t line) {
    seen.emplace_back(line, o.at("a").get<int>());
  });
  CHECK(seen == std::vector<std::pair<size_t, int>>{{1, 1}, {4, 2}, {5, 3}});
  auto none = [](const Json&, size_t) {};
  CHECK_THROWS_AS(for_each_jsonl_object("d.jsonl", "{}\n{\"a\": ", none), InputError);
  CHECK_THROWS_WITH(for_each_jsonl_object("d.jsonl", "{}\n{\"a\": ", none),
                    Contains("d.jsonl:2: expected a JSON object, found malformed JSON"));
  CHECK_THROWS_WITH(for_each_jsonl_object("d.jsonl", "[1, 2]", none),
                    Contains("d.jsonl:1: expected a JSON object, found an array of 2 elements"));
  const std::string deep = "{\"a\": " + std::string(1000000, '[') + std::string(1000000, ']') + "}";
  CHECK_THROWS_WITH(for_each_jsonl_object("d.jsonl", deep, none), Contains("d.jsonl:1:") && Contains("deeper than 64"));
}

// ---------------------------------------------------------------- hardening (issue 20)

namespace {

// The message of the ConfigError that `f` throws ("" when it throws none).
template <class F>
std::string config_error(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a number beyond a double is a config error naming the file or --set and the key", "[config][json]") {
  // nlohmann reports it as out_of_range.406 with no position: the message must still say where
  std::string msg = config_error([] { (void)parse_config(R"({"train": {"lr": 1e309}})", "cfg.json"); });
  CHECK_THAT(msg, Contains("cfg.json: malformed JSON") && Contains("'train.lr'") && Contains("1e309") &&
                      Contains("range of a double"));
  msg = config_error([] { (void)parse_config(R"({"a": [1, {"b": [0, -1e400]}]})", "cfg.json"); });
  CHECK_THAT(msg, Contains("'a[1].b[1]'"));
  msg = config_error([] { (void)parse_config("{}", "cfg.json", {"train.lr=1e309"}); });
  CHECK_THAT(msg, Contains("--set train.lr=1e309: key 'train.lr': expected a number within the range of a double"));
  msg = config_error([] { (void)parse_config("{}", "cfg.json", {"train.dims=[1, 2e999]"}); });
  CHECK_THAT(msg, Contains("key 'train.dims'") && Contains("range of a double"));
}

TEST_CASE("JSON errors quote a short excerpt, never a 100 KB value", "[config][json]") {
  // an unterminated 100 KB string: nlohmann quotes the whole token it last read
  const std::string text = "{\"train\": {\"mode\": \"" + std::string(100000, 'x');
  std::string msg = config_error([&] { (void)parse_config(text, "long.json"); });
  CHECK_THAT(msg, Contains("long.json: malformed JSON"));
  CHECK(msg.size() < 400);
  // 50k levels: the depth limit names the key and stays short
  const std::string deep = R"({"train": {"dims": )" + std::string(50000, '[') + std::string(50000, ']') + "}}";
  msg = config_error([&] { (void)parse_config(deep, "deep.json"); });
  CHECK_THAT(msg, Contains("deep.json: malformed JSON: JSON nested deeper than 64 levels (at key 'train.dims[0]"));
  CHECK(msg.size() < 400);
  // a 100 KB --set is quoted by its start
  msg = config_error([] { (void)parse_config("{}", "cfg.json", {"a=" + std::string(100000, '[')}); });
  CHECK_THAT(msg, Contains("nested deeper than 64"));
  CHECK(msg.size() < 400);
  // JSONL lines the same
  std::string jsonl;
  try {
    for_each_jsonl_object("d.jsonl", "{\"a\": \"" + std::string(100000, 'y'), [](const Json&, size_t) {});
  } catch (const InputError& e) {
    jsonl = e.what();
  }
  CHECK_THAT(jsonl, Contains("d.jsonl:1: expected a JSON object, found malformed JSON"));
  CHECK(jsonl.size() < 400);
}

namespace {

// A task that must never be stepped: the loop is to refuse its policy first.
struct NeverStepped : LoopTask {
  int steps = 0;
  StepReport train_step(int64_t) override {
    ++steps;
    return StepReport{};
  }
  std::optional<EvalReport> evaluate(int64_t) override { return EvalReport{0.0, {{"score", 0.0}}}; }
  void keep_best() override {}
  void save_state(H5Writer&) const override {}
  void load_state(const H5Reader&) override {}
};

}  // namespace

TEST_CASE("training loop: a policy of no steps (0, or an overflow gone negative) is a config error", "[config][loop]") {
  const mlsys::test::TempDir tmp("loop-steps");
  for (const int64_t total : {int64_t{0}, int64_t{-5}, std::numeric_limits<int64_t>::min()}) {
    NeverStepped task;
    LoopPolicy p;
    p.total_steps = total;
    p.checkpoint = tmp / "checkpoint.h5";
    p.info = {"test", "{}"};
    p.progress = ProgressMode::never;
    p.quiet = true;
    const std::string msg = config_error([&] { (void)run_training_loop(task, p); });
    INFO("total_steps " << total);
    CHECK_THAT(msg, Contains("expected a positive number of training steps") && Contains(std::to_string(total)));
    CHECK(task.steps == 0);
    CHECK_FALSE(std::filesystem::exists(tmp / "checkpoint.h5"));
  }
}

TEST_CASE("--set errors are one line, and a bare word must be UTF-8 (fuzz findings)", "[config]") {
  // a value with a newline: the message quotes it escaped, on one line
  const std::string nl = error_of("{}", {"train.mode=x\ny"});
  CHECK(nl.find('\n') == std::string::npos);
  CHECK_THAT(nl, Contains("--set train.mode=x\\x0ay"));
  // bytes that are not UTF-8: a ConfigError naming the --set, not nlohmann's type_error at dump
  CHECK_THAT(error_of("{}", {"train.mode=\x9e"}),
             Contains("--set train.mode=\\x9e: key 'train.mode': expected UTF-8 text"));
  CHECK_THAT(error_of("{}", {"train.mode=\xc3\x28"}), Contains("expected UTF-8 text"));
  CHECK_THAT(error_of("{}", {"train.mode=\xed\xa0\x80"}), Contains("expected UTF-8 text"));  // a surrogate
  // a key path with a newline (fuzz finding on the merged tree): one line too
  const std::string key_nl = error_of("{}", {"train.mo\nde=fast"});
  CHECK(key_nl.find('\n') == std::string::npos);
  CHECK_THAT(key_nl, Contains("control bytes"));
  // well-formed UTF-8 passes through to the value check
  CHECK_THAT(error_of("{}", {"train.mode=caf\xc3\xa9"}), Contains("expected one of fast|slow"));
}
