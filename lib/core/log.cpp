#include "core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "core/error.hpp"

namespace mlsys::core {

void setup_logging(const std::string& program, const std::string& level, bool quiet) {
  auto lvl = spdlog::level::from_str(level);
  // from_str maps unknown names to "off"; only "off" itself may mean off.
  if (lvl == spdlog::level::off && level != "off") {
    throw UsageError("--log-level: expected trace|debug|info|warn|error|off, found '" + level + "'");
  }
  if (quiet && lvl < spdlog::level::warn) lvl = spdlog::level::warn;
  auto logger = spdlog::get(program);
  if (!logger) logger = spdlog::stderr_color_mt(program);
  logger->set_pattern("[%n] %^%l%$: %v");
  logger->set_level(lvl);
  spdlog::set_default_logger(logger);
}

}  // namespace mlsys::core

namespace mlsys::core {

void log_text(LogLevel level, std::string_view message) {
  static constexpr spdlog::level::level_enum kLevels[] = {spdlog::level::trace, spdlog::level::debug,
                                                          spdlog::level::info, spdlog::level::warn,
                                                          spdlog::level::err};
  spdlog::log(kLevels[static_cast<int>(level)], "{}", message);
}

}  // namespace mlsys::core
