// 1F1B, interleaved 1F1B and the memory-aware cyclic schedule.
#include "plan/schedules.hpp"

#include <algorithm>
#include <deque>
#include <tuple>
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
  s.comm_order.assign(static_cast<size_t>(D), {});
  auto stage_of = [&](int pos) { return pos < V ? pos : P - 1 - pos; };
  auto dev_of = [&](int pos) { return spec.stage_device[static_cast<size_t>(stage_of(pos))]; };
  auto limit = [&](int d) {
    return d < static_cast<int>(spec.memory_limit_mb.size()) ? spec.memory_limit_mb[static_cast<size_t>(d)] : 1e300;
  };
  // One FIFO buffer per chain position (a stage's forward or backward); ops enter it in
  // the order their predecessor ran and become runnable in the next round.
  std::vector<std::deque<int>> buffer(static_cast<size_t>(P));
  std::vector<std::vector<int>> arriving(static_cast<size_t>(P));
  for (int m = 0; m < M; ++m) buffer[0].push_back(m);
  std::vector<double> cur(static_cast<size_t>(D), 0.0);
  for (int d = 0; d < D && d < static_cast<int>(spec.state_mb.size()); ++d) cur[static_cast<size_t>(d)] = spec.state_mb[static_cast<size_t>(d)];
  // The highest micro-batch id run forward / backward on each device (the reference's
  // executed_fw_microbatches / executed_bw_microbatches, both starting at 0).
  std::vector<int> max_fw(static_cast<size_t>(D), 0), max_bw(static_cast<size_t>(D), 0);
  // Chain positions held by each device.
  std::vector<std::vector<int>> positions(static_cast<size_t>(D));
  for (int pos = 0; pos < P; ++pos) positions[static_cast<size_t>(dev_of(pos))].push_back(pos);
  struct Item {
    int mb;
    int pos;
  };
  // Backward heads and forward heads, each by (micro-batch, chain position), taken in turn
  // starting with a backward.
  auto interleave = [](std::vector<Item> bw, std::vector<Item> fw) {
    auto by = [](const Item& a, const Item& b) { return std::tie(a.mb, a.pos) < std::tie(b.mb, b.pos); };
    std::sort(bw.begin(), bw.end(), by);
    std::sort(fw.begin(), fw.end(), by);
    std::vector<Item> out;
    for (size_t i = 0; i < std::max(bw.size(), fw.size()); ++i) {
      if (i < bw.size()) out.push_back(bw[i]);
      if (i < fw.size()) out.push_back(fw[i]);
    }
    return out;
  };
  int remaining = M * P;
  while (remaining > 0) {
    // Compute: every device runs the head op of each of its buffers.
    std::vector<std::vector<Item>> sent(static_cast<size_t>(D));  // transfers produced this round
    int moved = 0;
    Item oldest_held{-1, 0};
    int oldest_held_dev = -1;
    auto run = [&](int d, const Item& it) {
      const int st = stage_of(it.pos);
      const bool backward = it.pos >= V;
      const auto& w = mbs[static_cast<size_t>(it.mb)];
      s.order[static_cast<size_t>(d)].push_back({it.mb, st, backward});
      cur[static_cast<size_t>(d)] += backward ? -w.stored_mb[static_cast<size_t>(st)] : w.stored_mb[static_cast<size_t>(st)];
      auto& mx = backward ? max_bw[static_cast<size_t>(d)] : max_fw[static_cast<size_t>(d)];
      mx = std::max(mx, it.mb);
      buffer[static_cast<size_t>(it.pos)].pop_front();
      --remaining;
      ++moved;
      const int nxt = it.pos + 1;
      if (nxt >= P) return;
      if (dev_of(nxt) == d) {
        arriving[static_cast<size_t>(nxt)].push_back(it.mb);
      } else {
        sent[static_cast<size_t>(d)].push_back(Item{it.mb, nxt});
      }
    };
    for (int d = 0; d < D; ++d) {
      std::vector<Item> fw, bw;
      for (int pos : positions[static_cast<size_t>(d)]) {
        const auto& b = buffer[static_cast<size_t>(pos)];
        if (!b.empty()) (pos >= V ? bw : fw).push_back(Item{b.front(), pos});
      }
      for (const Item& it : interleave(std::move(bw), std::move(fw))) {
        if (it.pos < V && it.mb > max_fw[static_cast<size_t>(d)]) {
          // A forward of a micro-batch newer than any run here waits while its peak would
          // exceed the memory limit or too many micro-batches are in flight.
          const double peak = mbs[static_cast<size_t>(it.mb)].peak_mb[static_cast<size_t>(stage_of(it.pos))];
          const bool mem_ok = !opt.check_memory || cur[static_cast<size_t>(d)] + peak <= limit(d) + 1e-9;
          const bool otf_ok = opt.max_in_flight <= 0 || max_fw[static_cast<size_t>(d)] - max_bw[static_cast<size_t>(d)] < opt.max_in_flight;
          if (!mem_ok || !otf_ok) {
            if (oldest_held_dev < 0 || it.mb < oldest_held.mb) {
              oldest_held = it;
              oldest_held_dev = d;
            }
            continue;
          }
        }
        run(d, it);
      }
    }
    if (moved == 0) {
      // The reference gives up here (no schedule); run the oldest held-back forward so that
      // the order is complete, and let the caller reject it on memory.
      if (oldest_held_dev < 0) break;  // cannot happen for a well-formed pipeline
      run(oldest_held_dev, oldest_held);
    }
    // Communication, fast-forwarded within the round: each device sends what it produced,
    // backward gradients and forward activations in turn, each by (micro-batch, position).
    for (int d = 0; d < D; ++d) {
      std::vector<Item> fw, bw;
      for (const Item& it : sent[static_cast<size_t>(d)]) (it.pos > V ? bw : fw).push_back(it);
      for (const Item& it : interleave(std::move(bw), std::move(fw))) {
        const int from = it.pos - 1;
        s.comm_order[static_cast<size_t>(d)].push_back({it.mb, stage_of(from), from >= V});
        arriving[static_cast<size_t>(it.pos)].push_back(it.mb);
      }
    }
    for (int pos = 0; pos < P; ++pos) {
      for (int m : arriving[static_cast<size_t>(pos)]) buffer[static_cast<size_t>(pos)].push_back(m);
      arriving[static_cast<size_t>(pos)].clear();
    }
  }
  return s;
}

