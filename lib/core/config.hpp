// JSON configs read into plain structs with validation: the file (if any) and the
// `--set key.path=value` overrides are merged into one document; a ConfigNode then reads
// each field into a struct member (whose initializer is the default), checks its type and
// range, records the value actually used (the resolved config) and, at finish(), rejects
// keys that nothing read. Every error is a ConfigError naming the source (the file, or
// the --set that supplied the value), the key path, what was expected and what was found.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/error.hpp"
#include "core/json.hpp"

namespace mlsys::core {

// The merged document: the file's content with the overrides applied, and where each
// overridden key came from.
struct ConfigDoc {
  Json root = Json::object();
  std::string file;                               // "" when no file was given
  std::map<std::string, std::string> override_of;  // "a.b.c" -> "--set a.b.c=..."
};

// Parses a JSON file (ConfigError with line and column when malformed; ConfigError when it
// cannot be opened) and applies `key.path=value` overrides. A value is read as JSON when it
// parses as JSON (numbers, true/false, null, arrays, "quoted strings"), else as a string.
ConfigDoc load_config(const std::string& file, const std::vector<std::string>& overrides = {});
// The same from text already in memory (`source` names it in messages).
ConfigDoc parse_config(std::string_view text, const std::string& source,
                       const std::vector<std::string>& overrides = {});
// Parses JSON text with errors that give line and column (ConfigError).
Json parse_json_text(std::string_view text, const std::string& source);

// A value check: returns an empty string when the value is fine, else what was expected
// ("a number in [0, 1]").
template <class T>
using Check = std::function<std::string(const T&)>;

template <class T>
Check<T> in_range(T lo, T hi) {
  return [lo, hi](const T& v) -> std::string {
    if (v >= lo && v <= hi) return {};
    return "a value in [" + Json(lo).dump() + ", " + Json(hi).dump() + "]";
  };
}
template <class T>
Check<T> at_least(T lo) {
  return [lo](const T& v) -> std::string {
    if (v >= lo) return {};
    return "a value >= " + Json(lo).dump();
  };
}
template <class T>
Check<T> positive() {
  return [](const T& v) -> std::string {
    if (v > T{}) return {};
    return "a value > 0";
  };
}
Check<std::string> one_of(std::vector<std::string> choices);

class ConfigNode {
 public:
  explicit ConfigNode(ConfigDoc doc);

  // A nested object; absent keys read as an empty object (so every field keeps its default).
  [[nodiscard]] ConfigNode child(std::string_view key) const;
  // The elements of an array of objects (absent: none).
  [[nodiscard]] std::vector<ConfigNode> items(std::string_view key) const;
  [[nodiscard]] bool has(std::string_view key) const;

  // Reads `key` into `out` when present (after checking type and `check`); records the value
  // used, default or not, in the resolved config. Supported: bool, integers, float, double,
  // std::string, std::vector of those, and Json (taken as is).
  template <class T>
  const ConfigNode& get(std::string_view key, T& out, const Check<T>& check = {}) const {
    const Json* v = lookup(key);
    if (v != nullptr) {
      T value = convert<T>(*v, key);
      if (check) {
        if (auto expected = check(value); !expected.empty()) fail(key, expected, short_json(*v));
      }
      out = std::move(value);
    }
    record(key, to_json(out));
    return *this;
  }
  // As get(), but the key must be present.
  template <class T>
  const ConfigNode& require(std::string_view key, T& out, const Check<T>& check = {}) const {
    if (lookup(key) == nullptr) fail(key, "a value (the key is required)", "nothing");
    return get(key, out, check);
  }

  // Throws ConfigError for the first key of this object (and of the children read from it)
  // that no get()/child() asked for.
  void finish() const;

  // The full resolved config: defaults + file + overrides, as read.
  [[nodiscard]] Json resolved() const;
  [[nodiscard]] std::string path_of(std::string_view key) const;
  // Throws ConfigError "<source>: key '<path>': expected <expected>, found <found>".
  [[noreturn]] void fail(std::string_view key, std::string_view expected, std::string_view found) const;

 private:
  struct State;
  ConfigNode(std::shared_ptr<State> state, std::vector<std::string> path, const Json* node);

  [[nodiscard]] const Json* lookup(std::string_view key) const;
  void record(std::string_view key, Json value) const;
  [[nodiscard]] Json* resolved_here() const;
  [[nodiscard]] std::string source_of(const std::string& path) const;

  template <class T>
  static Json to_json(const T& v) {
    return Json(v);
  }

  template <class T>
  T convert(const Json& v, std::string_view key) const {
    if constexpr (std::is_same_v<T, Json>) {
      return v;
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) fail(key, "true or false", describe_json(v));
      return v.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) {
        // 3.0 is accepted as 3; 3.5 is not. Range first: casting 1e19 to int64 is UB.
        if (v.is_number_float()) {
          double d = v.get<double>();
          if (d >= -0x1p63 && d < 0x1p63 && d == static_cast<double>(static_cast<int64_t>(d))) {
            return checked_int<T>(static_cast<int64_t>(d), key, v);
          }
        }
        fail(key, "an integer", describe_json(v));
      }
      if (v.is_number_unsigned()) {
        auto u = v.get<uint64_t>();
        if constexpr (std::is_unsigned_v<T>) {
          if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) fail(key, "a smaller integer", describe_json(v));
          return static_cast<T>(u);
        } else {
          if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) fail(key, "a smaller integer", describe_json(v));
          return checked_int<T>(static_cast<int64_t>(u), key, v);
        }
      }
      return checked_int<T>(v.get<int64_t>(), key, v);
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) fail(key, "a number", describe_json(v));
      return v.get<T>();
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) fail(key, "a string", describe_json(v));
      return v.get<std::string>();
    } else {
      // std::vector<U>
      using U = typename T::value_type;
      if (!v.is_array()) fail(key, "an array", describe_json(v));
      T out;
      for (size_t i = 0; i < v.size(); ++i) {
        out.push_back(convert<U>(v[i], std::string(key) + "[" + std::to_string(i) + "]"));
      }
      return out;
    }
  }

  template <class T>
  T checked_int(int64_t x, std::string_view key, const Json& v) const {
    if constexpr (std::is_unsigned_v<T>) {
      if (x < 0) fail(key, "a non-negative integer", describe_json(v));
    }
    if constexpr (sizeof(T) < sizeof(int64_t)) {
      if (x < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          x > static_cast<int64_t>(std::numeric_limits<T>::max())) {
        fail(key, "an integer that fits " + std::to_string(sizeof(T) * 8) + " bits", describe_json(v));
      }
    }
    return static_cast<T>(x);
  }

  std::shared_ptr<State> state_;
  std::vector<std::string> path_;
  const Json* node_;  // the object this node reads from (never null; an empty object if absent)
};

}  // namespace mlsys::core
