// JSON helpers that stay safe on hostile input: depth-limited parsing (nlohmann's parser is
// iterative, but dump() and error messages are not) and bounded one-line descriptions of
// values for error messages.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mlsys::core {

using Json = nlohmann::json;

// Why a JSON text could not be read, as one short line that names where: "parse error at
// line 3, column 5: ...", "JSON nested deeper than 64 levels (at key 'a.b')", "number at key
// 'train.lr' beyond the range of a double (1e309)". Never longer than ~250 characters.
class JsonTextError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by parse_json_bounded when nesting exceeds the limit.
class JsonTooDeep : public JsonTextError {
 public:
  using JsonTextError::JsonTextError;
};

// Thrown by parse_json_bounded for a number beyond the range of a double (1e309).
class JsonNumberOverflow : public JsonTextError {
 public:
  using JsonTextError::JsonTextError;
};

// The one JSON parser of the suite (every JSON file, header, attribute and --set value goes
// through it): throws JsonTooDeep when `text` nests deeper than `max_depth` levels, and
// JsonNumberOverflow when it holds a number that overflows a double, JsonTextError when it
// is malformed. nlohmann's
// parser is iterative, but dump(), comparisons and error messages are recursive, so a value
// nested 50k levels deep must never be built.
Json parse_json_bounded(std::string_view text, int max_depth = 64);

// parse_json_bounded for a data file: core::InputError "<source>: malformed JSON: <why>".
Json parse_json_input(std::string_view text, const std::string& source);
// The file at `path` read (core::InputError when missing or unreadable) and parsed as
// parse_json_input.
Json read_json_file(const std::filesystem::path& path);

// "integer 3", "number 0.5", "string \"abc\"" (long strings cut), "true", "null",
// "an array of 5 elements", "an object with 2 keys": never longer than ~100 characters.
std::string describe_json(const Json& v);
// A scalar as JSON text ("0", "-1.5", "\"abc\"", long strings cut); containers as
// describe_json.
std::string short_json(const Json& v);

// JSONL input: calls `row(object, line)` for every non-blank line of `text` (1-based line
// numbers, blank lines counted). A line that is not a JSON object, is malformed or nests
// deeper than 64 levels is an InputError "<source>:<line>: expected a JSON object, found ...".
void for_each_jsonl_object(const std::string& source, std::string_view text,
                           const std::function<void(const Json& object, size_t line)>& row);

}  // namespace mlsys::core

namespace mlsys::core {

// The first key path where two JSON values differ ("train.lr"; "(root)" when the values
// themselves differ), "" when they are equal.
std::string first_difference(const Json& a, const Json& b, const std::string& prefix = "");

}  // namespace mlsys::core
