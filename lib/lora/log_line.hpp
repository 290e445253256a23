// Info lines on the program's logger for LibTorch translation units: LibTorch's bundled
// fmt clashes with spdlog's, so spdlog is only included by log_line.cpp (built apart).
#pragma once

#include <string>

namespace mlsys::lora {

void log_info(const std::string& message);

}  // namespace mlsys::lora
