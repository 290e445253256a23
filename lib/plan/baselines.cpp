// Padding, packing, fixed micro-batch size and fixed token budget baselines.
#include "plan/baselines.hpp"

#include <algorithm>
#include <limits>

#include "core/error.hpp"
#include "plan/ordering.hpp"
#include "plan/schedules.hpp"

namespace mlsys::plan {

std::string to_string(BaselineMethod m) {
  switch (m) {
    case BaselineMethod::padding: return "padding";
    case BaselineMethod::packing: return "packing";
    case BaselineMethod::fixed_mbs: return "fixed_mbs";
    case BaselineMethod::fixed_tokens: return "fixed_tokens";
  }
  return "?";
}

BaselineMethod parse_baseline(const std::string& s) {
  for (auto m : {BaselineMethod::padding, BaselineMethod::packing, BaselineMethod::fixed_mbs, BaselineMethod::fixed_tokens}) {
    if (to_string(m) == s) return m;
  }
  throw core::ConfigError("baseline: expected padding, packing, fixed_mbs or fixed_tokens, found '" + s + "'");
}

std::vector<MicroBatchShape> baseline_microbatches(BaselineMethod m, const ModelSpec& model,
                                                   const std::vector<SampleLength>& samples,
                                                   const std::vector<int64_t>& ids, int64_t knob,
                                                   const BaselineOptions& opt) {
  std::vector<MicroBatchShape> out;
  const bool gpt = model.kind == ModelKind::gpt;
  auto chunks = [&](const std::vector<int64_t>& order, bool pad_to_whole) {
    const MicroBatchShape whole =
        shape_of(model, samples, order.data(), order.data() + order.size(), opt.round_multiple, opt.decoder_offset);
    for (size_t i = 0; i < order.size(); i += static_cast<size_t>(knob)) {
      const size_t j = std::min(order.size(), i + static_cast<size_t>(knob));
      MicroBatchShape s = pad_to_whole ? whole
                                       : shape_of(model, samples, order.data() + i, order.data() + j,
                                                  opt.round_multiple, opt.decoder_offset);
      s.batch = static_cast<int64_t>(j - i);
      out.push_back(s);
    }
  };
  // Sorted longest first (T5: by input, then target).
  auto sorted = [&] { return gpt ? order_by_length(samples, ids) : order_by_clusters(samples, ids, 0.0, false); };
  switch (m) {
    case BaselineMethod::padding:  // every sample padded to the longest of the global batch
      chunks(ids, true);
      break;
    case BaselineMethod::fixed_mbs:
      chunks(sorted(), false);
      break;
    case BaselineMethod::fixed_tokens: {
      const auto order = sorted();
      size_t i = 0;
      while (i < order.size()) {
        size_t j = i + 1;
        while (j < order.size()) {
          const MicroBatchShape s = shape_of(model, samples, order.data() + i, order.data() + j + 1,
                                             opt.round_multiple, opt.decoder_offset);
          if (s.padded_tokens() > knob) break;
          ++j;
        }
        out.push_back(shape_of(model, samples, order.data() + i, order.data() + j, opt.round_multiple, opt.decoder_offset));
        i = j;
      }
      break;
    }
    case BaselineMethod::packing: {
      // Greedy sequential packing into rows of max_seqlen (T5: input rows of max_seqlen and
      // target rows scaled by the batch's target/input token ratio, at least its longest target).
      int64_t total_in = 0, total_tg = 0, max_tg = 0;
      for (auto id : ids) {
        total_in += samples[static_cast<size_t>(id)].input;
        total_tg += samples[static_cast<size_t>(id)].target;
        max_tg = std::max(max_tg, samples[static_cast<size_t>(id)].target);
      }
      const int64_t row_in = opt.max_seqlen;
      const int64_t row_tg = gpt ? 0
                                 : std::min(opt.max_seqlen, std::max(max_tg + opt.decoder_offset,
                                   round_up(row_in * total_tg / std::max<int64_t>(1, total_in), opt.round_multiple)));
      int64_t rows = 0, used_in = 0, used_tg = 0;
      for (auto id : ids) {
        const auto& s = samples[static_cast<size_t>(id)];
        const int64_t a = gpt ? s.input + s.target : s.input;
        const int64_t b = gpt ? 0 : s.target + opt.decoder_offset;
        if (rows == 0 || used_in + a > row_in || used_tg + b > row_tg) {
          ++rows;
          used_in = 0;
          used_tg = 0;
        }
        used_in += a;
        used_tg += b;
      }
      for (int64_t r = 0; r < rows; r += knob) {
        MicroBatchShape s;
        s.batch = std::min(knob, rows - r);
        s.enc_len = round_up(std::min(row_in, opt.max_seqlen), opt.round_multiple);
        s.dec_len = gpt ? 0 : round_up(row_tg, opt.round_multiple);
        out.push_back(s);
      }
      break;
    }
  }
  return out;
}

namespace {

// Can 1F1B run these micro-batches? Stage s holds (S - s) micro-batches' activations.
bool fits_1f1b(const CostModel& cost, const std::vector<MicroBatchShape>& shapes, Recompute rc, double* peak) {
  const int S = cost.stages();
  double worst = 0;
  for (int s = 0; s < S; ++s) {
    double max_stored = 0, max_extra = 0;
    for (const auto& sh : shapes) {
      const StageCost c = cost.stage_cost(s, sh, rc);
      max_stored = std::max(max_stored, c.stored_mb);
      max_extra = std::max(max_extra, c.peak_mb - c.stored_mb);
    }
    const int held = std::min<int>(S - s, static_cast<int>(shapes.size()));
    const double need = cost.state_mb(s) + held * max_stored + max_extra;
    worst = std::max(worst, need);
    if (need > cost.cluster().device_memory_mb) return false;
  }
  if (peak) *peak = worst;
  return true;
}

}  // namespace

BaselineResult evaluate_baseline(BaselineMethod m, const CostModel& cost, const std::vector<SampleLength>& samples,
                                 const std::vector<std::vector<int64_t>>& batches, int64_t knob, Recompute rc,
                                 const BaselineOptions& opt) {
  const int S = cost.stages();
  const int dp = cost.cluster().data_parallel;
  const PipelineSpec spec = pipeline_spec(cost);
  BaselineResult r;
  r.method = m;
  r.knob = knob;
  r.recompute = rc;
  for (const auto& ids : batches) {
    const auto shapes = baseline_microbatches(m, cost.model(), samples, ids, knob, opt);
    r.microbatches += static_cast<int64_t>(shapes.size());
    for (auto id : ids) r.real_tokens += samples[static_cast<size_t>(id)].input + samples[static_cast<size_t>(id)].target;
    for (const auto& s : shapes) r.padded_tokens += s.padded_tokens();
    // Replicas take the micro-batches round-robin (DDP splits the batch evenly).
    double iter = 0, est = 0;
    for (int rep = 0; rep < dp; ++rep) {
      std::vector<MicroBatchShape> mine;
      for (size_t i = static_cast<size_t>(rep); i < shapes.size(); i += static_cast<size_t>(dp)) mine.push_back(shapes[i]);
      if (mine.empty()) continue;
      if (!fits_1f1b(cost, mine, rc, nullptr)) return r;  // infeasible
      std::vector<MicroBatchWork> work;
      double sum = 0, mx = 0;
      for (const auto& sh : mine) {
        work.push_back(work_of(cost, sh, rc));
        const double t = microbatch_time(cost, sh, rc);
        sum += t;
        mx = std::max(mx, t);
      }
      est = std::max(est, sum + (S - 1) * mx);
      const SimResult res = simulate(spec, work, one_f_one_b(spec, static_cast<int>(work.size())));
      if (!res.ok) throw core::RuntimeFailure("baseline " + to_string(m) + ": " + res.error);
      for (int d = 0; d < S; ++d) {
        if (res.peak_mb[static_cast<size_t>(d)] > spec.memory_limit_mb[static_cast<size_t>(d)] + 1e-6) return r;
      }
      iter = std::max(iter, res.makespan_ms);
      r.peak_mb = std::max(r.peak_mb, res.max_peak_mb());
    }
    r.time_ms += iter;
    r.estimate_ms += est;
  }
  r.feasible = true;
  return r;
}

BaselineResult run_baseline(BaselineMethod m, const CostModel& cost, const std::vector<SampleLength>& samples,
                            const std::vector<std::vector<int64_t>>& batches, const BaselineOptions& opt) {
  const auto& knobs = m == BaselineMethod::fixed_tokens ? opt.token_budgets : opt.microbatch_sizes;
  BaselineResult best;
  best.method = m;
  best.time_ms = std::numeric_limits<double>::infinity();
  // One knob and one recomputation mode for the whole run (a training hyper-parameter):
  // every feasible setting is simulated and the fastest simulated one kept.
  for (int64_t knob : knobs) {
    for (Recompute rc : opt.recompute) {
      BaselineResult r = evaluate_baseline(m, cost, samples, batches, knob, rc, opt);
      if (r.feasible && r.time_ms < best.time_ms) best = std::move(r);
    }
  }
  if (!best.feasible) {
    BaselineResult none;
    none.method = m;
    return none;
  }
  return best;
}

}  // namespace mlsys::plan
