// JSONL text data (see text_data.hpp).
#include "nn/text_data.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/json.hpp"

namespace mlsys::nn {

std::vector<LabeledText> read_labeled_jsonl(const std::filesystem::path& path, bool require_label) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw core::InputError(path.string() + ": cannot open the data file (expected JSONL with \"text\" and \"label\")");
  }
  const std::string text = core::read_file(path);
  std::vector<LabeledText> rows;
  core::for_each_jsonl_object(path.string(), text, [&](const core::Json& j, size_t lineno) {
    auto bad = [&](const std::string& what) {
      throw core::InputError(path.string() + ":" + std::to_string(lineno) + ": " + what);
    };
    auto t = j.find("text");
    if (t == j.end() || !t->is_string()) bad("expected a string field \"text\"");
    LabeledText row{t->get<std::string>(), {}, lineno};
    auto l = j.find("label");
    if (l != j.end() && l->is_string()) {
      row.label = l->get<std::string>();
    } else if (l != j.end() && l->is_number_integer()) {
      row.label = std::to_string(l->get<int64_t>());
    } else if (l != j.end() || require_label) {
      bad("expected a field \"label\" holding a string or an integer, found " +
          (l == j.end() ? std::string("none") : core::short_json(*l)));
    }
    rows.push_back(std::move(row));
  });
  if (rows.empty()) throw core::InputError(path.string() + ": no examples (an empty data file)");
  return rows;
}

std::vector<std::string> label_set(const std::vector<LabeledText>& rows, const std::vector<std::string>& given) {
  if (!given.empty()) return given;
  std::set<std::string> s;
  for (const auto& r : rows) s.insert(r.label);
  std::vector<std::string> out(s.begin(), s.end());
  // numeric only when every label is an optional '-' and one or more digits that fit int64
  std::vector<int64_t> value(out.size());
  bool numeric = true;
  for (size_t i = 0; i < out.size() && numeric; ++i) {
    const std::string& x = out[i];
    const size_t digits = x.starts_with('-') ? 1 : 0;
    if (x.size() == digits || x.find_first_not_of("0123456789", digits) != std::string::npos) {
      numeric = false;
      break;
    }
    auto [ptr, ec] = std::from_chars(x.data(), x.data() + x.size(), value[i]);
    numeric = ec == std::errc() && ptr == x.data() + x.size();
  }
  if (numeric) {
    std::vector<size_t> idx(out.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return value[a] < value[b]; });
    std::vector<std::string> sorted;
    sorted.reserve(out.size());
    for (size_t i : idx) sorted.push_back(out[i]);
    out = std::move(sorted);
  }
  return out;
}

}  // namespace mlsys::nn
