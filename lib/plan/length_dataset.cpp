// Sample-length loading (JSONL/CSV) and the seeded FLANv2-like generator.
#include "plan/length_dataset.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/json.hpp"

namespace mlsys::plan {
namespace {

using core::InputError;

[[noreturn]] void bad_row(const std::filesystem::path& path, size_t line, const std::string& what) {
  throw InputError(path.string() + ":" + std::to_string(line) + ": " + what);
}

int64_t length_field(const nlohmann::json& row, const std::filesystem::path& path, size_t line,
                     const char* name, const char* alias, const char* ids) {
  for (const char* key : {name, alias}) {
    if (!row.contains(key)) continue;
    const auto& v = row.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < 0) {
      bad_row(path, line, std::string("field '") + key + "': expected a non-negative integer, found " + core::short_json(v));
    }
    return v.get<int64_t>();
  }
  if (row.contains(ids)) {
    const auto& v = row.at(ids);
    if (!v.is_array()) bad_row(path, line, std::string("field '") + ids + "': expected an array, found " + core::short_json(v));
    return static_cast<int64_t>(v.size());
  }
  bad_row(path, line, std::string("expected a field '") + name + "' (or '" + alias + "', '" + ids + "'), found none");
}

std::vector<SampleLength> parse_jsonl(const std::filesystem::path& path, const std::string& text, std::vector<size_t>* lines) {
  std::vector<SampleLength> out;
  core::for_each_jsonl_object(path.string(), text, [&](const core::Json& row, size_t lineno) {
    SampleLength s;
    s.input = length_field(row, path, lineno, "input", "input_len", "input_ids");
    s.target = length_field(row, path, lineno, "target", "target_len", "target_ids");
    if (s.input + s.target == 0) bad_row(path, lineno, "expected at least one token, found input 0 and target 0");
    out.push_back(s);
    if (lines) lines->push_back(lineno);
  });
  return out;
}

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) {
    while (!cell.empty() && (cell.back() == '\r' || cell.back() == ' ')) cell.pop_back();
    while (!cell.empty() && cell.front() == ' ') cell.erase(cell.begin());
    cells.push_back(cell);
  }
  return cells;
}

std::vector<SampleLength> parse_csv(const std::filesystem::path& path, const std::string& text, std::vector<size_t>* lines) {
  std::vector<SampleLength> out;
  std::istringstream in(text);
  std::string line;
  size_t lineno = 0;
  int in_col = -1, tg_col = -1;
  size_t ncols = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto cells = split_csv(line);
    if (in_col < 0) {
      for (size_t c = 0; c < cells.size(); ++c) {
        if (cells[c] == "input" || cells[c] == "input_len") in_col = static_cast<int>(c);
        if (cells[c] == "target" || cells[c] == "target_len") tg_col = static_cast<int>(c);
      }
      if (in_col < 0 || tg_col < 0) bad_row(path, lineno, "expected a header with columns 'input' and 'target', found '" + line + "'");
      ncols = cells.size();
      continue;
    }
    if (cells.size() != ncols) {
      bad_row(path, lineno, "expected " + std::to_string(ncols) + " columns, found " + std::to_string(cells.size()));
    }
    SampleLength s;
    for (auto [col, dst, name] : {std::tuple{in_col, &s.input, "input"}, std::tuple{tg_col, &s.target, "target"}}) {
      const std::string& c = cells[static_cast<size_t>(col)];
      size_t used = 0;
      long long v = -1;
      try {
        v = std::stoll(c, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != c.size() || c.empty() || v < 0) {
        bad_row(path, lineno, std::string("column '") + name + "': expected a non-negative integer, found '" + c + "'");
      }
      *dst = v;
    }
    if (s.input + s.target == 0) bad_row(path, lineno, "expected at least one token, found input 0 and target 0");
    out.push_back(s);
    if (lines) lines->push_back(lineno);
  }
  if (in_col < 0) throw InputError(path.string() + ": expected a CSV header and rows, found an empty file");
  return out;
}

}  // namespace

std::vector<SampleLength> load_lengths(const std::filesystem::path& path, const std::string& format,
                                       std::vector<size_t>* lines) {
  if (lines) lines->clear();
  const std::string text = core::read_file(path);
  std::string fmt = format;
  if (fmt == "auto") fmt = path.extension() == ".csv" ? "csv" : "jsonl";
  std::vector<SampleLength> out = fmt == "csv" ? parse_csv(path, text, lines) : parse_jsonl(path, text, lines);
  if (out.empty()) throw InputError(path.string() + ": expected at least one sample, found none");
  return out;
}

std::vector<SampleLength> generate_flan_like(const FlanLikeConfig& cfg, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 1.0);
  auto lognormal = [&](double median, double sigma) { return median * std::exp(sigma * normal(rng)); };
  std::vector<SampleLength> out;
  out.reserve(static_cast<size_t>(cfg.samples));
  for (int64_t i = 0; i < cfg.samples; ++i) {
    const bool zero_shot = u01(rng) < cfg.zero_shot_fraction;
    const double in = zero_shot ? lognormal(cfg.zero_shot_median, cfg.zero_shot_sigma)
                                : lognormal(cfg.few_shot_median, cfg.few_shot_sigma);
    SampleLength s;
    s.input = std::clamp<int64_t>(std::llround(in), cfg.input_min, cfg.input_max);
    if (u01(rng) < cfg.short_label_fraction) {
      s.target = 1 + static_cast<int64_t>(u01(rng) * static_cast<double>(cfg.short_label_max));
      s.target = std::min(s.target, cfg.short_label_max);
    } else {
      s.target = std::clamp<int64_t>(std::llround(lognormal(cfg.target_median, cfg.target_sigma)), 1, cfg.target_max);
    }
    out.push_back(s);
  }
  return out;
}

std::string to_jsonl(const std::vector<SampleLength>& samples) {
  std::string out;
  out.reserve(samples.size() * 32);
  for (const auto& s : samples) {
    out += "{\"input\": " + std::to_string(s.input) + ", \"target\": " + std::to_string(s.target) + "}\n";
  }
  return out;
}

void clip_lengths(std::vector<SampleLength>& samples, int64_t max_seqlen, bool concatenated) {
  for (auto& s : samples) {
    if (concatenated) {
      // Keep at least one input token: a sample is a prompt and its completion.
      s.target = std::min(s.target, max_seqlen - 1);
      s.input = std::min(s.input, max_seqlen - s.target);
    } else {
      s.input = std::min(s.input, max_seqlen);
      s.target = std::min(s.target, max_seqlen);
    }
  }
}

std::vector<std::vector<int64_t>> split_global_batches(const std::vector<SampleLength>& samples, int64_t tokens) {
  std::vector<std::vector<int64_t>> batches;
  std::vector<int64_t> cur;
  int64_t cur_tokens = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    const int64_t t = samples[i].input + samples[i].target;
    if (!cur.empty() && cur_tokens + t > tokens) {
      batches.push_back(std::move(cur));
      cur.clear();
      cur_tokens = 0;
    }
    cur.push_back(static_cast<int64_t>(i));
    cur_tokens += t;
  }
  if (!cur.empty()) batches.push_back(std::move(cur));
  return batches;
}

}  // namespace mlsys::plan
