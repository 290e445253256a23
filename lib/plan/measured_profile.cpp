// Profile files: writing, strict reading, and the bilinear interpolation.
#include "plan/measured_profile.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/report.hpp"

namespace mlsys::plan {

namespace fs = std::filesystem;

namespace {

// The keys of a decoder-only profile file, in the order written, with where each goes.
struct KeyField {
  const char* key;
  double ProfileRecord::*field;
};
constexpr KeyField kKeys[] = {
    {"forward_encoder", &ProfileRecord::forward_encoder_ms},
    {"backward_encoder", &ProfileRecord::backward_encoder_ms},
    {"forward_postprocess", &ProfileRecord::forward_postprocess_ms},
    {"backward_postprocess", &ProfileRecord::backward_postprocess_ms},
    {"encoder_activation", &ProfileRecord::encoder_activation_mb},
    {"peak_encoder_activation", &ProfileRecord::peak_encoder_activation_mb},
    {"model_embedding", &ProfileRecord::model_embedding_mb},
    {"model_encoder", &ProfileRecord::model_encoder_mb},
};

double ProfileRecord::*metric_field(ProfileMetric m) {
  switch (m) {
    case ProfileMetric::forward_encoder: return &ProfileRecord::forward_encoder_ms;
    case ProfileMetric::backward_encoder: return &ProfileRecord::backward_encoder_ms;
    case ProfileMetric::forward_postprocess: return &ProfileRecord::forward_postprocess_ms;
    case ProfileMetric::backward_postprocess: return &ProfileRecord::backward_postprocess_ms;
    case ProfileMetric::encoder_activation: return &ProfileRecord::encoder_activation_mb;
    case ProfileMetric::peak_encoder_activation: return &ProfileRecord::peak_encoder_activation_mb;
  }
  return &ProfileRecord::forward_encoder_ms;
}

std::string number_text(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

ProfileRecord parse_file(const fs::path& path, ProfileMetadata& meta) {
  const std::string name = path.filename().string();
  const std::string where = core::excerpt(path.string(), 1000);  // a file name may hold any byte but '/'

  std::vector<int64_t> ints;
  // Every maximal run of digits, as the reference's re.findall(r"\d+") (no std::regex: GCC
  // 12 warns inside <regex> under the sanitizers, and a loop says it as plainly).
  for (size_t p = 0; p < name.size();) {
    if (name[p] < '0' || name[p] > '9') {
      ++p;
      continue;
    }
    size_t e = p;
    while (e < name.size() && name[e] >= '0' && name[e] <= '9') ++e;
    const std::string d = name.substr(p, e - p);
    if (d.size() > 9) throw core::InputError(where + ": an integer of the file name is too large ('" + d + "')");
    ints.push_back(std::stoll(d));
    p = e;
  }
  if (ints.size() == 8) {
    throw core::InputError(where + ": 8 integers in the file name (an encoder-decoder profile); only decoder-only "
                                   "profiles (7 integers: tp, hs, ah, kv, ffhs, seqlen, mbs) are supported");
  }
  if (ints.size() != 7) {
    throw core::InputError(where + ": expected 7 integers in the file name (tp, hs, ah, kv, ffhs, seqlen, mbs), found " +
                           std::to_string(ints.size()));
  }
  for (size_t i = 0; i < 7; ++i) {
    if (ints[i] <= 0) throw core::InputError(where + ": the integers of the file name must be positive, found 0");
  }
  meta = ProfileMetadata{ints[0], ints[1], ints[2], ints[3], ints[4]};
  ProfileRecord r;
  r.seqlen = ints[5];
  r.mbs = ints[6];

  const std::string text = core::read_file(path);
  std::set<std::string> seen;
  std::istringstream in(text);
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const std::string at = where + ":" + std::to_string(lineno);
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    if (sp == std::string::npos) {
      throw core::InputError(at + ": expected '<key> <number>', found '" + core::excerpt(line) + "'");
    }
    const std::string key = line.substr(0, sp);
    const std::string num = line.substr(sp + 1);
    const KeyField* kf = nullptr;
    for (const auto& k : kKeys) {
      if (key == k.key) kf = &k;
    }
    if (kf == nullptr) {
      throw core::InputError(at + ": unknown key '" + core::excerpt(key) +
                             "' (expected forward_encoder, backward_encoder, forward_postprocess, "
                             "backward_postprocess, encoder_activation, peak_encoder_activation, model_embedding, "
                             "model_encoder)");
    }
    double v = 0;
    const char* first = num.data();
    const char* last = num.data() + num.size();
    auto [ptr, ec] = std::from_chars(first, last, v);
    if (num.empty() || ec != std::errc() || ptr != last || !std::isfinite(v) || v < 0) {
      throw core::InputError(at + ": " + key + ": expected a finite number >= 0, found '" + core::excerpt(num) + "'");
    }
    if (!seen.insert(key).second) throw core::InputError(at + ": " + key + " given twice");
    r.*(kf->field) = v;
  }
  for (const auto& k : kKeys) {
    if (seen.count(k.key) == 0) throw core::InputError(where + ": missing line '" + std::string(k.key) + " <value>'");
  }
  if (r.forward_encoder_ms <= 0 || r.backward_encoder_ms <= 0) {
    throw core::InputError(where + ": forward_encoder and backward_encoder must be > 0 ms");
  }
  return r;
}

}  // namespace

std::string profile_file_name(const ProfileMetadata& m, int64_t seqlen, int64_t mbs) {
  return "tp" + std::to_string(m.tp) + "_hs" + std::to_string(m.hidden) + "_ah" + std::to_string(m.heads) + "_kv" +
         std::to_string(m.kv_channels) + "_ffhs" + std::to_string(m.ffn) + "_seqlen" + std::to_string(seqlen) +
         "_mbs" + std::to_string(mbs) + ".txt";
}

std::string profile_file_text(const ProfileRecord& r) {
  std::string out;
  for (const auto& k : kKeys) out += std::string(k.key) + " " + number_text(r.*(k.field)) + "\n";
  return out;
}

MeasuredProfile MeasuredProfile::from_records(const ProfileMetadata& meta, std::vector<ProfileRecord> records,
                                              std::string source) {
  MeasuredProfile p;
  p.meta_ = meta;
  p.source_ = std::move(source);
  std::set<int64_t> mbs, seq;
  for (const auto& r : records) {
    mbs.insert(r.mbs);
    seq.insert(r.seqlen);
  }
  if (records.empty()) throw std::invalid_argument(p.source_ + ": no profile records");
  p.mbs_.assign(mbs.begin(), mbs.end());
  p.seqlens_.assign(seq.begin(), seq.end());
  std::map<std::pair<int64_t, int64_t>, const ProfileRecord*> by_point;
  for (const auto& r : records) {
    if (!by_point.emplace(std::make_pair(r.mbs, r.seqlen), &r).second) {
      throw std::invalid_argument(p.source_ + ": two records of mbs " + std::to_string(r.mbs) + ", seqlen " +
                                  std::to_string(r.seqlen));
    }
  }
  for (int64_t b : p.mbs_) {
    for (int64_t s : p.seqlens_) {
      auto it = by_point.find({b, s});
      if (it == by_point.end()) {
        throw std::invalid_argument(p.source_ + ": the grid misses mbs " + std::to_string(b) + ", seqlen " +
                                    std::to_string(s) + " (every micro-batch size needs every sequence length)");
      }
      p.records_.push_back(*it->second);
    }
  }
  for (const auto& r : p.records_) {
    p.embedding_mb_ += r.model_embedding_mb;
    p.layer_mb_ += r.model_encoder_mb;
  }
  p.embedding_mb_ /= static_cast<double>(p.records_.size());
  p.layer_mb_ /= static_cast<double>(p.records_.size());
  return p;
}

MeasuredProfile MeasuredProfile::read(const fs::path& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    throw core::InputError(folder.string() + ": expected a folder of profile files (*.txt), found " +
                           (fs::exists(folder, ec) ? "a file" : "nothing"));
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(folder)) {
    if (e.path().extension() == ".txt") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw core::InputError(folder.string() + ": no profile files (*.txt) in the folder");
  std::optional<ProfileMetadata> meta;
  std::vector<ProfileRecord> records;
  for (const auto& f : files) {
    ProfileMetadata m;
    records.push_back(parse_file(f, m));
    if (meta && !(*meta == m)) {
      throw core::InputError(core::excerpt(f.string(), 1000) + ": widths (tp, hs, ah, kv, ffhs) differ from those of " +
                             core::excerpt(files.front().string(), 1000));
    }
    meta = m;
  }
  try {
    return from_records(*meta, std::move(records), folder.string());
  } catch (const std::invalid_argument& e) {
    throw core::InputError(e.what());
  }
}

double MeasuredProfile::value(ProfileMetric m, size_t i, size_t j) const {
  return records_[i * seqlens_.size() + j].*metric_field(m);
}

std::optional<double> MeasuredProfile::at(ProfileMetric m, double mbs, double seqlen) const {
  if (mbs > static_cast<double>(mbs_.back()) || seqlen > static_cast<double>(seqlens_.back())) return std::nullopt;
  // The cell [g[k], g[k+1]] holding x (k = 0 below the grid); weight of g[k+1].
  auto cell = [](const std::vector<int64_t>& g, double x) -> std::pair<size_t, double> {
    if (g.size() == 1) return {0, 0.0};
    size_t k = 0;
    while (k + 2 < g.size() && x > static_cast<double>(g[k + 1])) ++k;
    const double lo = static_cast<double>(g[k]), hi = static_cast<double>(g[k + 1]);
    return {k, (x - lo) / (hi - lo)};
  };
  const auto [i, wi] = cell(mbs_, mbs);
  const auto [j, wj] = cell(seqlens_, seqlen);
  const size_t i1 = std::min(i + 1, mbs_.size() - 1), j1 = std::min(j + 1, seqlens_.size() - 1);
  const double v = (1 - wi) * (1 - wj) * value(m, i, j) + (1 - wi) * wj * value(m, i, j1) +
                   wi * (1 - wj) * value(m, i1, j) + wi * wj * value(m, i1, j1);
  return std::max(0.0, v);
}

}  // namespace mlsys::plan
