// One artifact header for every program and format: program, version, git commit, created,
// subcommand, command line and the resolved config (with every override, --seed included).
// HDF5 files get it through H5Writer(path, artifact_info(...)); JSON artifacts through
// write_json_artifact, whose top-level keys hold the same fields.
#pragma once

#include <filesystem>

#include "core/h5.hpp"
#include "core/json.hpp"
#include "core/options.hpp"

namespace mlsys::core {

// The header of an artifact written by the run described by `opts`, recording `resolved`.
[[nodiscard]] ArtifactInfo artifact_info(const CommonOptions& opts, const Json& resolved);

// {"program", "version", "git_commit", "created", "command", "command_line", "config"}.
[[nodiscard]] Json artifact_header(const ArtifactInfo& info);

// Writes the header followed by `body`'s keys (a key of body replaces the header's) as
// indented JSON, atomically (core::write_file_atomic).
void write_json_artifact(const std::filesystem::path& path, const ArtifactInfo& info, const Json& body);

}  // namespace mlsys::core
