#include "core/atomic_file.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "core/error.hpp"
#include "core/log.hpp"

namespace mlsys::core {

namespace fs = std::filesystem;

namespace {
std::atomic<unsigned> temp_counter{0};

// Returns false when the data could not be made durable (EIO, ENOSPC surfacing late).
bool fsync_path(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  return ok;
}
}  // namespace

AtomicFile::AtomicFile(fs::path destination) : dest_(std::move(destination)) {
  fs::path dir = dest_.parent_path();
  if (!dir.empty()) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw RuntimeFailure(dir.string() + ": cannot create the output folder: " + ec.message());
  }
  temp_ = (dir.empty() ? fs::path(".") : dir) /
          ("." + dest_.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
           std::to_string(temp_counter.fetch_add(1)));
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    std::error_code ec;
    fs::remove(temp_, ec);
  }
}

void AtomicFile::commit() {
  if (committed_) return;
  if (!fs::exists(temp_)) throw RuntimeFailure(dest_.string() + ": nothing was written to commit");
  if (!fsync_path(temp_)) {
    throw RuntimeFailure(dest_.string() + ": cannot flush the temporary to disk: " + std::strerror(errno) +
                         " (the old file is untouched)");
  }
  if (std::rename(temp_.c_str(), dest_.c_str()) != 0) {
    throw RuntimeFailure(dest_.string() + ": cannot rename the temporary into place: " + std::strerror(errno));
  }
  committed_ = true;
  fs::path dir = dest_.parent_path();
  (void)fsync_path(dir.empty() ? fs::path(".") : dir);  // best effort: the rename is done
}

void write_file_atomic(const fs::path& path, std::string_view content) {
  AtomicFile f(path);
  {
    std::ofstream out(f.temp_path(), std::ios::binary | std::ios::trunc);
    if (!out) throw RuntimeFailure(path.string() + ": cannot open for writing: " + std::strerror(errno));
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.close();
    if (!out) throw RuntimeFailure(path.string() + ": write failed: " + std::strerror(errno));
  }
  f.commit();
}

void replace_folder_atomic(const fs::path& dir, const std::function<void(const fs::path& tmp)>& fill) {
  const fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  const std::string name = dir.filename().string();
  const std::string pid = std::to_string(::getpid());
  const fs::path tmp = parent / ("." + name + ".tmp." + pid);
  const fs::path old = parent / ("." + name + ".old." + pid);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{tmp};
  fs::create_directories(parent);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  fill(tmp);
  std::error_code ec;
  const bool had_old = fs::exists(dir);
  if (had_old) {
    fs::remove_all(old);
    fs::rename(dir, old, ec);
    if (ec) throw RuntimeFailure("cannot move " + dir.string() + " aside: " + ec.message());
  }
  fs::rename(tmp, dir, ec);
  if (ec) {
    std::error_code ec2;
    if (had_old) fs::rename(old, dir, ec2);  // the good old folder back in place
    throw RuntimeFailure("cannot rename " + tmp.string() + " to " + dir.string() + ": " + ec.message());
  }
  if (had_old) fs::remove_all(old, ec);
}

long writer_pid(const std::string& filename, std::string_view marker) {
  const auto at = filename.rfind(marker);
  if (at == std::string::npos) return 0;
  const char* first = filename.data() + at + marker.size();
  const char* last = filename.data() + filename.size();
  long pid = 0;
  const auto [ptr, err] = std::from_chars(first, last, pid);
  if (err != std::errc() || pid <= 0 || (ptr != last && *ptr != '.')) return 0;
  return pid;
}

bool process_running(long pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }

namespace {

constexpr const char* kSetPrefix = ".artifact-set";
constexpr const char* kManifest = ".manifest";  // a staged name never starts with '.'
std::atomic<unsigned> set_counter{0};

// Step 3: every file of the manifest still in the sealed folder renamed into `dir`, then
// the folder removed. Idempotent, so a kill halfway is finished by running it again.
void publish_sealed(const fs::path& dir, const fs::path& sealed, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    const fs::path src = sealed / name;
    std::error_code ec;
    if (!fs::exists(src, ec)) continue;  // renamed before a kill
    fs::rename(src, dir / name, ec);
    if (ec) {
      throw RuntimeFailure((dir / name).string() + ": cannot rename the new file into place: " + ec.message() +
                           " (" + sealed.string() + " holds the rest of the set; the next run in " + dir.string() +
                           " completes it)");
    }
  }
  (void)fsync_path(dir);  // best effort: the renames are done
  std::error_code ec;
  fs::remove_all(sealed, ec);
}

}  // namespace

