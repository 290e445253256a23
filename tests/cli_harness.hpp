// Running a program under test as a subprocess: exit code, stdout and stderr, in a fresh
// temporary folder per test. Shared by the CLI tests of every program.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace mlsys::test {

struct Run {
  int code = -1;
  std::string out, err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "mlsys-cli") {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() /
           (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// Runs `program args` through the shell (args are shell words), capturing both streams
// into files inside `tmp`.
inline Run run_program(const std::string& program, const std::string& args, const TempDir& tmp) {
  const std::string cmd = "'" + program + "' " + args + " >'" + (tmp.path / "stdout").string() + "' 2>'" +
                          (tmp.path / "stderr").string() + "'";
  const int status = std::system(cmd.c_str());
  Run r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(tmp.path / "stdout");
  r.err = slurp(tmp.path / "stderr");
  return r;
}

}  // namespace mlsys::test
