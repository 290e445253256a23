// Sequence-classification examples (lora-finetune, prolora-finetune): labelled text
// tokenized once, padded batches on a device, and evaluation in eval mode (loss,
// accuracy, class probabilities).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "nn/hf_folder.hpp"
#include "nn/model.hpp"
#include "nn/text_data.hpp"

namespace mlsys::nn {

// Tokenized examples with their labels as ids into a label set.
struct EncodedTexts {
  std::vector<Encoding> enc;
  std::vector<int64_t> label;  // -1 when unlabeled (or, without need_label, not in the set)
  std::vector<std::string> text;
};

// Tokenizes `rows` to at most max_len ids each. With need_label a label outside `labels`
// is an InputError naming source:line.
[[nodiscard]] EncodedTexts encode_texts(const std::vector<LabeledText>& rows, const TextTokenizer& tok,
                                        const std::vector<std::string>& labels, int64_t max_len,
                                        const std::string& source, bool need_label);

struct ClassBatch {
  at::Tensor ids, mask, labels;  // [B, L] padded on the right with pad_id; [B] (unlabeled: 0)
  int64_t tokens = 0;            // real tokens
};
[[nodiscard]] ClassBatch make_class_batch(const EncodedTexts& e, const std::vector<size_t>& idx, int64_t pad_id,
                                          const c10::Device& dev);

struct ClassEval {
  double loss = 0, accuracy = 0;  // mean cross-entropy and accuracy (labeled only)
  int64_t n = 0;
  at::Tensor probs;  // [N, C] softmax, on the CPU
};
// Eval mode (no dropout, no gradient), in batches of `batch` rows, in data order.
[[nodiscard]] ClassEval evaluate_classifier(const TransformerModel& model, const EncodedTexts& data, int64_t batch,
                                            int64_t pad_id, const c10::Device& dev, bool labeled = true);

}  // namespace mlsys::nn
