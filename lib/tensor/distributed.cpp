#include "tensor/distributed.hpp"

#include <charconv>
#include <cstdlib>
#include <string_view>
#include <vector>

#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#if defined(MLSYS_WITH_CUDA) && defined(USE_C10D_NCCL)
#if __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define MLSYS_HAVE_NCCL 1
#endif
#endif

#include "core/error.hpp"

namespace mlsys::tensor {

namespace {

int parse_int_var(const std::string& var, const std::string& value) {
  int out = 0;
  const char* first = value.data();
  const char* last = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(first, last, out);
  if (value.empty() || ec != std::errc() || ptr != last) {
    throw core::UsageError("environment variable " + var + ": expected an integer, found '" + value + "'");
  }
  return out;
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr == "::1" || std::string_view(addr).starts_with("127.");
}

// c10d reports failures as c10::Error (DistBackendError, DistStoreError, ...).
[[noreturn]] void rethrow(const std::string& what, const c10::Error& e) {
  std::string msg = e.what_without_backtrace();
  if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
  throw core::RuntimeFailure(what + ": " + msg);
}

}  // namespace

DistEnv dist_env_from(const EnvLookup& lookup) {
  DistEnv env;
  const auto read_int = [&](const std::string& var, const std::string& fallback, int& out) {
    if (auto v = lookup(var)) {
      out = parse_int_var(var, *v);
      return var;
    }
    if (auto v = lookup(fallback)) {
      out = parse_int_var(fallback, *v);
      return fallback;
    }
    return std::string();
  };
  const std::string rank_var = read_int("RANK", "SLURM_PROCID", env.rank);
  const std::string size_var = read_int("WORLD_SIZE", "SLURM_NTASKS", env.world_size);
  if (env.world_size < 1) {
    throw core::UsageError("environment variable " + size_var + ": expected a world size >= 1, found " +
                           std::to_string(env.world_size));
  }
  if (env.rank < 0 || env.rank >= env.world_size) {
    throw core::UsageError("environment variable " + (rank_var.empty() ? std::string("RANK") : rank_var) +
                           ": expected a rank in [0, " + std::to_string(env.world_size) + ") (world size" +
                           (size_var.empty() ? std::string(" 1 by default") : " from " + size_var) + "), found " +
                           std::to_string(env.rank));
  }
  if (auto v = lookup("MASTER_ADDR")) {
    if (v->empty()) throw core::UsageError("environment variable MASTER_ADDR: expected a host name or address, found ''");
    env.master_addr = *v;
  }
  if (auto v = lookup("MASTER_PORT")) {
    env.master_port = parse_int_var("MASTER_PORT", *v);
    if (env.master_port < 1 || env.master_port > 65535) {
      throw core::UsageError("environment variable MASTER_PORT: expected a port in [1, 65535], found " + *v);
    }
  }
  return env;
}

DistEnv dist_env_from_environment() {
  return dist_env_from([](const std::string& var) -> std::optional<std::string> {
    const char* v = std::getenv(var.c_str());  // NOLINT(concurrency-mt-unsafe): read once at start-up
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  });
}

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  int rank = 0;
  int size = 1;
  c10::Device device = c10::Device(c10::DeviceType::CPU);

  [[nodiscard]] std::string who() const {
    return "process group (rank " + std::to_string(rank) + " of " + std::to_string(size) + ")";
  }

  void check(const at::Tensor& t, const char* op) const {
    if (!t.defined()) throw core::RuntimeFailure(who() + ": " + op + " of an undefined tensor");
    if (t.device().type() != device.type()) {
      throw core::RuntimeFailure(who() + ": " + op + ": expected a tensor on " + device.str() + ", found one on " +
                                 t.device().str());
    }
  }

  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* op) const {
    try {
      work->wait();
    } catch (const c10::Error& e) {
      rethrow(who() + ": " + op, e);
    }
  }
};

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcessGroup::ProcessGroup(ProcessGroup&&) noexcept = default;
ProcessGroup& ProcessGroup::operator=(ProcessGroup&&) noexcept = default;
ProcessGroup::~ProcessGroup() = default;

