// JSONL text data (see text_data.hpp).
#include "nn/text_data.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace mlsys::nn {

std::vector<LabeledText> read_labeled_jsonl(const std::filesystem::path& path, bool require_label) {
  std::ifstream in(path);
  if (!in) throw core::InputError(path.string() + ": cannot open the data file (expected JSONL with \"text\" and \"label\")");
  std::vector<LabeledText> rows;
  std::string line;
  size_t lineno = 0;
  auto bad = [&](const std::string& what) {
    throw core::InputError(path.string() + ":" + std::to_string(lineno) + ": " + what);
  };
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      bad(std::string("expected a JSON object, found malformed JSON (") + e.what() + ")");
    }
    if (!j.is_object()) bad("expected a JSON object, found " + std::string(j.type_name()));
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
          (l == j.end() ? std::string("none") : l->dump()));
    }
    rows.push_back(std::move(row));
  }
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
