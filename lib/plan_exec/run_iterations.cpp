// Building the executed iterations from plans.
#include "plan_exec/run_iterations.hpp"

#include <ATen/ATen.h>

#include "core/error.hpp"
#include "plan/schedules.hpp"

namespace mlsys::plan {

at::Tensor sample_tokens(int64_t index, int64_t length, int64_t vocab, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(index) + 1);
  return at::randint(vocab, {length}, gen, at::TensorOptions().dtype(at::kLong));
}

PlannedIteration dynapipe_iteration(const CostModel& cost, const BatchPlan& plan, const std::vector<SampleLength>& samples,
                                    uint64_t seed) {
  if (plan.replicas.size() != 1) throw core::ConfigError("cluster.data_parallel: run executes one pipeline; expected 1");
  const ReplicaPlan& rp = plan.replicas.front();
  PlannedIteration it;
  const PipelineLayout lay = make_layout(cost, plan.layout);
  it.exec.stage_layers = lay.ranges;
  it.exec.stage_device = plan.spec.stage_device;
  it.ranks = rp.ranks;
  it.predicted_ms = rp.sim.makespan_ms;
  it.schedule = rp.schedule;
  it.layout = plan.layout;
  int64_t targets = 0;
  for (const MicroBatch& mb : plan.microbatches) {
    const int64_t B = mb.shape.batch, L = mb.shape.enc_len;
    at::Tensor ids = at::zeros({B, L}, at::kLong), mask = at::zeros({B, L}, at::kLong);
    for (int64_t r = 0; r < static_cast<int64_t>(mb.samples.size()); ++r) {
      const SampleLength& s = samples[static_cast<size_t>(mb.samples[static_cast<size_t>(r)])];
      const int64_t n = std::min(L, s.input + s.target);
      ids[r].narrow(0, 0, n).copy_(sample_tokens(mb.samples[static_cast<size_t>(r)], n, cost.model().vocab, seed));
      mask[r].narrow(0, 0, n).fill_(1);
      targets += n - 1;
      it.real_tokens += n;
    }
    it.padded_tokens += B * L;
    it.exec.microbatches.push_back({ids, mask});
  }
  it.microbatches = static_cast<int64_t>(plan.microbatches.size());
  it.exec.loss_scale = 1.0 / static_cast<double>(std::max<int64_t>(targets, 1));
  return it;
}

PlannedIteration baseline_iteration(const CostModel& cost, BaselineMethod m, int64_t knob,
                                    const std::vector<SampleLength>& samples, const std::vector<int64_t>& batch,
                                    const BaselineOptions& opt, uint64_t seed) {
  const std::vector<MicroBatchShape> shapes = baseline_microbatches(m, cost.model(), samples, batch, knob, opt);
  const PipelineSpec spec = pipeline_spec(cost);
  std::vector<MicroBatchWork> work;
  std::vector<std::vector<int64_t>> dims;
  PlannedIteration it;
  int64_t targets = 0;
  for (size_t k = 0; k < shapes.size(); ++k) {
    const MicroBatchShape& sh = shapes[k];
    work.push_back(work_of(cost, sh, Recompute::none));
    dims.push_back({sh.batch, sh.enc_len, sh.dec_len});
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed * 31 + k + 7);
    it.exec.microbatches.push_back({at::randint(cost.model().vocab, {sh.batch, sh.enc_len}, gen, at::TensorOptions().dtype(at::kLong)),
                                    at::ones({sh.batch, sh.enc_len}, at::kLong)});
    targets += sh.batch * (sh.enc_len - 1);
    it.padded_tokens += sh.padded_tokens();
  }
  for (int64_t id : batch) it.real_tokens += samples[static_cast<size_t>(id)].input + samples[static_cast<size_t>(id)].target;
  const SimResult sim = simulate(spec, work, one_f_one_b(spec, static_cast<int>(work.size())), true);
  if (!sim.ok) throw core::RuntimeFailure(to_string(m) + ": its 1F1B schedule does not simulate: " + sim.error);
  it.ranks = build_execution_plans(spec, sim, dims);
  it.predicted_ms = sim.makespan_ms;
  it.schedule = "1f1b";
  it.layout = "linear";
  for (int s = 0; s < cost.stages(); ++s) it.exec.stage_layers.push_back(cost.stage_layers(s));
  it.exec.stage_device = spec.stage_device;
  it.microbatches = static_cast<int64_t>(shapes.size());
  it.exec.loss_scale = 1.0 / static_cast<double>(std::max<int64_t>(targets, 1));
  return it;
}

}  // namespace mlsys::plan
