// Ranks 1..N-1 of a local multi-process run as child processes of rank 0: this program
// re-executed (/proc/self/exe) with the same arguments, --out <out>/ranks/<r> --quiet, and
// RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT set, as a launcher would. Used by
// dynapipe-plan run and spmd-plan run and profile. Torch-free.
#pragma once

#include <sys/types.h>

#include <vector>

#include "core/options.hpp"

namespace mlsys::plan {

// A TCP port on 127.0.0.1 free a moment ago (the OS's choice).
int free_loopback_port();

class LocalRanks {
 public:
  LocalRanks(const core::CommonOptions& opts, int world, int port);
  LocalRanks(const LocalRanks&) = delete;
  LocalRanks& operator=(const LocalRanks&) = delete;
  // Ranks still running (rank 0 failed) are ended: they would wait for it until the timeout.
  ~LocalRanks();
  // Waits for every rank; core::RuntimeFailure naming the first that failed.
  void join();

 private:
  std::vector<pid_t> pids_;
};

}  // namespace mlsys::plan
