// Result output shared by every program: the summary as a text table on stdout, or as
// JSON with --json (DESIGN.md, Program conventions).
#pragma once

#include <string>
#include <vector>

#include "core/cli.hpp"
#include "core/json.hpp"

namespace mlsys::core {

// rows[0] is the header, underlined; the first column is left-aligned, the others right-aligned.
std::string format_table(const std::vector<std::vector<std::string>>& rows);

// "0.1235" for fixed(0.123456, 4).
std::string fixed(double value, int precision = 4);

// Prints `summary` as JSON when opts.json, else `text`, on stdout.
void emit_result(const CommonOptions& opts, const Json& summary, const std::string& text);

}  // namespace mlsys::core
