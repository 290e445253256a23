// The time-indexed block store: batch insertion grouped by source, adaptive block sizing,
// late-edge placement, expiry, lookups by binary search over the block index.
#include "graph/block_store.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/error.hpp"

namespace mlsys::graph {
namespace {

// The first block whose max_ts >= t (> t when inclusive): every block before it lies
// entirely before t (at or before t).
const EdgeBlock* first_block_reaching(std::span<const EdgeBlock> bl, double t, bool inclusive) {
  const EdgeBlock* b = bl.data();
  const EdgeBlock* e = b + bl.size();
  if (inclusive) return std::upper_bound(b, e, t, [](double x, const EdgeBlock& k) { return x < k.max_ts; });
  return std::lower_bound(b, e, t, [](const EdgeBlock& k, double x) { return k.max_ts < x; });
}

}  // namespace

TimeIndexedBlockStore::TimeIndexedBlockStore(BlockStoreConfig c)
    : cfg_(c), pool_(static_cast<size_t>(std::max<int64_t>(c.pool_chunk_bytes, 4096)), c.huge_pages) {
  if (cfg_.min_block < 1 || cfg_.big_block < cfg_.min_block || cfg_.max_block < cfg_.big_block ||
      cfg_.max_block > (int64_t{1} << 30)) {
    throw core::ConfigError("block store: expected 1 <= min_block <= big_block <= max_block <= 2^30, found " +
                            std::to_string(cfg_.min_block) + ", " + std::to_string(cfg_.big_block) + ", " +
                            std::to_string(cfg_.max_block));
  }
}

TimeIndexedBlockStore::~TimeIndexedBlockStore() = default;  // the pool unmaps everything

uint32_t TimeIndexedBlockStore::block_capacity(int64_t degree, int64_t remaining) const {
  const int64_t target = std::min(std::max(degree, cfg_.min_block), cfg_.big_block);
  int64_t cap = target;
  if (remaining > target) cap = (remaining + target - 1) / target * target;
  return static_cast<uint32_t>(std::min(cap, std::max(cfg_.max_block / target * target, target)));
}

EdgeBlock TimeIndexedBlockStore::new_block(uint32_t capacity, int64_t base) {
  EdgeBlock b;
  b.capacity = capacity;
  b.base = base;
  b.data = static_cast<char*>(pool_.allocate(kEdgeSlotBytes * capacity));
  ++stats_.blocks_allocated;
  return b;
}

void TimeIndexedBlockStore::free_block(const EdgeBlock& b) { pool_.release(b.data, kEdgeSlotBytes * b.capacity); }

void TimeIndexedBlockStore::ensure_nodes(int64_t n) {
  if (n <= num_nodes()) return;
  nodes_.resize(static_cast<size_t>(n));
  count_.resize(static_cast<size_t>(n), 0);
}

void TimeIndexedBlockStore::insert(const EventStream& s, size_t begin, size_t end) {
  end = std::min(end, s.size());
  begin = std::min(begin, end);
  std::vector<int64_t> eid(end - begin);
  std::iota(eid.begin(), eid.end(), static_cast<int64_t>(begin));
  const auto n = end - begin;
  insert(std::span(s.src).subspan(begin, n), std::span(s.dst).subspan(begin, n), std::span(s.t).subspan(begin, n), eid);
}

void TimeIndexedBlockStore::insert(std::span<const int64_t> src, std::span<const int64_t> dst,
                                   std::span<const double> ts, std::span<const int64_t> eid) {
  const size_t n = src.size();
  if (dst.size() != n || ts.size() != n || eid.size() != n) {
    throw core::InputError("block store insert: columns of different lengths (src " + std::to_string(n) + ", dst " +
                           std::to_string(dst.size()) + ", ts " + std::to_string(ts.size()) + ", eid " +
                           std::to_string(eid.size()) + ")");
  }
  int64_t max_id = -1;
  for (size_t i = 0; i < n; ++i) {
    for (int64_t id : {src[i], dst[i]}) {
      if (id < 0 || id > kMaxNodeId) {
        throw core::InputError("block store insert: edge " + std::to_string(i) + " of the batch: expected a node id in [0, " +
                               std::to_string(kMaxNodeId) + "], found " + std::to_string(id));
      }
      max_id = std::max(max_id, id);
    }
    if (!std::isfinite(ts[i])) {
      throw core::InputError("block store insert: edge " + std::to_string(i) + " of the batch: expected a finite time, found " +
                             std::to_string(ts[i]));
    }
  }
  ++stats_.batches;
  if (n == 0) return;
  ensure_nodes(max_id + 1);

  // Counting sort by source, stable in arrival order; per event src -> dst first, then
  // dst -> src (the T-CSR's order, which matters for self-loops only through eid order).
  touched_.clear();
  auto see = [&](int64_t u) {
    if (count_[static_cast<size_t>(u)]++ == 0) touched_.push_back(u);
  };
  for (size_t i = 0; i < n; ++i) {
    see(src[i]);
    if (cfg_.undirected) see(dst[i]);
  }
  const size_t m = cfg_.undirected ? 2 * n : n;
  g_dst_.resize(m), g_eid_.resize(m), g_ts_.resize(m);
  std::vector<int64_t> starts(touched_.size() + 1);
  int64_t off = 0;
  for (size_t j = 0; j < touched_.size(); ++j) {
    auto& c = count_[static_cast<size_t>(touched_[j])];
    starts[j] = off;
    off += c;
    c = starts[j];  // now the write cursor
  }
  starts.back() = off;
  auto put = [&](int64_t u, int64_t w, double t, int64_t e) {
    const auto p = static_cast<size_t>(count_[static_cast<size_t>(u)]++);
    g_dst_[p] = w;
    g_eid_[p] = e;
    g_ts_[p] = t;
  };
  for (size_t i = 0; i < n; ++i) {
    put(src[i], dst[i], ts[i], eid[i]);
    if (cfg_.undirected) put(dst[i], src[i], ts[i], eid[i]);
  }
  for (size_t j = 0; j < touched_.size(); ++j) {
    const int64_t u = touched_[j];
    count_[static_cast<size_t>(u)] = 0;
    const auto b = static_cast<size_t>(starts[j]);
    const auto len = static_cast<size_t>(starts[j + 1] - starts[j]);
    double* t = g_ts_.data() + b;
    if (!std::is_sorted(t, t + len)) {
      // Stable by time: equal times keep their arrival order.
      perm_.resize(len);
      std::iota(perm_.begin(), perm_.end(), 0u);
      std::stable_sort(perm_.begin(), perm_.end(), [&](uint32_t x, uint32_t y) { return t[x] < t[y]; });
      std::vector<int64_t> d2(len), e2(len);
      std::vector<double> t2(len);
      for (size_t i = 0; i < len; ++i) {
        d2[i] = g_dst_[b + perm_[i]];
        e2[i] = g_eid_[b + perm_[i]];
        t2[i] = t[perm_[i]];
      }
      std::copy(d2.begin(), d2.end(), g_dst_.begin() + static_cast<std::ptrdiff_t>(b));
      std::copy(e2.begin(), e2.end(), g_eid_.begin() + static_cast<std::ptrdiff_t>(b));
      std::copy(t2.begin(), t2.end(), t);
    }
    append_group(u, t, g_dst_.data() + b, g_eid_.data() + b, len);
  }
}

void TimeIndexedBlockStore::append_group(int64_t v, const double* ts, const int64_t* dst, const int64_t* eid, size_t m) {
  NodeChain& c = nodes_[static_cast<size_t>(v)];
  size_t i = 0;
  // Older than the expiry horizon: a prefix, since the group is sorted.
  const size_t old = static_cast<size_t>(std::lower_bound(ts, ts + m, horizon_) - ts);
  stats_.too_old += static_cast<int64_t>(old);
  i = old;
  if (!c.blocks.empty()) {
    // Late: older than the node's newest stored edge (ties are not late: they go after).
    const double newest = c.blocks.back().max_ts;
    const size_t late_end = static_cast<size_t>(std::lower_bound(ts + i, ts + m, newest) - ts);
    if (cfg_.late == LatePolicy::reject) {
      stats_.late_rejected += static_cast<int64_t>(late_end - i);
    } else {
      for (size_t j = i; j < late_end; ++j) insert_late(c, ts[j], dst[j], eid[j]);
      stats_.late_inserted += static_cast<int64_t>(late_end - i);
      stats_.edges += static_cast<int64_t>(late_end - i);
      live_edges_ += static_cast<int64_t>(late_end - i);
    }
    i = late_end;
  }
  while (i < m) {
    if (c.blocks.empty() || c.blocks.back().size == c.blocks.back().capacity) {
      c.blocks.push_back(new_block(block_capacity(c.live(), static_cast<int64_t>(m - i)), c.next_base));
    }
    EdgeBlock& b = c.blocks.back();
    const size_t take = std::min<size_t>(b.capacity - b.size, m - i);
    std::memcpy(b.ts() + b.size, ts + i, take * sizeof(double));
    std::memcpy(b.dst() + b.size, dst + i, take * sizeof(int64_t));
    std::memcpy(b.eid() + b.size, eid + i, take * sizeof(int64_t));
    if (b.size == 0) b.min_ts = ts[i];
    b.size += static_cast<uint32_t>(take);
    b.max_ts = ts[i + take - 1];
    c.next_base += static_cast<int64_t>(take);
    live_edges_ += static_cast<int64_t>(take);
    stats_.edges += static_cast<int64_t>(take);
    i += take;
  }
  c.sync_tail();
}

void TimeIndexedBlockStore::insert_late(NodeChain& c, double ts, int64_t dst, int64_t eid) {
  // The first block with max_ts > ts exists (ts < the newest time); the entry goes after
  // every entry of time <= ts, so equal times keep arrival order.
  auto& bl = c.blocks;
  auto it = std::upper_bound(bl.begin(), bl.end(), ts, [](double x, const EdgeBlock& b) { return x < b.max_ts; });
  auto bi = static_cast<size_t>(it - bl.begin());
  if (bl[bi].size == bl[bi].capacity) {
    if (bl[bi].size == 1) {
      // A full capacity-1 block (min_block 1): its one entry is newer than ts, so the edge
      // gets a block of its own just before it.
      EdgeBlock own = new_block(1, bl[bi].base);
      own.ts()[0] = ts, own.dst()[0] = dst, own.eid()[0] = eid;
      own.size = 1, own.min_ts = own.max_ts = ts;
      bl.insert(bl.begin() + static_cast<std::ptrdiff_t>(bi), own);
      for (size_t j = bi + 1; j < bl.size(); ++j) ++bl[j].base;
      ++c.next_base;
      return;
    }
    // Split the full block: its upper half moves to a new block of the same capacity, and
    // the edge goes to the half that holds its place.
    EdgeBlock& full = bl[bi];
    const auto p = static_cast<uint32_t>(std::upper_bound(full.ts(), full.ts() + full.size, ts) - full.ts());
    const uint32_t h = full.size / 2;
    EdgeBlock upper = new_block(full.capacity, full.base + h);
    const uint32_t moved = full.size - h;
    std::memcpy(upper.ts(), full.ts() + h, moved * sizeof(double));
    std::memcpy(upper.dst(), full.dst() + h, moved * sizeof(int64_t));
    std::memcpy(upper.eid(), full.eid() + h, moved * sizeof(int64_t));
    upper.size = moved;
    upper.min_ts = upper.ts()[0];
    upper.max_ts = full.max_ts;
    full.size = h;
    full.max_ts = full.ts()[h - 1];
    bl.insert(bl.begin() + static_cast<std::ptrdiff_t>(bi) + 1, upper);
    ++stats_.blocks_split;
    if (p > h) ++bi;
  }
  EdgeBlock& b = bl[bi];
  const auto p = static_cast<uint32_t>(std::upper_bound(b.ts(), b.ts() + b.size, ts) - b.ts());
  const uint32_t tail = b.size - p;
  std::memmove(b.ts() + p + 1, b.ts() + p, tail * sizeof(double));
  std::memmove(b.dst() + p + 1, b.dst() + p, tail * sizeof(int64_t));
  std::memmove(b.eid() + p + 1, b.eid() + p, tail * sizeof(int64_t));
  b.ts()[p] = ts, b.dst()[p] = dst, b.eid()[p] = eid;
  ++b.size;
  b.min_ts = b.ts()[0];
  b.max_ts = b.ts()[b.size - 1];
  for (size_t j = bi + 1; j < bl.size(); ++j) ++bl[j].base;
  ++c.next_base;
}

int64_t TimeIndexedBlockStore::expire_before(double t) {
  horizon_ = std::max(horizon_, t);
  int64_t freed = 0;
  for (NodeChain& c : nodes_) {
    size_t k = 0;
    while (k < c.blocks.size() && c.blocks[k].max_ts < t) {
      freed += c.blocks[k].size;
      free_block(c.blocks[k]);
      ++k;
    }
    if (k > 0) {
      c.blocks.erase(c.blocks.begin(), c.blocks.begin() + static_cast<std::ptrdiff_t>(k));
      stats_.blocks_expired += static_cast<int64_t>(k);
      c.sync_tail();
    }
  }
  live_edges_ -= freed;
  stats_.edges_expired += freed;
  return freed;
}

int64_t TimeIndexedBlockStore::degree(int64_t v) const {
  if (v < 0 || v >= num_nodes()) return 0;
  return nodes_[static_cast<size_t>(v)].live();
}

std::span<const EdgeBlock> TimeIndexedBlockStore::blocks(int64_t v) const {
  if (v < 0 || v >= num_nodes()) return {};
  return nodes_[static_cast<size_t>(v)].blocks;
}

int64_t TimeIndexedBlockStore::count_before(int64_t v, double t, bool inclusive) const {
  if (v < 0 || v >= num_nodes()) return 0;
  const NodeChain& c = nodes_[static_cast<size_t>(v)];
  if (c.tail_data == nullptr) return 0;
  if (inclusive ? c.tail_min_ts <= t : c.tail_min_ts < t) {  // ends in the newest block
    const auto* x = reinterpret_cast<const double*>(c.tail_data);
    return c.tail_offset + ((inclusive ? std::upper_bound(x, x + c.tail_size, t) : std::lower_bound(x, x + c.tail_size, t)) - x);
  }
  const std::span<const EdgeBlock> bl = c.blocks;
  const EdgeBlock* b = first_block_reaching(bl, t, inclusive);
  if (b == bl.data() + bl.size()) return c.live();
  const double* ts = b->ts();
  const double* p = inclusive ? std::upper_bound(ts, ts + b->size, t) : std::lower_bound(ts, ts + b->size, t);
  return (b->base - bl.front().base) + (p - ts);
}

void TimeIndexedBlockStore::read(int64_t v, int64_t first, int64_t n, int64_t* nbr, int64_t* eid, double* ts) const {
  if (n <= 0) return;
  const std::span<const EdgeBlock> bl = nodes_[static_cast<size_t>(v)].blocks;
  const int64_t pos = bl.front().base + first;
  // The block holding position `first`: the last one whose base <= pos.
  auto it = std::upper_bound(bl.begin(), bl.end(), pos, [](int64_t x, const EdgeBlock& b) { return x < b.base; });
  size_t bi = static_cast<size_t>(it - bl.begin()) - 1;
  auto off = static_cast<uint32_t>(pos - bl[bi].base);
  int64_t done = 0;
  while (done < n) {
    const EdgeBlock& b = bl[bi];
    const auto take = static_cast<uint32_t>(std::min<int64_t>(b.size - off, n - done));
    std::memcpy(nbr + done, b.dst() + off, take * sizeof(int64_t));
    std::memcpy(eid + done, b.eid() + off, take * sizeof(int64_t));
    std::memcpy(ts + done, b.ts() + off, take * sizeof(double));
    done += take;
    ++bi;
    off = 0;
  }
}

int64_t TimeIndexedBlockStore::recent(int64_t v, double t, int64_t k, bool inclusive, int64_t* nbr, int64_t* eid,
                                      double* ts) const {
  if (v < 0 || v >= num_nodes() || k <= 0) return 0;
  const NodeChain& c = nodes_[static_cast<size_t>(v)];
  if (c.tail_data == nullptr) return 0;
  if (inclusive ? c.tail_min_ts <= t : c.tail_min_ts < t) {
    // The answer ends in the newest block: found from the node entry alone when the k
    // newest candidates all lie in that block.
    const auto* x = reinterpret_cast<const double*>(c.tail_data);
    const int64_t p = (inclusive ? std::upper_bound(x, x + c.tail_size, t) : std::lower_bound(x, x + c.tail_size, t)) - x;
    const int64_t take = std::min(k, c.tail_offset + p);
    if (take <= p) {
      const auto from = static_cast<size_t>(p - take);
      const auto n = static_cast<size_t>(take);
      const auto* dsts = reinterpret_cast<const int64_t*>(c.tail_data + sizeof(double) * c.tail_capacity);
      const auto* eids = reinterpret_cast<const int64_t*>(c.tail_data + (sizeof(double) + sizeof(int64_t)) * c.tail_capacity);
      std::memcpy(nbr, dsts + from, n * sizeof(int64_t));
      std::memcpy(eid, eids + from, n * sizeof(int64_t));
      std::memcpy(ts, x + from, n * sizeof(double));
      return take;
    }
  }
  const std::span<const EdgeBlock> bl = c.blocks;
  // Queries near the stream head land in the newest block: try it before searching.
  const EdgeBlock& tail = bl.back();
  const bool in_tail = inclusive ? tail.min_ts <= t : tail.min_ts < t;
  const EdgeBlock* b = in_tail ? (tail.max_ts < t || (inclusive && tail.max_ts == t) ? bl.data() + bl.size() : &tail)
                               : first_block_reaching(bl, t, inclusive);
  int64_t p = 0;  // entries of *b before t
  if (b == bl.data() + bl.size()) {
    --b;
    p = b->size;
  } else {
    const double* x = b->ts();
    p = (inclusive ? std::upper_bound(x, x + b->size, t) : std::lower_bound(x, x + b->size, t)) - x;
  }
  const int64_t deg = (b->base - bl.front().base) + p;
  const int64_t take = std::min(k, deg);
  // Fill slots [0, take) from the back, block by block.
  int64_t left = take;
  while (left > 0) {
    if (p == 0) {
      --b;
      p = b->size;
      continue;
    }
    const int64_t n = std::min(left, p);
    const auto from = static_cast<size_t>(p - n);
    const auto to = static_cast<size_t>(left - n);
    std::memcpy(nbr + to, b->dst() + from, static_cast<size_t>(n) * sizeof(int64_t));
    std::memcpy(eid + to, b->eid() + from, static_cast<size_t>(n) * sizeof(int64_t));
    std::memcpy(ts + to, b->ts() + from, static_cast<size_t>(n) * sizeof(double));
    left -= n;
    p -= n;
  }
  return take;
}

void TimeIndexedBlockStore::gather(int64_t v, const int64_t* pos, int64_t n, int64_t* nbr, int64_t* eid, double* ts) const {
  if (n <= 0) return;
  const NodeChain& c = nodes_[static_cast<size_t>(v)];
  if (pos[0] >= c.tail_offset) {  // all in the newest block (positions ascend)
    const auto* x = reinterpret_cast<const double*>(c.tail_data);
    const auto* dsts = reinterpret_cast<const int64_t*>(c.tail_data + sizeof(double) * c.tail_capacity);
    const auto* eids = reinterpret_cast<const int64_t*>(c.tail_data + (sizeof(double) + sizeof(int64_t)) * c.tail_capacity);
    for (int64_t j = 0; j < n; ++j) {
      const auto q = static_cast<size_t>(pos[j] - c.tail_offset);
      nbr[j] = dsts[q], eid[j] = eids[q], ts[j] = x[q];
    }
    return;
  }
  const std::span<const EdgeBlock> bl = c.blocks;
  const int64_t base0 = bl.front().base;
  auto it = std::upper_bound(bl.begin(), bl.end(), base0 + pos[0], [](int64_t x, const EdgeBlock& b) { return x < b.base; });
  size_t bi = static_cast<size_t>(it - bl.begin()) - 1;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t q = base0 + pos[j];
    while (q >= bl[bi].base + bl[bi].size) ++bi;
    const auto off = static_cast<size_t>(q - bl[bi].base);
    nbr[j] = bl[bi].dst()[off];
    eid[j] = bl[bi].eid()[off];
    ts[j] = bl[bi].ts()[off];
  }
}

