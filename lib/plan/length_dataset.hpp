// Sample lengths of a multi-task data set (input and target token counts), read from JSONL
// or CSV with file:line errors, and a seeded FLANv2-like generator (an assumption, see bench/dynapipe/README.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mlsys::plan {

struct SampleLength {
  int64_t input = 0;   // encoder / prompt tokens
  int64_t target = 0;  // decoder / answer tokens
};

// Reads lengths. format: "auto" (by extension: .csv is CSV, anything else JSONL), "jsonl"
// or "csv". JSONL rows are objects with integer "input" and "target" (aliases
// "input_len"/"target_len"), or "input_ids"/"target_ids" arrays whose sizes are taken.
// CSV: a header naming "input" and "target" columns. InputError names file:line.
// `lines`, when given, receives the 1-based file line of each sample.
std::vector<SampleLength> load_lengths(const std::filesystem::path& path, const std::string& format = "auto",
                                       std::vector<size_t>* lines = nullptr);

// The FLANv2-like mixture (an assumption, not calibrated on FLANv2):
// zero-shot / few-shot templates with log-normal input lengths, short labels or
// log-normal targets.
struct FlanLikeConfig {
  int64_t samples = 20000;
  double zero_shot_fraction = 0.5;
  double zero_shot_median = 120.0;
  double zero_shot_sigma = 0.9;
  double few_shot_median = 700.0;
  double few_shot_sigma = 0.6;
  int64_t input_min = 8;
  int64_t input_max = 4096;
  double short_label_fraction = 0.55;
  int64_t short_label_max = 8;
  double target_median = 24.0;
  double target_sigma = 1.0;
  int64_t target_max = 1024;
};
std::vector<SampleLength> generate_flan_like(const FlanLikeConfig& cfg, uint64_t seed);

// One JSON object per line: {"input": N, "target": M}.
std::string to_jsonl(const std::vector<SampleLength>& samples);

// Clips lengths to max_seqlen as the reference implementation does: encoder-decoder
// models clip input and target to max_seqlen each; decoder-only models train on input and
// target concatenated, so the concatenation is clipped (the target kept, the input cut).
void clip_lengths(std::vector<SampleLength>& samples, int64_t max_seqlen, bool concatenated);

// Splits a stream into global batches of consecutive samples up to `tokens` tokens each
// (input + target); a sample larger than the budget forms its own batch.
std::vector<std::vector<int64_t>> split_global_batches(const std::vector<SampleLength>& samples, int64_t tokens);

}  // namespace mlsys::plan
