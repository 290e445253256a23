// Atomic artifact writes: write to a temporary file in the destination's folder, then
// rename over the destination. Until commit() the old artifact stays untouched; an
// AtomicFile destroyed without commit() (an error, an interrupt) removes its temporary.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

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
// Reads a whole file (InputError naming the file when it is missing or unreadable).
std::string read_file(const std::filesystem::path& path);

}  // namespace mlsys::core
