// The instruction interpreter of one pipeline rank.
#include "plan_exec/pipeline_executor.hpp"

#include <map>
#include <string>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include "core/error.hpp"
#include "plan_exec/stage_model.hpp"

namespace mlsys::plan {

namespace {

using Key = std::pair<int, int>;  // (micro-batch, virtual stage)

// Both sides of a transfer name it by (micro-batch, producing stage, kind).
int transfer_tag(int mb, int stage, int stages, bool grad) { return ((mb * stages + stage) * 2) + (grad ? 1 : 0); }

struct StageState {
  at::Tensor input;   // the leaf the stage's forward started from (stage > 0)
  at::Tensor output;  // activation (or the loss, on the last stage)
};

class RankExecutor {
 public:
  RankExecutor(const nn::LlamaForCausalLM& model, const ExecIteration& it, const RankPlan& plan, tensor::ProcessGroup* pg)
      : model_(model), it_(it), plan_(plan), pg_(pg), V_(static_cast<int>(it.stage_layers.size())) {}

  RankRun run() {
    for (const Instruction& ins : plan_.instructions) {
      step(ins);
      ++res_.executed;
    }
    return res_;
  }

 private:
  [[noreturn]] void fail(const Instruction& ins, const std::string& what) const {
    throw core::RuntimeFailure("rank " + std::to_string(plan_.rank) + ": " + to_string(ins.kind) + "(mb " +
                               std::to_string(ins.mb) + ", stage " + std::to_string(ins.stage) + "): " + what);
  }

  const ExecMicroBatch& mb(const Instruction& ins) const {
    if (ins.mb < 0 || ins.mb >= static_cast<int>(it_.microbatches.size())) fail(ins, "no such micro-batch");
    return it_.microbatches[static_cast<size_t>(ins.mb)];
  }

  at::Tensor buffer(const Instruction& ins) const {
    const ExecMicroBatch& m = mb(ins);
    const auto dtype = model_.params().at("model.embed_tokens.weight").options();
    return at::empty({m.ids.size(0), m.ids.size(1), model_.config().hidden_size}, dtype);
  }

  const nn::LlamaForCausalLM::LayerContext& context(int m) {
    auto it = ctx_.find(m);
    if (it == ctx_.end()) it = ctx_.emplace(m, masked_context(model_, it_.microbatches[static_cast<size_t>(m)].mask)).first;
    return it->second;
  }

  void step(const Instruction& ins) {
    switch (ins.kind) {
      case InstrKind::load_input:
        (void)mb(ins);
        return;
      case InstrKind::forward: return forward(ins);
      case InstrKind::backward: return backward(ins);
      case InstrKind::send_activation_start: {
        auto st = state_.find({ins.mb, ins.stage});
        if (st == state_.end()) fail(ins, "no activation computed to send");
        sends_[{ins.mb, ins.stage * 2}] =
            pg_->send(st->second.output.detach().contiguous(), ins.peer, transfer_tag(ins.mb, ins.stage, V_, false));
        ++res_.sends;
        return;
      }
      case InstrKind::send_grad_start: {
        auto g = grads_out_.find({ins.mb, ins.stage});
        if (g == grads_out_.end()) fail(ins, "no input gradient computed to send");
        sends_[{ins.mb, ins.stage * 2 + 1}] = pg_->send(g->second, ins.peer, transfer_tag(ins.mb, ins.stage, V_, true));
        grads_out_.erase(g);
        ++res_.sends;
        return;
      }
      case InstrKind::send_activation_finish:
      case InstrKind::send_grad_finish: {
        const bool grad = ins.kind == InstrKind::send_grad_finish;
        auto s = sends_.find({ins.mb, ins.stage * 2 + (grad ? 1 : 0)});
        if (s == sends_.end()) fail(ins, "no send started");
        s->second.wait();
        sends_.erase(s);
        return;
      }
      case InstrKind::recv_activation_start:
      case InstrKind::recv_grad_start: {
        const bool grad = ins.kind == InstrKind::recv_grad_start;
        at::Tensor buf = buffer(ins);
        auto p = pg_->recv(buf, ins.peer, transfer_tag(ins.mb, ins.stage, V_, grad));
        recvs_[{ins.mb, ins.stage * 2 + (grad ? 1 : 0)}] = {buf, std::move(p)};
        ++res_.recvs;
        return;
      }
      case InstrKind::recv_activation_finish:
      case InstrKind::recv_grad_finish: {
        const bool grad = ins.kind == InstrKind::recv_grad_finish;
        auto r = recvs_.find({ins.mb, ins.stage * 2 + (grad ? 1 : 0)});
        if (r == recvs_.end()) fail(ins, "no receive started");
        r->second.second.wait();
        // the receiver's stage: the one after (activation) or before (gradient) the producer
        (grad ? grads_in_ : acts_in_)[{ins.mb, grad ? ins.stage - 1 : ins.stage + 1}] = r->second.first;
        recvs_.erase(r);
        return;
      }
      case InstrKind::free_buffer:
        state_.erase({ins.mb, ins.stage});
        return;
    }
  }

