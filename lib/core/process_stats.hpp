// Measurements of this process for benchmarks and reports.
#pragma once

namespace mlsys::core {

// Peak resident set size of this process so far, in MiB (getrusage's ru_maxrss).
[[nodiscard]] double peak_rss_mib();

}  // namespace mlsys::core
