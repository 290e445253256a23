// Logging on spdlog: one logger, to stderr, "[program] level: message". Results go to stdout.
// Formatting functions (log::info("{} events", n)) for torch-free code; LibTorch code uses
// core/log_text.hpp, which writes to the same logger.
#pragma once

#include <string>

#include <spdlog/spdlog.h>

#include "core/log_text.hpp"

namespace mlsys::core {

// level: trace|debug|info|warn|error|off (UsageError otherwise); quiet raises it to warn.
void setup_logging(const std::string& program, const std::string& level, bool quiet);

}  // namespace mlsys::core

namespace mlsys::log {
using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::trace;
using spdlog::warn;
}  // namespace mlsys::log
