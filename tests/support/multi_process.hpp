// Launching this test binary as N ranks of a distributed run (the sibling of harness.hpp for
// multi-process tests): a free loopback port, each rank started by fork + execve of
// /proc/self/exe with RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1 and MASTER_PORT set (as a
// real launcher would), a deadline after which ranks still running are killed.
// Catch-free: the caller checks the returned statuses.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;  // NOLINT: POSIX

namespace mlsys::test {

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(std::string("test harness: socket() failed: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error(std::string("test harness: no free loopback port: ") + std::strerror(errno));
  return ntohs(addr.sin_port);
}

struct RankLaunch {
  int ranks = 2;
  std::vector<std::string> args;       // argv of every rank (argv[0] first): e.g. the worker test's name
  std::vector<std::string> extra_env;  // "KEY=VALUE" for every rank (replacing inherited KEYs)
  std::chrono::seconds timeout{120};
};

// The wait status of each rank, or -1 for a rank that was still running at the deadline
// (it has been killed). The caller's environment is passed on without RANK, WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT, GLOO_SOCKET_IFNAME, SLURM_* and the keys of extra_env.
inline std::vector<int> run_ranks(const RankLaunch& launch) {
  const int port = free_loopback_port();
  // Everything the children need is built before fork(): after it only exec.
  auto key_of = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
  std::vector<std::string> base;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const std::string key = key_of(kv);
    bool drop = key == "RANK" || key == "WORLD_SIZE" || key == "MASTER_ADDR" || key == "MASTER_PORT" ||
                key == "GLOO_SOCKET_IFNAME" || key.starts_with("SLURM_");
    for (const auto& x : launch.extra_env) drop = drop || key == key_of(x);
    if (!drop) base.push_back(kv);
  }
  base.insert(base.end(), {"WORLD_SIZE=" + std::to_string(launch.ranks), "MASTER_ADDR=127.0.0.1",
                           "MASTER_PORT=" + std::to_string(port)});
  base.insert(base.end(), launch.extra_env.begin(), launch.extra_env.end());
  const auto n = static_cast<size_t>(launch.ranks);
  std::vector<std::vector<std::string>> envs(n, base);
  std::vector<std::vector<char*>> envps(n);
  std::vector<std::string> args = launch.args;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (size_t r = 0; r < n; ++r) {
    envs[r].push_back("RANK=" + std::to_string(r));
    for (auto& s : envs[r]) envps[r].push_back(s.data());
    envps[r].push_back(nullptr);
  }
  std::vector<pid_t> pids;
  for (size_t r = 0; r < n; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      for (pid_t p : pids) {
        ::kill(p, SIGKILL);
        ::waitpid(p, nullptr, 0);
      }
      throw std::runtime_error(std::string("test harness: fork() failed: ") + std::strerror(errno));
    }
    if (pid == 0) {
      ::execve("/proc/self/exe", argv.data(), envps[r].data());
      ::_exit(127);
    }
    pids.push_back(pid);
  }
  std::vector<int> status(n, -1);
  const auto deadline = std::chrono::steady_clock::now() + launch.timeout;
  size_t left = n;
  while (left > 0 && std::chrono::steady_clock::now() < deadline) {
    for (size_t r = 0; r < n; ++r) {
      int st = 0;
      if (status[r] == -1 && ::waitpid(pids[r], &st, WNOHANG) == pids[r]) {
        status[r] = st;
        --left;
      }
    }
    if (left > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (size_t r = 0; r < n; ++r) {
    if (status[r] == -1) {
      ::kill(pids[r], SIGKILL);
      ::waitpid(pids[r], nullptr, 0);
    }
  }
  return status;
}

}  // namespace mlsys::test
