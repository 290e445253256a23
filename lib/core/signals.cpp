#include "core/signals.hpp"

#include <atomic>
#include <csignal>

namespace mlsys::core {

namespace {
// The one piece of process-wide state a signal handler may touch.
volatile std::sig_atomic_t g_stop = 0;

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
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() noexcept { return g_stop != 0; }
void request_stop() noexcept { g_stop = 1; }
void clear_stop_request() noexcept { g_stop = 0; }

}  // namespace mlsys::core
