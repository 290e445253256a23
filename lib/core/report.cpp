#include "core/report.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace mlsys::core {

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  }
  std::string out;
  for (size_t k = 0; k < rows.size(); ++k) {
    const auto& r = rows[k];
    for (size_t i = 0; i < r.size(); ++i) {
      const std::string pad(width[i] - r[i].size(), ' ');
      out += i == 0 ? r[i] + pad : "  " + pad + r[i];
    }
    out += "\n";
    if (k == 0) {
      size_t total = 0;
      for (size_t w : width) total += w + 2;
      out += std::string(total >= 2 ? total - 2 : 0, '-') + "\n";
    }
  }
  return out;
}

std::string fixed(double value, int precision) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, value);
  return buf;
}

void emit_result(const CommonOptions& opts, const Json& summary, const std::string& text) {
  if (opts.json) {
    std::cout << summary.dump(2) << "\n";
  } else {
    std::cout << text;
  }
  std::cout.flush();
}

}  // namespace mlsys::core
