#include "core/progress.hpp"

#include <cstdio>

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "core/error.hpp"

namespace mlsys::core {

ProgressMode parse_progress_mode(const std::string& s) {
  if (s == "auto") return ProgressMode::automatic;
  if (s == "always") return ProgressMode::always;
  if (s == "never") return ProgressMode::never;
  throw UsageError("--progress: expected auto|always|never, found '" + s + "'");
}

Progress::Progress(std::string label, uint64_t total, ProgressMode mode, bool quiet, double line_interval_s)
    : label_(std::move(label)), total_(total), interval_(line_interval_s) {
  // never: no bar, but the periodic log lines still come (only --quiet silences progress).
  silent_ = quiet;
  bar_ = !silent_ && (mode == ProgressMode::always ||
                      (mode == ProgressMode::automatic && ::isatty(STDERR_FILENO) == 1));
}

Progress::~Progress() {
  if (!finished_ && bar_ && last_emit_ >= 0) std::fputc('\n', stderr);
}

void Progress::update(uint64_t done, const std::string& status) {
  done_ = done;
  status_ = status;
  if (silent_) return;
  double now = timer_.seconds();
  // A bar redraws at most 10 times a second; lines every `interval_` seconds.
  double gap = bar_ ? 0.1 : interval_;
  if (last_emit_ >= 0 && now - last_emit_ < gap && !(total_ > 0 && done_ >= total_)) return;
  last_emit_ = now;
  draw(false);
}

void Progress::finish(const std::string& status) {
  if (finished_) return;
  finished_ = true;
  if (!status.empty()) status_ = status;
  if (total_ > 0) done_ = total_;
  if (silent_) return;
  // A log line already showed this exact final state: do not repeat it.
  if (!bar_ && last_drawn_done_ == done_ && last_drawn_status_ == status_) return;
  draw(true);
}

void Progress::draw(bool final_line) {
  last_drawn_done_ = done_;
  last_drawn_status_ = status_;
  double elapsed = timer_.seconds();
  char counts[96];
  if (total_ > 0) {
    std::snprintf(counts, sizeof counts, "%llu/%llu", static_cast<unsigned long long>(done_),
                  static_cast<unsigned long long>(total_));
  } else {
    std::snprintf(counts, sizeof counts, "%llu", static_cast<unsigned long long>(done_));
  }
  char eta[48] = "";
  if (total_ > 0 && done_ > 0 && done_ < total_) {
    double remaining = elapsed / static_cast<double>(done_) * static_cast<double>(total_ - done_);
    std::snprintf(eta, sizeof eta, " eta %.0fs", remaining);
  }
  if (bar_) {
    constexpr int width = 28;
    int filled = total_ > 0 ? static_cast<int>(width * static_cast<double>(done_) / static_cast<double>(total_)) : 0;
    if (filled > width) filled = width;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(width - filled), total_ > 0 ? '.' : ' ');
    std::fprintf(stderr, "\r\033[2K%s [%s] %s %.1fs%s %s", label_.c_str(), bar.c_str(), counts, elapsed, eta,
                 status_.c_str());
    if (final_line) std::fputc('\n', stderr);
    std::fflush(stderr);
  } else {
    spdlog::info("{} {} ({:.1f}s{}){}{}", label_, counts, elapsed, eta, status_.empty() ? "" : " ", status_);
  }
}

}  // namespace mlsys::core
