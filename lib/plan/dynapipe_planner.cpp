// The per-iteration DynaPipe planner.
#include "plan/dynapipe_planner.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <limits>
#include <numeric>
#include <random>
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "core/error.hpp"
#include "core/timer.hpp"
#include "plan/ordering.hpp"
#include "plan/schedules.hpp"

namespace mlsys::plan {

int64_t round_up(int64_t x, int64_t multiple) {
  if (multiple <= 1) return x;
  return (x + multiple - 1) / multiple * multiple;
}

MicroBatchShape shape_of(const ModelSpec& model, const std::vector<SampleLength>& samples, const int64_t* begin,
                         const int64_t* end, int round_multiple, int decoder_offset) {
  int64_t max_in = 0, max_tg = 0, max_all = 0;
  for (const int64_t* p = begin; p != end; ++p) {
    const auto& s = samples[static_cast<size_t>(*p)];
    max_in = std::max(max_in, s.input);
    max_tg = std::max(max_tg, s.target);
    max_all = std::max(max_all, s.input + s.target);
  }
  MicroBatchShape shape;
  shape.batch = end - begin;
  if (model.kind == ModelKind::gpt) {
    shape.enc_len = round_up(max_all, round_multiple);  // prompt and answer concatenated
  } else {
    shape.enc_len = round_up(max_in, round_multiple);
    shape.dec_len = round_up(max_tg + decoder_offset, round_multiple);
  }
  return shape;
}

PipelineSpec pipeline_spec(const CostModel& cost) {
  PipelineSpec spec;
  const int S = cost.stages();
  spec.devices = S;
  for (int s = 0; s < S; ++s) {
    spec.stage_device.push_back(s);
    spec.state_mb.push_back(cost.state_mb(s));
    spec.memory_limit_mb.push_back(cost.cluster().device_memory_mb);
  }
  spec.link_latency_ms = cost.cluster().link_latency_us * 1e-3;
  spec.link_mb_per_ms = cost.cluster().link_gbps / 8.0;
  return spec;
}

MicroBatchWork work_of(const CostModel& cost, const MicroBatchShape& shape, Recompute rc) {
  MicroBatchWork w;
  for (int s = 0; s < cost.stages(); ++s) {
    const StageCost c = cost.stage_cost(s, shape, rc);
    w.fw_ms.push_back(c.fw_ms);
    w.bw_ms.push_back(c.bw_ms);
    w.stored_mb.push_back(c.stored_mb);
    w.peak_mb.push_back(c.peak_mb);
    w.send_mb.push_back(c.send_mb);
  }
  return w;
}

double microbatch_time(const CostModel& cost, const MicroBatchShape& shape, Recompute rc) {
  double t = 0;
  for (int s = 0; s < cost.stages(); ++s) {
    const StageCost c = cost.stage_cost(s, shape, rc);
    t = std::max(t, c.fw_ms + c.bw_ms);
  }
  return t;
}

PipelineLayout make_layout(const CostModel& cost, const std::string& name) {
  const int S = cost.stages(), L = cost.model().total_layers();
  PipelineLayout lay;
  lay.name = name;
  std::vector<int> chunk_device;
  if (name == "linear") {
    for (int d = 0; d < S; ++d) chunk_device.push_back(d);
  } else if (name == "interleaved") {
    for (int c = 0; c < 2 * S; ++c) chunk_device.push_back(c % S);
  } else if (name == "zigzag") {
    for (int c = 0; c < 2 * S; ++c) chunk_device.push_back(c < S ? c : 2 * S - 1 - c);
  } else {
    throw std::invalid_argument("unknown layout " + name);
  }
  const int C = static_cast<int>(chunk_device.size());
  if (L < C) throw std::invalid_argument(name + " needs " + std::to_string(C) + " layers");
  // Chunks of L / C layers; consecutive chunks on one device form one virtual stage.
  for (int c = 0; c < C; ++c) {
    const int first = c * L / C, last = (c + 1) * L / C;
    if (c > 0 && chunk_device[static_cast<size_t>(c)] == chunk_device[static_cast<size_t>(c - 1)]) {
      lay.ranges.back().second = last;
    } else {
      lay.ranges.emplace_back(first, last);
      lay.spec.stage_device.push_back(chunk_device[static_cast<size_t>(c)]);
    }
  }
  const int V = static_cast<int>(lay.ranges.size());
  lay.spec.devices = S;
  lay.spec.state_mb.assign(static_cast<size_t>(S), 0.0);
  for (int v = 0; v < V; ++v) {
    const auto [first, last] = lay.ranges[static_cast<size_t>(v)];
    lay.spec.state_mb[static_cast<size_t>(lay.spec.stage_device[static_cast<size_t>(v)])] +=
        cost.range_state_mb(first, last, v == 0, v == V - 1);
  }
  lay.spec.memory_limit_mb.assign(static_cast<size_t>(S), cost.cluster().device_memory_mb);
  lay.spec.link_latency_ms = cost.cluster().link_latency_us * 1e-3;
  lay.spec.link_mb_per_ms = cost.cluster().link_gbps / 8.0;
  return lay;
}

MicroBatchWork work_of(const CostModel& cost, const PipelineLayout& lay, const MicroBatchShape& shape, Recompute rc) {
  MicroBatchWork w;
  const int V = lay.spec.stages();
  for (int v = 0; v < V; ++v) {
    const auto [first, last] = lay.ranges[static_cast<size_t>(v)];
    const StageCost c = cost.range_cost(first, last, v == V - 1, shape, rc);
    w.fw_ms.push_back(c.fw_ms);
    w.bw_ms.push_back(c.bw_ms);
    w.stored_mb.push_back(c.stored_mb);
    w.peak_mb.push_back(c.peak_mb);
    w.send_mb.push_back(c.send_mb);
  }
  return w;
}

std::vector<std::vector<int>> karmarkar_karp(const std::vector<double>& costs, int k) {
  // Each item starts as a k-tuple (c, 0, .., 0) of subsets; repeatedly combine the two
  // tuples of largest spread, largest subset of one with smallest of the other.
  struct Tuple {
    std::vector<double> sums;
    std::vector<std::vector<int>> sets;
    [[nodiscard]] double spread() const { return sums.front() - sums.back(); }
  };
  auto normalize = [](Tuple& t) {
    std::vector<size_t> idx(t.sums.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return t.sums[a] > t.sums[b]; });
    Tuple o;
    for (size_t i : idx) {
      o.sums.push_back(t.sums[i]);
      o.sets.push_back(std::move(t.sets[i]));
    }
    t = std::move(o);
  };
  std::vector<Tuple> items;
  for (size_t i = 0; i < costs.size(); ++i) {
    Tuple t;
    t.sums.assign(static_cast<size_t>(k), 0.0);
    t.sets.assign(static_cast<size_t>(k), {});
    t.sums[0] = costs[i];
    t.sets[0].push_back(static_cast<int>(i));
    items.push_back(std::move(t));
  }
  if (items.empty()) return std::vector<std::vector<int>>(static_cast<size_t>(k));
  auto cmp = [](const Tuple& a, const Tuple& b) { return a.spread() < b.spread(); };
  while (items.size() > 1) {
    std::sort(items.begin(), items.end(), cmp);
    Tuple a = std::move(items.back());
    items.pop_back();
    Tuple b = std::move(items.back());
    items.pop_back();
    Tuple c;
    for (int i = 0; i < k; ++i) {
      const size_t j = static_cast<size_t>(k - 1 - i);
      c.sums.push_back(a.sums[static_cast<size_t>(i)] + b.sums[j]);
      auto set = std::move(a.sets[static_cast<size_t>(i)]);
      set.insert(set.end(), b.sets[j].begin(), b.sets[j].end());
      c.sets.push_back(std::move(set));
    }
    normalize(c);
    items.push_back(std::move(c));
  }
  for (auto& s : items[0].sets) std::sort(s.begin(), s.end());
  return items[0].sets;
}

