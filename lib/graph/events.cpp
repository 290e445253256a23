// Loaders for TGL edges.csv and the JODIE CSV, and the feature-file readers.
#include "graph/events.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <string_view>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace mlsys::graph {
namespace fs = std::filesystem;
namespace {

using core::InputError;

std::vector<std::string_view> split_commas(std::string_view line) {
  std::vector<std::string_view> cols;
  size_t start = 0;
  while (true) {
    const size_t c = line.find(',', start);
    if (c == std::string_view::npos) {
      cols.push_back(line.substr(start));
      break;
    }
    cols.push_back(line.substr(start, c - start));
    start = c + 1;
  }
  for (auto& s : cols) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  }
  return cols;
}

// Iterates the lines of a whole file, numbering from 1; skips empty lines.
struct Lines {
  std::string text;
  size_t pos = 0;
  size_t number = 0;
  bool next(std::string_view& line) {
    while (pos < text.size()) {
      size_t e = text.find('\n', pos);
      if (e == std::string::npos) e = text.size();
      line = std::string_view(text).substr(pos, e - pos);
      pos = e + 1;
      ++number;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!line.empty()) return true;
    }
    return false;
  }
};

[[noreturn]] void bad(const fs::path& file, size_t line, const std::string& what) {
  throw InputError(file.string() + ":" + std::to_string(line) + ": " + what);
}

bool parse_double(std::string_view s, double& out) {
  if (s.empty()) return false;
  if (s.front() == '+') s.remove_prefix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && std::isfinite(out);
}

int64_t parse_id(const fs::path& file, size_t line, std::string_view column, std::string_view s) {
  double v = 0;
  int64_t id = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  if (ec != std::errc() || p != s.data() + s.size()) {
    // "3.0" is accepted as 3 (pandas writes float columns that way).
    if (!parse_double(s, v) || v != std::floor(v) || std::fabs(v) > 9e15) {
      bad(file, line, "column '" + std::string(column) + "': expected a non-negative integer id, found '" + std::string(s) + "'");
    }
    id = static_cast<int64_t>(v);
  }
  if (id < 0) bad(file, line, "column '" + std::string(column) + "': expected a non-negative integer id, found " + std::to_string(id));
  return id;
}

double parse_time(const fs::path& file, size_t line, std::string_view column, std::string_view s, double prev) {
  double v = 0;
  if (!parse_double(s, v)) {
    bad(file, line, "column '" + std::string(column) + "': expected a finite number, found '" + std::string(s) + "'");
  }
  if (v < prev) {
    bad(file, line, "time " + std::string(s) + " is earlier than the previous row's " + std::to_string(prev) +
                        " (events must be sorted by time)");
  }
  return v;
}

// The largest node id seen, and where: num_nodes = max id + 1 sizes every per-node table,
// so one stray huge id must be bad input (exit 3), not an out-of-memory failure.
struct MaxId {
  int64_t id = -1;
  size_t line = 0;
  std::string column;
  void see(int64_t v, size_t at, std::string_view col) {
    if (v > id) {
      id = v;
      line = at;
      column = col;
    }
  }
  // Ids must be below 2^31 and at most max(100 x events, 2^20).
  void check(const fs::path& file, size_t events) const {
    const int64_t limit = std::min<int64_t>(kMaxNodeId, std::max<int64_t>(100 * static_cast<int64_t>(events), int64_t{1} << 20));
    if (id > limit) {
      bad(file, line, "column '" + column + "': node id " + std::to_string(id) + " is above the limit " +
                          std::to_string(limit) + " (ids must be below 2^31 and at most max(100 x events, 1048576); " +
                          "renumber the nodes densely)");
    }
  }
};

fs::path find_feature(const fs::path& dir, const std::string& stem) {
  for (const char* ext : {".npy", ".bin", ".csv"}) {
    fs::path p = dir / (stem + ext);
    if (fs::exists(p)) return p;
  }
  return {};
}

