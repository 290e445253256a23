// The synthetic edge-stream generator and the stream file formats (binary, CSV).
#include "graph/edge_stream.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <numbers>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/signals.hpp"
#include "graph/csv_text.hpp"

namespace mlsys::graph {
namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'M', 'L', 'S', 'G', 'F', 'S', '0', '1'};

// splitmix64: a small, fast, well-mixed generator; the stream depends on the seed alone.
struct SplitMix {
  uint64_t x;
  uint64_t next() {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  int64_t below(int64_t n) { return static_cast<int64_t>(unit() * static_cast<double>(n)); }
};

// Zipf over ranks 1..n (weight r^-s) mapped to ids first + perm[r - 1]: a cumulative table
// searched by bisection.
struct Zipf {
  std::vector<double> cum;
  std::vector<int64_t> id;
  Zipf(int64_t first, int64_t n, double s, SplitMix& rng) : cum(static_cast<size_t>(n)), id(static_cast<size_t>(n)) {
    double acc = 0;
    for (int64_t r = 0; r < n; ++r) cum[static_cast<size_t>(r)] = acc += std::pow(static_cast<double>(r + 1), -s);
    for (int64_t r = 0; r < n; ++r) id[static_cast<size_t>(r)] = first + r;
    for (int64_t r = n - 1; r > 0; --r) std::swap(id[static_cast<size_t>(r)], id[static_cast<size_t>(rng.below(r + 1))]);
  }
  int64_t draw(SplitMix& rng) const {
    const double u = rng.unit() * cum.back();
    auto it = std::upper_bound(cum.begin(), cum.end(), u);
    if (it == cum.end()) --it;
    return id[static_cast<size_t>(it - cum.begin())];
  }
};

void put_u64(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 8);
}
uint64_t get_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string shortest(double v) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, p) : std::to_string(v);
}

int64_t id_limit(size_t events) {
  return std::min<int64_t>(kMaxNodeId, std::max<int64_t>(100 * static_cast<int64_t>(events), int64_t{1} << 20));
}

EdgeStream load_binary(const fs::path& path, const std::string& bytes) {
  const std::string f = path.string();
  if (bytes.size() < kStreamHeaderBytes || std::memcmp(bytes.data(), kMagic, 8) != 0) {
    throw core::InputError(f + ": expected a binary stream starting with \"MLSGFS01\" and a 32-byte header, found " +
                           (bytes.size() < kStreamHeaderBytes ? std::to_string(bytes.size()) + " bytes"
                                                              : "the magic \"" + core::excerpt(std::string_view(bytes).substr(0, 8)) + "\""));
  }
  const uint64_t n = get_u64(bytes.data() + 8);
  const uint64_t nodes = get_u64(bytes.data() + 16);
  const uint64_t body = bytes.size() - kStreamHeaderBytes;
  if (n > body / kStreamRowBytes || n * kStreamRowBytes != body) {
    throw core::InputError(f + ": header says " + std::to_string(n) + " events (" + std::to_string(kStreamRowBytes) +
                           " bytes each), found " + std::to_string(body) + " bytes after the header");
  }
  const int64_t limit = id_limit(static_cast<size_t>(n));
  if (nodes > static_cast<uint64_t>(limit) + 1) {
    throw core::InputError(f + ": header num_nodes: expected at most " + std::to_string(limit + 1) + ", found " + std::to_string(nodes));
  }
  EdgeStream s;
  s.source = f;
  s.num_nodes = static_cast<int64_t>(nodes);
  s.src.resize(n), s.dst.resize(n), s.ts.resize(n), s.eid.resize(n);
  for (uint64_t i = 0; i < n; ++i) {
    const char* p = bytes.data() + kStreamHeaderBytes + i * kStreamRowBytes;
    const std::string at = f + ": event " + std::to_string(i) + " (byte " + std::to_string(kStreamHeaderBytes + i * kStreamRowBytes) + "): ";
    const uint64_t a = get_u64(p), b = get_u64(p + 8), e = get_u64(p + 24);
    double t = 0;
    std::memcpy(&t, p + 16, 8);
    for (uint64_t id : {a, b}) {
      if (id >= nodes) throw core::InputError(at + "expected a node id below num_nodes " + std::to_string(nodes) + ", found " + std::to_string(id));
    }
    if (!std::isfinite(t)) throw core::InputError(at + "expected a finite time, found " + shortest(t));
    if (e > static_cast<uint64_t>(INT64_MAX)) throw core::InputError(at + "expected an eid below 2^63, found " + std::to_string(e));
    s.src[i] = static_cast<int64_t>(a), s.dst[i] = static_cast<int64_t>(b), s.ts[i] = t, s.eid[i] = static_cast<int64_t>(e);
    if ((i & 0xfffff) == 0 && core::stop_requested()) throw core::RuntimeFailure(f + ": stopped while reading");
  }
  return s;
}

