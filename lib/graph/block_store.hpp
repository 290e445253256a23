// GNNFlow's dynamic graph store (arXiv 2311.17410; notes gnnflow.md §1): per node a chain
// of edge blocks, oldest first, each holding (dst, eid, ts) with its [min_ts, max_ts], grown
// in place by batches grouped by source. Differences from the reference, on purpose:
// timestamps are float64 (never float32); the chain is a contiguous array of block headers
// searched by binary search on max_ts (O(log blocks), not a walk from the tail); late
// (out-of-order) edges follow a configured policy instead of aborting; block storage comes
// from an EdgePool (huge pages where allowed) and memory is accounted exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "graph/edge_pool.hpp"
#include "graph/events.hpp"
#include "graph/temporal_adjacency.hpp"

namespace mlsys::graph {

// What happens to an edge older than its source's newest edge already in the store (edges
// out of order within one batch are simply sorted: they are not late).
//  insert: put it at its place in the chain (after edges of equal time), splitting a full
//          block in two if needed; samples stay exactly those of a T-CSR over the same edges
//          sorted by time. Costs O(block + blocks) per late edge.
//  reject: drop it and count it (InsertStats::late_rejected); the chain stays append-only.
// Either way an edge older than the expiry horizon (the largest expire_before() time) is
// dropped and counted as too_old: it could never be sampled by a windowed query anyway.
enum class LatePolicy { insert, reject };

struct BlockStoreConfig {
  // Adaptive block sizing (the reference's lineardeg_adaptive): a new block gets
  // target = min(max(degree, min_block), big_block) slots, or the batch's remainder for the
  // node rounded up to a multiple of target when that is more (capped at max_block).
  // Below big_block a node's capacity doubles with each block; beyond it grows by big_block.
  int64_t min_block = 4;
  int64_t big_block = 256;
  int64_t max_block = int64_t{1} << 20;
  bool undirected = true;  // also insert dst -> src, with the same eid
  LatePolicy late = LatePolicy::insert;
  // madvise(MADV_HUGEPAGE) on the pool's mappings. Off by default: on the build VM a
  // huge-page fault costs far more than 512 small ones (first ingest of the 20M-edge preset
  // 18 s against 6 s), for 2-10 % faster sampling (bench/gnnflow/README.md).
  bool huge_pages = false;
  int64_t pool_chunk_bytes = int64_t{32} << 20;
};

// One block's header (40 B). Storage: capacity float64 ts, then capacity int64 dst, then
// capacity int64 eid, in one pool allocation (SoA, so a time search touches only ts).
struct EdgeBlock {
  double min_ts = 0, max_ts = 0;
  int64_t base = 0;  // the node's edges before this block, counted since its first edge (expired ones too)
  uint32_t size = 0, capacity = 0;
  char* data = nullptr;

  [[nodiscard]] double* ts() const { return reinterpret_cast<double*>(data); }
  [[nodiscard]] int64_t* dst() const { return reinterpret_cast<int64_t*>(data + sizeof(double) * capacity); }
  [[nodiscard]] int64_t* eid() const {
    return reinterpret_cast<int64_t*>(data + (sizeof(double) + sizeof(int64_t)) * capacity);
  }
};

// Bytes per edge slot: ts 8 + dst 8 + eid 8.
inline constexpr size_t kEdgeSlotBytes = 24;

struct InsertStats {
  int64_t batches = 0;
  int64_t edges = 0;          // directed entries stored (2 per undirected edge)
  int64_t late_inserted = 0;  // late entries placed in order (LatePolicy::insert)
  int64_t late_rejected = 0;  // late entries dropped (LatePolicy::reject)
  int64_t too_old = 0;        // entries older than the expiry horizon, dropped
  int64_t blocks_allocated = 0;
  int64_t blocks_split = 0;   // full blocks split to take a late edge
  int64_t blocks_expired = 0;
  int64_t edges_expired = 0;
};

// Exact accounting. edge_bytes = sum of capacity x 24 over live blocks; used_edge_bytes =
// sum of size x 24; header_bytes = allocated chain-array slots x sizeof(EdgeBlock);
// node_table_bytes = allocated node-table slots x sizeof(NodeChain); scratch_bytes = the
// insertion buffers. The pool's figures add alignment padding and free-listed blocks.
struct StoreMemory {
  int64_t nodes = 0, blocks = 0, edges = 0;
  size_t edge_bytes = 0, used_edge_bytes = 0;
  size_t header_bytes = 0, node_table_bytes = 0, scratch_bytes = 0;
  EdgePoolStats pool;
  [[nodiscard]] size_t metadata_bytes() const { return header_bytes + node_table_bytes; }
  [[nodiscard]] double capacity_use() const {
    return edge_bytes == 0 ? 1.0 : static_cast<double>(used_edge_bytes) / static_cast<double>(edge_bytes);
  }
};

// A node's chain: its live blocks, oldest first (ordered: each block's max_ts <= the next
// block's min_ts), and how many edges it has ever held. The newest block's storage, size
// and min_ts are mirrored here (the notes' "inline the list head in the node table"), so
// a query near the stream head reads the node entry and then the block, without the
// header array in between. One cache line per node.
struct alignas(64) NodeChain {
  std::vector<EdgeBlock> blocks;
  int64_t next_base = 0;      // base of the next block = edges ever appended
  const char* tail_data = nullptr;  // the newest block's storage (nullptr: no blocks)
  double tail_min_ts = 0;
  int64_t tail_offset = 0;    // live entries before the newest block
  uint32_t tail_size = 0, tail_capacity = 0;
  [[nodiscard]] int64_t live() const { return blocks.empty() ? 0 : next_base - blocks.front().base; }
  // Refreshes the mirror from `blocks` (after any change to them).
  void sync_tail() {
    if (blocks.empty()) {
      tail_data = nullptr, tail_size = tail_capacity = 0, tail_offset = 0, tail_min_ts = 0;
      return;
    }
    const EdgeBlock& t = blocks.back();
    tail_data = t.data, tail_size = t.size, tail_capacity = t.capacity, tail_min_ts = t.min_ts;
    tail_offset = t.base - blocks.front().base;
  }
};

class TimeIndexedBlockStore final : public TemporalAdjacency {
 public:
  explicit TimeIndexedBlockStore(BlockStoreConfig c = {});
  ~TimeIndexedBlockStore() override;
  TimeIndexedBlockStore(const TimeIndexedBlockStore&) = delete;
  TimeIndexedBlockStore& operator=(const TimeIndexedBlockStore&) = delete;