void attach_features(EventStream& s, const fs::path& dir, const std::vector<int64_t>& eid) {
  if (fs::path p = find_feature(dir, "edge_features"); !p.empty()) {
    Matrix m = load_matrix(p, p.extension() == ".bin" ? static_cast<int64_t>(s.size()) : 0);
    s.edge_dim = m.cols;
    s.edge_feat.resize(s.size() * static_cast<size_t>(m.cols));
    for (size_t i = 0; i < s.size(); ++i) {
      if (eid[i] >= m.rows) {
        throw InputError(p.string() + ": has " + std::to_string(m.rows) + " rows, but edges.csv refers to edge id " +
                         std::to_string(eid[i]));
      }
      std::memcpy(&s.edge_feat[i * m.cols], &m.data[static_cast<size_t>(eid[i] * m.cols)], sizeof(float) * m.cols);
    }
  }
  if (fs::path p = find_feature(dir, "node_features"); !p.empty()) {
    // Raw .bin data carries no shape: it must hold exactly one row per node id in
    // [0, num_nodes); .npy and .csv may have more rows (nodes no edge mentions).
    Matrix m = load_matrix(p, p.extension() == ".bin" ? s.num_nodes : 0);
    if (m.rows < s.num_nodes) {
      throw InputError(p.string() + ": expected at least " + std::to_string(s.num_nodes) + " rows (one per node), found " +
                       std::to_string(m.rows));
    }
    s.num_nodes = m.rows;
    s.node_dim = m.cols;
    s.node_feat = std::move(m.data);
  }
}

}  // namespace

EventStream load_tgl(const fs::path& path) {
  const fs::path file = fs::is_directory(path) ? path / "edges.csv" : path;
  Lines in{core::read_file(file)};
  std::string_view line;
  if (!in.next(line)) throw InputError(file.string() + ": empty file (expected the header ,src,dst,time,...)");
  const auto header = split_commas(line);
  int c_src = -1, c_dst = -1, c_time = -1, c_roll = -1;
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == "src") c_src = static_cast<int>(i);
    if (header[i] == "dst") c_dst = static_cast<int>(i);
    if (header[i] == "time") c_time = static_cast<int>(i);
    if (header[i] == "ext_roll") c_roll = static_cast<int>(i);
  }
  if (c_src < 0 || c_dst < 0 || c_time < 0) {
    bad(file, in.number, "expected a header with columns src, dst and time (TGL: ,src,dst,time,int_roll,ext_roll), found '" +
                             std::string(line) + "'");
  }
  const bool has_eid = c_src != 0 && c_dst != 0 && c_time != 0;
  EventStream s;
  s.source = file.string();
  std::vector<int64_t> eid;
  double prev = -INFINITY;
  int64_t prev_roll = 0;
  MaxId max_id;
  while (in.next(line)) {
    const auto cols = split_commas(line);
    if (cols.size() != header.size()) {
      bad(file, in.number, "expected " + std::to_string(header.size()) + " columns, found " + std::to_string(cols.size()));
    }
    s.src.push_back(parse_id(file, in.number, "src", cols[static_cast<size_t>(c_src)]));
    s.dst.push_back(parse_id(file, in.number, "dst", cols[static_cast<size_t>(c_dst)]));
    max_id.see(s.src.back(), in.number, "src");
    max_id.see(s.dst.back(), in.number, "dst");
    prev = parse_time(file, in.number, "time", cols[static_cast<size_t>(c_time)], prev);
    s.t.push_back(prev);
    if (c_roll >= 0) {
      const int64_t r = parse_id(file, in.number, "ext_roll", cols[static_cast<size_t>(c_roll)]);
      if (r > 2) bad(file, in.number, "column 'ext_roll': expected 0, 1 or 2, found " + std::to_string(r));
      if (r < prev_roll) {
        bad(file, in.number, "column 'ext_roll': " + std::to_string(r) + " after " + std::to_string(prev_roll) +
                                 " (expected non-decreasing: train 0, then val 1, then test 2)");
      }
      prev_roll = r;
      s.ext_roll.push_back(static_cast<int8_t>(r));
    }
    eid.push_back(has_eid ? parse_id(file, in.number, "edge id", cols[0]) : static_cast<int64_t>(eid.size()));
  }
  if (s.size() == 0) throw InputError(file.string() + ": no events after the header");
  max_id.check(file, s.size());
  for (size_t i = 0; i < s.size(); ++i) s.num_nodes = std::max({s.num_nodes, s.src[i] + 1, s.dst[i] + 1});
  attach_features(s, file.parent_path(), eid);
  return s;
}

