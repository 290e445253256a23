// HDF5 artifacts: every file carries the root attributes program, version, git_commit,
// created (ISO-8601 UTC), command, command_line and config (the resolved JSON), and holds datasets of float32,
// float64, int64 or strings in groups by content ("/metrics/loss", "/params/w").
// Writes are atomic (AtomicFile): nothing replaces the old file until commit().
// Readable with h5dump and h5py; no knowledge of this code is needed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace mlsys::core {

// What every artifact's header records (core/artifact.hpp builds it from a run's options):
// HDF5 files carry it as root attributes program, version, git_commit, created, command,
// command_line and config; JSON artifacts as the same top-level keys.
struct ArtifactInfo {
  std::string program;       // "tgnn-train"
  std::string config_json;   // the resolved config, serialized
  std::string command;       // the subcommand ("fit"); "" = not recorded
  std::string command_line;  // the whole command line; "" = not recorded
};

// "2026-12-07T21:52:16Z": the `created` of every artifact header.
std::string utc_timestamp();

enum class H5Type { f32, f64, i64, string, other };

class H5Writer {
 public:
  H5Writer(const std::filesystem::path& path, const ArtifactInfo& info);
  H5Writer(const H5Writer&) = delete;
  H5Writer& operator=(const H5Writer&) = delete;
  ~H5Writer();  // without commit(): closes and removes the temporary

  // `name` is a path such as "/metrics/loss"; missing groups are created. An empty shape
  // means a 1-D dataset of data.size() elements. The product of shape must equal data.size().
  void write(const std::string& name, std::span<const float> data, std::vector<uint64_t> shape = {});
  void write(const std::string& name, std::span<const double> data, std::vector<uint64_t> shape = {});
  void write(const std::string& name, std::span<const int64_t> data, std::vector<uint64_t> shape = {});
  void write_strings(const std::string& name, const std::vector<std::string>& values);
  // Attributes on a group or dataset that exists ("/" for the root).
  void set_attr(const std::string& object, const std::string& attr, const std::string& value);
  void set_attr(const std::string& object, const std::string& attr, double value);
  void set_attr(const std::string& object, const std::string& attr, int64_t value);

  void commit();
  [[nodiscard]] const std::filesystem::path& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class H5Reader {
 public:
  // InputError naming the file when it is missing or not an HDF5 file.
  explicit H5Reader(const std::filesystem::path& path);
  H5Reader(const H5Reader&) = delete;
  H5Reader& operator=(const H5Reader&) = delete;
  ~H5Reader();

  [[nodiscard]] bool has(const std::string& name) const;
  [[nodiscard]] std::vector<uint64_t> shape(const std::string& name) const;
  [[nodiscard]] H5Type type(const std::string& name) const;
  // Each throws InputError (file, dataset, expected vs found) on a missing dataset or a
  // type that does not convert (f32 <-> f64 convert; integers do not become floats).
  [[nodiscard]] std::vector<float> read_f32(const std::string& name) const;
  [[nodiscard]] std::vector<double> read_f64(const std::string& name) const;
  [[nodiscard]] std::vector<int64_t> read_i64(const std::string& name) const;
  [[nodiscard]] std::vector<std::string> read_strings(const std::string& name) const;
  [[nodiscard]] std::string attr_string(const std::string& object, const std::string& attr) const;
  [[nodiscard]] double attr_double(const std::string& object, const std::string& attr) const;
  [[nodiscard]] int64_t attr_int(const std::string& object, const std::string& attr) const;
  // Names of the members of a group.
  [[nodiscard]] std::vector<std::string> list(const std::string& group) const;
  [[nodiscard]] const std::filesystem::path& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlsys::core
