#include "core/json.hpp"

#include <vector>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace mlsys::core {

namespace {

// nlohmann's message without its "[json.exception.parse_error.101] " prefix, cut short: a
// token quoted in it ("last read: '...'") may be the whole of a 100 KB string.
std::string reason_of(const Json::exception& e) {
  std::string what = e.what();
  if (what.starts_with("[json.exception.")) {
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
  }
  // nlohmann quotes the last token read raw: one escaped line, whatever bytes it holds
  return excerpt(what, 160);
}

// Where the parser is, as a key path ("train.lr", "sites[2].rate"), kept up to date by the
// parse callback so that an error the parser reports without a position (a number that
// overflows a double) can still name its field.
class KeyPath {
 public:
  void on(Json::parse_event_t event, const Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        frames_.push_back({false, {}, 0});
        break;
      case Json::parse_event_t::array_start:
        frames_.push_back({true, {}, 0});
        break;
      case Json::parse_event_t::key:
        frames_.back().key = parsed.get_ref<const std::string&>();
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        frames_.pop_back();
        completed();
        break;
      case Json::parse_event_t::value:
        completed();
        break;
    }
  }
  // "" at the top level; long keys cut so that the whole stays short.
  [[nodiscard]] std::string str() const {
    std::string out;
    for (const auto& f : frames_) {
      if (f.array) {
        out += "[" + std::to_string(f.done) + "]";
      } else {
        if (!out.empty()) out += '.';
        out += f.key.size() > 40 ? f.key.substr(0, 37) + "..." : f.key;
      }
      if (out.size() > 120) return out.substr(0, 117) + "...";
    }
    return out;
  }

 private:
  void completed() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().done;
  }
  struct Frame {
    bool array;
    std::string key;  // objects: the key of the value being read
    size_t done;      // arrays: elements read so far (the index of the one being read)
  };
  std::vector<Frame> frames_;
};

}  // namespace

Json parse_json_bounded(std::string_view text, int max_depth) {
  KeyPath where;
  auto at = [&where] {
    const std::string p = where.str();
    return p.empty() ? std::string() : " (at key '" + excerpt(p, 80) + "')";
  };
  auto limit = [&](int depth, Json::parse_event_t event, Json& parsed) -> bool {
    if (depth > max_depth) throw JsonTooDeep("JSON nested deeper than " + std::to_string(max_depth) + " levels" + at());
    where.on(event, parsed);
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), limit);
  } catch (const Json::out_of_range& e) {
    // 406: "number overflow parsing '1e309'", the only out_of_range the parser throws
    std::string what = reason_of(e);
    throw JsonNumberOverflow(what + at() + ": expected a number within the range of a double");
  } catch (const Json::exception& e) {
    throw JsonTextError(reason_of(e) + at());
  }
}

Json parse_json_input(std::string_view text, const std::string& source) {
  try {
    return parse_json_bounded(text);
  } catch (const JsonTextError& e) {
    throw InputError(source + ": malformed JSON: " + e.what());
  }
}

Json read_json_file(const std::filesystem::path& path) { return parse_json_input(read_file(path), path.string()); }

// The first `n` bytes of `s` (fewer, so as not to split a UTF-8 sequence) as a JSON
// string literal; bytes that are not UTF-8 are replaced (U+FFFD), never thrown about.
static std::string cut_string(const std::string& s, size_t n) {
  while (n > 0 && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return Json(s.substr(0, n)).dump(-1, ' ', false, Json::error_handler_t::replace);
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
      return "string " + cut_string(s, 57) + "...";
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
    if (s.size() > 60) return cut_string(s, 57) + "...";
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
    } catch (const JsonTextError& e) {
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