ProcessGroup ProcessGroup::create(const DistEnv& env, c10::Device device, std::chrono::milliseconds timeout) {
  if (env.world_size < 1 || env.rank < 0 || env.rank >= env.world_size) {
    throw core::UsageError("process group: expected a rank in [0, world size) and a world size >= 1, found rank " +
                           std::to_string(env.rank) + " of " + std::to_string(env.world_size));
  }
  if (env.master_port < 1 || env.master_port > 65535) {
    throw core::UsageError("process group: expected MASTER_PORT in [1, 65535], found " +
                           std::to_string(env.master_port));
  }
  if (!device.is_cpu() && !device.is_cuda()) {
    throw core::UsageError("process group: expected a cpu or cuda device, found " + device.str());
  }
#ifndef MLSYS_HAVE_NCCL
  if (device.is_cuda()) {
    throw core::UsageError("process group on " + device.str() +
                           ": NCCL is not available in this build (it needs -Dcuda=enabled and a LibTorch with "
                           "c10d NCCL); use --device cpu for Gloo");
  }
#endif

  auto impl = std::make_unique<Impl>();
  impl->rank = env.rank;
  impl->size = env.world_size;
  impl->device = device;
  const std::string where = impl->who() + " at " + env.master_addr + ":" + std::to_string(env.master_port);

  try {
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<std::uint16_t>(env.master_port);
    opts.isServer = env.rank == 0;
    opts.numWorkers = static_cast<std::size_t>(env.world_size);
    opts.waitWorkers = true;
    opts.timeout = timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, opts);
  } catch (const c10::Error& e) {
    rethrow(where + ": store rendezvous", e);
  }

  try {
    if (device.is_cpu()) {
      c10::intrusive_ptr<c10d::ProcessGroupGloo::Options> options;
      if (is_loopback(env.master_addr) && std::getenv("GLOO_SOCKET_IFNAME") == nullptr) {
        // The default device binds to the address of this machine's host name, which may be
        // an interface that cannot reach a loopback master; stay on loopback instead.
        options = c10d::ProcessGroupGloo::Options::create(timeout);
        options->devices.push_back(
            c10d::ProcessGroupGloo::createDeviceForHostname(env.master_addr == "::1" ? "::1" : "127.0.0.1"));
      } else {
        options = c10d::ProcessGroupGloo::Options::create_default(timeout);
      }
      impl->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, options);
    } else {
#ifdef MLSYS_HAVE_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      impl->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank, env.world_size, options);
#endif
    }
  } catch (const c10::Error& e) {
    rethrow(where + ": backend set-up", e);
  }
  return ProcessGroup(std::move(impl));
}

void ProcessGroup::all_reduce_sum(at::Tensor& t) {
  impl_->check(t, "all_reduce_sum");
  const bool contiguous = t.is_contiguous();
  std::vector<at::Tensor> tensors{contiguous ? t : t.contiguous()};
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = impl_->backend->allreduce(tensors, opts);
  } catch (const c10::Error& e) {
    rethrow(impl_->who() + ": all_reduce_sum", e);
  }
  impl_->wait(work, "all_reduce_sum");
  if (!contiguous) t.copy_(tensors[0]);
}

void ProcessGroup::broadcast(at::Tensor& t, int root) {
  impl_->check(t, "broadcast");
  if (root < 0 || root >= impl_->size) {
    throw core::RuntimeFailure(impl_->who() + ": broadcast: expected a root rank in [0, " +
                               std::to_string(impl_->size) + "), found " + std::to_string(root));
  }
  const bool contiguous = t.is_contiguous();
  std::vector<at::Tensor> tensors{contiguous ? t : t.contiguous()};
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  opts.rootTensor = 0;
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = impl_->backend->broadcast(tensors, opts);
  } catch (const c10::Error& e) {
    rethrow(impl_->who() + ": broadcast", e);
  }
  impl_->wait(work, "broadcast");
  if (!contiguous) t.copy_(tensors[0]);
}

