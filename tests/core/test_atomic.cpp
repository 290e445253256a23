// Atomic writes: temp + rename, nothing left behind on failure.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "tests/support/harness.hpp"

using namespace mlsys::core;
namespace fs = std::filesystem;

TEST_CASE("write_file_atomic replaces the file in one step", "[atomic]") {
  const mlsys::test::TempDir dir("atomic");
  auto p = dir / "sub" / "out.json";
  write_file_atomic(p, "first");
  CHECK(read_file(p) == "first");
  write_file_atomic(p, "second");
  CHECK(read_file(p) == "second");
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(p.parent_path())) ++n;
  CHECK(n == 1);
}

TEST_CASE("an AtomicFile dropped without commit removes its temporary", "[atomic]") {
  const mlsys::test::TempDir scratch("atomic");
  const fs::path& dir = scratch.path;
  auto p = dir / "keep.txt";
  write_file_atomic(p, "good");
  fs::path temp;
  {
    AtomicFile f(p);
    temp = f.temp_path();
    std::ofstream(f.temp_path()) << "half-written";
    CHECK(fs::exists(temp));
    CHECK(temp.parent_path() == dir);
  }
  CHECK_FALSE(fs::exists(temp));
  CHECK(read_file(p) == "good");
}

TEST_CASE("read_file errors name the file", "[atomic]") {
  CHECK_THROWS_AS(read_file("/nonexistent/x.txt"), InputError);
  CHECK_THROWS_WITH(read_file("/nonexistent/x.txt"), Catch::Matchers::Contains("/nonexistent/x.txt: no such file"));
  CHECK_THROWS_WITH(read_file("/tmp"), Catch::Matchers::Contains("is a directory"));
}

TEST_CASE("replace_folder_atomic swaps a whole folder; a failing fill leaves the old one", "[atomic]") {
  const mlsys::test::TempDir root("atomic");
  const auto dir = root / "model";
  replace_folder_atomic(dir, [](const fs::path& tmp) {
    write_file_atomic(tmp / "a.txt", "one");
    write_file_atomic(tmp / "stale.txt", "old only");
  });
  CHECK(read_file(dir / "a.txt") == "one");
  // a fill that throws halfway: the old folder is untouched, no temporary is left
  CHECK_THROWS_AS(replace_folder_atomic(dir,
                                        [](const fs::path& tmp) {
                                          write_file_atomic(tmp / "a.txt", "half");
                                          throw InputError("stop");
                                        }),
                  InputError);
  CHECK(read_file(dir / "a.txt") == "one");
  // a complete fill replaces everything, files of the old folder included
  replace_folder_atomic(dir, [](const fs::path& tmp) { write_file_atomic(tmp / "a.txt", "two"); });
  CHECK(read_file(dir / "a.txt") == "two");
  CHECK_FALSE(fs::exists(dir / "stale.txt"));
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(root.path)) ++n;
  CHECK(n == 1);  // only "model": no .tmp or .old sibling
}
