#include "core/output_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace mlsys::core {

namespace fs = std::filesystem;

void check_output_path(const fs::path& path) {
  if (path.empty()) throw UsageError("--out: expected a folder, found an empty path");
  std::error_code ec;
  if (fs::exists(path, ec) && !fs::is_directory(path, ec)) {
    throw UsageError("--out " + path.string() + ": expected a folder, found a file");
  }
}

void remove_stale_temporaries(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    // ".<name>.tmp.<pid>.<n>" (AtomicFile, ArtifactSet's staging folders) and ".<name>.tmp.<pid>" (folders)
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.front() != '.') continue;
    const long pid = writer_pid(name, ".tmp.");
    if (pid <= 0 || process_running(pid)) continue;  // not a temporary, or its writer still runs
    std::error_code rm;
    fs::remove_all(entry.path(), rm);
  }
}

OutputDir::OutputDir(const fs::path& path) {
  check_output_path(path);
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) throw RuntimeFailure("--out " + path.string() + ": cannot create the folder: " + ec.message());
  fd_ = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_ < 0) throw RuntimeFailure("--out " + path.string() + ": cannot open the folder: " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
    throw UsageError("--out " + path.string() +
                     ": another run is writing into this folder; wait for it or choose another --out");
  }
  try {
    complete_artifact_sets(path);  // a set sealed by a killed run ends all new ...
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
  remove_stale_temporaries(path);  // ... one killed before its seal all old
}

OutputDir::~OutputDir() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace mlsys::core
