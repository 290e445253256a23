// See log_line.hpp.
#include "lora/log_line.hpp"

#include "core/log.hpp"

namespace mlsys::lora {

void log_info(const std::string& message) { log::info("{}", message); }

}  // namespace mlsys::lora
