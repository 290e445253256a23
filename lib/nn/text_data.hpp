// Text data sets in JSONL, one JSON object per line: {"text", "label"} for classification
// (the label a string or an integer). Blank lines are skipped; a malformed line is an
// InputError naming the file and the line number. No LibTorch.
#pragma once

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

}  // namespace mlsys::nn
