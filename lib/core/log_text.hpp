// The program's logger for any translation unit, LibTorch ones included: plain-text lines
// at a level, with no spdlog or fmt in this header (LibTorch bundles its own fmt, which
// clashes with spdlog's). Torch-free code may use core/log.hpp's formatting functions
// instead; both write to the same logger.
#pragma once

#include <string_view>

namespace mlsys::core {

enum class LogLevel { trace, debug, info, warn, error };

void log_text(LogLevel level, std::string_view message);
inline void log_debug(std::string_view m) { log_text(LogLevel::debug, m); }
inline void log_info(std::string_view m) { log_text(LogLevel::info, m); }
inline void log_warn(std::string_view m) { log_text(LogLevel::warn, m); }
inline void log_error(std::string_view m) { log_text(LogLevel::error, m); }

}  // namespace mlsys::core
