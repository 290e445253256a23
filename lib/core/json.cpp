#include "core/json.hpp"

#include "core/error.hpp"

namespace mlsys::core {

Json parse_json_bounded(std::string_view text, int max_depth) {
  auto limit = [max_depth](int depth, Json::parse_event_t, Json&) -> bool {
    if (depth > max_depth) {
      throw JsonTooDeep("JSON nested deeper than " + std::to_string(max_depth) + " levels");
    }
    return true;
  };
  return Json::parse(text.begin(), text.end(), limit);
}

std::string describe_json(const Json& v) {
  switch (v.type()) {
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer " + v.dump();
    case Json::value_t::number_float:
      return "number " + v.dump();
    case Json::value_t::boolean:
      return v.dump();
    case Json::value_t::null:
      return "null";
    case Json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      if (s.size() <= 60) return "string " + v.dump();
      return "string " + Json(s.substr(0, 57)).dump() + "...";
    }
    case Json::value_t::array:
      return "an array of " + std::to_string(v.size()) + " element" + (v.size() == 1 ? "" : "s");
    case Json::value_t::object:
      return "an object with " + std::to_string(v.size()) + " key" + (v.size() == 1 ? "" : "s");
    default:
      return v.type_name();
  }
}

std::string short_json(const Json& v) {
  if (v.is_array() || v.is_object()) return describe_json(v);
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s.size() > 60) return Json(s.substr(0, 57)).dump() + "...";
  }
  return v.dump();
}

void for_each_jsonl_object(const std::string& source, std::string_view text,
                           const std::function<void(const Json& object, size_t line)>& row) {
  size_t line = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view l = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    if (l.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = source + ":" + std::to_string(line) + ": ";
    Json obj;
    try {
      obj = parse_json_bounded(l);
    } catch (const JsonTooDeep& e) {
      throw InputError(where + "expected a JSON object, found " + e.what());
    } catch (const Json::parse_error& e) {
      throw InputError(where + "expected a JSON object, found malformed JSON (" + e.what() + ")");
    }
    if (!obj.is_object()) throw InputError(where + "expected a JSON object, found " + describe_json(obj));
    row(obj, line);
  }
}

}  // namespace mlsys::core

namespace mlsys::core {

std::string first_difference(const Json& a, const Json& b, const std::string& prefix) {
  if (a.is_object() && b.is_object()) {
    for (const auto& [k, v] : a.items()) {
      const std::string p = prefix.empty() ? k : prefix + "." + k;
      if (!b.contains(k)) return p;
      std::string d = first_difference(v, b[k], p);
      if (!d.empty()) return d;
    }
    for (const auto& [k, v] : b.items()) {
      if (!a.contains(k)) return prefix.empty() ? k : prefix + "." + k;
    }
    return "";
  }
  return a == b ? "" : (prefix.empty() ? "(root)" : prefix);
}

}  // namespace mlsys::core
