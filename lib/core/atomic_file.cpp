#include "core/atomic_file.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

#include "core/error.hpp"

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
