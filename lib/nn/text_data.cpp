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

std::vector<LmExample> read_lm_jsonl(const std::filesystem::path& path, bool prompts_only) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw core::InputError(path.string() +
                           ": cannot open the data file (expected JSONL with \"text\", \"prompt\"/\"completion\" or \"ids\")");
  }
  const std::string text = core::read_file(path);
  std::vector<LmExample> rows;
  core::for_each_jsonl_object(path.string(), text, [&](const core::Json& j, size_t lineno) {
    auto bad = [&](const std::string& what) {
      throw core::InputError(path.string() + ":" + std::to_string(lineno) + ": " + what);
    };
    auto str = [&](const char* key, std::string& out) {
      auto it = j.find(key);
      if (it == j.end()) return false;
      if (!it->is_string()) bad(std::string("field \"") + key + "\": expected a string, found " + core::short_json(*it));
      out = it->get<std::string>();
      return true;
    };
    auto ids = [&](const char* key, std::vector<int64_t>& out) {
      auto it = j.find(key);
      if (it == j.end()) return false;
      if (!it->is_array()) bad(std::string("field \"") + key + "\": expected an array of token ids, found " + core::short_json(*it));
      for (size_t i = 0; i < it->size(); ++i) {
        const auto& v = (*it)[i];
        if (!v.is_number_integer() || v.get<int64_t>() < 0) {
          bad(std::string("field \"") + key + "\"[" + std::to_string(i) + "]: expected a non-negative integer id, found " +
              core::short_json(v));
        }
        out.push_back(v.get<int64_t>());
      }
      return true;
    };
    LmExample ex;
    ex.line = lineno;
    std::string t;
    std::vector<int64_t> tid;
    const bool has_text = str("text", t), has_prompt = str("prompt", ex.prompt), has_comp = str("completion", ex.completion);
    const bool has_ids = ids("ids", tid), has_pids = ids("prompt_ids", ex.prompt_ids), has_cids = ids("completion_ids", ex.completion_ids);
    const int forms = int(has_text) + int(has_prompt || has_comp) + int(has_ids) + int(has_pids || has_cids);
    if (forms != 1) {
      bad(forms == 0 ? "expected \"text\", \"prompt\" and \"completion\", \"ids\", or \"prompt_ids\" and \"completion_ids\""
                     : "expected one form of example (text, prompt/completion, ids or prompt_ids/completion_ids), found several");
    }
    ex.ids = has_ids || has_pids || has_cids;
    if (prompts_only) {
      if (has_text) ex.prompt = t;
      if (has_ids) ex.prompt_ids = tid;
      if (has_comp || has_cids) bad("a generation input holds only a prompt (\"prompt\", \"text\", \"prompt_ids\" or \"ids\")");
    } else {
      if (has_text) ex.completion = t;
      if (has_ids) ex.completion_ids = tid;
      if ((has_prompt && !has_comp) || (has_pids && !has_cids)) {
        bad(std::string("expected a \"") + (has_pids ? "completion_ids" : "completion") + "\" beside the prompt");
      }
      if (ex.ids ? ex.completion_ids.empty() : ex.completion.empty()) bad("an empty completion (nothing to learn)");
    }
    rows.push_back(std::move(ex));
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
