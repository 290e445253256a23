#include "core/artifact.hpp"

#include "core/atomic_file.hpp"
#include "core/build_info.hpp"

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

}  // namespace mlsys::core
