// Text data sets in JSONL, one JSON object per line: {"text", "label"} for classification
// (the label a string or an integer); {"text"}, {"prompt", "completion"} or token ids
// ({"ids"}, {"prompt_ids", "completion_ids"}) for causal language modelling. Blank lines are skipped; a malformed line is an
// InputError naming the file and the line number. No LibTorch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mlsys::nn {

struct LabeledText {
  std::string text;
  std::string label;  // integers are kept as their decimal text
  size_t line = 0;    // 1-based line of the file it came from (blank lines count)
};

// `require_label` false reads prediction inputs ({"text"} alone is enough).
[[nodiscard]] std::vector<LabeledText> read_labeled_jsonl(const std::filesystem::path& path,
                                                          bool require_label = true);

// The label set: `given` when not empty, else the sorted distinct labels of `rows`
// (numerically when every label matches ^-?[0-9]+$, else as strings).
[[nodiscard]] std::vector<std::string> label_set(const std::vector<LabeledText>& rows,
                                                 const std::vector<std::string>& given = {});

// One causal-LM example. Text rows need the model's tokenizer, id rows none (a
// checkpoint such as llama2.c's stories260K ships without one). The loss covers the
// completion only; {"text"} and {"ids"} rows are all completion (an empty prompt).
struct LmExample {
  std::string prompt, completion;
  std::vector<int64_t> prompt_ids, completion_ids;
  bool ids = false;   // the id form
  size_t line = 0;    // 1-based line of the file it came from
};

// Training/eval rows ({"text"} | {"prompt","completion"} | {"ids"} | {"prompt_ids",
// "completion_ids"}); with `prompts_only` (generation inputs) {"prompt"}, {"text"},
// {"prompt_ids"} or {"ids"} alone is the prompt. Ids must be non-negative integers (the
// vocabulary bound is checked by the caller, which knows the model). InputError naming
// the file and line for any other shape, and for an empty completion in training rows.
[[nodiscard]] std::vector<LmExample> read_lm_jsonl(const std::filesystem::path& path, bool prompts_only = false);

}  // namespace mlsys::nn
