// One artifact header for every program and format: program, version, git commit, created,
// subcommand, command line and the resolved config (with every override, --seed included).
// HDF5 files get it through H5Writer(path, artifact_info(...)); JSON artifacts through
// write_json_artifact, whose top-level keys hold the same fields.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/config.hpp"
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

// Artifact names given in a config (dynapipe-plan's explain.svg, tgnn-train's
// eval.negatives_out, ...) are relative to the --out folder and may not leave it: a run
// writes only where --out says. A name is refused when it is empty, names a folder ("",
// ".", "..", "x/", "x/.."), is absolute, or climbs out with "..".
//
// The check alone: "" when `name` is such a name, else what was expected (the form of a
// core::Check, so config readers refuse a bad name with the file and key, before any work).
[[nodiscard]] std::string artifact_name_problem(const std::string& name);
[[nodiscard]] Check<std::string> artifact_name();
// `name` resolved under opts.out (lexically normal: "a/../b.svg" is OUT/b.svg). ConfigError
// "key '<key>': expected ..., found \"<name>\"" when artifact_name_problem refuses it, when
// the path is an existing folder, or when a symbolic link inside --out leads out of it.
[[nodiscard]] std::filesystem::path artifact_path(const CommonOptions& opts, std::string_view key,
                                                  const std::string& name);

// A file exported for other tools (tgnn-train's eval.negatives_out, which several runs
// with different --out folders may share): an absolute path is the user's explicit
// choice and is taken as given (it must still name a file, not a folder); a relative one
// is an artifact name, resolved by artifact_path under --out.
[[nodiscard]] std::string export_name_problem(const std::string& name);
[[nodiscard]] Check<std::string> export_name();
[[nodiscard]] std::filesystem::path export_path(const CommonOptions& opts, std::string_view key,
                                                const std::string& name);

}  // namespace mlsys::core