namespace {

// KMeans on [fw first, fw last, bw first, bw last] (seeded), as DynaPipe's permutation search.
std::vector<int> kmeans_labels(const std::vector<std::array<double, 4>>& x, int k, std::mt19937_64& rng) {
  const size_t n = x.size();
  std::vector<int> label(n, 0);
  if (static_cast<int>(n) <= k) {
    std::iota(label.begin(), label.end(), 0);
    return label;
  }
  std::vector<std::array<double, 4>> c;
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  c.push_back(x[pick(rng)]);
  auto d2 = [](const std::array<double, 4>& a, const std::array<double, 4>& b) {
    double s = 0;
    for (int i = 0; i < 4; ++i) s += (a[static_cast<size_t>(i)] - b[static_cast<size_t>(i)]) * (a[static_cast<size_t>(i)] - b[static_cast<size_t>(i)]);
    return s;
  };
  while (static_cast<int>(c.size()) < k) {  // k-means++ seeding
    std::vector<double> w(n);
    for (size_t i = 0; i < n; ++i) {
      double m = std::numeric_limits<double>::infinity();
      for (const auto& cc : c) m = std::min(m, d2(x[i], cc));
      w[i] = m;
    }
    if (std::accumulate(w.begin(), w.end(), 0.0) <= 0) break;
    std::discrete_distribution<size_t> dd(w.begin(), w.end());
    c.push_back(x[dd(rng)]);
  }
  for (int it = 0; it < 50; ++it) {
    bool changed = false;
    for (size_t i = 0; i < n; ++i) {
      int best = 0;
      for (size_t j = 1; j < c.size(); ++j) {
        if (d2(x[i], c[j]) < d2(x[i], c[static_cast<size_t>(best)])) best = static_cast<int>(j);
      }
      if (best != label[i]) changed = true;
      label[i] = best;
    }
    std::vector<std::array<double, 4>> sum(c.size(), {0, 0, 0, 0});
    std::vector<int> cnt(c.size(), 0);
    for (size_t i = 0; i < n; ++i) {
      for (int f = 0; f < 4; ++f) sum[static_cast<size_t>(label[i])][static_cast<size_t>(f)] += x[i][static_cast<size_t>(f)];
      ++cnt[static_cast<size_t>(label[i])];
    }
    for (size_t j = 0; j < c.size(); ++j) {
      if (cnt[j] == 0) continue;
      for (int f = 0; f < 4; ++f) c[j][static_cast<size_t>(f)] = sum[j][static_cast<size_t>(f)] / cnt[j];
    }
    if (!changed && it > 0) break;
  }
  return label;
}

struct ShapeKey {
  int64_t b, e, d;
  bool operator==(const ShapeKey& o) const { return b == o.b && e == o.e && d == o.d; }
};
struct ShapeKeyHash {
  size_t operator()(const ShapeKey& k) const {
    return std::hash<int64_t>()(k.b * 1000003 + k.e * 8191 + k.d);
  }
};

ReplicaPlan idle_replica(const PipelineSpec& spec) {
  ReplicaPlan rp;
  rp.schedule = "idle";
  rp.sim.ok = true;
  rp.sim.peak_mb = spec.state_mb;
  rp.sim.busy_ms.assign(static_cast<size_t>(spec.devices), 0.0);
  for (int d = 0; d < spec.devices; ++d) {
    RankPlan r;
    r.rank = d;
    for (int v = 0; v < spec.stages(); ++v) {
      if (spec.stage_device[static_cast<size_t>(v)] == d) r.stages.push_back(v);
    }
    rp.ranks.push_back(std::move(r));
  }
  return rp;
}


}  // namespace