std::vector<at::Tensor> ProcessGroup::all_gather(const at::Tensor& t) {
  impl_->check(t, "all_gather");
  std::vector<at::Tensor> in{t.contiguous()};
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < impl_->size; ++r) out[0].push_back(at::empty_like(in[0]));
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = impl_->backend->allgather(out, in, c10d::AllgatherOptions{});
  } catch (const c10::Error& e) {
    rethrow(impl_->who() + ": all_gather", e);
  }
  impl_->wait(work, "all_gather");
  return out[0];
}

void ProcessGroup::reduce_sum(at::Tensor& t, int root) {
  impl_->check(t, "reduce_sum");
  if (root < 0 || root >= impl_->size) {
    throw core::RuntimeFailure(impl_->who() + ": reduce_sum: expected a root rank in [0, " +
                               std::to_string(impl_->size) + "), found " + std::to_string(root));
  }
  const bool contiguous = t.is_contiguous();
  std::vector<at::Tensor> tensors{contiguous ? t : t.contiguous()};
  c10d::ReduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  opts.rootRank = root;
  opts.rootTensor = 0;
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = impl_->backend->reduce(tensors, opts);
  } catch (const c10::Error& e) {
    rethrow(impl_->who() + ": reduce_sum", e);
  }
  impl_->wait(work, "reduce_sum");
  if (!contiguous) t.copy_(tensors[0]);
}

void ProcessGroup::barrier() {
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = impl_->backend->barrier(c10d::BarrierOptions{});
  } catch (const c10::Error& e) {
    rethrow(impl_->who() + ": barrier", e);
  }
  impl_->wait(work, "barrier");
}

struct PendingTransfer::Impl {
  c10::intrusive_ptr<c10d::Work> work;
  std::vector<at::Tensor> tensors;
  std::string what;
};

PendingTransfer::PendingTransfer() = default;
PendingTransfer::PendingTransfer(PendingTransfer&&) noexcept = default;
PendingTransfer& PendingTransfer::operator=(PendingTransfer&&) noexcept = default;
PendingTransfer::~PendingTransfer() = default;

void PendingTransfer::wait() {
  if (!impl_) throw core::RuntimeFailure("wait on a transfer that was never started");
  try {
    impl_->work->wait();
  } catch (const c10::Error& e) {
    rethrow(impl_->what, e);
  }
  impl_.reset();
}

PendingTransfer ProcessGroup::send(const at::Tensor& t, int peer, int tag) {
  impl_->check(t, "send");
  if (peer < 0 || peer >= impl_->size || peer == impl_->rank || !t.is_contiguous()) {
    throw core::RuntimeFailure(impl_->who() + ": send: expected a contiguous tensor and another rank in [0, " +
                               std::to_string(impl_->size) + "), found peer " + std::to_string(peer));
  }
  PendingTransfer p;
  p.impl_ = std::make_unique<PendingTransfer::Impl>();
  p.impl_->tensors = {t};
  p.impl_->what = impl_->who() + ": send to rank " + std::to_string(peer) + " (tag " + std::to_string(tag) + ")";
  try {
    p.impl_->work = impl_->backend->send(p.impl_->tensors, peer, tag);
  } catch (const c10::Error& e) {
    rethrow(p.impl_->what, e);
  }
  return p;
}

PendingTransfer ProcessGroup::recv(at::Tensor& t, int peer, int tag) {
  impl_->check(t, "recv");
  if (peer < 0 || peer >= impl_->size || peer == impl_->rank || !t.is_contiguous()) {
    throw core::RuntimeFailure(impl_->who() + ": recv: expected a contiguous tensor and another rank in [0, " +
                               std::to_string(impl_->size) + "), found peer " + std::to_string(peer));
  }
  PendingTransfer p;
  p.impl_ = std::make_unique<PendingTransfer::Impl>();
  p.impl_->tensors = {t};
  p.impl_->what = impl_->who() + ": receive from rank " + std::to_string(peer) + " (tag " + std::to_string(tag) + ")";
  try {
    p.impl_->work = impl_->backend->recv(p.impl_->tensors, peer, tag);
  } catch (const c10::Error& e) {
    rethrow(p.impl_->what, e);
  }
  return p;
}

int ProcessGroup::rank() const { return impl_->rank; }
int ProcessGroup::size() const { return impl_->size; }
c10::Device ProcessGroup::device() const { return impl_->device; }

}  // namespace mlsys::tensor
