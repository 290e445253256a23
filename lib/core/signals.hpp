// SIGINT/SIGTERM turned into a clean stop: the handler only sets a flag that long loops
// poll (stop_requested()), so they can checkpoint and leave no half-written artifact.
// A second signal while a stop is pending restores the default action (a hard stop).
#pragma once

#include <cstddef>

namespace mlsys::core {

void install_stop_handlers();
[[nodiscard]] bool stop_requested() noexcept;
void request_stop() noexcept;
void clear_stop_request() noexcept;
// Throws RuntimeFailure ("interrupted ...; no artifact written") when a stop was requested:
// for loops that have nothing to save and must leave no partial artifact.
void throw_if_stop_requested();
// For loops over many items: throw_if_stop_requested() at item 0 and every 2^16 items
// after, so a stop ends even a huge loop at once for the price of a mask test per item.
inline void poll_stop(size_t item) {
  if ((item & 0xFFFF) == 0) throw_if_stop_requested();
}

}  // namespace mlsys::core
