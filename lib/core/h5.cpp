#include "core/h5.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <mutex>

#include <hdf5.h>

#include "core/atomic_file.hpp"
#include "core/build_info.hpp"
#include "core/error.hpp"
#include "core/h5_seal.hpp"

namespace mlsys::core {

namespace fs = std::filesystem;

namespace {

// HDF5 prints its own error stack to stderr by default; we report errors ourselves.
void silence_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

// RAII for an hid_t with its matching close function.
class Hid {
 public:
  Hid() = default;
  Hid(hid_t id, herr_t (*closer)(hid_t)) : id_(id), closer_(closer) {}
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  Hid(Hid&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      closer_ = o.closer_;
      o.id_ = -1;
    }
    return *this;
  }
  ~Hid() { reset(); }
  // Returns false when the close failed (for a file: data not written out).
  bool reset() {
    bool ok = true;
    if (id_ >= 0 && closer_ != nullptr) ok = closer_(id_) >= 0;
    id_ = -1;
    return ok;
  }
  [[nodiscard]] hid_t get() const { return id_; }
  [[nodiscard]] bool ok() const { return id_ >= 0; }

 private:
  hid_t id_ = -1;
  herr_t (*closer_)(hid_t) = nullptr;
};

}  // namespace

std::string utc_timestamp() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

