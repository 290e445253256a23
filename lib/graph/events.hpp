// Temporal interaction streams (src, dst, t, edge features) and their loaders: TGL's
// edges.csv (+ edge/node feature files) and the JODIE CSV. Loaders reject bad rows with
// file:line (non-monotone time, bad ids, wrong column count, non-numbers) as InputError.
// No LibTorch: features are plain row-major float arrays.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mlsys::graph {

struct EventStream {
  std::vector<int64_t> src, dst;
  std::vector<double> t;        // non-decreasing
  std::vector<int8_t> ext_roll;  // TGL's 0/1/2 train/val/test column when present, else empty
  std::vector<int8_t> label;     // JODIE state_label when present, else empty
  int64_t num_nodes = 0;         // ids are in [0, num_nodes)
  int64_t num_sources = 0;       // bipartite: ids < num_sources are users (0 = unknown)
  int64_t edge_dim = 0;
  std::vector<float> edge_feat;  // size() x edge_dim, row i = event i
  int64_t node_dim = 0;
  std::vector<float> node_feat;  // num_nodes x node_dim
  std::string source;            // where it was read from (for messages)

  [[nodiscard]] size_t size() const { return src.size(); }
};

// A 2-D float matrix read from a feature file.
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> data;
};

// Node ids must be dense-ish: a loader rejects (InputError naming file:line) any id above
// min(kMaxNodeId, max(100 x number of events, 2^20)), since num_nodes = max id + 1 sizes
// every per-node table. ext_roll, when present, must be non-decreasing (0, then 1, then 2).
inline constexpr int64_t kMaxNodeId = (int64_t{1} << 31) - 1;

// "auto" picks TGL for a folder; for a CSV file the header alone decides: TGL when it has
// src, dst and time columns, JODIE when it starts user_id,item_id,timestamp,state_label.
// A header that fits neither or both is an InputError naming the file, the header found and
// the two expected; "tgl"/"jodie" force one, and a header that does not fit it is refused.
// A TGL folder holds edges.csv and optionally edge_features.{npy,bin,csv} and
// node_features.{npy,bin,csv} (a .bin node file holds exactly max id + 1 rows). Every
// feature value must be a finite float32 (InputError naming file, row and column). Loads
// poll core::stop_requested() and end with core::RuntimeFailure on a stop.
EventStream load_events(const std::filesystem::path& path, const std::string& format = "auto");
// TGL: header ",src,dst,time[,int_roll][,ext_roll]" (column 0 = edge id, which indexes the
// edge feature rows). `path` is edges.csv or its folder.
EventStream load_tgl(const std::filesystem::path& path);
// JODIE: user_id,item_id,timestamp,state_label,f1..fd (one header line). Item ids are
// shifted by max user id + 1 so both share one id space (users first).
EventStream load_jodie(const std::filesystem::path& path);

// .npy (float32/float64, 1-D or 2-D, C order; the header's shape must fit 64 bits and
// match the data bytes exactly), .bin (raw float32; `expected_rows` > 0 fixes the row count
// and the column count follows from the size) or .csv (numbers only, an optional
// non-numeric header line). Non-finite values (and float64 beyond float32) are refused.
Matrix load_matrix(const std::filesystem::path& path, int64_t expected_rows = 0);
// Writes a float32 2-D .npy atomically.
void write_npy(const std::filesystem::path& path, const std::vector<float>& data, int64_t rows, int64_t cols);

}  // namespace mlsys::graph
