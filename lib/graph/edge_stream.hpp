// Timestamped edge streams for the block store (gnnflow-stream): the seeded synthetic
// stream generator of the notes (gnnflow.md §6: Zipf popularity, repeat visits of recent
// partners, new nodes arriving, diurnal arrival rate with ties, an optional late fraction,
// a timestamp offset to trip float32) and the stream files: a binary file (32 B per event)
// and CSV (src,dst,time[,eid]). Unlike EventStream loaders, time may go backwards here:
// late edges are the store's business (LatePolicy), not bad input.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "graph/events.hpp"

namespace mlsys::graph {

struct EdgeStream {
  std::vector<int64_t> src, dst, eid;
  std::vector<double> ts;
  int64_t num_nodes = 0;  // ids are in [0, num_nodes)
  std::string source;     // where it came from (for messages)
  [[nodiscard]] size_t size() const { return src.size(); }
  // The events as an EventStream (for the T-CSR), in their order; eid must be the index.
  [[nodiscard]] EventStream to_events() const;
};

struct StreamGenConfig {
  int64_t nodes = 10000;
  int64_t edges = 1000000;
  bool bipartite = false;          // sources [0, U), destinations [U, nodes)
  double source_fraction = 0.9;    // U = source_fraction x nodes when bipartite
  double zipf_src = 1.0;           // rank exponents of source and destination popularity
  double zipf_dst = 1.0;
  double repeat_prob = 0.7;        // re-pick one of the source's last 4 partners (newest most likely)
  double new_node_fraction = 0.02; // share of source ids that arrive during the stream
  double span = 2592000;           // time units covered (30 days of seconds)
  double diurnal_amplitude = 0.5;  // rate x (1 + a sin(2 pi t / period))
  double period = 86400;
  double resolution = 1;           // times are multiples of it (ties happen)
  double time_offset = 0;          // added to every time (1.5e9: Unix seconds, where float32 fails)
  double late_fraction = 0;        // share of events whose time moves back by U(0, late_max)
  double late_max = 3600;
};

// "tiny" (1k nodes, 20k edges), "S" (10k, 1M: the notes' CI preset), "M" (1M, 20M),
// "L" (2M, 100M), "gdelt" (16k, 50M, hubs), "mag" (10M, 100M); ConfigError otherwise.
StreamGenConfig stream_preset(const std::string& name);
// Checks every field (ConfigError naming generate.<field>).
void validate(const StreamGenConfig& c);
EdgeStream generate_stream(const StreamGenConfig& c, uint64_t seed);

// The binary stream file: a 32-byte header ("MLSGFS01", u64 events, u64 num_nodes, u64 0)
// then per event little-endian u64 src, u64 dst, f64 ts, u64 eid.
inline constexpr size_t kStreamHeaderBytes = 32;
inline constexpr size_t kStreamRowBytes = 32;
void write_stream_binary(const std::filesystem::path& path, const EdgeStream& s);
// CSV with the header src,dst,time,eid; times printed exactly (shortest round-trip form).
void write_stream_csv(const std::filesystem::path& path, const EdgeStream& s);

// Reads a stream file. format "auto": binary when the file starts with the magic, CSV
// otherwise; "binary" / "csv" force one. CSV: header src,dst,time or src,dst,time,eid (eid
// defaults to the row index); every bad row is an InputError naming file:line, the column,
// what was expected and what was found; binary: naming the event index and byte offset.
// Ids must be at most min(2^31 - 1, max(100 x events, 2^20)).
EdgeStream load_stream(const std::filesystem::path& path, const std::string& format = "auto");

}  // namespace mlsys::graph
