#include "core/config.hpp"

#include <algorithm>
#include <charconv>

#include "core/atomic_file.hpp"

namespace mlsys::core {

namespace {

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!out.empty() && p.front() != '[') out += '.';
    out += p;
  }
  return out;
}

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "12" -> 12; SIZE_MAX when it does not fit (so it is past the end of any array).
size_t parse_index(std::string_view s) {
  size_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return SIZE_MAX;
  return v;
}

// The index inside a "[12]" path segment.
size_t segment_index(const std::string& seg) { return parse_index(std::string_view(seg).substr(1, seg.size() - 2)); }

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

void apply_override(ConfigDoc& doc, const std::string& text) {
  // a --set of a 100 KB value is quoted by its start, on one line whatever bytes it holds
  const std::string where = "--set " + excerpt(text, 80);
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError(where + ": expected key.path=value, found no '='");
  }
  std::string key = text.substr(0, eq);
  std::string raw = text.substr(eq + 1);
  for (const char c : key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      throw ConfigError(where + ": expected a key path of printable characters, found control bytes in '" +
                        excerpt(key, 60) + "'");
    }
  }
  auto parts = split_key(key);
  for (const auto& p : parts) {
    if (p.empty()) throw ConfigError(where + ": key '" + key + "' has an empty segment");
  }
  Json value;
  try {
    value = parse_json_bounded(raw);
  } catch (const JsonTooDeep& e) {
    throw ConfigError(where + ": " + e.what());
  } catch (const JsonNumberOverflow&) {
    throw ConfigError(where + ": key '" + key + "': expected a number within the range of a double, found " +
                      (raw.size() > 40 ? raw.substr(0, 37) + "..." : raw));
  } catch (const JsonTextError&) {
    // a bare word is a string; JSON text must be UTF-8 (the resolved config is written out)
    if (!valid_utf8(raw)) {
      throw ConfigError(where + ": key '" + key + "': expected UTF-8 text, found bytes that are not (" +
                        excerpt(raw, 40) + ")");
    }
    value = raw;
  }

  Json* node = &doc.root;
  std::string path;
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto& p = parts[i];
    const bool last = i + 1 == parts.size();
    if (node->is_array() && all_digits(p)) {
      size_t idx = parse_index(p);
      if (idx >= node->size()) {
        throw ConfigError(where + ": key '" + key + "': index " + p + " is past the end of '" + path +
                          "' (" + std::to_string(node->size()) + " elements)");
      }
      path += "[" + p + "]";
      node = &(*node)[idx];
    } else {
      if (node->is_null()) *node = Json::object();
      if (!node->is_object()) {
        throw ConfigError(where + ": key '" + key + "': '" + path + "' is not an object");
      }
      path += (path.empty() ? "" : ".") + p;
      node = &(*node)[p];
    }
    if (last) *node = value;
  }
  doc.override_of[path] = where;
}

}  // namespace

Json parse_json_text(std::string_view text, const std::string& source) {
  try {
    return parse_json_bounded(text);
  } catch (const JsonTextError& e) {
    throw ConfigError(source + ": malformed JSON: " + e.what());
  }
}

ConfigDoc parse_config(std::string_view text, const std::string& source,
                       const std::vector<std::string>& overrides) {
  ConfigDoc doc;
  doc.file = source;
  doc.root = parse_json_text(text, source);
  if (!doc.root.is_object()) {
    throw ConfigError(source + ": expected a JSON object at the top level, found " +
                      std::string(doc.root.type_name()));
  }
  for (const auto& o : overrides) apply_override(doc, o);
  return doc;
}

ConfigDoc load_config(const std::string& file, const std::vector<std::string>& overrides) {
  if (file.empty()) {
    ConfigDoc doc;
    for (const auto& o : overrides) apply_override(doc, o);
    return doc;
  }
  std::string text;
  try {
    text = read_file(file);
  } catch (const InputError& e) {
    throw ConfigError(std::string("config ") + e.what());
  }
  return parse_config(text, file, overrides);
}

Check<std::string> one_of(std::vector<std::string> choices) {
  return [choices = std::move(choices)](const std::string& v) -> std::string {
    if (std::find(choices.begin(), choices.end(), v) != choices.end()) return {};
    std::string expected = "one of ";
    for (size_t i = 0; i < choices.size(); ++i) expected += (i ? "|" : "") + choices[i];
    return expected;
  };
}

// ---------------------------------------------------------------- ConfigNode

struct ConfigNode::State {
  ConfigDoc doc;
  Json resolved = Json::object();
  // key path -> how it was read: values are leaves; sections/items are walked by finish().
  enum class Use { value, section, items };
  std::map<std::string, Use> used;
  Json empty = Json::object();
};

ConfigNode::ConfigNode(ConfigDoc doc) : state_(std::make_shared<State>()) {
  state_->doc = std::move(doc);
  node_ = &state_->doc.root;
}

ConfigNode::ConfigNode(std::shared_ptr<State> state, std::vector<std::string> path, const Json* node)
    : state_(std::move(state)), path_(std::move(path)), node_(node) {}

std::string ConfigNode::path_of(std::string_view key) const {
  auto parts = path_;
  parts.emplace_back(key);
  return join(parts);
}