StoreMemory TimeIndexedBlockStore::memory() const {
  StoreMemory m;
  m.nodes = num_nodes();
  m.edges = live_edges_;
  for (const NodeChain& c : nodes_) {
    m.blocks += static_cast<int64_t>(c.blocks.size());
    m.header_bytes += c.blocks.capacity() * sizeof(EdgeBlock);
    for (const EdgeBlock& b : c.blocks) {
      m.edge_bytes += kEdgeSlotBytes * b.capacity;
      m.used_edge_bytes += kEdgeSlotBytes * b.size;
    }
  }
  m.node_table_bytes = nodes_.capacity() * sizeof(NodeChain);
  m.scratch_bytes = count_.capacity() * sizeof(int64_t) + touched_.capacity() * sizeof(int64_t) +
                    (g_dst_.capacity() + g_eid_.capacity()) * sizeof(int64_t) + g_ts_.capacity() * sizeof(double) +
                    perm_.capacity() * sizeof(uint32_t);
  m.pool = pool_.stats();
  return m;
}

std::string TimeIndexedBlockStore::check_invariants() const {
  int64_t total = 0;
  for (size_t v = 0; v < nodes_.size(); ++v) {
    const NodeChain& c = nodes_[v];
    const std::string at = "node " + std::to_string(v);
    int64_t sum = 0;
    for (size_t k = 0; k < c.blocks.size(); ++k) {
      const EdgeBlock& b = c.blocks[k];
      const std::string bk = at + " block " + std::to_string(k);
      if (b.size == 0 || b.size > b.capacity) return bk + ": size " + std::to_string(b.size) + " not in [1, capacity " + std::to_string(b.capacity) + "]";
      if (b.min_ts != b.ts()[0] || b.max_ts != b.ts()[b.size - 1]) return bk + ": [min_ts, max_ts] does not match its first and last times";
      if (!std::is_sorted(b.ts(), b.ts() + b.size)) return bk + ": times out of order";
      if (k > 0) {
        const EdgeBlock& p = c.blocks[k - 1];
        if (p.max_ts > b.min_ts) return bk + ": min_ts below the previous block's max_ts";
        if (p.base + p.size != b.base) return bk + ": base is not the previous base + size";
      }
      sum += b.size;
    }
    if (sum != c.live()) return at + ": sum of sizes " + std::to_string(sum) + " != degree " + std::to_string(c.live());
    if (!c.blocks.empty() && c.blocks.back().base + c.blocks.back().size != c.next_base) return at + ": next_base mismatch";
    NodeChain mirror;
    mirror.blocks = c.blocks;
    mirror.sync_tail();
    if (mirror.tail_data != c.tail_data || mirror.tail_size != c.tail_size || mirror.tail_capacity != c.tail_capacity ||
        mirror.tail_min_ts != c.tail_min_ts || mirror.tail_offset != c.tail_offset) {
      return at + ": the node entry's copy of the newest block is stale";
    }
    total += sum;
  }
  if (total != live_edges_) return "live total " + std::to_string(live_edges_) + " != sum of degrees " + std::to_string(total);
  return {};
}

}  // namespace mlsys::graph