EventStream load_jodie(const fs::path& file) {
  Lines in{core::read_file(file)};
  std::string_view line;
  if (!in.next(line)) throw InputError(file.string() + ": empty file (expected the header user_id,item_id,timestamp,...)");
  EventStream s;
  s.source = file.string();
  size_t ncols = 0;
  double prev = -INFINITY;
  std::vector<float> feat;
  MaxId max_user_id, max_item_id;
  while (in.next(line)) {
    const auto cols = split_commas(line);
    if (ncols == 0) {
      if (cols.size() < 4) {
        bad(file, in.number, "expected at least 4 columns (user_id,item_id,timestamp,state_label), found " +
                                 std::to_string(cols.size()));
      }
      ncols = cols.size();
    } else if (cols.size() != ncols) {
      bad(file, in.number, "expected " + std::to_string(ncols) + " columns (as on the first data row), found " +
                               std::to_string(cols.size()));
    }
    s.src.push_back(parse_id(file, in.number, "user_id", cols[0]));
    s.dst.push_back(parse_id(file, in.number, "item_id", cols[1]));
    max_user_id.see(s.src.back(), in.number, "user_id");
    max_item_id.see(s.dst.back(), in.number, "item_id");
    prev = parse_time(file, in.number, "timestamp", cols[2], prev);
    s.t.push_back(prev);
    const int64_t label = parse_id(file, in.number, "state_label", cols[3]);
    if (label > 1) bad(file, in.number, "column 'state_label': expected 0 or 1, found " + std::to_string(label));
    s.label.push_back(static_cast<int8_t>(label));
    for (size_t c = 4; c < ncols; ++c) {
      double v = 0;
      if (!parse_double(cols[c], v)) {
        bad(file, in.number, "feature column " + std::to_string(c - 3) + ": expected a number, found '" + std::string(cols[c]) + "'");
      }
      feat.push_back(static_cast<float>(v));
    }
  }
  if (s.size() == 0) throw InputError(file.string() + ": no events after the header");
  max_user_id.check(file, s.size());
  max_item_id.check(file, s.size());
  int64_t max_user = -1;
  for (int64_t u : s.src) max_user = std::max(max_user, u);
  s.num_sources = max_user + 1;
  int64_t max_item = -1;
  for (auto& i : s.dst) {
    max_item = std::max(max_item, i);
    i += s.num_sources;
  }
  s.num_nodes = s.num_sources + max_item + 1;
  s.edge_dim = static_cast<int64_t>(ncols) - 4;
  s.edge_feat = std::move(feat);
  return s;
}

EventStream load_events(const fs::path& path, const std::string& format) {
  if (!fs::exists(path)) throw InputError(path.string() + ": no such file or folder");
  if (format == "tgl") return load_tgl(path);
  if (format == "jodie") return load_jodie(path);
  if (format != "auto") throw core::ConfigError("data.format: expected auto, tgl or jodie, found '" + format + "'");
  if (fs::is_directory(path)) return load_tgl(path);
  Lines in{core::read_file(path)};
  std::string_view line;
  if (in.next(line)) {
    const auto h = split_commas(line);
    bool src = false, dst = false;
    for (auto c : h) {
      src |= c == "src";
      dst |= c == "dst";
    }
    if (src && dst) return load_tgl(path);
  }
  return load_jodie(path);
}

