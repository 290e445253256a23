// 1F1B, interleaved 1F1B and the memory-aware cyclic schedule.
#include "plan/schedules.hpp"

#include <algorithm>
#include <stdexcept>

namespace mlsys::plan {

Schedule one_f_one_b(const PipelineSpec& spec, int n_mb) {
  Schedule s;
  s.name = "1f1b";
  const int D = spec.devices;
  s.order.assign(static_cast<size_t>(D), {});
  for (int d = 0; d < D; ++d) {
    auto& o = s.order[static_cast<size_t>(d)];
    const int warmup = std::min(D - d - 1, n_mb);
    int f = 0, b = 0;
    for (; f < warmup; ++f) o.push_back({f, d, false});
    while (f < n_mb) {
      o.push_back({f++, d, false});
      o.push_back({b++, d, true});
    }
    while (b < n_mb) o.push_back({b++, d, true});
  }
  return s;
}

Schedule interleaved_one_f_one_b(const PipelineSpec& spec, int n_mb) {
  Schedule s;
  s.name = "interleaved-1f1b";
  const int D = spec.devices;
  const int chunks = spec.stages() / D;
  if (chunks * D != spec.stages() || n_mb % D != 0) {
    throw std::invalid_argument("interleaved 1F1B needs stages = chunks * devices and micro-batches divisible by devices");
  }
  s.order.assign(static_cast<size_t>(D), {});
  const int total = n_mb * chunks;
  auto mb_of = [&](int k) { return (k / (D * chunks)) * D + k % D; };
  auto chunk_of = [&](int k, bool fwd) {
    const int c = (k % (D * chunks)) / D;
    return fwd ? c : chunks - 1 - c;
  };
  for (int d = 0; d < D; ++d) {
    auto& o = s.order[static_cast<size_t>(d)];
    int warmup = (D - d - 1) * 2 + (chunks - 1) * D;
    if (n_mb == D) warmup = total;  // Megatron: all forwards first when mbs == devices
    warmup = std::min(warmup, total);
    int f = 0, b = 0;
    for (; f < warmup; ++f) o.push_back({mb_of(f), chunk_of(f, true) * D + d, false});
    while (f < total) {
      o.push_back({mb_of(f), chunk_of(f, true) * D + d, false});
      ++f;
      o.push_back({mb_of(b), chunk_of(b, false) * D + d, true});
      ++b;
    }
    for (; b < total; ++b) o.push_back({mb_of(b), chunk_of(b, false) * D + d, true});
  }
  return s;
}

Schedule cyclic(const PipelineSpec& spec, const std::vector<MicroBatchWork>& mbs, const CyclicOptions& opt) {
  Schedule s;
  s.name = "wait-free-cyclic";
  const int D = spec.devices, V = spec.stages(), M = static_cast<int>(mbs.size());
  const int P = 2 * V;
  s.order.assign(static_cast<size_t>(D), {});
  // done_round[m]: round in which chain position next_pos[m]-1 finished (-1: none yet).
  std::vector<int> next_pos(static_cast<size_t>(M), 0), done_round(static_cast<size_t>(M), -1);
  std::vector<double> cur(static_cast<size_t>(D), 0.0);
  for (int d = 0; d < D && d < static_cast<int>(spec.state_mb.size()); ++d) cur[static_cast<size_t>(d)] = spec.state_mb[static_cast<size_t>(d)];
  // In-flight micro-batches per device: forwards done there without their backward.
  std::vector<int> in_flight(static_cast<size_t>(D), 0);
  std::vector<std::vector<int>> fw_count(static_cast<size_t>(D), std::vector<int>(static_cast<size_t>(M), 0));
  auto stage_of = [&](int pos) { return pos < V ? pos : P - 1 - pos; };
  auto limit = [&](int d) {
    return d < static_cast<int>(spec.memory_limit_mb.size()) ? spec.memory_limit_mb[static_cast<size_t>(d)] : 1e300;
  };
  int remaining = M * P;
  for (int round = 0; remaining > 0; ++round) {
    struct Pick { int mb = -1; int pos = 0; };
    std::vector<Pick> fw(static_cast<size_t>(D)), bw(static_cast<size_t>(D)), held(static_cast<size_t>(D));
    for (int m = 0; m < M; ++m) {
      const int pos = next_pos[static_cast<size_t>(m)];
      if (pos >= P || done_round[static_cast<size_t>(m)] >= round) continue;
      const int st = stage_of(pos);
      const int d = spec.stage_device[static_cast<size_t>(st)];
      const bool backward = pos >= V;
      auto& slot = backward ? bw[static_cast<size_t>(d)] : fw[static_cast<size_t>(d)];
      // lowest (micro-batch, stage) first: micro-batches are scanned in order, so the first
      // hit wins unless a later micro-batch sits at a lower stage (it cannot for one chain).
      if (slot.mb < 0) slot = Pick{m, pos};
    }
    auto run = [&](int d, Pick p) {
      const int st = stage_of(p.pos);
      const bool backward = p.pos >= V;
      const auto& w = mbs[static_cast<size_t>(p.mb)];
      s.order[static_cast<size_t>(d)].push_back({p.mb, st, backward});
      if (backward) {
        cur[static_cast<size_t>(d)] -= w.stored_mb[static_cast<size_t>(st)];
        if (--fw_count[static_cast<size_t>(d)][static_cast<size_t>(p.mb)] == 0) --in_flight[static_cast<size_t>(d)];
      } else {
        cur[static_cast<size_t>(d)] += w.stored_mb[static_cast<size_t>(st)];
        if (fw_count[static_cast<size_t>(d)][static_cast<size_t>(p.mb)]++ == 0) ++in_flight[static_cast<size_t>(d)];
      }
      ++next_pos[static_cast<size_t>(p.mb)];
      done_round[static_cast<size_t>(p.mb)] = round;
      --remaining;
    };
    int moved = 0;
    for (int d = 0; d < D; ++d) {
      if (bw[static_cast<size_t>(d)].mb >= 0) {
        run(d, bw[static_cast<size_t>(d)]);
        ++moved;
      }
      Pick f = fw[static_cast<size_t>(d)];
      if (f.mb < 0) continue;
      const int st = stage_of(f.pos);
      const auto& w = mbs[static_cast<size_t>(f.mb)];
      const bool new_mb = fw_count[static_cast<size_t>(d)][static_cast<size_t>(f.mb)] == 0;
      const bool mem_ok = !opt.check_memory || cur[static_cast<size_t>(d)] + w.peak_mb[static_cast<size_t>(st)] <= limit(d) + 1e-9;
      const bool otf_ok = opt.max_in_flight <= 0 || !new_mb || in_flight[static_cast<size_t>(d)] < opt.max_in_flight;
      if (mem_ok && otf_ok) {
        run(d, f);
        ++moved;
      } else {
        held[static_cast<size_t>(d)] = f;
      }
    }
    if (moved == 0) {
      // Nothing could move: run the oldest held-back forward to guarantee progress.
      int best_d = -1;
      for (int d = 0; d < D; ++d) {
        if (held[static_cast<size_t>(d)].mb >= 0 &&
            (best_d < 0 || held[static_cast<size_t>(d)].mb < held[static_cast<size_t>(best_d)].mb)) {
          best_d = d;
        }
      }
      if (best_d < 0) break;  // cannot happen for a well-formed pipeline
      run(best_d, held[static_cast<size_t>(best_d)]);
    }
  }
  return s;
}

}  // namespace mlsys::plan
