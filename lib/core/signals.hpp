// SIGINT/SIGTERM turned into a clean stop: the handler only sets a flag that long loops
// poll (stop_requested()), so they can checkpoint and leave no half-written artifact.
// A second signal while a stop is pending restores the default action (a hard stop).
#pragma once

namespace mlsys::core {

void install_stop_handlers();
[[nodiscard]] bool stop_requested() noexcept;
void request_stop() noexcept;
void clear_stop_request() noexcept;
// Throws RuntimeFailure ("interrupted ...; no artifact written") when a stop was requested:
// for loops that have nothing to save and must leave no partial artifact.
void throw_if_stop_requested();

}  // namespace mlsys::core
