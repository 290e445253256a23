#include "core/artifact.hpp"

#include "core/atomic_file.hpp"
#include "core/build_info.hpp"
#include "core/error.hpp"

namespace mlsys::core {

ArtifactInfo artifact_info(const CommonOptions& opts, const Json& resolved) {
  return {opts.program, resolved.dump(), opts.command, opts.command_line};
}

Json artifact_header(const ArtifactInfo& info) {
  Json config = info.config_json.empty() ? Json::object() : parse_json_bounded(info.config_json);
  return Json{{"program", info.program},      {"version", std::string(version())},
              {"git_commit", std::string(git_commit())}, {"created", utc_timestamp()},
              {"command", info.command},      {"command_line", info.command_line},
              {"config", std::move(config)}};
}

void write_json_artifact(const std::filesystem::path& path, const ArtifactInfo& info, const Json& body) {
  Json out = artifact_header(info);
  for (const auto& [k, v] : body.items()) out[k] = v;
  write_file_atomic(path, out.dump(2) + "\n");
}

namespace {

namespace fs = std::filesystem;

constexpr const char* kArtifactName = "a file name inside the --out folder";

// "" when `name` names a file (not a folder), else the reason in parentheses.
std::string folder_problem(std::string_view name) {
  if (name.empty()) return " (not an empty name)";
  const auto slash = name.find_last_of('/');
  const std::string_view last = slash == std::string_view::npos ? name : name.substr(slash + 1);
  if (last.empty() || last == "." || last == "..") return " (this names a folder)";
  return {};
}

[[noreturn]] void refuse(std::string_view key, const std::string& expected, const std::string& name,
                         const std::string& why = {}) {
  throw ConfigError("key '" + std::string(key) + "': expected " + expected + ", found " + Json(name).dump() +
                    (why.empty() ? std::string() : " (" + why + ")"));
}

}  // namespace

std::string artifact_name_problem(const std::string& name) {
  if (auto p = folder_problem(name); !p.empty()) return kArtifactName + p;
  const fs::path rel(name);
  if (rel.is_absolute()) return "a file name relative to the --out folder (not an absolute path)";
  const fs::path norm = rel.lexically_normal();
  // "sub/.." normalizes to "." (a folder); "../x" and "a/../../x" begin with ".."
  if (norm.empty() || norm == ".") return std::string(kArtifactName) + " (this names a folder)";
  if (*norm.begin() == "..") return std::string(kArtifactName) + " (\"..\" climbs out of it)";
  return {};
}

Check<std::string> artifact_name() { return [](const std::string& v) { return artifact_name_problem(v); }; }

fs::path artifact_path(const CommonOptions& opts, std::string_view key, const std::string& name) {
  if (auto p = artifact_name_problem(name); !p.empty()) refuse(key, p, name);
  const fs::path out = fs::path(opts.out);
  const fs::path path = (out / fs::path(name).lexically_normal()).lexically_normal();
  std::error_code ec;
  if (fs::is_directory(path, ec)) refuse(key, kArtifactName, name, path.string() + " is a folder");
  // The lexical check cannot see a symbolic link inside --out that points elsewhere.
  const fs::path real_out = fs::weakly_canonical(out, ec);
  const fs::path real = fs::weakly_canonical(path.parent_path(), ec);
  if (!ec && !real_out.empty()) {
    const fs::path inside = real.lexically_relative(real_out);
    if (inside.empty() || *inside.begin() == "..") {
      refuse(key, kArtifactName, name, "a symbolic link leads to " + real.string());
    }
  }
  return path;
}

std::string export_name_problem(const std::string& name) {
  if (fs::path(name).is_absolute()) {
    if (auto p = folder_problem(name); !p.empty()) return "an absolute file path or " + std::string(kArtifactName) + p;
    return {};
  }
  const std::string p = artifact_name_problem(name);
  return p.empty() ? p : "an absolute file path or " + p;
}

Check<std::string> export_name() { return [](const std::string& v) { return export_name_problem(v); }; }

fs::path export_path(const CommonOptions& opts, std::string_view key, const std::string& name) {
  if (!fs::path(name).is_absolute()) return artifact_path(opts, key, name);
  if (auto p = export_name_problem(name); !p.empty()) refuse(key, p, name);
  std::error_code ec;
  if (fs::is_directory(name, ec)) refuse(key, "an absolute file path", name, "it is a folder");
  return fs::path(name).lexically_normal();
}

}  // namespace mlsys::core
