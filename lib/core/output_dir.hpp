// The --out folder of a run, guarded before any work starts: it must be a folder (or not
// exist yet: it is created), it is locked for the run (an advisory flock on the folder, so
// a second run writing into it is refused instead of racing it), artifact sets that a
// killed run had sealed are completed (core::complete_artifact_sets), and temporaries that
// a killed run left in it (".<name>.tmp.<pid>.<n>" of core::AtomicFile and core::ArtifactSet)
// are removed.
#pragma once

#include <filesystem>

namespace mlsys::core {

class OutputDir {
 public:
  // UsageError (exit 2) when `path` is empty or exists and is not a folder, and when
  // another process holds the folder; RuntimeFailure when it cannot be created.
  explicit OutputDir(const std::filesystem::path& path);
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;
  ~OutputDir();  // releases the lock

 private:
  int fd_ = -1;
};

// UsageError when `path` is empty or exists and is not a folder; nothing is created.
void check_output_path(const std::filesystem::path& path);

// Removes AtomicFile temporaries in `dir` whose writing process no longer runs.
void remove_stale_temporaries(const std::filesystem::path& dir);

}  // namespace mlsys::core