EdgeStream load_csv(const fs::path& path, std::string text) {
  Lines lines{std::move(text)};
  std::string_view line;
  if (!lines.next(line)) throw core::InputError(path.string() + ": expected a header src,dst,time[,eid], found an empty file");
  const auto header = split_commas(line);
  const bool with_eid = header.size() == 4 && header[3] == "eid";
  if (header.size() < 3 || header.size() > 4 || header[0] != "src" || header[1] != "dst" || header[2] != "time" ||
      (header.size() == 4 && !with_eid)) {
    bad_line(path, lines.number, "expected the header src,dst,time or src,dst,time,eid, found '" + core::excerpt(line) + "'");
  }
  EdgeStream s;
  s.source = path.string();
  int64_t max_id = -1;
  size_t max_line = 0;
  while (lines.next(line)) {
    const auto cols = split_commas(line);
    if (cols.size() != header.size()) {
      bad_line(path, lines.number, "expected " + std::to_string(header.size()) + " columns, found " + std::to_string(cols.size()));
    }
    const int64_t a = parse_id(path, lines.number, "src", cols[0]);
    const int64_t b = parse_id(path, lines.number, "dst", cols[1]);
    double t = 0;
    if (!parse_double(cols[2], t)) {
      bad_line(path, lines.number, "column 'time': expected a finite number, found '" + core::excerpt(cols[2]) + "'");
    }
    const int64_t e = with_eid ? parse_id(path, lines.number, "eid", cols[3]) : static_cast<int64_t>(s.size());
    if (std::max(a, b) > max_id) max_id = std::max(a, b), max_line = lines.number;
    s.src.push_back(a), s.dst.push_back(b), s.ts.push_back(t), s.eid.push_back(e);
    if ((s.size() & 0xfffff) == 0 && core::stop_requested()) throw core::RuntimeFailure(path.string() + ": stopped while reading");
  }
  if (max_id > id_limit(s.size())) {
    bad_line(path, max_line, "node id " + std::to_string(max_id) + " is above the limit " + std::to_string(id_limit(s.size())) +
                                 " (ids must be below 2^31 and at most max(100 x events, 1048576); renumber the nodes densely)");
  }
  s.num_nodes = max_id + 1;
  return s;
}

}  // namespace

EventStream EdgeStream::to_events() const {
  EventStream e;
  e.src = src, e.dst = dst, e.t = ts;
  e.num_nodes = num_nodes;
  e.source = source;
  return e;
}

StreamGenConfig stream_preset(const std::string& name) {
  StreamGenConfig c;
  if (name == "tiny") {
    c.nodes = 1000, c.edges = 20000;
  } else if (name == "S") {
    c.nodes = 10000, c.edges = 1000000;
  } else if (name == "M") {
    c.nodes = 1000000, c.edges = 20000000;
  } else if (name == "L") {
    c.nodes = 2000000, c.edges = 100000000;
  } else if (name == "gdelt") {
    c.nodes = 16000, c.edges = 50000000, c.zipf_src = 1.2, c.zipf_dst = 1.2;
  } else if (name == "mag") {
    c.nodes = 10000000, c.edges = 100000000, c.zipf_src = 0.8, c.zipf_dst = 0.8;
  } else {
    throw core::ConfigError("generate.preset: expected tiny, S, M, L, gdelt or mag, found '" + name + "'");
  }
  return c;
}