Matrix load_matrix(const fs::path& path, int64_t expected_rows) {
  const std::string bytes = core::read_file(path);
  Matrix m;
  const std::string ext = path.extension().string();
  if (ext == ".npy") {
    if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw InputError(path.string() + ": not a .npy file");
    const int major = static_cast<unsigned char>(bytes[6]);
    size_t hlen = 0, off = 0;
    if (major == 1) {
      hlen = static_cast<unsigned char>(bytes[8]) | (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
      off = 10;
    } else {
      if (bytes.size() < 12) throw InputError(path.string() + ": truncated .npy header");
      hlen = 0;
      for (int i = 0; i < 4; ++i) hlen |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
      off = 12;
    }
    if (off + hlen > bytes.size()) throw InputError(path.string() + ": truncated .npy header");
    const std::string header = bytes.substr(off, hlen);
    off += hlen;
    const bool f4 = header.find("'<f4'") != std::string::npos;
    const bool f8 = header.find("'<f8'") != std::string::npos;
    if (!f4 && !f8) throw InputError(path.string() + ": expected dtype <f4 or <f8, found header " + header);
    if (header.find("'fortran_order': True") != std::string::npos) throw InputError(path.string() + ": Fortran order is not supported");
    const size_t sp = header.find("'shape': (");
    if (sp == std::string::npos) throw InputError(path.string() + ": no shape in the .npy header");
    std::vector<int64_t> shape;
    for (size_t p = sp + 10; p < header.size() && header[p] != ')';) {
      if (header[p] >= '0' && header[p] <= '9') {
        size_t e = p;
        while (e < header.size() && header[e] >= '0' && header[e] <= '9') ++e;
        shape.push_back(std::stoll(header.substr(p, e - p)));
        p = e;
      } else {
        ++p;
      }
    }
    if (shape.empty() || shape.size() > 2) throw InputError(path.string() + ": expected a 1-D or 2-D array");
    m.rows = shape[0];
    m.cols = shape.size() == 2 ? shape[1] : 1;
    const size_t n = static_cast<size_t>(m.rows * m.cols);
    const size_t need = n * (f4 ? 4 : 8);
    if (bytes.size() - off < need) {
      throw InputError(path.string() + ": expected " + std::to_string(need) + " bytes of data, found " + std::to_string(bytes.size() - off));
    }
    m.data.resize(n);
    if (f4) {
      std::memcpy(m.data.data(), bytes.data() + off, need);
    } else {
      for (size_t i = 0; i < n; ++i) {
        double d = 0;
        std::memcpy(&d, bytes.data() + off + 8 * i, 8);
        m.data[i] = static_cast<float>(d);
      }
    }
  } else if (ext == ".bin") {
    if (expected_rows <= 0 || bytes.size() % (4 * static_cast<size_t>(expected_rows)) != 0) {
      throw InputError(path.string() + ": expected raw float32 data of " + std::to_string(expected_rows) +
                       " rows, found " + std::to_string(bytes.size()) + " bytes");
    }
    m.rows = expected_rows;
    m.cols = static_cast<int64_t>(bytes.size() / 4 / static_cast<size_t>(expected_rows));
    m.data.resize(bytes.size() / 4);
    std::memcpy(m.data.data(), bytes.data(), bytes.size());
  } else {
    Lines in{bytes};
    std::string_view line;
    bool first = true;
    while (in.next(line)) {
      const auto cols = split_commas(line);
      std::vector<float> row;
      bool ok = true;
      for (auto c : cols) {
        double v = 0;
        if (!parse_double(c, v)) {
          ok = false;
          break;
        }
        row.push_back(static_cast<float>(v));
      }
      if (!ok) {
        if (first) {
          first = false;
          continue;  // a header line
        }
        bad(path, in.number, "expected numbers only");
      }
      first = false;
      if (m.cols == 0) m.cols = static_cast<int64_t>(row.size());
      if (static_cast<int64_t>(row.size()) != m.cols) {
        bad(path, in.number, "expected " + std::to_string(m.cols) + " columns, found " + std::to_string(row.size()));
      }
      m.data.insert(m.data.end(), row.begin(), row.end());
      ++m.rows;
    }
  }
  if (expected_rows > 0 && m.rows != expected_rows) {
    throw InputError(path.string() + ": expected " + std::to_string(expected_rows) + " rows, found " + std::to_string(m.rows));
  }
  return m;
}

void write_npy(const fs::path& path, const std::vector<float>& data, int64_t rows, int64_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                       std::to_string(cols) + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(1);
  out += static_cast<char>(0);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  out.append(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float));
  core::write_file_atomic(path, out);
}

}  // namespace mlsys::graph
