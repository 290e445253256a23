// Progress reporting for long loops: a redrawn bar on a terminal (auto) or always, a log
// line every few seconds otherwise (never, or auto off a terminal), nothing with --quiet.
// Always on stderr.
#pragma once

#include <cstdint>
#include <string>

#include "core/timer.hpp"

namespace mlsys::core {

enum class ProgressMode { automatic, always, never };
// "auto" | "always" | "never" (UsageError otherwise).
ProgressMode parse_progress_mode(const std::string& s);

class Progress {
 public:
  // total 0 = unknown. `mode` auto draws a bar only when stderr is a terminal.
  Progress(std::string label, uint64_t total, ProgressMode mode, bool quiet = false,
           double line_interval_s = 5.0);
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress();

  // Sets the count done and a free-text status ("loss 0.412 | 3.1k tok/s").
  void update(uint64_t done, const std::string& status = {});
  void finish(const std::string& status = {});
  [[nodiscard]] bool is_bar() const { return bar_; }

 private:
  void draw(bool final_line);
  std::string label_;
  uint64_t total_;
  uint64_t done_ = 0;
  std::string status_;
  bool bar_ = false;
  bool silent_ = false;
  bool finished_ = false;
  double interval_;
  double last_emit_ = -1.0;
  uint64_t last_drawn_done_ = UINT64_MAX;
  std::string last_drawn_status_;
  Timer timer_;
};

}  // namespace mlsys::core
