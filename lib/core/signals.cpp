#include "core/signals.hpp"

#include <atomic>
#include <csignal>

#include "core/error.hpp"

namespace mlsys::core {

namespace {
// The one piece of process-wide state a signal handler may touch: lock-free, so it is
// both async-signal-safe and free of data races with the threads that poll it.
std::atomic<int> g_stop{0};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_stop_signal(int sig) {
  if (g_stop != 0) {
    // Second signal: the user means it.
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_stop = 1;
}
}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  // SA_RESTART: a blocking read or socket call resumes instead of failing with EINTR;
  // the stop is seen at the loop's next poll.
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() noexcept { return g_stop != 0; }
void request_stop() noexcept { g_stop = 1; }
void clear_stop_request() noexcept { g_stop = 0; }

void throw_if_stop_requested() {
  if (stop_requested()) throw RuntimeFailure("interrupted by a signal; no artifact written");
}

}  // namespace mlsys::core
