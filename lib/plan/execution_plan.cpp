// Instruction lists per rank and the send/receive deadlock check.
#include "plan/execution_plan.hpp"

#include <map>
#include <set>
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

std::vector<RankPlan> build_execution_plans(const PipelineSpec& spec, const Schedule& schedule,
                                            const std::vector<std::vector<int64_t>>& shapes) {
  const int D = spec.devices, V = spec.stages();
  auto dev = [&](int stage) { return spec.stage_device[static_cast<size_t>(stage)]; };
  std::vector<RankPlan> plans(static_cast<size_t>(D));
  for (int d = 0; d < D; ++d) {
    auto& p = plans[static_cast<size_t>(d)];
    p.rank = d;
    for (int v = 0; v < V; ++v) {
      if (dev(v) == d) p.stages.push_back(v);
    }
    auto& out = p.instructions;
    std::vector<Instruction> grad_finishes;
    // Activation sends still to finish, by (mb, stage): finished before that backward.
    std::map<std::pair<int, int>, Instruction> act_pending;
    int live = 0;
    for (const auto& op : schedule.order[static_cast<size_t>(d)]) {
      const auto& shape = shapes[static_cast<size_t>(op.mb)];
      const int s = op.stage;
      if (!op.backward) {
        if (s == 0) {
          out.push_back({InstrKind::load_input, op.mb, s, -1, shape});
        } else if (dev(s - 1) != d) {
          out.push_back({InstrKind::recv_activation_start, op.mb, s - 1, dev(s - 1), shape});
          out.push_back({InstrKind::recv_activation_finish, op.mb, s - 1, dev(s - 1), shape});
        }
        out.push_back({InstrKind::forward, op.mb, s, -1, shape});
        ++live;
        p.max_live_buffers = std::max(p.max_live_buffers, live);
        if (s + 1 < V && dev(s + 1) != d) {
          out.push_back({InstrKind::send_activation_start, op.mb, s, dev(s + 1), shape});
          act_pending[{op.mb, s}] = {InstrKind::send_activation_finish, op.mb, s, dev(s + 1), shape};
        }
      } else {
        if (auto it = act_pending.find({op.mb, s}); it != act_pending.end()) {
          out.push_back(it->second);
          act_pending.erase(it);
        }
        if (s + 1 < V && dev(s + 1) != d) {
          out.push_back({InstrKind::recv_grad_start, op.mb, s + 1, dev(s + 1), shape});
          out.push_back({InstrKind::recv_grad_finish, op.mb, s + 1, dev(s + 1), shape});
        }
        out.push_back({InstrKind::backward, op.mb, s, -1, shape});
        out.push_back({InstrKind::free_buffer, op.mb, s, -1, {}});
        --live;
        if (s > 0 && dev(s - 1) != d) {
          out.push_back({InstrKind::send_grad_start, op.mb, s, dev(s - 1), shape});
          grad_finishes.push_back({InstrKind::send_grad_finish, op.mb, s, dev(s - 1), shape});
        }
      }
    }
    for (auto& [key, ins] : act_pending) out.push_back(ins);
    out.insert(out.end(), grad_finishes.begin(), grad_finishes.end());
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

nlohmann::json to_json(const Instruction& ins) {
  nlohmann::json j = {{"op", to_string(ins.kind)}, {"mb", ins.mb}, {"stage", ins.stage}};
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
