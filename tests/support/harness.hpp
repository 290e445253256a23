// The test harness every suite shares: a fresh temporary folder per test (TempDir), the one
// way to find a program under test (program(), from MLSYS_TOOLS_DIR, which tests/meson.build
// sets for every test), and running it as a subprocess (exit code, stdout, stderr).
// Catch-free: failures are exceptions, which fail the calling test case with their message.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mlsys::test {

// The whole of a file as bytes ("" when it cannot be opened).
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes `bytes` to `path` (replacing it), creating its parent folders.
inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("test harness: cannot write " + path.string());
}

// A fresh, empty folder of a unique name (mkdtemp) under the system temporary folder,
// removed with everything in it at scope exit. `label` only helps a human reading /tmp.
class TempDir {
 public:
  explicit TempDir(std::string_view label = "test") : path(make(label)) {}
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }

  [[nodiscard]] std::filesystem::path operator/(const std::filesystem::path& rel) const { return path / rel; }
  // Writes `bytes` to path / rel (parents created) and returns that path.
  std::filesystem::path write(const std::filesystem::path& rel, std::string_view bytes) const {
    write_file(path / rel, bytes);
    return path / rel;
  }

  const std::filesystem::path path;

 private:
  static std::filesystem::path make(std::string_view label) {
    std::string templ = (std::filesystem::temp_directory_path() / ("mlsys-" + std::string(label) + "-XXXXXX")).string();
    if (::mkdtemp(templ.data()) == nullptr) {
      throw std::runtime_error("test harness: mkdtemp(" + templ + ") failed: " + std::strerror(errno));
    }
    return templ;
  }
};

// The executable `name` in the folder `tools_dir`: the build tree's tools/NAME/NAME, or
// tools_dir/NAME (an installed bin folder). Throws std::runtime_error, naming what was
// looked for, when `tools_dir` is null or empty or holds no such executable: a test that
// cannot find its program fails, it never passes by running nothing.
inline std::filesystem::path locate_program(const char* tools_dir, std::string_view name) {
  if (tools_dir == nullptr || *tools_dir == '\0') {
    throw std::runtime_error("test harness: MLSYS_TOOLS_DIR is not set, so the program '" + std::string(name) +
                             "' cannot be found (meson test sets it to the build's tools/ folder; "
                             "set it by hand to run a test binary directly)");
  }
  const std::filesystem::path dir = tools_dir;
  for (const auto& p : {dir / name / name, dir / name}) {
    if (std::filesystem::is_regular_file(p) && ::access(p.c_str(), X_OK) == 0) return p;
  }
  throw std::runtime_error("test harness: no executable '" + std::string(name) + "' in MLSYS_TOOLS_DIR=" +
                           dir.string() + " (looked for " + (dir / name / name).string() + " and " +
                           (dir / name).string() + "; does the test depend on it in meson.build?)");
}

// The program under test called `name` ("tgnn-train"), from MLSYS_TOOLS_DIR.
inline std::filesystem::path program(std::string_view name) { return locate_program(std::getenv("MLSYS_TOOLS_DIR"), name); }

// What a program run left: its exit code (-1 when a signal ended it), stdout and stderr.
struct Run {
  int code = -1;
  std::string out, err;
};

// Runs `program args` through /bin/sh (`args` are shell words: quote paths with '...'),
// capturing both streams.
inline Run run_program(const std::filesystem::path& program, const std::string& args) {
  const TempDir streams("streams");
  const std::string cmd = "'" + program.string() + "' " + args + " >'" + (streams / "stdout").string() + "' 2>'" +
                          (streams / "stderr").string() + "'";
  const int status = std::system(cmd.c_str());
  if (status == -1) throw std::runtime_error("test harness: cannot start a shell for " + program.string());
  Run r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(streams / "stdout");
  r.err = slurp(streams / "stderr");
  return r;
}

// A program running in the background (for tests that signal it): started like
// run_program, its pid is the program's own (the shell execs it).
class Background {
 public:
  Background(const std::filesystem::path& program, const std::string& args) {
    const std::string cmd = "exec '" + program.string() + "' " + args + " >'" + (streams_ / "stdout").string() +
                            "' 2>'" + (streams_ / "stderr").string() + "'";
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("test harness: cannot fork for " + program.string());
    if (pid_ == 0) {
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  ~Background() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  void signal(int sig) const { ::kill(pid_, sig); }
  // Whether it has ended (without reaping it).
  [[nodiscard]] bool running() const {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0;
  }
  // Waits for the end: exit code (-1 after a signal), stdout and stderr.
  Run wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    Run r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(streams_ / "stdout");
    r.err = slurp(streams_ / "stderr");
    return r;
  }

 private:
  TempDir streams_{"streams"};
  pid_t pid_ = -1;
};

}  // namespace mlsys::test
