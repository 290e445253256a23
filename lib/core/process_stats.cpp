#include "core/process_stats.hpp"

#include <sys/resource.h>

namespace mlsys::core {

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // KiB on Linux
}

}  // namespace mlsys::core
