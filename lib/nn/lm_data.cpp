// Causal-LM data, evaluation and generation (see lm_data.hpp).
#include "nn/lm_data.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.hpp"

namespace mlsys::nn {

LmSequences encode_lm(const std::vector<LmExample>& rows, const SentencePieceTokenizer* tok, int64_t vocab,
                      int64_t max_length, const std::string& source, bool prompts_only) {
  LmSequences d;
  for (const auto& r : rows) {
    auto where = [&] { return source + ":" + std::to_string(r.line) + ": "; };
    std::vector<int64_t> p, c;
    if (r.ids) {
      p = r.prompt_ids;
      c = r.completion_ids;
    } else {
      if (tok == nullptr) {
        throw core::InputError(where() + "a text example, but the model folder has no tokenizer.model; give token ids "
                                         "({\"ids\": [...]} or {\"prompt_ids\", \"completion_ids\"})");
      }
      p = tok->encode(r.prompt, tok->bos_id() >= 0, false);
      if (!prompts_only) {
        c = tok->encode(r.completion, false, tok->eos_id() >= 0);
      }
    }
    for (const auto* v : {&p, &c}) {  // given ids, or a tokenizer larger than the model
      for (int64_t id : *v) {
        if (id >= vocab) {
          throw core::InputError(where() + "token id " + std::to_string(id) + " outside the model's vocabulary [0, " +
                                 std::to_string(vocab) + ")");
        }
      }
    }
    if (prompts_only && static_cast<int64_t>(p.size()) >= max_length) {
      throw core::InputError(where() + "the prompt has " + std::to_string(p.size()) + " tokens, model.max_length is " +
                             std::to_string(max_length) + ": no room left to generate");
    }
    std::vector<int64_t> ids = p;
    ids.insert(ids.end(), c.begin(), c.end());
    std::vector<uint8_t> t(ids.size(), 0);
    std::fill(t.begin() + static_cast<std::ptrdiff_t>(p.size()), t.end(), uint8_t{1});
    if (!t.empty()) t[0] = 0;  // nothing predicts the first token
    if (static_cast<int64_t>(ids.size()) > max_length) {
      ids.resize(static_cast<size_t>(max_length));
      t.resize(static_cast<size_t>(max_length));
      ++d.truncated;
    }
    if (ids.empty()) throw core::InputError(where() + "an empty example (no tokens)");
    if (!prompts_only && std::find(t.begin(), t.end(), uint8_t{1}) == t.end()) {
      throw core::InputError(where() + "no completion token is left to learn (the prompt fills model.max_length = " +
                             std::to_string(max_length) + ", or the completion is the first token)");
    }
    d.ids.push_back(std::move(ids));
    d.target.push_back(std::move(t));
    d.prompt.push_back(r.prompt);
  }
  return d;
}

LmBatch make_lm_batch(const LmSequences& d, const std::vector<size_t>& idx, int64_t pad_id, const c10::Device& dev) {
  size_t L = 0;
  for (size_t i : idx) L = std::max(L, d.ids[i].size());
  const auto B = static_cast<int64_t>(idx.size());
  at::Tensor ids = at::full({B, static_cast<int64_t>(L)}, pad_id, at::kLong);
  at::Tensor mask = at::zeros({B, static_cast<int64_t>(L)}, at::kLong);
  at::Tensor target = at::zeros({B, static_cast<int64_t>(L)}, at::kLong);
  auto pi = ids.accessor<int64_t, 2>();
  auto pm = mask.accessor<int64_t, 2>();
  auto pt = target.accessor<int64_t, 2>();
  LmBatch b;
  for (int64_t r = 0; r < B; ++r) {
    const auto& s = d.ids[idx[static_cast<size_t>(r)]];
    const auto& t = d.target[idx[static_cast<size_t>(r)]];
    for (size_t k = 0; k < s.size(); ++k) {
      pi[r][static_cast<int64_t>(k)] = s[k];
      pm[r][static_cast<int64_t>(k)] = 1;
      pt[r][static_cast<int64_t>(k)] = t[k];
    }
    b.tokens += static_cast<int64_t>(s.size());
  }
  b.ids = ids.to(dev);
  b.mask = mask.to(dev);
  b.loss_mask = target.to(dev);
  return b;
}

LmEval evaluate_lm(const TransformerModel& model, const LmSequences& d, int64_t batch, int64_t pad_id,
                   const c10::Device& dev) {
  c10::NoGradGuard ng;
  double loss_sum = 0;
  int64_t correct = 0, count = 0;
  const size_t N = d.ids.size();
  for (size_t s = 0; s < N; s += static_cast<size_t>(batch)) {
    std::vector<size_t> idx(std::min(N - s, static_cast<size_t>(batch)));
    std::iota(idx.begin(), idx.end(), s);
    LmBatch b = make_lm_batch(d, idx, pad_id, dev);
    if (b.ids.size(1) < 2) continue;
    at::Tensor logits = model.forward(b.ids, b.mask, {}, false);  // [B, L, V]
    const int64_t V = logits.size(-1);
    at::Tensor pred = logits.slice(1, 0, -1).reshape({-1, V});
    at::Tensor next = b.ids.slice(1, 1).reshape({-1});
    at::Tensor sel = b.loss_mask.slice(1, 1).reshape({-1}).gt(0);
    at::Tensor ce = at::cross_entropy_loss(pred, next, {}, at::Reduction::None);
    loss_sum += ce.masked_select(sel).sum().item<double>();
    correct += pred.argmax(-1).eq(next).logical_and(sel).sum().item<int64_t>();
    count += sel.sum().item<int64_t>();
  }
  LmEval e;
  e.targets = count;
  if (count > 0) {
    e.loss = loss_sum / static_cast<double>(count);
    e.perplexity = std::exp(e.loss);
    e.token_accuracy = static_cast<double>(correct) / static_cast<double>(count);
  }
  return e;
}

std::vector<int64_t> generate_greedy(const TransformerModel& model, const std::vector<int64_t>& prompt,
                                     int64_t max_new, int64_t eos, int64_t max_length, const c10::Device& dev) {
  c10::NoGradGuard ng;
  std::vector<int64_t> seq = prompt, out;
  while (static_cast<int64_t>(out.size()) < max_new && static_cast<int64_t>(seq.size()) < max_length && !seq.empty()) {
    const auto L = static_cast<int64_t>(seq.size());
    at::Tensor ids = at::tensor(seq, at::kLong).view({1, L}).to(dev);
    at::Tensor mask = at::ones({1, L}, at::kLong).to(dev);
    const int64_t next = model.forward(ids, mask, {}, false)[0][L - 1].argmax().item<int64_t>();
    out.push_back(next);
    seq.push_back(next);
    if (next == eos) break;
  }
  return out;
}

}  // namespace mlsys::nn