void check_model_state_fits(const CostModel& cost) {
  for (int s = 0; s < cost.stages(); ++s) {
    if (cost.available_mb(s) <= 0) {
      throw core::ConfigError("cluster.device_memory_mb: expected more than the model state of stage " + std::to_string(s) +
                              " (" + std::to_string(static_cast<int64_t>(std::ceil(cost.state_mb(s)))) +
                              " MB of weights, gradients and optimizer state), found " +
                              std::to_string(static_cast<int64_t>(cost.cluster().device_memory_mb)) +
                              " MB (no memory is left for activations)");
    }
  }
}

namespace {

// plan_batch on one layout, for samples already in planning order.
BatchPlan plan_on_layout(const CostModel& cost, const PipelineLayout& layout, const std::vector<SampleLength>& samples,
                         const std::vector<int64_t>& order, const std::vector<int64_t>& ids, const PlannerOptions& opt,
                         bool record_timeline) {
  core::Timer timer;
  const ModelSpec& model = cost.model();
  const int S = cost.stages();
  const int dp = cost.cluster().data_parallel;
  const PipelineSpec& spec = layout.spec;
  const int V = spec.stages();
  std::vector<double> available(static_cast<size_t>(S));
  for (int d = 0; d < S; ++d) available[static_cast<size_t>(d)] = cost.cluster().device_memory_mb - spec.state_mb[static_cast<size_t>(d)];

  std::string last_error = "no recomputation mode was tried";
  std::optional<int64_t> unfit_sample;  // a sample that fit alone under no setting tried yet
  for (const std::string limit_name : {"preferred", "available"}) {
    for (Recompute rc : opt.recompute) {
      const bool preferred = limit_name == std::string("preferred");
      // Time of one padded shape, or nullopt when it does not fit (memoized: the same
      // shapes recur across rows).
      std::unordered_map<ShapeKey, std::optional<double>, ShapeKeyHash> memo;
      auto eval = [&](const MicroBatchShape& shape) -> std::optional<double> {
        const ShapeKey key{shape.batch, shape.enc_len, shape.dec_len};
        if (auto it = memo.find(key); it != memo.end()) return it->second;
        std::optional<double> out;
        double t = 0;
        bool fits = true;
        // Per device: its stages' times and stored activation add up; its peak is the
        // highest (stored activation of its earlier stages + a stage's peak).
        std::vector<double> dev_t(static_cast<size_t>(S), 0.0), dev_stored(static_cast<size_t>(S), 0.0),
            dev_peak(static_cast<size_t>(S), 0.0);
        for (int v = 0; v < V; ++v) {
          const auto [first, last] = layout.ranges[static_cast<size_t>(v)];
          const StageCost c = cost.range_cost(first, last, v == V - 1, shape, rc);
          const auto d = static_cast<size_t>(spec.stage_device[static_cast<size_t>(v)]);
          dev_peak[d] = std::max(dev_peak[d], dev_stored[d] + c.peak_mb);
          dev_stored[d] += c.stored_mb;
          dev_t[d] += c.fw_ms + c.bw_ms;
        }
        for (int d = 0; d < S && fits; ++d) {
          const double avail = available[static_cast<size_t>(d)];
          const double per_mb = preferred ? avail / S : avail;
          if (dev_stored[static_cast<size_t>(d)] > per_mb || dev_peak[static_cast<size_t>(d)] > avail) fits = false;
          t = std::max(t, dev_t[static_cast<size_t>(d)]);
        }
        if (fits) out = t;
        memo.emplace(key, out);
        return out;
      };
      PartitionProblem prob;
      prob.n = static_cast<int>(order.size());
      prob.stages = S;
      prob.dp_size = dp;
      prob.tmax_interval = opt.tmax_interval_ms;
      // A longer run has a componentwise larger padded shape, so analytical times grow with
      // it; measured profiles are noisy (a larger shape can time faster), so not with them.
      prob.monotone = cost.profile() == nullptr;
      prob.cost = [&](int i, int j) -> std::optional<double> {
        return eval(shape_of(model, samples, order.data() + i, order.data() + j, opt.round_multiple, opt.decoder_offset));
      };
      prob.row = [&](int i, int max_len, double cap, std::vector<double>& row) {
        // The running maximum along j: O(1) shape update per step.
        int64_t max_in = 0, max_tg = 0, max_all = 0;
        for (int j = i + 1; j <= i + max_len; ++j) {
          const auto& sl = samples[static_cast<size_t>(order[static_cast<size_t>(j - 1)])];
          max_in = std::max(max_in, sl.input);
          max_tg = std::max(max_tg, sl.target);
          max_all = std::max(max_all, sl.input + sl.target);
          MicroBatchShape shape;
          shape.batch = j - i;
          if (model.kind == ModelKind::gpt) {
            shape.enc_len = round_up(max_all, opt.round_multiple);
          } else {
            shape.enc_len = round_up(max_in, opt.round_multiple);
            shape.dec_len = round_up(max_tg + opt.decoder_offset, opt.round_multiple);
          }
          const auto t = eval(shape);
          if (!t || *t > cap) break;
          row.push_back(*t);
        }
      };
      Partition part;
      try {
        part = microbatch_dp(prob);
      } catch (const SampleDoesNotFit& e) {
        unfit_sample = order[static_cast<size_t>(e.position)];
        last_error = e.what();
        continue;
      }
      BatchPlan plan;
      plan.layout = layout.name;
      plan.spec = spec;
      plan.recompute = rc;
      plan.memory_limit = limit_name;
      plan.partition = part;
      std::vector<MicroBatchWork> work;
      std::vector<std::vector<int64_t>> shapes;
      for (size_t k = 0; k + 1 < part.bounds.size(); ++k) {
        MicroBatch mb;
        const int i = part.bounds[k], j = part.bounds[k + 1];
        mb.samples.assign(order.begin() + i, order.begin() + j);
        mb.shape = shape_of(model, samples, order.data() + i, order.data() + j, opt.round_multiple, opt.decoder_offset);
        mb.time_ms = part.times[k];
        for (auto id : mb.samples) mb.real_tokens += samples[static_cast<size_t>(id)].input + samples[static_cast<size_t>(id)].target;
        plan.real_tokens += mb.real_tokens;
        plan.padded_tokens += mb.shape.padded_tokens();
        work.push_back(work_of(cost, layout, mb.shape, rc));
        shapes.push_back({mb.shape.batch, mb.shape.enc_len, mb.shape.dec_len});
        plan.microbatches.push_back(std::move(mb));
      }
      // Data-parallel replicas: balance the micro-batch times (Karmarkar-Karp).
      std::vector<std::vector<int>> groups;
      if (dp > 1) {
        groups = karmarkar_karp(part.times, dp);
      } else {
        groups.emplace_back(static_cast<size_t>(part.times.size()));
        std::iota(groups[0].begin(), groups[0].end(), 0);
      }
      std::mt19937_64 rng(opt.seed);
      bool all_fit = true;
      for (const auto& group : groups) {
        if (group.empty()) {
          // Fewer micro-batches than replicas: this replica idles for the iteration.
          plan.replicas.push_back(idle_replica(spec));
          continue;
        }
        // Candidate orders: the DP order, and every ordering of KMeans clusters.
        std::vector<std::vector<int>> candidates{group};
        if (opt.permutation_search && group.size() > 1) {
          std::vector<std::array<double, 4>> feat;
          for (int m : group) {
            const auto& w = work[static_cast<size_t>(m)];
            feat.push_back({w.fw_ms.front(), w.fw_ms.back(), w.bw_ms.front(), w.bw_ms.back()});
          }
          const int k = std::min<int>(group.size() > 20 ? 3 : 4, static_cast<int>(group.size()));
          const auto label = kmeans_labels(feat, k, rng);
          std::vector<int> perm(static_cast<size_t>(k));
          std::iota(perm.begin(), perm.end(), 0);
          do {
            std::vector<int> cand;
            for (int c : perm) {
              std::vector<int> part_c;
              for (size_t i = 0; i < group.size(); ++i) {
                if (label[i] == c) part_c.push_back(group[i]);
              }
              std::shuffle(part_c.begin(), part_c.end(), rng);
              cand.insert(cand.end(), part_c.begin(), part_c.end());
            }
            candidates.push_back(std::move(cand));
          } while (std::next_permutation(perm.begin(), perm.end()));
        }
        ReplicaPlan best;
        best.sim.makespan_ms = std::numeric_limits<double>::infinity();
        std::vector<int> best_order;
        for (const auto& cand : candidates) {
          std::vector<MicroBatchWork> w;
          for (int m : cand) w.push_back(work[static_cast<size_t>(m)]);
          for (const auto& name : valid_schedules(spec, static_cast<int>(w.size()))) {
            if (std::find(opt.schedules.begin(), opt.schedules.end(), name) == opt.schedules.end()) continue;
            Schedule sch = make_schedule(name, spec, w, CyclicOptions{opt.max_in_flight, true});
            SimResult r = simulate(spec, w, sch, false);
            if (!r.ok) continue;
            bool fits = true;
            for (int d = 0; d < S; ++d) fits &= r.peak_mb[static_cast<size_t>(d)] <= spec.memory_limit_mb[static_cast<size_t>(d)] + 1e-6;
            if (fits && r.makespan_ms < best.sim.makespan_ms) {
              best.sim = r;
              best.schedule = name;
              best.order = cand;
            }
          }
        }
        if (best.order.empty()) {
          all_fit = false;
          break;
        }
        std::vector<MicroBatchWork> w;
        std::vector<std::vector<int64_t>> sh;
        for (int m : best.order) {
          w.push_back(work[static_cast<size_t>(m)]);
          sh.push_back(shapes[static_cast<size_t>(m)]);
        }
        Schedule sch = make_schedule(best.schedule, spec, w, CyclicOptions{opt.max_in_flight, true});
        best.sim = simulate(spec, w, sch, true);
        best.ranks = build_execution_plans(spec, best.sim, sh);
        if (!record_timeline) {  // the timeline was needed for the plans only
          best.sim.timeline.clear();
          best.sim.memory.clear();
        }
        if (auto err = check_deadlock(best.ranks); !err.empty()) {
          throw core::RuntimeFailure("internal error: the emitted execution plan fails the deadlock check: " + err);
        }
        // Report micro-batch ids (not positions) in the instructions.
        for (auto& rp : best.ranks) {
          for (auto& ins : rp.instructions) ins.mb = best.order[static_cast<size_t>(ins.mb)];
        }
        plan.replicas.push_back(std::move(best));
      }
      if (!all_fit) {
        last_error = "no schedule keeps the peak memory within " + std::to_string(spec.memory_limit_mb[0]) +
                     " MB with recomputation '" + to_string(rc) + "'";
        continue;
      }
      for (const auto& rp : plan.replicas) {
        plan.makespan_ms = std::max(plan.makespan_ms, rp.sim.makespan_ms);
        plan.peak_mb = std::max(plan.peak_mb, rp.sim.max_peak_mb());
      }
      plan.planning_ms = timer.millis();
      return plan;
    }
  }
  if (unfit_sample) {
    const auto& sl = samples[static_cast<size_t>(*unfit_sample)];
    throw SampleTooLarge(*unfit_sample, "sample " + std::to_string(*unfit_sample) + " (input " + std::to_string(sl.input) +
                                            ", target " + std::to_string(sl.target) +
                                            " tokens) does not fit in device memory even alone under any recomputation mode");
  }
  throw core::InputError("global batch of " + std::to_string(ids.size()) + " samples cannot be planned: " + last_error);
}

}  // namespace

