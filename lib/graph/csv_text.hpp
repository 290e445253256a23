// The line and field parsing every CSV loader of lib/graph shares (events.cpp's TGL/JODIE
// readers, attributed_graph.cpp's edge and label files): comma splitting with trimmed
// fields, numbered lines, and errors that name file:line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace mlsys::graph {

// The comma-separated fields of `line`, each without surrounding blanks.
std::vector<std::string_view> split_commas(std::string_view line);

// Iterates the lines of a whole file, numbering from 1; skips empty lines.
struct Lines {
  std::string text;
  size_t pos = 0;
  size_t number = 0;
  bool next(std::string_view& line);
};

// Throws core::InputError "<file>:<line>: <what>".
[[noreturn]] void bad_line(const std::filesystem::path& file, size_t line, const std::string& what);

// A finite number (a leading '+' allowed); false otherwise.
bool parse_double(std::string_view s, double& out);

// A non-negative integer ("3.0" accepted as 3); InputError naming file:line and `column` otherwise.
int64_t parse_id(const std::filesystem::path& file, size_t line, std::string_view column, std::string_view s);

}  // namespace mlsys::graph
