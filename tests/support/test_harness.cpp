// The test harness itself (harness.hpp): a program that is not there fails the test that
// looks for it, TempDir is unique and gone at scope exit, run_program captures exit code and
// both streams.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "tests/support/harness.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using mlsys::test::locate_program;
using mlsys::test::program;
using mlsys::test::TempDir;

TEST_CASE("locating a program that does not exist throws, naming it and the folder", "[harness]") {
  const char* tools = std::getenv("MLSYS_TOOLS_DIR");
  REQUIRE(tools != nullptr);  // tests/meson.build sets it for every test
  REQUIRE_THROWS_WITH(program("no-such-program"), Contains("no-such-program") && Contains(tools));
  // Unset or empty: an error that says so, never an empty path.
  REQUIRE_THROWS_WITH(locate_program(nullptr, "tgnn-train"), Contains("MLSYS_TOOLS_DIR is not set"));
  REQUIRE_THROWS_WITH(locate_program("", "tgnn-train"), Contains("MLSYS_TOOLS_DIR is not set"));
  // A file of that name that is not executable, or a folder, is not a program.
  const TempDir dir("harness");
  dir.write("tool/tool", "#!/bin/sh\n");
  REQUIRE_THROWS_WITH(locate_program(dir.path.c_str(), "tool"), Contains("no executable 'tool'"));
  fs::create_directories(dir / "folder" / "folder");
  REQUIRE_THROWS(locate_program(dir.path.c_str(), "folder"));
}

TEST_CASE("locating a program finds tools/NAME/NAME or tools/NAME", "[harness]") {
  const TempDir dir("harness");
  for (const fs::path rel : {"built/built", "installed"}) {
    dir.write(rel, "#!/bin/sh\necho \"out $1\"\necho err >&2\nexit 3\n");
    fs::permissions(dir / rel, fs::perms::owner_exec, fs::perm_options::add);
  }
  const fs::path built = locate_program(dir.path.c_str(), "built");
  CHECK(built == dir / "built/built");
  CHECK(locate_program(dir.path.c_str(), "installed") == dir / "installed");

  const mlsys::test::Run r = mlsys::test::run_program(built, "'two words'");
  CHECK(r.code == 3);
  CHECK(r.out == "out two words\n");
  CHECK(r.err == "err\n");
}

TEST_CASE("TempDir: a fresh empty folder per object, removed with its contents at scope exit", "[harness]") {
  fs::path kept;
  {
    const TempDir a("harness"), b("harness");
    REQUIRE(fs::is_directory(a.path));
    REQUIRE(fs::is_directory(b.path));
    CHECK(a.path != b.path);
    CHECK(fs::is_empty(a.path));
    const fs::path f = a.write("sub/deeper/file.txt", "bytes");
    CHECK(f == a / "sub/deeper/file.txt");
    CHECK(mlsys::test::slurp(f) == "bytes");
    kept = a.path;
  }
  CHECK_FALSE(fs::exists(kept));
}