  void forward(const Instruction& ins) {
    const int v = ins.stage;
    if (v < 0 || v >= V_) fail(ins, "no such stage");
    const ExecMicroBatch& m = mb(ins);
    StageState st;
    at::Tensor x;
    if (v == 0) {
      x = model_.embed(m.ids);
    } else {
      auto a = acts_in_.find({ins.mb, v});
      if (a == acts_in_.end()) fail(ins, "no input activation (received or local)");
      st.input = a->second.detach().requires_grad_(true);
      acts_in_.erase(a);
      x = st.input;
    }
    const auto& ctx = context(ins.mb);
    const auto [first, last] = it_.stage_layers[static_cast<size_t>(v)];
    for (int l = first; l < last; ++l) x = model_.layer(l, x, ctx);
    if (v == V_ - 1) {
      x = causal_lm_loss_sum(model_.head(x), m.ids, m.mask) * it_.loss_scale;
      res_.loss += x.item<double>();
    } else if (it_.stage_device[static_cast<size_t>(v + 1)] == plan_.rank) {
      acts_in_[{ins.mb, v + 1}] = x.detach();  // the next stage runs here: no transfer
    }
    st.output = x;
    state_[{ins.mb, v}] = std::move(st);
    ++res_.forwards;
  }

  void backward(const Instruction& ins) {
    const int v = ins.stage;
    auto st = state_.find({ins.mb, v});
    if (st == state_.end()) fail(ins, "no forward state");
    if (v == V_ - 1) {
      torch::autograd::backward({st->second.output});
    } else {
      auto g = grads_in_.find({ins.mb, v});
      if (g == grads_in_.end()) fail(ins, "no output gradient (received or local)");
      torch::autograd::backward({st->second.output}, {g->second});
      grads_in_.erase(g);
    }
    if (v > 0) {
      at::Tensor gx = st->second.input.grad();
      if (!gx.defined()) fail(ins, "the stage's input got no gradient");
      if (it_.stage_device[static_cast<size_t>(v - 1)] == plan_.rank) {
        grads_in_[{ins.mb, v - 1}] = gx;
      } else {
        grads_out_[{ins.mb, v}] = gx.contiguous();
      }
    }
    st->second = StageState{};
    ++res_.backwards;
  }

  const nn::LlamaForCausalLM& model_;
  const ExecIteration& it_;
  const RankPlan& plan_;
  tensor::ProcessGroup* pg_;
  int V_;
  RankRun res_;
  std::map<int, nn::LlamaForCausalLM::LayerContext> ctx_;
  std::map<Key, StageState> state_;
  std::map<Key, at::Tensor> acts_in_, grads_in_, grads_out_;
  std::map<Key, tensor::PendingTransfer> sends_;                        // (mb, stage * 2 + grad)
  std::map<Key, std::pair<at::Tensor, tensor::PendingTransfer>> recvs_;  // (mb, stage * 2 + grad)
};

}  // namespace

RankRun execute_rank_plan(const nn::LlamaForCausalLM& model, const ExecIteration& it, const RankPlan& plan,
                          tensor::ProcessGroup* pg) {
  if (pg == nullptr) {
    for (const Instruction& ins : plan.instructions) {
      if (ins.peer >= 0) throw core::RuntimeFailure("a single-process run got a plan with transfers");
    }
  }
  return RankExecutor(model, it, plan, pg).run();
}

double execute_unpipelined(const nn::LlamaForCausalLM& model, const ExecIteration& it) {
  double loss = 0;
  for (const ExecMicroBatch& m : it.microbatches) {
    const auto ctx = masked_context(model, m.mask);
    at::Tensor x = model.embed(m.ids);
    for (int64_t l = 0; l < model.config().num_hidden_layers; ++l) x = model.layer(l, x, ctx);
    at::Tensor l = causal_lm_loss_sum(model.head(x), m.ids, m.mask) * it.loss_scale;
    torch::autograd::backward({l});
    loss += l.item<double>();
  }
  return loss;
}

}  // namespace mlsys::plan
