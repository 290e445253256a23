// Catch2 runner for the plan tests: argv[1] (when it is not an option) is the path of the
// dynapipe-plan executable used by the CLI tests.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "test_support.hpp"

std::string g_dynapipe_plan;

int main(int argc, char** argv) {
  std::vector<char*> args(argv, argv + argc);
  if (argc > 1 && argv[1][0] != '-') {
    g_dynapipe_plan = argv[1];
    args.erase(args.begin() + 1);
  }
  return Catch::Session().run(static_cast<int>(args.size()), args.data());
}
