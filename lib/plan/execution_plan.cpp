// Instruction lists per rank and the send/receive deadlock check.
#include "plan/execution_plan.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <tuple>

namespace mlsys::plan {

std::string to_string(InstrKind k) {
  switch (k) {
    case InstrKind::load_input: return "LoadInput";
    case InstrKind::forward: return "ForwardPass";
    case InstrKind::backward: return "BackwardPass";
    case InstrKind::send_activation_start: return "SendActivationStart";
    case InstrKind::send_activation_finish: return "SendActivationFinish";
    case InstrKind::recv_activation_start: return "RecvActivationStart";
    case InstrKind::recv_activation_finish: return "RecvActivationFinish";
    case InstrKind::send_grad_start: return "SendGradStart";
    case InstrKind::send_grad_finish: return "SendGradFinish";
    case InstrKind::recv_grad_start: return "RecvGradStart";
    case InstrKind::recv_grad_finish: return "RecvGradFinish";
    case InstrKind::free_buffer: return "FreeBuffer";
  }
  return "?";
}

std::vector<RankPlan> build_execution_plans(const PipelineSpec& spec, const SimResult& timed,
                                            const std::vector<std::vector<int64_t>>& shapes) {
  if (timed.timeline.empty()) throw std::invalid_argument("build_execution_plans needs a simulated timeline");
  const int D = spec.devices, V = spec.stages();
  auto dev = [&](int stage) { return spec.stage_device[static_cast<size_t>(stage)]; };
  std::vector<RankPlan> plans(static_cast<size_t>(D));
  for (int d = 0; d < D; ++d) {
    plans[static_cast<size_t>(d)].rank = d;
    for (int v = 0; v < V; ++v) {
      if (dev(v) == d) plans[static_cast<size_t>(d)].stages.push_back(v);
    }
  }
  // Activation sends still to finish, by (mb, stage): finished before that backward.
  std::vector<std::map<std::pair<int, int>, Instruction>> act_pending(static_cast<size_t>(D));
  std::vector<std::vector<Instruction>> grad_finishes(static_cast<size_t>(D));
  std::vector<int> live(static_cast<size_t>(D), 0);
  // The timeline lists ops and transfers in the order the simulator started them: a causal
  // order (a transfer starts after its producer, a consumer after its transfer ended).
  for (const auto& t : timed.timeline) {
    const PipeOp& op = t.op;
    const auto& shape = shapes[static_cast<size_t>(op.mb)];
    const int s = op.stage;
    const auto d = static_cast<size_t>(t.device);
    auto& out = plans[d].instructions;
    if (t.comm) {
      const int to = t.peer;
      auto& peer = plans[static_cast<size_t>(to)].instructions;
      const double ms = t.end - t.start;
      if (!op.backward) {
        out.push_back({InstrKind::send_activation_start, op.mb, s, to, shape, ms});
        act_pending[d][{op.mb, s}] = {InstrKind::send_activation_finish, op.mb, s, to, shape, 0};
        peer.push_back({InstrKind::recv_activation_start, op.mb, s, t.device, shape, 0});
      } else {
        out.push_back({InstrKind::send_grad_start, op.mb, s, to, shape, ms});
        grad_finishes[d].push_back({InstrKind::send_grad_finish, op.mb, s, to, shape, 0});
        peer.push_back({InstrKind::recv_grad_start, op.mb, s, t.device, shape, 0});
      }
      continue;
    }
    const double ms = t.end - t.start;
    if (!op.backward) {
      if (s == 0) {
        out.push_back({InstrKind::load_input, op.mb, s, -1, shape, 0});
      } else if (dev(s - 1) != t.device) {
        out.push_back({InstrKind::recv_activation_finish, op.mb, s - 1, dev(s - 1), shape, 0});
      }
      out.push_back({InstrKind::forward, op.mb, s, -1, shape, ms});
      plans[d].max_live_buffers = std::max(plans[d].max_live_buffers, ++live[d]);
    } else {
      if (auto it = act_pending[d].find({op.mb, s}); it != act_pending[d].end()) {
        out.push_back(it->second);
        act_pending[d].erase(it);
      }
      if (s + 1 < V && dev(s + 1) != t.device) {
        out.push_back({InstrKind::recv_grad_finish, op.mb, s + 1, dev(s + 1), shape, 0});
      }
      out.push_back({InstrKind::backward, op.mb, s, -1, shape, ms});
      out.push_back({InstrKind::free_buffer, op.mb, s, -1, {}, 0});
      --live[d];
    }
  }
  for (int d = 0; d < D; ++d) {
    auto& out = plans[static_cast<size_t>(d)].instructions;
    for (auto& [key, ins] : act_pending[static_cast<size_t>(d)]) out.push_back(ins);
    out.insert(out.end(), grad_finishes[static_cast<size_t>(d)].begin(), grad_finishes[static_cast<size_t>(d)].end());
  }
  return plans;
}

namespace {

std::string describe(int rank, size_t idx, const Instruction& ins) {
  return "rank " + std::to_string(rank) + " instruction " + std::to_string(idx) + " " + to_string(ins.kind) +
         "(mb " + std::to_string(ins.mb) + ", stage " + std::to_string(ins.stage) + ", peer " +
         std::to_string(ins.peer) + ")";
}

bool is_send_start(InstrKind k) { return k == InstrKind::send_activation_start || k == InstrKind::send_grad_start; }
bool is_recv_start(InstrKind k) { return k == InstrKind::recv_activation_start || k == InstrKind::recv_grad_start; }
bool is_activation(InstrKind k) {
  return k == InstrKind::send_activation_start || k == InstrKind::recv_activation_start ||
         k == InstrKind::send_activation_finish || k == InstrKind::recv_activation_finish;
}

}  // namespace

std::string check_deadlock(const std::vector<RankPlan>& plans) {
  const int R = static_cast<int>(plans.size());
  // 1. Per ordered pair (src, dst): the sequence of sends from src must equal the sequence of
  //    receives at dst (p2p transfers between two ranks are matched in order, like NCCL's).
  using Key = std::tuple<bool, int, int, std::vector<int64_t>>;  // activation?, mb, stage, shape
  std::map<std::pair<int, int>, std::vector<std::pair<Key, std::string>>> sends, recvs;
  for (int r = 0; r < R; ++r) {
    const auto& ins = plans[static_cast<size_t>(r)].instructions;
    for (size_t i = 0; i < ins.size(); ++i) {
      const auto& x = ins[i];
      if (is_send_start(x.kind)) {
        sends[{r, x.peer}].push_back({Key{is_activation(x.kind), x.mb, x.stage, x.shape}, describe(r, i, x)});
      } else if (is_recv_start(x.kind)) {
        recvs[{x.peer, r}].push_back({Key{is_activation(x.kind), x.mb, x.stage, x.shape}, describe(r, i, x)});
      }
    }
  }
  std::set<std::pair<int, int>> pairs;
  for (auto& [k, v] : sends) pairs.insert(k);
  for (auto& [k, v] : recvs) pairs.insert(k);
  for (const auto& pr : pairs) {
    const auto& s = sends[pr];
    const auto& q = recvs[pr];
    const size_t n = std::max(s.size(), q.size());
    for (size_t i = 0; i < n; ++i) {
      if (i >= s.size()) return "unmatched receive: " + q[i].second + " has no send";
      if (i >= q.size()) return "unmatched send: " + s[i].second + " has no receive";
      if (s[i].first != q[i].first) return "mismatched transfer: " + s[i].second + " meets " + q[i].second;
    }
  }
  // 2. Replay: Start instructions post, Finish blocks until the peer posted its side.
  std::map<std::pair<int, int>, size_t> posted_sends, posted_recvs;  // (src, dst) -> count
  std::vector<size_t> pc(static_cast<size_t>(R), 0);
  // Index of each Start within its (src, dst) sequence, to know what a Finish waits on.
  std::vector<std::vector<size_t>> seq_index(static_cast<size_t>(R));
  std::map<std::tuple<int, int, bool, int, int>, size_t> start_seq;  // (src,dst,act,mb,stage) -> index
  for (const auto& [pr, v] : sends) {
    for (size_t i = 0; i < v.size(); ++i) {
      const auto& k = v[i].first;
      start_seq[{pr.first, pr.second, std::get<0>(k), std::get<1>(k), std::get<2>(k)}] = i;
    }
  }
  bool progress = true;
  while (progress) {
    progress = false;
    for (int r = 0; r < R; ++r) {
      const auto& ins = plans[static_cast<size_t>(r)].instructions;
      while (pc[static_cast<size_t>(r)] < ins.size()) {
        const auto& x = ins[pc[static_cast<size_t>(r)]];
        bool can = true;
        switch (x.kind) {
          case InstrKind::send_activation_start:
          case InstrKind::send_grad_start: ++posted_sends[{r, x.peer}]; break;
          case InstrKind::recv_activation_start:
          case InstrKind::recv_grad_start: ++posted_recvs[{x.peer, r}]; break;
          case InstrKind::send_activation_finish:
          case InstrKind::send_grad_finish: {
            const size_t idx = start_seq[{r, x.peer, is_activation(x.kind), x.mb, x.stage}];
            can = posted_recvs[{r, x.peer}] > idx;
            break;
          }
          case InstrKind::recv_activation_finish:
          case InstrKind::recv_grad_finish: {
            auto it = start_seq.find({x.peer, r, is_activation(x.kind), x.mb, x.stage});
            if (it == start_seq.end()) return "unmatched receive: " + describe(r, pc[static_cast<size_t>(r)], x);
            can = posted_sends[{x.peer, r}] > it->second;
            break;
          }
          default: break;
        }
        if (!can) break;
        ++pc[static_cast<size_t>(r)];
        progress = true;
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    const auto& ins = plans[static_cast<size_t>(r)].instructions;
    if (pc[static_cast<size_t>(r)] < ins.size()) {
      return "deadlock: " + describe(r, pc[static_cast<size_t>(r)], ins[pc[static_cast<size_t>(r)]]) +
             " waits forever";
    }
  }
  return {};
}

PlanRun execute_plans(const std::vector<RankPlan>& plans) {
  PlanRun run;
  const int R = static_cast<int>(plans.size());
  // 1. Pair the k-th send from src to dst with the k-th receive at dst from src.
  using Key = std::tuple<bool, int, int, std::vector<int64_t>>;  // activation?, mb, stage, shape
  std::map<std::pair<int, int>, std::vector<Key>> sends, recvs;
  std::map<std::tuple<int, int, bool, int, int>, size_t> send_index;  // (src, dst, act, mb, stage) -> k
  for (int r = 0; r < R; ++r) {
    for (const auto& x : plans[static_cast<size_t>(r)].instructions) {
      if (is_send_start(x.kind)) {
        auto& v = sends[{r, x.peer}];
        send_index[{r, x.peer, is_activation(x.kind), x.mb, x.stage}] = v.size();
        v.push_back(Key{is_activation(x.kind), x.mb, x.stage, x.shape});
      } else if (is_recv_start(x.kind)) {
        recvs[{x.peer, r}].push_back(Key{is_activation(x.kind), x.mb, x.stage, x.shape});
      }
    }
  }
  for (const auto& [pr, s] : sends) {
    const auto& q = recvs[pr];
    if (s != q) {
      run.error = "mismatched transfers from rank " + std::to_string(pr.first) + " to rank " + std::to_string(pr.second);
      return run;
    }
  }
  for (const auto& [pr, q] : recvs) {
    if (sends[pr].size() != q.size()) {
      run.error = "unmatched receive on rank " + std::to_string(pr.second) + " from rank " + std::to_string(pr.first);
      return run;
    }
  }
  constexpr double unknown = -1;
  std::map<std::pair<int, int>, std::vector<double>> transfer_end;  // (src, dst) -> end of the k-th transfer
  for (const auto& [pr, s] : sends) transfer_end[pr].assign(s.size(), unknown);
  // Per rank: the end of each computed op, by (mb, stage, backward).
  std::vector<std::map<std::tuple<int, int, bool>, double>> op_end(static_cast<size_t>(R));
  std::vector<size_t> cpc(static_cast<size_t>(R), 0), spc(static_cast<size_t>(R), 0);
  std::vector<double> cclock(static_cast<size_t>(R), 0), sclock(static_cast<size_t>(R), 0), ready(static_cast<size_t>(R), 0);
  auto end_of_send = [&](int src, int dst, bool act, int mb, int stage) -> double {
    auto it = send_index.find({src, dst, act, mb, stage});
    if (it == send_index.end()) return std::numeric_limits<double>::quiet_NaN();
    return transfer_end[{src, dst}][it->second];
  };
  bool progress = true;
  while (progress) {
    progress = false;
    for (int r = 0; r < R; ++r) {
      const auto& ins = plans[static_cast<size_t>(r)].instructions;
      const auto ur = static_cast<size_t>(r);
      // The compute stream: everything but SendStart, in program order.
      while (cpc[ur] < ins.size()) {
        const auto& x = ins[cpc[ur]];
        if (x.kind == InstrKind::forward || x.kind == InstrKind::backward) {
          const double start = std::max(cclock[ur], ready[ur]);
          cclock[ur] = start + x.ms;
          ready[ur] = 0;
          op_end[ur][{x.mb, x.stage, x.kind == InstrKind::backward}] = cclock[ur];
        } else if (x.kind == InstrKind::recv_activation_finish || x.kind == InstrKind::recv_grad_finish) {
          const double e = end_of_send(x.peer, r, is_activation(x.kind), x.mb, x.stage);
          if (std::isnan(e)) {
            run.error = "unmatched receive: " + describe(r, cpc[ur], x);
            return run;
          }
          if (e == unknown) break;
          ready[ur] = std::max(ready[ur], e);
        } else if (x.kind == InstrKind::send_activation_finish || x.kind == InstrKind::send_grad_finish) {
          const double e = end_of_send(r, x.peer, is_activation(x.kind), x.mb, x.stage);
          if (e == unknown) break;
          ready[ur] = std::max(ready[ur], e);
        }
        ++cpc[ur];
        progress = true;
      }
      // The send stream: SendStarts in program order, each after the op producing its tensor.
      while (spc[ur] < ins.size()) {
        const auto& x = ins[spc[ur]];
        if (is_send_start(x.kind)) {
          const bool act = is_activation(x.kind);
          auto it = op_end[ur].find({x.mb, x.stage, !act});
          if (it == op_end[ur].end()) break;
          const double start = std::max(sclock[ur], it->second);
          sclock[ur] = start + x.ms;
          transfer_end[{r, x.peer}][send_index[{r, x.peer, act, x.mb, x.stage}]] = sclock[ur];
        }
        ++spc[ur];
        progress = true;
      }
    }
  }
  run.finish_ms.assign(static_cast<size_t>(R), 0);
  for (int r = 0; r < R; ++r) {
    const auto ur = static_cast<size_t>(r);
    const auto& ins = plans[ur].instructions;
    if (cpc[ur] < ins.size()) {
      run.error = "deadlock: " + describe(r, cpc[ur], ins[cpc[ur]]) + " waits forever";
      return run;
    }
    if (spc[ur] < ins.size()) {
      run.error = "deadlock: " + describe(r, spc[ur], ins[spc[ur]]) + " sends a tensor never computed";
      return run;
    }
    run.finish_ms[ur] = std::max(cclock[ur], sclock[ur]);
    run.makespan_ms = std::max(run.makespan_ms, run.finish_ms[ur]);
  }
  run.ok = true;
  return run;
}

nlohmann::json to_json(const Instruction& ins) {
  nlohmann::json j = {{"op", to_string(ins.kind)}, {"mb", ins.mb}, {"stage", ins.stage}};
  if (ins.kind == InstrKind::forward || ins.kind == InstrKind::backward || ins.kind == InstrKind::send_activation_start ||
      ins.kind == InstrKind::send_grad_start) {
    j["ms"] = ins.ms;
  }
  if (ins.peer >= 0) j["peer"] = ins.peer;
  if (!ins.shape.empty() && ins.kind != InstrKind::free_buffer) j["shape"] = ins.shape;
  return j;
}

nlohmann::json to_json(const RankPlan& plan) {
  nlohmann::json ins = nlohmann::json::array();
  for (const auto& i : plan.instructions) ins.push_back(to_json(i));
  return {{"rank", plan.rank}, {"stages", plan.stages}, {"max_live_buffers", plan.max_live_buffers},
          {"instructions", std::move(ins)}};
}

}  // namespace mlsys::plan