void validate(const StreamGenConfig& c) {
  auto fail = [](const std::string& field, const std::string& expected, const std::string& found) {
    throw core::ConfigError("generate." + field + ": expected " + expected + ", found " + found);
  };
  if (c.nodes < 2 || c.nodes > kMaxNodeId) fail("nodes", "a value in [2, 2147483647]", std::to_string(c.nodes));
  if (c.edges < 1 || c.edges > (int64_t{1} << 34)) fail("edges", "a value in [1, 2^34]", std::to_string(c.edges));
  if (c.nodes > std::max<int64_t>(100 * c.edges, int64_t{1} << 20)) {
    fail("nodes", "at most max(100 x edges, 1048576) (the loaders' id limit)", std::to_string(c.nodes));
  }
  if (!(c.source_fraction > 0 && c.source_fraction < 1)) fail("source_fraction", "a value in (0, 1)", shortest(c.source_fraction));
  if (c.bipartite && (c.source_fraction * static_cast<double>(c.nodes) < 1 || (1 - c.source_fraction) * static_cast<double>(c.nodes) < 1)) {
    fail("source_fraction", "at least one source and one destination node", shortest(c.source_fraction));
  }
  for (auto [name, v] : {std::pair{"zipf_src", c.zipf_src}, std::pair{"zipf_dst", c.zipf_dst}}) {
    if (!(v >= 0 && v <= 4)) fail(name, "a value in [0, 4]", shortest(v));
  }
  if (!(c.repeat_prob >= 0 && c.repeat_prob <= 1)) fail("repeat_prob", "a value in [0, 1]", shortest(c.repeat_prob));
  if (!(c.new_node_fraction >= 0 && c.new_node_fraction <= 0.5)) fail("new_node_fraction", "a value in [0, 0.5]", shortest(c.new_node_fraction));
  if (!(c.span > 0 && std::isfinite(c.span))) fail("span", "a finite value > 0", shortest(c.span));
  if (!(c.diurnal_amplitude >= 0 && c.diurnal_amplitude < 1)) fail("diurnal_amplitude", "a value in [0, 1)", shortest(c.diurnal_amplitude));
  if (!(c.period > 0 && std::isfinite(c.period))) fail("period", "a finite value > 0", shortest(c.period));
  if (!(c.resolution >= 0 && std::isfinite(c.resolution))) fail("resolution", "a finite value >= 0", shortest(c.resolution));
  if (!std::isfinite(c.time_offset) || std::fabs(c.time_offset) > 1e15) fail("time_offset", "a finite value within +-1e15", shortest(c.time_offset));
  if (!(c.late_fraction >= 0 && c.late_fraction <= 1)) fail("late_fraction", "a value in [0, 1]", shortest(c.late_fraction));
  if (!(c.late_max >= 0 && std::isfinite(c.late_max))) fail("late_max", "a finite value >= 0", shortest(c.late_max));
}