Layout classify_layout(const PipelineSpec& spec) {
  const int D = spec.devices, V = spec.stages();
  bool linear = V == D, interleaved = V % D == 0 && V > D;
  for (int v = 0; v < V; ++v) {
    const int d = spec.stage_device[static_cast<size_t>(v)];
    linear = linear && d == v;
    interleaved = interleaved && d == v % D;
  }
  return linear ? Layout::linear : interleaved ? Layout::interleaved : Layout::other;
}

std::string to_string(Layout l) {
  switch (l) {
    case Layout::linear: return "linear";
    case Layout::interleaved: return "interleaved";
    case Layout::other: return "other";
  }
  return "?";
}

std::vector<std::string> valid_schedules(const PipelineSpec& spec, int n_mb) {
  std::vector<std::string> v;
  const Layout l = classify_layout(spec);
  if (l == Layout::linear) v.emplace_back("1f1b");
  if (l == Layout::interleaved && n_mb % spec.devices == 0) v.emplace_back("interleaved-1f1b");
  v.emplace_back("wait-free-cyclic");
  return v;
}

Schedule make_schedule(const std::string& name, const PipelineSpec& spec, const std::vector<MicroBatchWork>& mbs,
                       const CyclicOptions& opt) {
  const int n = static_cast<int>(mbs.size());
  const auto ok = valid_schedules(spec, n);
  if (std::find(ok.begin(), ok.end(), name) == ok.end()) {
    std::string list;
    for (const auto& s : ok) list += (list.empty() ? "" : "|") + s;
    throw std::invalid_argument("one of " + list + " for layout " + to_string(classify_layout(spec)) + " ("  +
                                std::to_string(spec.stages()) + " stages on " + std::to_string(spec.devices) +
                                " devices with " + std::to_string(n) + " micro-batches)");
  }
  if (name == "1f1b") return one_f_one_b(spec, n);
  if (name == "interleaved-1f1b") return interleaved_one_f_one_b(spec, n);
  return cyclic(spec, mbs, opt);
}

}  // namespace mlsys::plan
