// Loaders for TGL edges.csv and the JODIE CSV, and the feature-file readers.
#include "graph/events.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <string_view>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/signals.hpp"
#include "graph/csv_text.hpp"

namespace mlsys::graph {
namespace fs = std::filesystem;

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

bool Lines::next(std::string_view& line) {
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

void bad_line(const fs::path& file, size_t line, const std::string& what) {
  throw core::InputError(file.string() + ":" + std::to_string(line) + ": " + what);
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
      bad_line(file, line, "column '" + std::string(column) + "': expected a non-negative integer id, found '" + std::string(s) + "'");
    }
    id = static_cast<int64_t>(v);
  }
  if (id < 0) bad_line(file, line, "column '" + std::string(column) + "': expected a non-negative integer id, found " + std::to_string(id));
  return id;
}

namespace {

using core::InputError;

[[noreturn]] void bad(const fs::path& file, size_t line, const std::string& what) { bad_line(file, line, what); }

// a x b, or false when it does not fit 64 bits: every size computed from a file's header
// is checked before it sizes a buffer or is compared with the file's real size.
bool checked_mul(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_mul_overflow(a, b, &out); }

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
    uint64_t n = 0;
    if (!checked_mul(s.size(), static_cast<uint64_t>(m.cols), n)) {
      throw InputError(p.string() + ": " + std::to_string(m.cols) + " columns x " + std::to_string(s.size()) +
                       " events does not fit 64 bits");
    }
    s.edge_dim = m.cols;
    s.edge_feat.resize(n);
    for (size_t i = 0; i < s.size(); ++i) {
      core::poll_stop(i);
      if (eid[i] >= m.rows) {
        throw InputError(p.string() + ": has " + std::to_string(m.rows) + " rows, but edges.csv refers to edge id " +
                         std::to_string(eid[i]));
      }
      // eid < rows and rows x cols = data.size() (load_matrix checked it): in bounds.
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

// The two CSV layouts, told apart by their header line alone (never by guessing from the
// rows: a TGL file that lost a column must not be read as JODIE).
constexpr const char* kTglHeader = "TGL ',src,dst,time[,int_roll][,ext_roll]' (columns src, dst and time)";
constexpr const char* kJodieHeader = "JODIE 'user_id,item_id,timestamp,state_label[,features...]'";

bool is_tgl_header(const std::vector<std::string_view>& h) {
  bool src = false, dst = false, time = false;
  for (auto c : h) {
    src |= c == "src";
    dst |= c == "dst";
    time |= c == "time";
  }
  return src && dst && time;
}

bool equals_lower(std::string_view s, std::string_view lower) {
  return s.size() == lower.size() &&
         std::equal(s.begin(), s.end(), lower.begin(), [](char a, char b) { return (a >= 'A' && a <= 'Z' ? a - 'A' + 'a' : a) == b; });
}

bool is_jodie_header(const std::vector<std::string_view>& h) {
  return h.size() >= 4 && equals_lower(h[0], "user_id") && equals_lower(h[1], "item_id") &&
         equals_lower(h[2], "timestamp") && equals_lower(h[3], "state_label");
}

EventStream read_tgl(const fs::path& file, std::string text) {
  Lines in{std::move(text)};
  std::string_view line;
  if (!in.next(line)) throw InputError(file.string() + ": empty file (expected the header " + kTglHeader + ")");
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
                             std::string(line) + "'" + (is_jodie_header(header) ? " (a JODIE header: set data.format to jodie or auto)" : ""));
  }
  const bool has_eid = c_src != 0 && c_dst != 0 && c_time != 0;
  EventStream s;
  s.source = file.string();
  std::vector<int64_t> eid;
  double prev = -INFINITY;
  int64_t prev_roll = 0;
  MaxId max_id;
  while (in.next(line)) {
    core::poll_stop(s.size());
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

EventStream read_jodie(const fs::path& file, std::string text) {
  Lines in{std::move(text)};
  std::string_view line;
  if (!in.next(line)) throw InputError(file.string() + ": empty file (expected the header " + kJodieHeader + ")");
  if (const auto header = split_commas(line); !is_jodie_header(header)) {
    bad(file, in.number, std::string("expected the header ") + kJodieHeader + ", found '" + std::string(line) + "'" +
                             (is_tgl_header(header) ? " (a TGL header: set data.format to tgl or auto)" : ""));
  }
  EventStream s;
  s.source = file.string();
  size_t ncols = 0;
  double prev = -INFINITY;
  std::vector<float> feat;
  MaxId max_user_id, max_item_id;
  while (in.next(line)) {
    core::poll_stop(s.size());
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
        bad(file, in.number, "feature column " + std::to_string(c - 3) + ": expected a finite number, found '" + std::string(cols[c]) + "'");
      }
      feat.push_back(static_cast<float>(v));
      if (!std::isfinite(feat.back())) {
        bad(file, in.number, "feature column " + std::to_string(c - 3) + ": expected a float32 number, found '" + std::string(cols[c]) + "'");
      }
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

// A header for a one-line message: the header's text without its padding and newline.
// A .npy header as an error message quotes it: trailing padding dropped, one short line.
std::string trimmed(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  return core::excerpt(s, 120);
}

[[noreturn]] void not_finite(const fs::path& path, size_t index, int64_t cols, const std::string& found) {
  const auto c = static_cast<size_t>(std::max<int64_t>(cols, 1));
  throw InputError(path.string() + ": row " + std::to_string(index / c) + ", column " + std::to_string(index % c) +
                   " (0-based): expected a finite float32 number, found " + found);
}

std::string number_text(double v) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

// The integers of a .npy header's 'shape': (r, c) field. The header is text a file may
// fill with anything: each dimension must fit int64, anything but digits, commas and
// spaces is refused.
std::vector<int64_t> npy_shape(const fs::path& path, const std::string& header) {
  const size_t sp = header.find("'shape': (");
  if (sp == std::string::npos) throw InputError(path.string() + ": .npy header: no field 'shape', found " + trimmed(header));
  const size_t open = sp + 10, close = header.find(')', open);
  if (close == std::string::npos) {
    throw InputError(path.string() + ": .npy header field 'shape': expected (rows, cols), found no closing ')' in " + trimmed(header));
  }
  // Quoted through core::excerpt: the field may hold any bytes (newlines, control bytes).
  const std::string field = core::excerpt("(" + header.substr(open, close - open) + ")", 60);
  std::vector<int64_t> shape;
  for (size_t p = open; p < close;) {
    if (header[p] >= '0' && header[p] <= '9') {
      size_t e = p;
      while (e < close && header[e] >= '0' && header[e] <= '9') ++e;
      int64_t v = 0;
      const auto [end, ec] = std::from_chars(header.data() + p, header.data() + e, v);
      if (ec != std::errc() || end != header.data() + e) {
        throw InputError(path.string() + ": .npy header field 'shape': dimension " + header.substr(p, e - p) +
                         " does not fit a 64-bit integer (found " + field + ")");
      }
      shape.push_back(v);
      p = e;
    } else if (header[p] == ',' || header[p] == ' ') {
      ++p;
    } else {
      throw InputError(path.string() + ": .npy header field 'shape': expected non-negative integers, found " + field);
    }
  }
  if (shape.empty() || shape.size() > 2) {
    throw InputError(path.string() + ": .npy header field 'shape': expected a 1-D or 2-D array, found " + field);
  }
  return shape;
}

void read_npy(const fs::path& path, const std::string& bytes, Matrix& m) {
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
  if (hlen > bytes.size() - off) {
    throw InputError(path.string() + ": truncated .npy header (" + std::to_string(hlen) + " bytes announced, " +
                     std::to_string(bytes.size() - off) + " in the file)");
  }
  const std::string header = bytes.substr(off, hlen);
  off += hlen;
  const bool f4 = header.find("'<f4'") != std::string::npos;
  const bool f8 = header.find("'<f8'") != std::string::npos;
  if (!f4 && !f8) throw InputError(path.string() + ": .npy header field 'descr': expected <f4 or <f8, found " + trimmed(header));
  if (header.find("'fortran_order': True") != std::string::npos) throw InputError(path.string() + ": Fortran order is not supported");
  const std::vector<int64_t> shape = npy_shape(path, header);
  const uint64_t rows = static_cast<uint64_t>(shape[0]), cols = shape.size() == 2 ? static_cast<uint64_t>(shape[1]) : 1;
  const uint64_t item = f4 ? 4 : 8, found = bytes.size() - off;
  // Checked against the data the file really holds, before any buffer is sized: (2^62, 4)
  // overflows rows x cols x 4, and (2^62 + 1, 4) wraps to 4 elements.
  uint64_t n = 0, need = 0;
  const bool overflow = !checked_mul(rows, cols, n) || !checked_mul(n, item, need);
  if (overflow || need != found) {
    const std::string dims = "(" + std::to_string(rows) + (shape.size() == 2 ? ", " + std::to_string(cols) : ",") + ")";
    throw InputError(path.string() + ": .npy header field 'shape': " + dims + " of " + (f4 ? "<f4" : "<f8") + " needs " +
                     (overflow ? std::string("more than 2^64") : std::to_string(need)) + " bytes of data, found " +
                     std::to_string(found));
  }
  if (rows == 0 || cols == 0) {
    throw InputError(path.string() + ": .npy header field 'shape': expected at least one row and one column, found (" +
                     std::to_string(rows) + (shape.size() == 2 ? ", " + std::to_string(cols) : ",") + ")");
  }
  m.rows = shape[0];
  m.cols = static_cast<int64_t>(cols);
  m.data.resize(n);
  if (f4) {
    std::memcpy(m.data.data(), bytes.data() + off, need);
    for (size_t i = 0; i < n; ++i) {
      core::poll_stop(i);
      if (!std::isfinite(m.data[i])) not_finite(path, i, m.cols, number_text(m.data[i]));
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      core::poll_stop(i);
      double d = 0;
      std::memcpy(&d, bytes.data() + off + 8 * i, 8);
      m.data[i] = static_cast<float>(d);
      if (!std::isfinite(m.data[i])) not_finite(path, i, m.cols, number_text(d) + (std::isfinite(d) ? " (beyond float32)" : ""));
    }
  }
}

void read_bin(const fs::path& path, const std::string& bytes, int64_t expected_rows, Matrix& m) {
  // Raw data has no header: the row count comes from the caller and the column count from
  // the size, which must split exactly into expected_rows rows of at least one float32.
  const uint64_t floats = bytes.size() / 4;
  if (expected_rows <= 0 || bytes.size() % 4 != 0 || floats == 0 || floats % static_cast<uint64_t>(expected_rows) != 0) {
    throw InputError(path.string() + ": expected raw float32 data of " + std::to_string(expected_rows) +
                     " rows, found " + std::to_string(bytes.size()) + " bytes");
  }
  m.rows = expected_rows;
  m.cols = static_cast<int64_t>(floats / static_cast<uint64_t>(expected_rows));
  m.data.resize(floats);
  std::memcpy(m.data.data(), bytes.data(), floats * 4);
  for (size_t i = 0; i < m.data.size(); ++i) {
    core::poll_stop(i);
    if (!std::isfinite(m.data[i])) not_finite(path, i, m.cols, number_text(m.data[i]));
  }
}

void read_csv_matrix(const fs::path& path, std::string bytes, Matrix& m) {
  Lines in{std::move(bytes)};
  std::string_view line;
  bool first = true;
  while (in.next(line)) {
    core::poll_stop(static_cast<size_t>(m.rows));
    const auto cols = split_commas(line);
    std::vector<float> row;
    bool ok = true;
    for (size_t c = 0; c < cols.size(); ++c) {
      std::string_view f = cols[c];
      if (!f.empty() && f.front() == '+') f.remove_prefix(1);
      double v = 0;
      const auto [p, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
      if (f.empty() || ec != std::errc() || p != f.data() + f.size()) {
        ok = false;
        break;
      }
      // A number, but nan, inf or beyond float32: bad even on the first line (which is
      // a header only when it is not numbers).
      if (!std::isfinite(static_cast<float>(v))) {
        bad(path, in.number, "column " + std::to_string(c + 1) + ": expected a finite float32 number, found '" +
                                 std::string(cols[c]) + "'");
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

}  // namespace

EventStream load_tgl(const fs::path& path) {
  const fs::path file = fs::is_directory(path) ? path / "edges.csv" : path;
  return read_tgl(file, core::read_file(file));
}

EventStream load_jodie(const fs::path& file) { return read_jodie(file, core::read_file(file)); }

EventStream load_events(const fs::path& path, const std::string& format) {
  if (!fs::exists(path)) throw InputError(path.string() + ": no such file or folder");
  if (format != "auto" && format != "tgl" && format != "jodie") {
    throw core::ConfigError("data.format: expected auto, tgl or jodie, found '" + format + "'");
  }
  if (fs::is_directory(path)) {
    if (format == "jodie") throw InputError(path.string() + ": data.format is jodie, which needs a CSV file, found a folder");
    return load_tgl(path);
  }
  std::string text = core::read_file(path);
  if (format == "tgl") return read_tgl(path, std::move(text));
  if (format == "jodie") return read_jodie(path, std::move(text));
  // auto: the header alone decides; a header that fits neither layout, or both, is refused
  // rather than guessed (data.format=tgl|jodie settles a header that fits both). Only the
  // text up to the end of the header line is copied for this.
  const size_t start = std::min(text.find_first_not_of("\r\n"), text.size());
  Lines in{text.substr(0, text.find('\n', start))};
  std::string_view line;
  if (!in.next(line)) {
    throw InputError(path.string() + ": empty file (expected the header of " + kTglHeader + " or " + kJodieHeader + ")");
  }
  const auto h = split_commas(line);
  const bool tgl = is_tgl_header(h), jodie = is_jodie_header(h);
  if (tgl && jodie) {
    bad(path, in.number, "ambiguous header '" + std::string(line) + "': it fits both " + kTglHeader + " and " + kJodieHeader +
                             "; set data.format to tgl or jodie");
  }
  if (!tgl && !jodie) {
    bad(path, in.number, "unrecognised header '" + std::string(line) + "': expected " + kTglHeader + " or " + kJodieHeader);
  }
  return tgl ? read_tgl(path, std::move(text)) : read_jodie(path, std::move(text));
}

Matrix load_matrix(const fs::path& path, int64_t expected_rows) {
  std::string bytes = core::read_file(path);
  Matrix m;
  const std::string ext = path.extension().string();
  if (ext == ".npy") {
    read_npy(path, bytes, m);
  } else if (ext == ".bin") {
    read_bin(path, bytes, expected_rows, m);
  } else {
    read_csv_matrix(path, std::move(bytes), m);
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
