// Discrete-event replay of per-device compute orders with per-device communication executors.
#include "plan/simulator.hpp"

#include <algorithm>
#include <deque>
#include <limits>
#include <queue>
#include <tuple>

namespace mlsys::plan {

double SimResult::max_peak_mb() const {
  double m = 0;
  for (double p : peak_mb) m = std::max(m, p);
  return m;
}

std::string validate_schedule(const PipelineSpec& spec, int n_mb, const Schedule& schedule) {
  const int V = spec.stages();
  if (static_cast<int>(schedule.order.size()) != spec.devices) return "schedule has the wrong number of devices";
  std::vector<int> seen(static_cast<size_t>(n_mb) * static_cast<size_t>(2 * V), 0);
  for (int d = 0; d < spec.devices; ++d) {
    for (const auto& op : schedule.order[static_cast<size_t>(d)]) {
      if (op.mb < 0 || op.mb >= n_mb || op.stage < 0 || op.stage >= V) return "op out of range";
      if (spec.stage_device[static_cast<size_t>(op.stage)] != d) return "op on the wrong device";
      ++seen[static_cast<size_t>(op.mb) * static_cast<size_t>(2 * V) + static_cast<size_t>(op.stage) * 2 + (op.backward ? 1 : 0)];
    }
  }
  for (int c : seen) {
    if (c != 1) return "an op is missing or repeated";
  }
  if (schedule.comm_order.empty()) return {};
  if (static_cast<int>(schedule.comm_order.size()) != spec.devices) return "comm order has the wrong number of devices";
  std::fill(seen.begin(), seen.end(), 0);
  for (int d = 0; d < spec.devices; ++d) {
    for (const auto& op : schedule.comm_order[static_cast<size_t>(d)]) {
      if (op.mb < 0 || op.mb >= n_mb || op.stage < 0 || op.stage >= V) return "comm op out of range";
      if (spec.stage_device[static_cast<size_t>(op.stage)] != d) return "comm op on the wrong device";
      const int to = op.backward ? op.stage - 1 : op.stage + 1;
      if (to < 0 || to >= V || spec.stage_device[static_cast<size_t>(to)] == d) return "comm op that sends nothing";
      ++seen[static_cast<size_t>(op.mb) * static_cast<size_t>(2 * V) + static_cast<size_t>(op.stage) * 2 + (op.backward ? 1 : 0)];
    }
  }
  for (int m = 0; m < n_mb; ++m) {
    for (int v = 0; v < V; ++v) {
      for (int b = 0; b < 2; ++b) {
        const int to = b ? v - 1 : v + 1;
        const bool sends = to >= 0 && to < V && spec.stage_device[static_cast<size_t>(to)] != spec.stage_device[static_cast<size_t>(v)];
        if (seen[static_cast<size_t>(m) * static_cast<size_t>(2 * V) + static_cast<size_t>(v) * 2 + static_cast<size_t>(b)] != (sends ? 1 : 0)) {
          return "a transfer is missing from the comm order or repeated";
        }
      }
    }
  }
  return {};
}

double transfer_ms(const PipelineSpec& spec, const MicroBatchWork& w, const PipeOp& op) {
  const int V = spec.stages();
  const int to = op.backward ? op.stage - 1 : op.stage + 1;
  if (to < 0 || to >= V) return 0.0;
  if (spec.stage_device[static_cast<size_t>(to)] == spec.stage_device[static_cast<size_t>(op.stage)]) return 0.0;
  const size_t boundary = static_cast<size_t>(op.backward ? op.stage - 1 : op.stage);  // between `boundary` and +1
  const auto& given = op.backward ? w.bw_comm_ms : w.fw_comm_ms;
  if (boundary < given.size()) return given[boundary];
  return spec.p2p_ms(w.send_mb[boundary]);
}

namespace {

struct Event {
  double time;
  int seq;
  int kind;  // 0 compute finish, 1 transfer finish
  int device;
  int mb;
  int pos;  // chain position of the finished op (compute) or of the receiving op (transfer)
  bool operator>(const Event& o) const { return std::tie(time, kind, seq) > std::tie(o.time, o.kind, o.seq); }
};

struct Pending {
  double ready;
  int seq;
  int mb;
  int pos;  // chain position of the receiving op
};

}  // namespace

SimResult simulate(const PipelineSpec& spec, const std::vector<MicroBatchWork>& mbs, const Schedule& schedule,
                   bool record_timeline) {
  SimResult r;
  const int V = spec.stages();
  const int D = spec.devices;
  const int M = static_cast<int>(mbs.size());
  const int P = 2 * V;
  if (auto err = validate_schedule(spec, M, schedule); !err.empty()) {
    r.error = err;
    return r;
  }
  auto stage_of = [&](int pos) { return pos < V ? pos : P - 1 - pos; };
  auto dev_of = [&](int pos) { return spec.stage_device[static_cast<size_t>(stage_of(pos))]; };
  auto pos_of = [&](const PipeOp& op) { return op.backward ? P - 1 - op.stage : op.stage; };
  constexpr double never = std::numeric_limits<double>::infinity();
  std::vector<double> input_ready(static_cast<size_t>(M) * static_cast<size_t>(P), never);
  for (int m = 0; m < M; ++m) input_ready[static_cast<size_t>(m) * static_cast<size_t>(P)] = 0.0;
  auto ready_at = [&](int m, int pos) -> double& { return input_ready[static_cast<size_t>(m) * static_cast<size_t>(P) + static_cast<size_t>(pos)]; };

  std::vector<size_t> next(static_cast<size_t>(D), 0), next_comm(static_cast<size_t>(D), 0);
  const bool ordered_comm = !schedule.comm_order.empty();
  std::vector<char> computing(static_cast<size_t>(D), 0), sending(static_cast<size_t>(D), 0);
  std::vector<std::deque<Pending>> comm_queue(static_cast<size_t>(D));
  std::vector<double> cur(static_cast<size_t>(D));
  r.peak_mb.assign(static_cast<size_t>(D), 0);
  r.busy_ms.assign(static_cast<size_t>(D), 0);
  r.memory.assign(static_cast<size_t>(D), {});
  for (int d = 0; d < D; ++d) {
    cur[static_cast<size_t>(d)] = d < static_cast<int>(spec.state_mb.size()) ? spec.state_mb[static_cast<size_t>(d)] : 0.0;
    r.peak_mb[static_cast<size_t>(d)] = cur[static_cast<size_t>(d)];
    if (record_timeline) r.memory[static_cast<size_t>(d)].emplace_back(0.0, cur[static_cast<size_t>(d)]);
  }
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events;
  int seq = 0;
  long done_ops = 0;
  const long total_ops = static_cast<long>(M) * P;

  auto try_start = [&](double t) {
    for (int d = 0; d < D; ++d) {
      auto& q = comm_queue[static_cast<size_t>(d)];
      if (sending[static_cast<size_t>(d)] || q.empty()) continue;
      std::deque<Pending>::iterator it;
      if (ordered_comm) {
        // The schedule's order: wait until its next transfer is ready.
        const auto& co = schedule.comm_order[static_cast<size_t>(d)];
        const PipeOp want = co[next_comm[static_cast<size_t>(d)]];
        it = std::find_if(q.begin(), q.end(), [&](const Pending& p) { return p.mb == want.mb && p.pos == pos_of(want) + 1; });
        if (it == q.end()) continue;
        ++next_comm[static_cast<size_t>(d)];
      } else {
        // Transfers leave in the order they became ready.
        it = std::min_element(q.begin(), q.end(), [](const Pending& a, const Pending& b) {
          return std::tie(a.ready, a.seq) < std::tie(b.ready, b.seq);
        });
      }
      const Pending p = *it;
      q.erase(it);
      const int from_pos = p.pos - 1;
      const PipeOp from{p.mb, stage_of(from_pos), from_pos >= V};
      const double dur = transfer_ms(spec, mbs[static_cast<size_t>(p.mb)], from);
      sending[static_cast<size_t>(d)] = 1;
      events.push(Event{t + dur, seq++, 1, d, p.mb, p.pos});
      if (record_timeline) r.timeline.push_back(OpTiming{from, d, true, dev_of(p.pos), t, t + dur});
    }
    for (int d = 0; d < D; ++d) {
      if (computing[static_cast<size_t>(d)]) continue;
      const auto& order = schedule.order[static_cast<size_t>(d)];
      if (next[static_cast<size_t>(d)] >= order.size()) continue;
      const PipeOp op = order[next[static_cast<size_t>(d)]];
      const int pos = pos_of(op);
      if (ready_at(op.mb, pos) > t) continue;
      const auto& w = mbs[static_cast<size_t>(op.mb)];
      const size_t s = static_cast<size_t>(op.stage);
      const double dur = op.backward ? w.bw_ms[s] : w.fw_ms[s];
      double& c = cur[static_cast<size_t>(d)];
      const double top = !op.backward                                     ? c + w.peak_mb[s]
                         : spec.backward_peak == BackwardPeak::working_set ? c + w.peak_mb[s] - w.stored_mb[s]
                                                                           : c;
      r.peak_mb[static_cast<size_t>(d)] = std::max(r.peak_mb[static_cast<size_t>(d)], top);
      if (record_timeline) {
        r.memory[static_cast<size_t>(d)].emplace_back(t, top);
        r.timeline.push_back(OpTiming{op, d, false, -1, t, t + dur});
      }
      c += op.backward ? -w.stored_mb[s] : w.stored_mb[s];
      r.busy_ms[static_cast<size_t>(d)] += dur;
      computing[static_cast<size_t>(d)] = 1;
      ++next[static_cast<size_t>(d)];
      events.push(Event{t + dur, seq++, 0, d, op.mb, pos});
    }
  };

  try_start(0.0);
  double t = 0.0;
  while (!events.empty()) {
    t = events.top().time;
    while (!events.empty() && events.top().time == t) {
      const Event e = events.top();
      events.pop();
      if (e.kind == 1) {
        sending[static_cast<size_t>(e.device)] = 0;
        ready_at(e.mb, e.pos) = t;
        continue;
      }
      computing[static_cast<size_t>(e.device)] = 0;
      ++done_ops;
      if (record_timeline) r.memory[static_cast<size_t>(e.device)].emplace_back(t, cur[static_cast<size_t>(e.device)]);
      const int nxt = e.pos + 1;
      if (nxt >= P) continue;
      if (dev_of(nxt) == e.device) {
        ready_at(e.mb, nxt) = t;
      } else {
        comm_queue[static_cast<size_t>(e.device)].push_back(Pending{t, seq++, e.mb, nxt});
      }
    }
    try_start(t);
  }
  if (done_ops != total_ops) {
    r.error = "deadlock: " + std::to_string(total_ops - done_ops) + " ops never became ready";
    return r;
  }
  r.makespan_ms = t;
  r.ok = true;
  return r;
}

}  // namespace mlsys::plan