const Json* ConfigNode::lookup(std::string_view key) const {
  auto it = node_->find(std::string(key));
  if (it == node_->end()) return nullptr;
  return &*it;
}

// The --set that supplied this key, a parent of it (--set a={"b":1} for a.b) or a part of
// it (--set seed.x=1 made seed an object), else the file.
std::string ConfigNode::source_of(const std::string& path) const {
  std::string source = state_->doc.file.empty() ? "<built-in defaults>" : state_->doc.file;
  const auto within = [](const std::string& inner, const std::string& outer) {
    return inner == outer || inner.rfind(outer + ".", 0) == 0 || inner.rfind(outer + "[", 0) == 0;
  };
  for (const auto& [k, where] : state_->doc.override_of) {
    if (within(path, k) || within(k, path)) source = where;
  }
  return source;
}

void ConfigNode::fail(std::string_view key, std::string_view expected, std::string_view found) const {
  std::string path = path_of(key);
  throw ConfigError(source_of(path) + ": key '" + excerpt(path, 120) + "': expected " + std::string(expected) +
                    ", found " + std::string(found));
}

void ConfigNode::record(std::string_view key, Json value) const {
  std::string path = path_of(key);
  state_->used.emplace(path, State::Use::value);
  (*resolved_here())[std::string(key)] = std::move(value);
}

// This node's object in the resolved document, created along path_ as read.
Json* ConfigNode::resolved_here() const {
  Json* r = &state_->resolved;
  for (const auto& p : path_) {
    if (!p.empty() && p.front() == '[') {
      size_t idx = segment_index(p);
      if (!r->is_array()) *r = Json::array();
      while (r->size() <= idx) r->push_back(Json::object());
      r = &(*r)[idx];
    } else {
      if (!r->is_object()) *r = Json::object();
      r = &(*r)[p];
    }
  }
  if (!r->is_object()) *r = Json::object();
  return r;
}

ConfigNode ConfigNode::child(std::string_view key) const {
  const Json* v = lookup(key);
  if (v != nullptr && !v->is_object()) fail(key, "an object", describe_json(*v));
  auto parts = path_;
  parts.emplace_back(key);
  state_->used[join(parts)] = State::Use::section;
  ConfigNode c(state_, parts, v != nullptr ? v : &state_->empty);
  // Make the section appear in the resolved config even if it only holds defaults.
  Json* r = resolved_here();
  if (!r->contains(std::string(key))) (*r)[std::string(key)] = Json::object();
  return c;
}

std::vector<ConfigNode> ConfigNode::items(std::string_view key) const {
  const Json* v = lookup(key);
  std::vector<ConfigNode> out;
  state_->used[path_of(key)] = State::Use::items;
  if (v == nullptr) {
    record(key, Json::array());
    state_->used[path_of(key)] = State::Use::items;
    return out;
  }
  if (!v->is_array()) fail(key, "an array of objects", describe_json(*v));
  record(key, Json::array());
  state_->used[path_of(key)] = State::Use::items;
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& item = (*v)[i];
    std::string sub = std::string(key) + "[" + std::to_string(i) + "]";
    if (!item.is_object()) fail(sub, "an object", describe_json(item));
    auto parts = path_;
    parts.emplace_back(key);
    parts.push_back("[" + std::to_string(i) + "]");
    state_->used[join(parts)] = State::Use::section;
    out.push_back(ConfigNode(state_, parts, &item));
  }
  return out;
}

bool ConfigNode::has(std::string_view key) const { return lookup(key) != nullptr; }

void ConfigNode::finish() const {
  if (!node_->is_object()) return;
  for (auto it = node_->begin(); it != node_->end(); ++it) {
    std::string path = path_of(it.key());
    // Keys are plain names: "" or "a.b" or "a[0]" would alias real key paths.
    const bool plain = !it.key().empty() && it.key().find_first_of(".[]") == std::string::npos;
    auto u = plain ? state_->used.find(path) : state_->used.end();
    if (u == state_->used.end()) {
      // List the keys this object does know, to make the typo obvious.
      std::string known;
      std::string prefix = join(path_);
      for (const auto& [k, use] : state_->used) {
        std::string parent = prefix.empty() ? "" : prefix + ".";
        if (k.rfind(parent, 0) != 0) continue;
        std::string rest = k.substr(parent.size());
        if (rest.empty() || rest.find('.') != std::string::npos || rest.front() == '[' ||
            rest.find('[') != std::string::npos) {
          continue;
        }
        known += (known.empty() ? "" : ", ") + rest;
      }
      throw ConfigError(source_of(path) + ": unknown key '" + (plain ? path : join(path_) + (path_.empty() ? "" : ".") + it.key()) + "'" +
                        (known.empty() ? std::string() : " (known here: " + known + ")"));
    }
    if (u->second == State::Use::section) {
      ConfigNode(state_, [&] {
        auto p = path_;
        p.push_back(it.key());
        return p;
      }(), &it.value()).finish();
    } else if (u->second == State::Use::items) {
      for (size_t i = 0; i < it.value().size(); ++i) {
        auto p = path_;
        p.push_back(it.key());
        p.push_back("[" + std::to_string(i) + "]");
        ConfigNode(state_, p, &it.value()[i]).finish();
      }
    }
  }
}

Json ConfigNode::resolved() const { return state_->resolved; }

}  // namespace mlsys::core
