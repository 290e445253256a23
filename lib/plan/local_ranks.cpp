// Local ranks as child processes.
#include "plan/local_ranks.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "core/error.hpp"

extern char** environ;

namespace mlsys::plan {

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw core::RuntimeFailure("run: cannot open a socket to find a free port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  if (!ok) throw core::RuntimeFailure("run: cannot bind a loopback port");
  return ntohs(a.sin_port);
}

LocalRanks::LocalRanks(const core::CommonOptions& opts, int world, int port) {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  std::string cur;
  bool skip_next = false;
  for (char ch : all) {
    if (ch != '\0') {
      cur += ch;
      continue;
    }
    if (skip_next) {
      skip_next = false;
    } else if (cur == "--out") {
      skip_next = true;
    } else if (cur.rfind("--out=", 0) != 0) {
      args.push_back(cur);
    }
    cur.clear();
  }
  if (args.empty()) throw core::RuntimeFailure("run: cannot read this process's command line");
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const std::string key = kv.substr(0, kv.find('='));
    if (key == "RANK" || key == "WORLD_SIZE" || key == "MASTER_ADDR" || key == "MASTER_PORT" || key.rfind("SLURM_", 0) == 0) {
      continue;
    }
    env.push_back(kv);
  }
  // Everything the children need is built before fork(): after it only exec.
  std::vector<std::vector<std::string>> argvs, envs;
  for (int r = 1; r < world; ++r) {
    std::vector<std::string> a = args;
    a.insert(a.end(), {"--out", (std::filesystem::path(opts.out) / "ranks" / std::to_string(r)).string(), "--quiet"});
    std::vector<std::string> en = env;
    en.insert(en.end(), {"RANK=" + std::to_string(r), "WORLD_SIZE=" + std::to_string(world), "MASTER_ADDR=127.0.0.1",
                         "MASTER_PORT=" + std::to_string(port)});
    argvs.push_back(std::move(a));
    envs.push_back(std::move(en));
  }
  for (size_t r = 0; r < argvs.size(); ++r) {
    std::vector<char*> av, ev;
    for (auto& s : argvs[r]) av.push_back(s.data());
    av.push_back(nullptr);
    for (auto& s : envs[r]) ev.push_back(s.data());
    ev.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) throw core::RuntimeFailure("run: cannot start rank " + std::to_string(r + 1));
    if (pid == 0) {
      ::execve("/proc/self/exe", av.data(), ev.data());
      ::_exit(127);
    }
    pids_.push_back(pid);
  }
}

LocalRanks::~LocalRanks() {
  for (pid_t p : pids_) {
    if (p > 0) {
      ::kill(p, SIGTERM);
      ::waitpid(p, nullptr, 0);
    }
  }
}

void LocalRanks::join() {
  for (size_t i = 0; i < pids_.size(); ++i) {
    int st = 0;
    ::waitpid(pids_[i], &st, 0);
    pids_[i] = -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      throw core::RuntimeFailure("run: rank " + std::to_string(i + 1) + " failed (wait status " + std::to_string(st) + ")");
    }
  }
}

}  // namespace mlsys::plan