ArtifactSet::ArtifactSet(fs::path dir) : dir_(dir.empty() ? fs::path(".") : std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw RuntimeFailure(dir_.string() + ": cannot create the output folder: " + ec.message());
  const std::string id = std::to_string(::getpid()) + "." + std::to_string(set_counter.fetch_add(1));
  staging_ = dir_ / (std::string(kSetPrefix) + ".tmp." + id);
  sealed_ = dir_ / (std::string(kSetPrefix) + ".commit." + id);
  fs::remove_all(staging_, ec);
  fs::create_directory(staging_, ec);
  if (ec) throw RuntimeFailure(staging_.string() + ": cannot create the staging folder: " + ec.message());
}

ArtifactSet::~ArtifactSet() {
  // A sealed set that failed to publish stays sealed: complete_artifact_sets finishes it.
  if (is_sealed_) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);
}

fs::path ArtifactSet::stage(const std::string& name) {
  if (name.empty() || name.front() == '.' || name.find('/') != std::string::npos) {
    throw RuntimeFailure("artifact set in " + dir_.string() + ": expected a plain file name, found \"" + name + "\"");
  }
  if (std::find(names_.begin(), names_.end(), name) != names_.end()) {
    throw RuntimeFailure("artifact set in " + dir_.string() + ": " + name + " is staged twice");
  }
  if (is_sealed_) throw RuntimeFailure("artifact set in " + dir_.string() + ": " + name + " staged after seal()");
  names_.push_back(name);
  return staging_ / name;
}

fs::path ArtifactSet::destination(const std::string& name) const { return dir_ / name; }

void ArtifactSet::commit() {
  seal();
  publish();
}

void ArtifactSet::seal() {
  if (is_sealed_) return;
  std::error_code ec;
  for (const auto& name : names_) {
    const fs::path dest = dir_ / name;
    if (!fs::is_regular_file(staging_ / name, ec)) {
      throw RuntimeFailure(dest.string() + ": the new file was never written (nothing of the set is replaced)");
    }
    if (fs::is_directory(dest, ec)) {
      throw RuntimeFailure(dest.string() + ": is a folder, cannot replace it with the new file (nothing of the set is replaced)");
    }
    if (!fsync_path(staging_ / name)) {
      throw RuntimeFailure(dest.string() + ": cannot flush the new file to disk: " + std::strerror(errno) +
                           " (nothing of the set is replaced)");
    }
  }
  std::string manifest;
  for (const auto& name : names_) manifest += name + "\n";
  write_file_atomic(staging_ / kManifest, manifest);  // last: a sealed folder always has one
  (void)fsync_path(staging_);
  if (std::rename(staging_.c_str(), sealed_.c_str()) != 0) {
    throw RuntimeFailure(staging_.string() + ": cannot seal the new artifacts: " + std::strerror(errno) +
                         " (nothing of the set is replaced)");
  }
  is_sealed_ = true;
  (void)fsync_path(dir_);  // the point of no return is durable before anything is replaced
}

void ArtifactSet::publish() {
  if (published_) return;
  if (!is_sealed_) throw RuntimeFailure("artifact set in " + dir_.string() + ": publish() before seal()");
  publish_sealed(dir_, sealed_, names_);
  published_ = true;
}

void complete_artifact_sets(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> sealed;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(std::string(kSetPrefix) + ".commit.", 0) != 0) continue;
    const long pid = writer_pid(name, ".commit.");
    if (pid > 0 && !process_running(pid)) sealed.push_back(entry.path());
  }
  for (const auto& folder : sealed) {
    std::ifstream in(folder / kManifest);
    if (!in) {  // never sealed by seal(): not a set to trust
      fs::remove_all(folder, ec);
      continue;
    }
    std::vector<std::string> names;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) names.push_back(line);
    }
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    log::warn("{}: completing the artifacts that an interrupted run had sealed: {}", dir.string(), list);
    publish_sealed(dir, folder, names);
  }
}

std::string read_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path.string() + ": no such file");
  if (fs::is_directory(path, ec)) throw InputError(path.string() + ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string() + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw InputError(path.string() + ": read failed");
  return ss.str();
}

}  // namespace mlsys::core
