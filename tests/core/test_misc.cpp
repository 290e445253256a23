// run_main's exit codes, signals, progress modes, logging levels, timers.
#include <catch2/catch.hpp>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <unistd.h>
#include <thread>

#include "core/cli.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/signals.hpp"
#include "core/timer.hpp"

using namespace mlsys::core;

namespace {
int run_with(std::vector<std::string> args, const std::function<int()>& body) {
  CLI::App app{"test program"};
  CommonOptions opts;
  auto* sub = app.add_subcommand("go", "do it");
  add_common_options(*sub, opts);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return run_main("testprog", app, static_cast<int>(argv.size()), argv.data(), body);
}
}  // namespace

TEST_CASE("run_main maps typed errors to exit codes", "[cli]") {
  CHECK(run_with({"p", "go"}, [] { return 0; }) == 0);
  CHECK(run_with({"p", "go"}, []() -> int { throw ConfigError("cfg.json: key 'a': expected x, found y"); }) == 2);
  CHECK(run_with({"p", "go"}, []() -> int { throw UsageError("bad"); }) == 2);
  CHECK(run_with({"p", "go"}, []() -> int { throw InputError("data.csv: line 3: bad"); }) == 3);
  CHECK(run_with({"p", "go"}, []() -> int { throw RuntimeFailure("diverged"); }) == 1);
  CHECK(run_with({"p", "go"}, []() -> int { throw std::runtime_error("other"); }) == 1);
  CHECK(run_with({"p", "go", "--no-such-option"}, [] { return 0; }) == 2);
  CHECK(run_with({"p", "go", "--threads", "-3"}, [] { return 0; }) == 2);
  CHECK(run_with({"p", "--help"}, [] { return 5; }) == 0);
  CHECK(run_with({"p", "--version"}, [] { return 5; }) == 0);
}

TEST_CASE("common options are parsed", "[cli]") {
  CLI::App app{"t"};
  CommonOptions opts;
  add_common_options(app, opts);
  std::vector<std::string> args{"p", "--config", "c.json", "--set", "a.b=1", "--set", "c=x", "--seed", "7",
                                "--threads", "2", "--json", "--quiet", "--out", "o"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  app.parse(static_cast<int>(argv.size()), argv.data());
  CHECK(opts.config == "c.json");
  CHECK(opts.sets == std::vector<std::string>{"a.b=1", "c=x"});
  REQUIRE(opts.seed.has_value());
  CHECK(*opts.seed == 7);
  CHECK(opts.threads == 2);
  CHECK(opts.json);
  CHECK(opts.quiet);
  CHECK(opts.out == "o");
}

TEST_CASE("logging and progress options are validated", "[cli]") {
  CHECK_NOTHROW(setup_logging("t", "debug", false));
  CHECK_THROWS_AS(setup_logging("t", "loud", false), UsageError);
  CHECK(parse_progress_mode("never") == ProgressMode::never);
  CHECK(parse_progress_mode("always") == ProgressMode::always);
  CHECK_THROWS_AS(parse_progress_mode("sometimes"), UsageError);
  Progress quiet("x", 10, ProgressMode::always, /*quiet=*/true);
  CHECK_FALSE(quiet.is_bar());
  Progress bar("x", 10, ProgressMode::always);
  CHECK(bar.is_bar());
  bar.update(5, "half");
  bar.finish();
  Progress lines("x", 10, ProgressMode::never);
  CHECK_FALSE(lines.is_bar());
}

TEST_CASE("SIGINT and SIGTERM become a stop request", "[signals]") {
  install_stop_handlers();
  clear_stop_request();
  CHECK_FALSE(stop_requested());
  std::raise(SIGINT);
  CHECK(stop_requested());
  clear_stop_request();
  std::raise(SIGTERM);
  CHECK(stop_requested());
  clear_stop_request();
}

TEST_CASE("timers measure elapsed time", "[timer]") {
  Timer t;
  double acc = 0;
  {
    ScopedTimer s(acc);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(acc >= 0.019);
  CHECK(t.seconds() >= acc);
}

TEST_CASE("--set takes one value; a later positional stays positional", "[cli]") {
  CLI::App app{"t"};
  CommonOptions opts;
  add_common_options(app, opts);
  std::string input;
  app.add_option("input", input);
  std::vector<std::string> args{"p", "--set", "a=1", "data.csv"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  app.parse(static_cast<int>(argv.size()), argv.data());
  CHECK(opts.sets == std::vector<std::string>{"a=1"});
  CHECK(input == "data.csv");
}

namespace {
// Runs `fn` with stderr redirected to a file and returns what it wrote.
std::string capture_stderr(const std::function<void()>& fn) {
  std::fflush(stderr);
  char path[] = "/tmp/mlsys_stderr_XXXXXX";
  int fd = ::mkstemp(path);
  int saved = ::dup(2);
  ::dup2(fd, 2);
  fn();
  std::fflush(stderr);
  spdlog::default_logger()->flush();
  ::dup2(saved, 2);
  ::close(saved);
  ::close(fd);
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(path);
  return text;
}
}  // namespace

TEST_CASE("progress draws a bar, writes lines, or stays silent", "[progress]") {
  auto bar = capture_stderr([] {
    Progress p("train", 4, ProgressMode::always);
    p.update(2, "loss 0.5");
    p.finish("done");
  });
  CHECK_THAT(bar, Catch::Matchers::Contains("train [") && Catch::Matchers::Contains("4/4") &&
                      Catch::Matchers::Contains("done"));
  CHECK(capture_stderr([] {
          Progress p("train", 4, ProgressMode::always, /*quiet=*/true);
          p.update(2);
          p.finish();
        }).empty());
  setup_logging("progress-test", "info", false);
  auto lines = capture_stderr([] {
    Progress p("train", 4, ProgressMode::never);
    p.update(1, "loss 0.7");
    p.update(2, "loss 0.6");  // within the interval: no second line
    p.finish("done");
  });
  CHECK_THAT(lines, Catch::Matchers::Contains("train 1/4") && Catch::Matchers::Contains("loss 0.7") &&
                        Catch::Matchers::Contains("train 4/4") && Catch::Matchers::Contains("done"));
  CHECK_THAT(lines, !Catch::Matchers::Contains("loss 0.6"));
  // The final state is logged once, even when update() already reached it.
  auto once = capture_stderr([] {
    Progress p("steps", 2, ProgressMode::never);
    p.update(2, "end");
    p.finish();
  });
  CHECK(once.find("steps 2/2") == once.rfind("steps 2/2"));
  CHECK_THAT(lines, !Catch::Matchers::Contains("["  "#"));
}

TEST_CASE("one_line escapes control bytes and keeps UTF-8", "[error]") {
  CHECK(mlsys::core::one_line("a\nb\r\tc") == "a\\x0ab\\x0d\\x09c");
  CHECK(mlsys::core::one_line("caf\xc3\xa9 \x7f") == "caf\xc3\xa9 \\x7f");
  CHECK(mlsys::core::one_line("plain") == "plain");
}
