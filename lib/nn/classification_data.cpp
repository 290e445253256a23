// See classification_data.hpp.
#include "nn/classification_data.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <numeric>

#include "core/error.hpp"

namespace mlsys::nn {

EncodedTexts encode_texts(const std::vector<LabeledText>& rows, const TextTokenizer& tok,
                          const std::vector<std::string>& labels, int64_t max_len, const std::string& source,
                          bool need_label) {
  EncodedTexts e;
  for (const auto& row : rows) {
    e.enc.push_back(tok.encode(row.text, max_len));
    e.text.push_back(row.text);
    int64_t id = -1;
    if (!row.label.empty()) {
      auto it = std::find(labels.begin(), labels.end(), row.label);
      if (it == labels.end()) {
        if (need_label) {
          throw core::InputError(source + ":" + std::to_string(row.line) + ": label \"" + row.label +
                                 "\", which is not among the model's " + std::to_string(labels.size()) + " labels");
        }
      } else {
        id = it - labels.begin();
      }
    }
    e.label.push_back(id);
  }
  return e;
}

ClassBatch make_class_batch(const EncodedTexts& e, const std::vector<size_t>& idx, int64_t pad_id,
                            const c10::Device& dev) {
  size_t L = 0;
  for (size_t i : idx) L = std::max(L, e.enc[i].ids.size());
  const auto B = static_cast<int64_t>(idx.size());
  at::Tensor ids = at::full({B, static_cast<int64_t>(L)}, pad_id, at::kLong);
  at::Tensor mask = at::zeros({B, static_cast<int64_t>(L)}, at::kLong);
  at::Tensor lab = at::empty({B}, at::kLong);
  auto pi = ids.accessor<int64_t, 2>();
  auto pm = mask.accessor<int64_t, 2>();
  ClassBatch b;
  for (int64_t r = 0; r < B; ++r) {
    const auto& en = e.enc[idx[static_cast<size_t>(r)]];
    for (size_t t = 0; t < en.ids.size(); ++t) {
      pi[r][static_cast<int64_t>(t)] = en.ids[t];
      pm[r][static_cast<int64_t>(t)] = 1;
    }
    b.tokens += static_cast<int64_t>(en.ids.size());
    lab[r] = std::max<int64_t>(0, e.label[idx[static_cast<size_t>(r)]]);
  }
  b.ids = ids.to(dev);
  b.mask = mask.to(dev);
  b.labels = lab.to(dev);
  return b;
}

ClassEval evaluate_classifier(const TransformerModel& model, const EncodedTexts& data, int64_t batch, int64_t pad_id,
                              const c10::Device& dev, bool labeled) {
  c10::NoGradGuard ng;
  ClassEval r;
  std::vector<at::Tensor> probs;
  double loss_sum = 0;
  int64_t correct = 0;
  const size_t N = data.enc.size();
  for (size_t s = 0; s < N; s += static_cast<size_t>(batch)) {
    std::vector<size_t> idx(std::min(N - s, static_cast<size_t>(batch)));
    std::iota(idx.begin(), idx.end(), s);
    ClassBatch b = make_class_batch(data, idx, pad_id, dev);
    at::Tensor logits = model.forward(b.ids, b.mask, {}, false);
    probs.push_back(at::softmax(logits, -1).to(at::kCPU));
    if (labeled) {
      loss_sum += at::cross_entropy_loss(logits, b.labels).item<double>() * static_cast<double>(idx.size());
      correct += logits.argmax(-1).eq(b.labels).sum().item<int64_t>();
    }
  }
  r.n = static_cast<int64_t>(N);
  r.probs = at::cat(probs);
  if (labeled && N > 0) {
    r.loss = loss_sum / static_cast<double>(N);
    r.accuracy = static_cast<double>(correct) / static_cast<double>(N);
  }
  return r;
}

}  // namespace mlsys::nn
