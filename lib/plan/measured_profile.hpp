// Measured per-layer costs in the reference DynaPipe's profile-file format (planners.md
// §2.2): one text file per (micro-batch size, sequence length) point, and the linear
// interpolation over that grid the reference's ProfileBasedCostModel does. Decoder-only
// (GPT-like) profiles only: file names carry 7 integers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace mlsys::plan {

// The widths every file of one profile shares (the integers of its file names).
struct ProfileMetadata {
  int64_t tp = 1;
  int64_t hidden = 0;
  int64_t heads = 0;
  int64_t kv_channels = 0;
  int64_t ffn = 0;
  friend bool operator==(const ProfileMetadata&, const ProfileMetadata&) = default;
};

// What one file holds: one transformer layer (the reference's "encoder" lines of a
// decoder-only model) and the post-processing (final norm, LM head, loss) on `mbs` rows of
// `seqlen` tokens. Times in ms, memory in MB (1e6 bytes).
struct ProfileRecord {
  int64_t mbs = 0;
  int64_t seqlen = 0;
  double forward_encoder_ms = 0, backward_encoder_ms = 0;
  double forward_postprocess_ms = 0, backward_postprocess_ms = 0;
  double encoder_activation_mb = 0;       // kept from the layer's forward until its backward
  double peak_encoder_activation_mb = 0;  // high-water above what was resident before the forward
  double model_embedding_mb = 0;          // parameters of the embedding (as trained)
  double model_encoder_mb = 0;            // parameters of one layer (as trained)
};

enum class ProfileMetric {
  forward_encoder,
  backward_encoder,
  forward_postprocess,
  backward_postprocess,
  encoder_activation,
  peak_encoder_activation,
};

// "tp1_hs64_ah4_kv16_ffhs256_seqlen128_mbs4.txt": the 7 integers tp, hs, ah, kv, ffhs,
// seqlen, mbs in the reference's order (it reads them with re.findall(r"\d+")).
std::string profile_file_name(const ProfileMetadata& meta, int64_t seqlen, int64_t mbs);
// The file's text, the reference's "<key> <value>" lines.
std::string profile_file_text(const ProfileRecord& r);

class MeasuredProfile {
 public:
  // Reads every "*.txt" file of `folder` (other files are ignored). core::InputError naming
  // the file (and line) for: a name without exactly 7 integers, a line that is not
  // "<known key> <finite number >= 0>", a missing or repeated key, files of different widths,
  // two files of one (mbs, seqlen) point, a grid with a point missing, no file at all.
  static MeasuredProfile read(const std::filesystem::path& folder);
  // From records in memory (tests, `profile`); std::invalid_argument on an incomplete grid.
  static MeasuredProfile from_records(const ProfileMetadata& meta, std::vector<ProfileRecord> records,
                                      std::string source = "profile");

  [[nodiscard]] const ProfileMetadata& metadata() const { return meta_; }
  [[nodiscard]] const std::vector<int64_t>& microbatch_sizes() const { return mbs_; }
  [[nodiscard]] const std::vector<int64_t>& seqlens() const { return seqlens_; }
  [[nodiscard]] const std::vector<ProfileRecord>& records() const { return records_; }  // mbs-major
  [[nodiscard]] const std::string& source() const { return source_; }

  // Bilinear interpolation over (mbs, seqlen) on the grid's cell around the point; below
  // the smallest grid value the first cell's plane is extended (as the reference's
  // RegularGridInterpolator extrapolates), clamped at 0. Past the largest micro-batch
  // size or sequence length: nullopt (the reference pads its grid with 1e100 there to
  // block extrapolation; here the point is refused). A dimension with one grid value is
  // constant along it.
  [[nodiscard]] std::optional<double> at(ProfileMetric m, double mbs, double seqlen) const;
  // Parameter MB of the embedding and of one layer (the mean over files, as the reference).
  [[nodiscard]] double embedding_params_mb() const { return embedding_mb_; }
  [[nodiscard]] double layer_params_mb() const { return layer_mb_; }

 private:
  [[nodiscard]] double value(ProfileMetric m, size_t i, size_t j) const;
  ProfileMetadata meta_;
  std::vector<int64_t> mbs_, seqlens_;
  std::vector<ProfileRecord> records_;  // records_[i * seqlens_.size() + j]
  double embedding_mb_ = 0, layer_mb_ = 0;
  std::string source_;
};

}  // namespace mlsys::plan
