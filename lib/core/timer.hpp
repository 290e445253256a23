// Wall-clock timers on the steady clock.
#pragma once

#include <chrono>

namespace mlsys::core {

class Timer {
 public:
  Timer() : start_(std::chrono::steady_clock::now()) {}
  void reset() { start_ = std::chrono::steady_clock::now(); }
  [[nodiscard]] double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  [[nodiscard]] double millis() const { return seconds() * 1e3; }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Adds the lifetime of the scope to an accumulator (seconds).
class ScopedTimer {
 public:
  explicit ScopedTimer(double& total) : total_(total) {}
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;
  ~ScopedTimer() { total_ += timer_.seconds(); }

 private:
  double& total_;
  Timer timer_;
};

}  // namespace mlsys::core
