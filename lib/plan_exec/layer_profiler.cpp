// Timing and allocator-counted memory of one layer and the LM head.
#include "plan_exec/layer_profiler.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>

#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>
#include <torch/csrc/autograd/autograd.h>

#include "core/error.hpp"
#include "plan_exec/stage_model.hpp"

namespace mlsys::plan {

namespace {

// Counts the bytes of live c10 CPU allocations and their high-water mark, delegating to
// the allocator it replaces; installed for its lifetime (the previous one is restored).
class CountingCpuAllocator final : public c10::Allocator {
 public:
  static constexpr uint8_t kPriority = 100;
  CountingCpuAllocator() : base_(c10::GetCPUAllocator()) { c10::SetCPUAllocator(this, kPriority); }
  CountingCpuAllocator(const CountingCpuAllocator&) = delete;
  CountingCpuAllocator& operator=(const CountingCpuAllocator&) = delete;
  ~CountingCpuAllocator() override { c10::SetCPUAllocator(base_, kPriority); }

  c10::DataPtr allocate(size_t n) override {
    c10::DataPtr inner = base_->allocate(n);
    void* data = inner.get();
    auto* ctx = new Context{std::move(inner), n, this};
    add(static_cast<int64_t>(n));
    return {data, ctx, &release, c10::Device(c10::DeviceType::CPU)};
  }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }

  [[nodiscard]] int64_t live() const { return live_.load(); }
  [[nodiscard]] int64_t high() const { return high_.load(); }
  void reset_high() { high_.store(live_.load()); }

 private:
  struct Context {
    c10::DataPtr inner;
    size_t n;
    CountingCpuAllocator* owner;
  };
  static void release(void* p) {
    auto* ctx = static_cast<Context*>(p);
    ctx->owner->add(-static_cast<int64_t>(ctx->n));
    delete ctx;  // frees through the base allocator's deleter
  }
  void add(int64_t d) {
    const int64_t now = live_.fetch_add(d) + d;
    int64_t h = high_.load();
    while (now > h && !high_.compare_exchange_weak(h, now)) {
    }
  }
  c10::Allocator* base_;
  std::atomic<int64_t> live_{0}, high_{0};
};

double clock_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double params_mb(const nn::LlamaForCausalLM& m, const std::string& prefix) {
  double bytes = 0;
  for (const auto& [name, t] : m.params()) {
    if (name.rfind(prefix, 0) == 0) bytes += static_cast<double>(t.numel() * t.element_size());
  }
  return bytes / 1e6;
}

void clear_grads(nn::LlamaForCausalLM& m) {
  for (auto& [name, t] : m.params()) t.mutable_grad() = at::Tensor();
}

}  // namespace

std::vector<ProfileRecord> profile_layers(const ModelSpec& spec, const LayerProfileOptions& opt, const c10::Device& device,
                                          const std::function<void(size_t, size_t)>& on_point) {
  if (!device.is_cpu()) {
    throw core::UsageError("profile: --device " + device.str() +
                           ": activation memory is counted through c10's CPU allocator; only --device cpu is supported");
  }
  const int64_t max_len = opt.seqlens.empty() ? 1 : opt.seqlens.back();
  nn::LlamaForCausalLM model = make_stage_model(spec, max_len, opt.seed, opt.dtype, device, 1);
  const double embedding_mb = params_mb(model, "model.embed_tokens.");
  const double layer_mb = params_mb(model, "model.layers.0.");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(opt.seed + 1);
  CountingCpuAllocator counter;
  std::vector<ProfileRecord> out;
  const size_t total = opt.microbatch_sizes.size() * opt.seqlens.size();
  for (int64_t b : opt.microbatch_sizes) {
    for (int64_t s : opt.seqlens) {
      ProfileRecord r;
      r.mbs = b;
      r.seqlen = s;
      r.model_embedding_mb = embedding_mb;
      r.model_encoder_mb = layer_mb;
      const at::Tensor ids = at::randint(spec.vocab, {b, s}, gen, at::TensorOptions().dtype(at::kLong));
      const at::Tensor mask = at::ones({b, s}, at::kLong);
      const auto ctx = masked_context(model, mask);
      const at::Tensor x0 = at::normal(0.0, 1.0, {b, s, spec.hidden}, gen).to(opt.dtype);
      const at::Tensor dy = at::normal(0.0, 1e-2, {b, s, spec.hidden}, gen).to(opt.dtype);
      std::vector<double> fw, bw, hfw, hbw, stored, peak;
      for (int k = 0; k < opt.warmup + opt.repeats; ++k) {
        const bool timed = k >= opt.warmup;
        // the layer: input leaf -> output, backward with a given output gradient
        at::Tensor x = x0.clone().requires_grad_(true);
        const int64_t before = counter.live();
        counter.reset_high();
        double t0 = clock_ms();
        at::Tensor y = model.layer(0, x, ctx);
        double t1 = clock_ms();
        const int64_t after = counter.live(), high = counter.high();
        torch::autograd::backward({y}, {dy});
        double t2 = clock_ms();
        if (timed) {
          fw.push_back(t1 - t0);
          bw.push_back(t2 - t1);
          stored.push_back(static_cast<double>(after - before) / 1e6);
          peak.push_back(static_cast<double>(high - before) / 1e6);
        }
        y = at::Tensor();
        x = at::Tensor();
        clear_grads(model);
        // post-processing: final norm, LM head and the loss on the hidden states
        at::Tensor h = x0.clone().requires_grad_(true);
        t0 = clock_ms();
        at::Tensor loss = causal_lm_loss_sum(model.head(h), ids, mask);
        t1 = clock_ms();
        torch::autograd::backward({loss});
        t2 = clock_ms();
        if (timed) {
          hfw.push_back(t1 - t0);
          hbw.push_back(t2 - t1);
        }
        clear_grads(model);
      }
      r.forward_encoder_ms = median(fw);
      r.backward_encoder_ms = median(bw);
      r.forward_postprocess_ms = median(hfw);
      r.backward_postprocess_ms = median(hbw);
      r.encoder_activation_mb = median(stored);
      r.peak_encoder_activation_mb = median(peak);
      out.push_back(r);
      if (on_point) on_point(out.size(), total);
    }
  }
  return out;
}

}  // namespace mlsys::plan