  // Inserts a batch: edge i is src[i] -> dst[i] at ts[i] with id eid[i] (and dst -> src
  // with the same id when undirected). Grouped by source, each group stably sorted by time,
  // so a T-CSR built from the same edges in the same order lists every node's edges in the
  // same order. Ids must be in [0, kMaxNodeId] and times finite (core::InputError naming
  // the batch position otherwise; nothing of the batch is inserted then).
  void insert(std::span<const int64_t> src, std::span<const int64_t> dst, std::span<const double> ts,
              std::span<const int64_t> eid);
  // Events [begin, end) of a stream, eid = event index.
  void insert(const EventStream& s, size_t begin, size_t end);

  // Frees every block whose max_ts < t (a block straddling t stays; samplers' windows hide
  // its older edges) and raises the expiry horizon to t. Returns the entries freed.
  int64_t expire_before(double t);
  [[nodiscard]] double horizon() const { return horizon_; }

  // TemporalAdjacency: positions count from the node's oldest live edge.
  [[nodiscard]] int64_t num_nodes() const override { return static_cast<int64_t>(nodes_.size()); }
  [[nodiscard]] int64_t count_before(int64_t v, double t, bool inclusive = false) const override;
  void read(int64_t v, int64_t first, int64_t n, int64_t* nbr, int64_t* eid, double* ts) const override;

  // The fast paths of the samplers (same results as count_before + read):
  // recent: v's last min(k, n) edges with ts < t (<= t when inclusive) into the first slots
  // of nbr/eid/ts, oldest first, with one search; returns how many.
  int64_t recent(int64_t v, double t, int64_t k, bool inclusive, int64_t* nbr, int64_t* eid, double* ts) const;
  // gather: the edges at ascending positions pos[0..n) (one search, then a forward walk).
  void gather(int64_t v, const int64_t* pos, int64_t n, int64_t* nbr, int64_t* eid, double* ts) const override;

  [[nodiscard]] int64_t degree(int64_t v) const;  // live entries of v
  [[nodiscard]] int64_t num_edges() const { return live_edges_; }  // live directed entries
  [[nodiscard]] std::span<const EdgeBlock> blocks(int64_t v) const;
  [[nodiscard]] const std::vector<NodeChain>& chains() const { return nodes_; }
  [[nodiscard]] const BlockStoreConfig& config() const { return cfg_; }
  [[nodiscard]] const InsertStats& stats() const { return stats_; }
  [[nodiscard]] StoreMemory memory() const;

  // The first broken invariant ("" when all hold): ranges ordered within and across blocks,
  // 0 < size <= capacity, bases consistent, the sum of sizes = the degree, the live total.
  [[nodiscard]] std::string check_invariants() const;

  // The capacity the sizing rule gives a new block for a node of `degree` live entries
  // with `remaining` entries of the batch still to place.
  [[nodiscard]] uint32_t block_capacity(int64_t degree, int64_t remaining) const;

 private:
  void ensure_nodes(int64_t n);
  void append_group(int64_t v, const double* ts, const int64_t* dst, const int64_t* eid, size_t m);
  void insert_late(NodeChain& c, double ts, int64_t dst, int64_t eid);
  EdgeBlock new_block(uint32_t capacity, int64_t base);
  void free_block(const EdgeBlock& b);

  BlockStoreConfig cfg_;
  EdgePool pool_;
  std::vector<NodeChain> nodes_;
  int64_t live_edges_ = 0;
  double horizon_ = -std::numeric_limits<double>::infinity();
  InsertStats stats_;
  // Insertion scratch (kept between batches): per-node counters (zero outside insert) and
  // the grouped columns.
  std::vector<int64_t> count_;
  std::vector<int64_t> touched_;
  std::vector<int64_t> g_dst_, g_eid_;
  std::vector<double> g_ts_;
  std::vector<uint32_t> perm_;
};

}  // namespace mlsys::graph
