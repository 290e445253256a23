// Atomic artifact writes: write to a temporary file in the destination's folder, then
// rename over the destination. Until commit() the old artifact stays untouched; an
// AtomicFile destroyed without commit() (an error, an interrupt) removes its temporary.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mlsys::core {

class AtomicFile {
 public:
  // Creates the destination's folder if needed. The temporary is "<dir>/.<name>.tmp.<pid>.<n>".
  explicit AtomicFile(std::filesystem::path destination);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  [[nodiscard]] const std::filesystem::path& temp_path() const { return temp_; }
  [[nodiscard]] const std::filesystem::path& destination() const { return dest_; }
  // fsyncs the temporary and renames it over the destination (RuntimeFailure on error).
  void commit();
  [[nodiscard]] bool committed() const { return committed_; }

 private:
  std::filesystem::path dest_;
  std::filesystem::path temp_;
  bool committed_ = false;
};

// Writes `content` to `path` atomically.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);
// Builds a whole folder: `fill` writes into a fresh temporary sibling of `dir`
// (".<name>.tmp.<pid>"), which then replaces `dir`; an old `dir` is moved aside first and
// deleted only once the new one is in place (moved back if that rename fails). An error
// or interrupt inside `fill` removes the temporary and leaves an old `dir` untouched.
void replace_folder_atomic(const std::filesystem::path& dir,
                           const std::function<void(const std::filesystem::path& tmp)>& fill);
// Several artifacts of one folder replaced together (adapter.h5 + metrics.h5, model.h5 +
// metrics.json): a reader never finds a new file of the set beside an old one of the same
// set once a program of the suite has opened the folder, whatever killed the writer.
//
// Why not one folder swapped in by one rename (replace_folder_atomic): the set's files sit
// in --out beside files of other runs and subcommands (checkpoint.h5, eval.json, ...), and
// --out itself is locked by the run, so the folder cannot be swapped. Instead a small
// journal:
//   1. stage(name) gives the path to write each file at, inside a fresh staging folder
//      "<dir>/.artifact-set.tmp.<pid>.<n>" (the AtomicFile pattern: core::OutputDir removes
//      it when its process is dead, and the old artifacts were never touched);
//   2. seal() checks that every staged file is complete and that no destination is a
//      folder, writes the manifest (the names, one a line) last, flushes, and renames the
//      staging folder to "<dir>/.artifact-set.commit.<pid>.<n>": the point of no return;
//   3. publish() renames each file into place and removes the sealed folder.
// A kill between the renames of step 3 leaves a sealed folder; complete_artifact_sets
// (called by core::OutputDir at the start of the next run in that folder) renames the
// rest into place, so the set ends all new; a kill before step 2 ends all old. Between the
// kill and that next run, a reader outside the suite may still see the mix.
class ArtifactSet {
 public:
  // `dir` is the folder the artifacts go into (created if needed).
  explicit ArtifactSet(std::filesystem::path dir);
  ArtifactSet(const ArtifactSet&) = delete;
  ArtifactSet& operator=(const ArtifactSet&) = delete;
  ~ArtifactSet();  // before seal(): removes the staging folder; the old artifacts stay

  // Where to write the artifact `name` (a plain file name, no folder): inside the staging
  // folder, with any writer (H5Writer, write_file_atomic, ...). RuntimeFailure when `name`
  // is not a plain file name or was staged already.
  [[nodiscard]] std::filesystem::path stage(const std::string& name);
  // Where `name` ends up: dir / name.
  [[nodiscard]] std::filesystem::path destination(const std::string& name) const;
  // seal() then publish().
  void commit();
  // Steps 2 and 3 above; commit() is what programs call. RuntimeFailure (naming the file)
  // when a staged file is missing or a destination is a folder: then nothing is replaced.
  void seal();
  void publish();

 private:
  std::filesystem::path dir_, staging_, sealed_;
  std::vector<std::string> names_;
  bool is_sealed_ = false, published_ = false;
};

// Publishes every sealed set in `dir` whose writing process no longer runs (step 3 above,
// idempotent), and removes sealed folders without a manifest (never written by seal()).
void complete_artifact_sets(const std::filesystem::path& dir);

// The pid in the name of a temporary "<...><marker><pid>" or "<...><marker><pid>.<n>"
// (marker ".tmp." or ".commit."), or 0 when the name has none.
[[nodiscard]] long writer_pid(const std::string& filename, std::string_view marker);
// Whether the process `pid` still runs (or runs as another user).
[[nodiscard]] bool process_running(long pid);

// Reads a whole file (InputError naming the file when it is missing or unreadable).
std::string read_file(const std::filesystem::path& path);

}  // namespace mlsys::core
