// Atomic writes: temp + rename, nothing left behind on failure.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/output_dir.hpp"
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

namespace {

// The names in `dir` that start with '.' (temporaries, staging or sealed folders).
std::vector<std::string> hidden_entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().front() == '.') out.push_back(e.path().filename().string());
  }
  return out;
}

// Runs `work` in a child process that then dies at once (_exit, no destructors: what a
// SIGKILL leaves on disk); returns the child's pid, which no longer runs.
pid_t run_then_die(const std::function<void()>& work) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    try {
      work();
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return pid;
}

// The old pair, as a finished run left it.
void old_pair(const fs::path& dir) {
  write_file_atomic(dir / "model.h5", "old model");
  write_file_atomic(dir / "metrics.json", "old metrics");
}

// A new pair written into a set (not yet sealed).
void stage_new_pair(ArtifactSet& set) {
  write_file_atomic(set.stage("model.h5"), "new model");
  write_file_atomic(set.stage("metrics.json"), "new metrics");
}

}  // namespace

TEST_CASE("an ArtifactSet replaces its files together, and nothing on a failure", "[atomic][artifact-set]") {
  const mlsys::test::TempDir tmp("atomic");
  const fs::path dir = tmp.path / "out";
  fs::create_directories(dir);
  old_pair(dir);
  write_file_atomic(dir / "checkpoint.h5", "another file of the folder");
  {
    ArtifactSet set(dir);
    stage_new_pair(set);
    CHECK(read_file(dir / "model.h5") == "old model");  // nothing replaced before commit
    set.commit();
  }
  CHECK(read_file(dir / "model.h5") == "new model");
  CHECK(read_file(dir / "metrics.json") == "new metrics");
  CHECK(read_file(dir / "checkpoint.h5") == "another file of the folder");
  CHECK(hidden_entries(dir).empty());

  // an error before commit (the destructor runs): the old pair stays, no staging folder
  old_pair(dir);
  CHECK_THROWS_AS(([&] {
                    ArtifactSet set(dir);
                    write_file_atomic(set.stage("model.h5"), "new model");
                    throw InputError("failed between the two writes");
                  }()),
                  InputError);
  CHECK(read_file(dir / "model.h5") == "old model");
  CHECK(hidden_entries(dir).empty());

  // a file staged but never written, or a folder in the way of the second: refused at
  // seal, before the first is replaced
  {
    ArtifactSet set(dir);
    write_file_atomic(set.stage("model.h5"), "new model");
    (void)set.stage("metrics.json");
    CHECK_THROWS_WITH(set.commit(), Catch::Contains("metrics.json") && Catch::Contains("never written"));
  }
  fs::remove(dir / "metrics.json");
  fs::create_directory(dir / "metrics.json");
  {
    ArtifactSet set(dir);
    stage_new_pair(set);
    CHECK_THROWS_WITH(set.commit(), Catch::Contains("metrics.json") && Catch::Contains("is a folder"));
  }
  CHECK(read_file(dir / "model.h5") == "old model");
  CHECK(hidden_entries(dir).empty());
  // names are plain file names
  ArtifactSet set(dir);
  CHECK_THROWS_AS(set.stage("../x"), RuntimeFailure);
  CHECK_THROWS_AS(set.stage(".hidden"), RuntimeFailure);
  (void)set.stage("a");
  CHECK_THROWS_AS(set.stage("a"), RuntimeFailure);
}

TEST_CASE("a run killed while writing an ArtifactSet leaves the old pair; OutputDir removes its staging folder",
          "[atomic][artifact-set]") {
  const mlsys::test::TempDir tmp("atomic");
  const fs::path dir = tmp.path / "out";
  fs::create_directories(dir);
  old_pair(dir);
  // killed after the first of the two writes
  const pid_t dead = run_then_die([&] {
    auto* set = new ArtifactSet(dir);  // never destroyed: the kill runs no destructor
    write_file_atomic(set->stage("model.h5"), "new model");
  });
  const std::vector<std::string> left = hidden_entries(dir);
  REQUIRE(left.size() == 1);
  CHECK(left[0].rfind(".artifact-set.tmp." + std::to_string(dead) + ".", 0) == 0);
  CHECK(read_file(dir / "model.h5") == "old model");
  OutputDir next(dir);  // the next run in the folder
  CHECK(hidden_entries(dir).empty());
  CHECK(read_file(dir / "model.h5") == "old model");
  CHECK(read_file(dir / "metrics.json") == "old metrics");
}

TEST_CASE("a run killed between the renames of an ArtifactSet: the next run completes the pair",
          "[atomic][artifact-set]") {
  const mlsys::test::TempDir tmp("atomic");
  const fs::path dir = tmp.path / "out";
  fs::create_directories(dir);
  old_pair(dir);
  // killed right after the point of no return, before any rename
  const pid_t dead = run_then_die([&] {
    auto* set = new ArtifactSet(dir);
    stage_new_pair(*set);
    set->seal();
  });
  const std::vector<std::string> left = hidden_entries(dir);
  REQUIRE(left.size() == 1);
  REQUIRE(left[0].rfind(".artifact-set.commit." + std::to_string(dead) + ".", 0) == 0);
  const fs::path sealed = dir / left[0];
  REQUIRE(fs::is_directory(sealed));
  CHECK(read_file(dir / "model.h5") == "old model");
  // what a kill between the two renames leaves: the first file renamed, the second not
  fs::rename(sealed / "model.h5", dir / "model.h5");
  CHECK(read_file(dir / "model.h5") == "new model");
  CHECK(read_file(dir / "metrics.json") == "old metrics");  // the mix the next run must repair

  // a sealed set of a process that still runs is left alone
  const fs::path live = dir / (".artifact-set.commit." + std::to_string(::getpid()) + ".99");
  fs::create_directory(live);
  write_file_atomic(live / "metrics.json", "not yet");
  {
    OutputDir next(dir);  // the next run in the folder
    CHECK(read_file(dir / "model.h5") == "new model");
    CHECK(read_file(dir / "metrics.json") == "new metrics");
    CHECK_FALSE(fs::exists(sealed));
    CHECK(fs::exists(live));
  }
  fs::remove_all(live);
  CHECK(hidden_entries(dir).empty());

  // killed after the seal with nothing renamed: all new after the next start
  old_pair(dir);
  run_then_die([&] {
    auto* set = new ArtifactSet(dir);
    stage_new_pair(*set);
    set->seal();
  });
  complete_artifact_sets(dir);
  CHECK(read_file(dir / "model.h5") == "new model");
  CHECK(read_file(dir / "metrics.json") == "new metrics");
  CHECK(hidden_entries(dir).empty());
}