Hid string_type() {
  Hid t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

// Creates the groups leading to `name` ("/a/b/c" -> /a, /a/b).
void make_parents(hid_t file, const std::string& name) {
  size_t pos = 1;
  while ((pos = name.find('/', pos)) != std::string::npos) {
    std::string group = name.substr(0, pos);
    if (H5Lexists(file, group.c_str(), H5P_DEFAULT) <= 0) {
      Hid g(H5Gcreate2(file, group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      if (!g.ok()) throw RuntimeFailure("HDF5: cannot create group " + group);
    }
    ++pos;
  }
}

std::string normalize(const std::string& name) { return name.empty() || name[0] != '/' ? "/" + name : name; }

}  // namespace

// ---------------------------------------------------------------- writer

struct H5Writer::Impl {
  fs::path path;
  AtomicFile atomic;
  Hid file;
  explicit Impl(const fs::path& p) : path(p), atomic(p) {}

  void write_raw(const std::string& name, hid_t mem_type, const void* data, size_t count,
                 std::vector<uint64_t> shape) {
    std::string n = normalize(name);
    if (shape.empty()) shape = {static_cast<uint64_t>(count)};
    uint64_t product = 1;
    for (auto d : shape) product *= d;
    if (product != count) {
      throw RuntimeFailure("HDF5 " + path.string() + ": dataset " + n + ": shape holds " +
                           std::to_string(product) + " values but " + std::to_string(count) + " were given");
    }
    make_parents(file.get(), n);
    std::vector<hsize_t> dims(shape.begin(), shape.end());
    Hid space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
    Hid ds(H5Dcreate2(file.get(), n.c_str(), mem_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
           H5Dclose);
    if (!ds.ok()) throw RuntimeFailure("HDF5 " + path.string() + ": cannot create dataset " + n);
    if (count > 0 && H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
      throw RuntimeFailure("HDF5 " + path.string() + ": cannot write dataset " + n);
    }
  }

  void attr_raw(const std::string& object, const std::string& attr, hid_t type, const void* value) {
    std::string o = normalize(object);
    Hid obj(H5Oopen(file.get(), o.c_str(), H5P_DEFAULT), H5Oclose);
    if (!obj.ok()) throw RuntimeFailure("HDF5 " + path.string() + ": no object " + o + " to attach '" + attr + "' to");
    if (H5Aexists(obj.get(), attr.c_str()) > 0) H5Adelete(obj.get(), attr.c_str());
    Hid space(H5Screate(H5S_SCALAR), H5Sclose);
    Hid a(H5Acreate2(obj.get(), attr.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!a.ok() || H5Awrite(a.get(), type, value) < 0) {
      throw RuntimeFailure("HDF5 " + path.string() + ": cannot write attribute " + o + "@" + attr);
    }
  }
};

H5Writer::H5Writer(const fs::path& path, const ArtifactInfo& info) : impl_(std::make_unique<Impl>(path)) {
  silence_hdf5();
  // A user block for the integrity seal (core/h5_seal.hpp), written at commit().
  Hid fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
  if (!fcpl.ok() || H5Pset_userblock(fcpl.get(), kH5UserBlock) < 0) {
    throw RuntimeFailure(path.string() + ": cannot set up the HDF5 user block");
  }
  impl_->file = Hid(H5Fcreate(impl_->atomic.temp_path().c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT),
                    H5Fclose);
  if (!impl_->file.ok()) throw RuntimeFailure(path.string() + ": cannot create HDF5 file");
  set_attr("/", "program", info.program);
  set_attr("/", "version", std::string(version()));
  set_attr("/", "git_commit", std::string(git_commit()));
  set_attr("/", "created", utc_timestamp());
  if (!info.command.empty()) set_attr("/", "command", info.command);
  if (!info.command_line.empty()) set_attr("/", "command_line", info.command_line);
  set_attr("/", "config", info.config_json.empty() ? std::string("{}") : info.config_json);
}

H5Writer::~H5Writer() {
  // Close before AtomicFile's destructor removes the temporary.
  if (impl_) impl_->file.reset();
}

void H5Writer::write(const std::string& name, std::span<const float> data, std::vector<uint64_t> shape) {
  impl_->write_raw(name, H5T_NATIVE_FLOAT, data.data(), data.size(), std::move(shape));
}
void H5Writer::write(const std::string& name, std::span<const double> data, std::vector<uint64_t> shape) {
  impl_->write_raw(name, H5T_NATIVE_DOUBLE, data.data(), data.size(), std::move(shape));
}
void H5Writer::write(const std::string& name, std::span<const int64_t> data, std::vector<uint64_t> shape) {
  impl_->write_raw(name, H5T_NATIVE_INT64, data.data(), data.size(), std::move(shape));
}
void H5Writer::write_strings(const std::string& name, const std::vector<std::string>& values) {
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (const auto& v : values) ptrs.push_back(v.c_str());
  Hid t = string_type();
  impl_->write_raw(name, t.get(), ptrs.data(), ptrs.size(), {});
}

void H5Writer::set_attr(const std::string& object, const std::string& attr, const std::string& value) {
  Hid t = string_type();
  const char* p = value.c_str();
  impl_->attr_raw(object, attr, t.get(), &p);
}
void H5Writer::set_attr(const std::string& object, const std::string& attr, double value) {
  impl_->attr_raw(object, attr, H5T_NATIVE_DOUBLE, &value);
}
void H5Writer::set_attr(const std::string& object, const std::string& attr, int64_t value) {
  impl_->attr_raw(object, attr, H5T_NATIVE_INT64, &value);
}

void H5Writer::commit() {
  if (impl_->file.ok()) {
    if (H5Fflush(impl_->file.get(), H5F_SCOPE_GLOBAL) < 0 || !impl_->file.reset()) {
      throw RuntimeFailure(impl_->path.string() + ": HDF5 flush/close failed (the old file is untouched)");
    }
  }
  seal_h5_file(impl_->atomic.temp_path());
  impl_->atomic.commit();
}

const fs::path& H5Writer::path() const { return impl_->path; }

// ---------------------------------------------------------------- reader

struct H5Reader::Impl {
  fs::path path;
  Hid file;

  [[noreturn]] void fail(const std::string& what) const { throw InputError(path.string() + ": " + what); }

  Hid open_dataset(const std::string& name) const {
    std::string n = normalize(name);
    if (!exists(n)) fail("no dataset '" + n + "'");
    Hid ds(H5Dopen2(file.get(), n.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) fail("'" + n + "' is not a dataset");
    return ds;
  }

  bool exists(const std::string& n) const {
    // H5Lexists fails on a missing intermediate group; walk the path.
    size_t pos = 1;
    while (true) {
      size_t next = n.find('/', pos);
      std::string prefix = n.substr(0, next);
      if (H5Lexists(file.get(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
      if (next == std::string::npos) return true;
      pos = next + 1;
    }
  }

  // The element count, refused when the dataspace claims more than the file could hold
  // (a hostile or damaged file must not make us allocate terabytes).
  size_t count(hid_t ds, const std::string& name) const {
    Hid space(H5Dget_space(ds), H5Sclose);
    hssize_t n = H5Sget_simple_extent_npoints(space.get());
    if (n < 0) fail("dataset '" + normalize(name) + "': unreadable dataspace");
    Hid t(H5Dget_type(ds), H5Tclose);
    size_t elem = std::max<size_t>(H5Tget_size(t.get()), 1);
    constexpr uint64_t kMaxBytes = uint64_t{1} << 36;  // 64 GiB: larger than any artifact we write
    if (static_cast<uint64_t>(n) > kMaxBytes / elem) {
      fail("dataset '" + normalize(name) + "': expected at most " + std::to_string(kMaxBytes / elem) +
           " elements, found a dataspace of " + std::to_string(n));
    }
    return static_cast<size_t>(n);
  }

  H5Type type_of(hid_t ds) const {
    Hid t(H5Dget_type(ds), H5Tclose);
    H5T_class_t c = H5Tget_class(t.get());
    size_t size = H5Tget_size(t.get());
    if (c == H5T_FLOAT) return size == 4 ? H5Type::f32 : size == 8 ? H5Type::f64 : H5Type::other;
    if (c == H5T_INTEGER) return H5Type::i64;  // any integer converts to int64
    if (c == H5T_STRING) return H5Type::string;
    return H5Type::other;
  }

  template <class T>
  std::vector<T> read_numeric(const std::string& name, hid_t mem_type, bool want_float) const {
    Hid ds = open_dataset(name);
    H5Type t = type_of(ds.get());
    bool is_float = t == H5Type::f32 || t == H5Type::f64;
    if (t == H5Type::string || t == H5Type::other || is_float != want_float) {
      fail("dataset '" + normalize(name) + "': expected " + (want_float ? "floating-point" : "integer") +
           " values, found " + (t == H5Type::string ? "strings" : is_float ? "floating-point values" : t == H5Type::i64 ? "integers" : "another type"));
    }
    std::vector<T> out(count(ds.get(), name));
    if (!out.empty() && H5Dread(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
      fail("dataset '" + normalize(name) + "': read failed (the file may be truncated)");
    }
    return out;
  }

  Hid open_attr(const std::string& object, const std::string& attr) const {
    std::string o = normalize(object);
    if (o != "/" && !exists(o)) fail("no object '" + o + "'");
    Hid obj(H5Oopen(file.get(), o.c_str(), H5P_DEFAULT), H5Oclose);
    if (!obj.ok() || H5Aexists(obj.get(), attr.c_str()) <= 0) fail("no attribute '" + attr + "' on '" + o + "'");
    Hid a(H5Aopen(obj.get(), attr.c_str(), H5P_DEFAULT), H5Aclose);
    if (!a.ok()) fail("attribute '" + attr + "' on '" + o + "' cannot be opened");
    // Reads below fill one value: anything but a scalar would overrun it.
    Hid space(H5Aget_space(a.get()), H5Sclose);
    hssize_t n = H5Sget_simple_extent_npoints(space.get());
    if (n != 1) fail("attribute '" + attr + "' on '" + o + "': expected a scalar, found " + std::to_string(n) + " elements");
    return a;
  }
};

H5Reader::H5Reader(const fs::path& path) : impl_(std::make_unique<Impl>()) {
  silence_hdf5();
  impl_->path = path;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path.string() + ": no such file");
  check_h5_seal(path);  // nothing damaged reaches libhdf5
  if (H5Fis_hdf5(path.c_str()) <= 0) throw InputError(path.string() + ": not an HDF5 file (or unreadable)");
  impl_->file = Hid(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!impl_->file.ok()) throw InputError(path.string() + ": cannot open HDF5 file (truncated or damaged?)");
}

H5Reader::~H5Reader() = default;

bool H5Reader::has(const std::string& name) const { return impl_->exists(normalize(name)); }

std::vector<uint64_t> H5Reader::shape(const std::string& name) const {
  Hid ds = impl_->open_dataset(name);
  Hid space(H5Dget_space(ds.get()), H5Sclose);
  int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(rank > 0 ? rank : 0);
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return {dims.begin(), dims.end()};
}

H5Type H5Reader::type(const std::string& name) const {
  Hid ds = impl_->open_dataset(name);
  return impl_->type_of(ds.get());
}

std::vector<float> H5Reader::read_f32(const std::string& name) const {
  return impl_->read_numeric<float>(name, H5T_NATIVE_FLOAT, true);
}
std::vector<double> H5Reader::read_f64(const std::string& name) const {
  return impl_->read_numeric<double>(name, H5T_NATIVE_DOUBLE, true);
}
std::vector<int64_t> H5Reader::read_i64(const std::string& name) const {
  return impl_->read_numeric<int64_t>(name, H5T_NATIVE_INT64, false);
}

std::vector<std::string> H5Reader::read_strings(const std::string& name) const {
  Hid ds = impl_->open_dataset(name);
  if (impl_->type_of(ds.get()) != H5Type::string) {
    impl_->fail("dataset '" + normalize(name) + "': expected strings, found numbers");
  }
  size_t n = impl_->count(ds.get(), name);
  std::vector<char*> ptrs(n, nullptr);
  Hid t = string_type();
  if (n > 0 && H5Dread(ds.get(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0) {
    impl_->fail("dataset '" + normalize(name) + "': read failed");
  }
  std::vector<std::string> out;
  out.reserve(n);
  for (char* p : ptrs) out.emplace_back(p != nullptr ? p : "");
  if (n > 0) {
    Hid space(H5Dget_space(ds.get()), H5Sclose);
    H5Dvlen_reclaim(t.get(), space.get(), H5P_DEFAULT, ptrs.data());
  }
  return out;
}

std::string H5Reader::attr_string(const std::string& object, const std::string& attr) const {
  Hid a = impl_->open_attr(object, attr);
  Hid ft(H5Aget_type(a.get()), H5Tclose);
  if (H5Tget_class(ft.get()) != H5T_STRING) impl_->fail("attribute '" + attr + "': expected a string");
  if (H5Tis_variable_str(ft.get()) > 0) {
    char* p = nullptr;
    Hid t = string_type();
    if (H5Aread(a.get(), t.get(), &p) < 0) impl_->fail("attribute '" + attr + "': read failed");
    std::string out = p != nullptr ? p : "";
    H5free_memory(p);
    return out;
  }
  size_t size = H5Tget_size(ft.get());
  std::string out(size, '\0');
  if (H5Aread(a.get(), ft.get(), out.data()) < 0) impl_->fail("attribute '" + attr + "': read failed");
  while (!out.empty() && out.back() == '\0') out.pop_back();
  return out;
}

double H5Reader::attr_double(const std::string& object, const std::string& attr) const {
  Hid a = impl_->open_attr(object, attr);
  double v = 0;
  if (H5Aread(a.get(), H5T_NATIVE_DOUBLE, &v) < 0) impl_->fail("attribute '" + attr + "': expected a number");
  return v;
}

int64_t H5Reader::attr_int(const std::string& object, const std::string& attr) const {
  Hid a = impl_->open_attr(object, attr);
  int64_t v = 0;
  if (H5Aread(a.get(), H5T_NATIVE_INT64, &v) < 0) impl_->fail("attribute '" + attr + "': expected an integer");
  return v;
}

std::vector<std::string> H5Reader::list(const std::string& group) const {
  std::string g = normalize(group);
  if (g != "/" && !impl_->exists(g)) impl_->fail("no group '" + g + "'");
  std::vector<std::string> names;
  auto cb = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  if (H5Literate_by_name(impl_->file.get(), g.c_str(), H5_INDEX_NAME, H5_ITER_INC, nullptr, cb, &names,
                          H5P_DEFAULT) < 0) {
    impl_->fail("'" + g + "' is not a group");
  }
  return names;
}

const fs::path& H5Reader::path() const { return impl_->path; }

}  // namespace mlsys::core