EdgeStream generate_stream(const StreamGenConfig& c, uint64_t seed) {
  validate(c);
  SplitMix rng{seed * 0x2545f4914f6cdd1dULL + 1};
  const int64_t N = c.nodes;
  const int64_t U = c.bipartite ? std::max<int64_t>(1, static_cast<int64_t>(c.source_fraction * static_cast<double>(N))) : N;
  const int64_t dst_first = c.bipartite ? U : 0, dst_n = c.bipartite ? N - U : N;
  // The last `arrivals` source ids are not active at the start; one becomes active, as the
  // source of its first event, every E / arrivals events.
  const auto arrivals = static_cast<int64_t>(std::llround(c.new_node_fraction * static_cast<double>(U)));
  const int64_t first_new = U - arrivals;
  int64_t active = first_new;
  const Zipf zsrc(0, U, c.zipf_src, rng);
  const Zipf zdst(dst_first, dst_n, c.zipf_dst, rng);
  auto draw_active = [&](const Zipf& z, bool is_source_range) {
    for (int tries = 0; tries < 16; ++tries) {
      const int64_t v = z.draw(rng);
      if (!is_source_range || v < active) return v;
    }
    return rng.below(std::max<int64_t>(active, 1));
  };
  std::vector<int64_t> recent(static_cast<size_t>(N) * 4, -1);  // per source its last 4 partners, newest first
  EdgeStream s;
  const auto E = static_cast<size_t>(c.edges);
  s.src.resize(E), s.dst.resize(E), s.ts.resize(E), s.eid.resize(E);
  s.num_nodes = N;
  s.source = "generated stream (seed " + std::to_string(seed) + ")";
  const double base_rate = static_cast<double>(c.edges) / c.span;
  double t = 0;
  const int64_t every = arrivals > 0 ? std::max<int64_t>(1, c.edges / (arrivals + 1)) : 0;
  for (size_t i = 0; i < E; ++i) {
    // Diurnal non-homogeneous Poisson arrivals (rate at the current time).
    const double rate = base_rate * (1 + c.diurnal_amplitude * std::sin(2 * std::numbers::pi * t / c.period));
    t += -std::log1p(-rng.unit()) / rate;
    double when = c.resolution > 0 ? std::floor(t / c.resolution) * c.resolution : t;
    if (c.late_fraction > 0 && rng.unit() < c.late_fraction) when -= rng.unit() * c.late_max;
    int64_t u = 0;
    if (every > 0 && active < U && static_cast<int64_t>(i + 1) % every == 0) {
      u = active++;
    } else {
      u = draw_active(zsrc, true);
    }
    int64_t* mine = &recent[static_cast<size_t>(u) * 4];
    int64_t w = -1;
    if (mine[0] >= 0 && rng.unit() < c.repeat_prob) {
      // Recency-weighted: the newest partner with 1/2, the next with 1/4, ...
      int slot = 0;
      while (slot < 3 && mine[slot + 1] >= 0 && rng.unit() < 0.5) ++slot;
      w = mine[slot];
    } else {
      w = draw_active(zdst, !c.bipartite);
      if (!c.bipartite && w == u) w = (w + 1) % std::max<int64_t>(active, 2);
    }
    // Move w to the front of u's recent partners.
    int pos = 3;
    for (int k = 0; k < 4; ++k) {
      if (mine[k] == w) {
        pos = k;
        break;
      }
    }
    for (int k = pos; k > 0; --k) mine[k] = mine[k - 1];
    mine[0] = w;
    s.src[i] = u, s.dst[i] = w, s.ts[i] = when + c.time_offset, s.eid[i] = static_cast<int64_t>(i);
  }
  return s;
}

void write_stream_binary(const fs::path& path, const EdgeStream& s) {
  std::string out;
  out.reserve(kStreamHeaderBytes + s.size() * kStreamRowBytes);
  out.append(kMagic, 8);
  put_u64(out, s.size());
  put_u64(out, static_cast<uint64_t>(s.num_nodes));
  put_u64(out, 0);
  for (size_t i = 0; i < s.size(); ++i) {
    uint64_t bits = 0;
    std::memcpy(&bits, &s.ts[i], 8);
    put_u64(out, static_cast<uint64_t>(s.src[i]));
    put_u64(out, static_cast<uint64_t>(s.dst[i]));
    put_u64(out, bits);
    put_u64(out, static_cast<uint64_t>(s.eid[i]));
  }
  core::write_file_atomic(path, out);
}

void write_stream_csv(const fs::path& path, const EdgeStream& s) {
  std::string out = "src,dst,time,eid\n";
  out.reserve(s.size() * 32);
  for (size_t i = 0; i < s.size(); ++i) {
    out += std::to_string(s.src[i]);
    out += ',';
    out += std::to_string(s.dst[i]);
    out += ',';
    out += shortest(s.ts[i]);
    out += ',';
    out += std::to_string(s.eid[i]);
    out += '\n';
  }
  core::write_file_atomic(path, out);
}

EdgeStream load_stream(const fs::path& path, const std::string& format) {
  if (format != "auto" && format != "binary" && format != "csv") {
    throw core::ConfigError("data.format: expected auto, binary or csv, found '" + format + "'");
  }
  if (fs::is_directory(path)) throw core::InputError(path.string() + ": expected a stream file, found a folder");
  std::string bytes = core::read_file(path);
  // "MLSGFS" and any version: binary (a wrong version is then named as such).
  const bool magic = bytes.size() >= 6 && std::memcmp(bytes.data(), kMagic, 6) == 0;
  if (format == "binary" || (format == "auto" && magic)) return load_binary(path, bytes);
  return load_csv(path, std::move(bytes));
}

}  // namespace mlsys::graph