BatchPlan plan_batch(const CostModel& cost, const std::vector<SampleLength>& samples, const std::vector<int64_t>& ids,
                     const PlannerOptions& opt, bool record_timeline) {
  core::Timer timer;
  check_model_state_fits(cost);
  const std::vector<int64_t> order = cost.model().kind == ModelKind::gpt
                                         ? order_by_length(samples, ids)
                                         : order_by_clusters(samples, ids, opt.cluster_threshold, opt.use_tsp);
  // Every layout of planner.layouts that the model allows is planned; the fastest plan that
  // keeps every device within its memory wins. The first layout's error is reported when
  // none fits.
  std::optional<BatchPlan> best;
  std::exception_ptr first_error;
  for (const auto& name : opt.layouts) {
    PipelineLayout lay;
    try {
      lay = make_layout(cost, name);
    } catch (const std::invalid_argument&) {
      continue;  // fewer layers than the layout's chunks
    }
    bool state_fits = true;
    for (double st : lay.spec.state_mb) state_fits &= st < cost.cluster().device_memory_mb;
    if (!state_fits) continue;
    try {
      BatchPlan p = plan_on_layout(cost, lay, samples, order, ids, opt, record_timeline);
      if (!best || p.makespan_ms < best->makespan_ms) best = std::move(p);
    } catch (const core::InputError&) {
      if (!first_error) first_error = std::current_exception();
    }
  }
  if (!best) {
    if (first_error) std::rethrow_exception(first_error);
    throw core::InputError("global batch of " + std::to_string(ids.size()) +
                           " samples cannot be planned: no layout of planner.layouts fits the model");
  }
  best->planning_ms = timer.millis();
  return std::move(*best);
}

}  // namespace mlsys::plan
