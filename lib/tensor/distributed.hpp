// Data-parallel process groups (c10d) configured from the usual launcher environment
// (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, or Slurm's SLURM_PROCID/SLURM_NTASKS):
// Gloo on CPU, NCCL on CUDA when this build has it. The c10d headers stay in the .cpp.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace mlsys::tensor {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// Reads RANK (else SLURM_PROCID), WORLD_SIZE (else SLURM_NTASKS), MASTER_ADDR and
// MASTER_PORT; an unset variable keeps the default. core::UsageError naming the variable,
// what was expected and what was found, for a value that is not an integer, a world size
// below 1, a rank outside [0, world size), an empty address or a port outside [1, 65535].
[[nodiscard]] DistEnv dist_env_from_environment();
// The same with a lookup of our choosing instead of getenv (nullopt: unset).
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
[[nodiscard]] DistEnv dist_env_from(const EnvLookup& lookup);

// A point-to-point transfer in flight (ProcessGroup::send / recv): wait() blocks until it
// is done (core::RuntimeFailure when it failed or timed out). Keeps its tensor alive.
class PendingTransfer {
 public:
  PendingTransfer();
  PendingTransfer(PendingTransfer&&) noexcept;
  PendingTransfer& operator=(PendingTransfer&&) noexcept;
  ~PendingTransfer();
  void wait();
  [[nodiscard]] bool valid() const { return impl_ != nullptr; }

 private:
  friend class ProcessGroup;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class ProcessGroup {
 public:
  // Connects this process to the others through a c10d::TCPStore at master_addr:master_port
  // (rank 0 serves it) and creates the backend: Gloo for a CPU device (on loopback when
  // master_addr is a loopback address and GLOO_SOCKET_IFNAME is unset), NCCL for a CUDA
  // device in builds with MLSYS_WITH_CUDA and c10d NCCL (core::UsageError otherwise).
  // `timeout` bounds the rendezvous and every collective. core::RuntimeFailure when a peer
  // does not come or the port cannot be used; core::UsageError for an inconsistent `env`.
  [[nodiscard]] static ProcessGroup create(const DistEnv& env, c10::Device device,
                                           std::chrono::milliseconds timeout = std::chrono::minutes(5));

  ProcessGroup(ProcessGroup&&) noexcept;
  ProcessGroup& operator=(ProcessGroup&&) noexcept;
  ~ProcessGroup();

  // In-place sum over all ranks. The tensor must be on this group's device type; a
  // non-contiguous tensor is reduced through a contiguous copy and written back.
  void all_reduce_sum(at::Tensor& t);
  // In place: every rank receives rank `root`'s values (same shape and dtype everywhere).
  void broadcast(at::Tensor& t, int root);
  // Point-to-point, asynchronous: send `t` (contiguous) to rank `peer`, or receive into
  // `t` (contiguous, of the sender's shape and dtype) from `peer`; a send meets the receive
  // of the same tag. Pipeline stages exchange activations and gradients with these.
  [[nodiscard]] PendingTransfer send(const at::Tensor& t, int peer, int tag);
  [[nodiscard]] PendingTransfer recv(at::Tensor& t, int peer, int tag);
  // Every rank's `t` in rank order (the same shape and dtype on every rank; Gloo's
  // allgather refuses uneven sizes, so spmd-plan pads or broadcasts for those).
  [[nodiscard]] std::vector<at::Tensor> all_gather(const at::Tensor& t);
  // In place on rank `root`: the sum over all ranks of `t` (the same shape everywhere);
  // the other ranks' `t` is unspecified afterwards. Gloo has no reduce_scatter: spmd-plan
  // builds its grouped reduce-scatter from one reduce per root.
  void reduce_sum(at::Tensor& t, int root);
  // Returns once every rank has called barrier().
  void barrier();

  [[nodiscard]] int rank() const;
  [[nodiscard]] int size() const;
  [[nodiscard]] c10::Device device() const;

 private:
  struct Impl;
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlsys::tensor
