// Pictures of one simulated iteration: an SVG Gantt chart (compute and communication rows
// per device, and each device's memory over time) and a text Gantt chart for terminals.
#pragma once

#include <string>

#include "plan/simulator.hpp"

namespace mlsys::plan {

// `title` goes on top; the result needs the timeline recorded (simulate(..., true)).
std::string timeline_svg(const PipelineSpec& spec, const SimResult& sim, const std::string& title);

// One row per device, `width` columns over the makespan: forward of micro-batch m as
// 'A'+m%26, backward as 'a'+m%26, idle as '.'; a legend line follows.
std::string timeline_ascii(const PipelineSpec& spec, const SimResult& sim, int width);

}  // namespace mlsys::plan
