// HDF5 artifacts: round trips, root attributes, h5dump readability, bad files, atomicity.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "core/h5.hpp"
#include "tests/support/harness.hpp"

using namespace mlsys::core;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {
size_t count_files(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}
}  // namespace

TEST_CASE("HDF5 datasets and attributes round-trip", "[h5]") {
  const mlsys::test::TempDir scratch("h5rt");
  const fs::path& dir = scratch.path;
  auto path = dir / "a.h5";
  {
    H5Writer w(path, {"test-prog", R"({"x":1})"});
    std::vector<float> f{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
    std::vector<double> d{1e-300, 2.5};
    std::vector<int64_t> i{-1, 0, 1LL << 40};
    w.write("/params/w", std::span<const float>(f), {2, 3});
    w.write("/metrics/loss", std::span<const double>(d));
    w.write("/ids", std::span<const int64_t>(i));
    w.write_strings("/names", {"alpha", "", "γ-unicode"});
    w.set_attr("/metrics/loss", "unit", std::string("nats"));
    w.set_attr("/metrics/loss", "step", int64_t{42});
    w.set_attr("/", "score", 0.75);
    w.commit();
  }
  H5Reader r(path);
  CHECK(r.attr_string("/", "program") == "test-prog");
  CHECK(r.attr_string("/", "config") == R"({"x":1})");
  CHECK_FALSE(r.attr_string("/", "version").empty());
  CHECK_FALSE(r.attr_string("/", "git_commit").empty());
  CHECK(r.attr_string("/", "created").size() == 20);  // 2026-01-01T00:00:00Z
  CHECK(r.shape("/params/w") == std::vector<uint64_t>{2, 3});
  CHECK(r.read_f32("/params/w") == std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f});
  CHECK(r.read_f64("/metrics/loss") == std::vector<double>{1e-300, 2.5});
  CHECK(r.read_f64("/params/w")[2] == 3.25);  // f32 -> f64 converts
  CHECK(r.read_i64("/ids") == std::vector<int64_t>{-1, 0, 1LL << 40});
  CHECK(r.read_strings("/names") == std::vector<std::string>{"alpha", "", "γ-unicode"});
  CHECK(r.attr_string("/metrics/loss", "unit") == "nats");
  CHECK(r.attr_int("/metrics/loss", "step") == 42);
  CHECK(r.attr_double("/", "score") == 0.75);
  CHECK(r.type("/ids") == H5Type::i64);
  CHECK(r.has("/metrics/loss"));
  CHECK_FALSE(r.has("/metrics/nothing"));
  CHECK_FALSE(r.has("/nogroup/x"));
  auto names = r.list("/");
  CHECK(names == std::vector<std::string>{"ids", "metrics", "names", "params"});
  CHECK_THROWS_WITH(r.read_f32("/nope"), Contains("a.h5: no dataset '/nope'"));
  CHECK_THROWS_WITH(r.read_f32("/ids"), Contains("expected floating-point values, found integers"));
  CHECK_THROWS_WITH(r.read_i64("/params/w"), Contains("expected integer values"));
  CHECK_THROWS_AS(r.attr_string("/", "missing"), InputError);
}

TEST_CASE("h5dump reads the artifact and shows the root attributes", "[h5]") {
  if (std::system("command -v h5dump >/dev/null 2>&1") != 0) {
    WARN("h5dump not installed; skipping the external check");
    return;
  }
  const mlsys::test::TempDir scratch("h5dump");
  const fs::path& dir = scratch.path;
  auto path = dir / "b.h5";
  {
    H5Writer w(path, {"prog-x", R"({"k":"v"})"});
    std::vector<double> d{1, 2, 3};
    w.write("/metrics/acc", std::span<const double>(d));
    w.commit();
  }
  auto out = dir / "dump.txt";
  REQUIRE(std::system(("h5dump -A " + path.string() + " > " + out.string()).c_str()) == 0);
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* attr : {"program", "version", "git_commit", "created", "config"}) {
    CHECK_THAT(text, Contains(std::string("ATTRIBUTE \"") + attr + "\""));
  }
  CHECK_THAT(text, Contains("prog-x"));
}

TEST_CASE("a write that is never committed leaves the old artifact intact", "[h5][atomic]") {
  const mlsys::test::TempDir scratch("h5atomic");
  const fs::path& dir = scratch.path;
  auto path = dir / "c.h5";
  {
    H5Writer w(path, {"p", "{}"});
    std::vector<int64_t> v{1, 2, 3};
    w.write("/v", std::span<const int64_t>(v));
    w.commit();
  }
  try {
    H5Writer w(path, {"p", "{}"});
    std::vector<int64_t> v{9, 9};
    w.write("/v", std::span<const int64_t>(v));
    throw std::runtime_error("interrupted before commit");
  } catch (const std::runtime_error&) {
  }
  H5Reader r(path);
  CHECK(r.read_i64("/v") == std::vector<int64_t>{1, 2, 3});
  CHECK(count_files(dir) == 1);  // no temporary left behind
}

TEST_CASE("unreadable HDF5 files give InputError naming the file", "[h5]") {
  const mlsys::test::TempDir scratch("h5bad");
  const fs::path& dir = scratch.path;
  CHECK_THROWS_WITH(H5Reader(dir / "missing.h5"), Contains("missing.h5: no such file"));
  auto junk = dir / "junk.h5";
  { std::ofstream(junk) << "this is not hdf5 at all"; }
  CHECK_THROWS_AS(H5Reader(junk), InputError);
  CHECK_THROWS_WITH(H5Reader(junk), Contains("junk.h5: not an HDF5 file"));
  // A real file cut in half.
  auto good = dir / "good.h5";
  {
    H5Writer w(good, {"p", "{}"});
    std::vector<double> big(20000, 1.0);
    w.write("/big", std::span<const double>(big));
    w.commit();
  }
  auto trunc = dir / "trunc.h5";
  fs::copy_file(good, trunc);
  fs::resize_file(trunc, fs::file_size(good) / 2);
  bool threw = false;
  try {
    H5Reader r(trunc);
    (void)r.read_f64("/big");
  } catch (const InputError& e) {
    threw = true;
    CHECK_THAT(std::string(e.what()), Contains("trunc.h5"));
  }
  CHECK(threw);
}

TEST_CASE("shape must match the data", "[h5]") {
  const mlsys::test::TempDir scratch("h5shape");
  const fs::path& dir = scratch.path;
  H5Writer w(dir / "d.h5", {"p", "{}"});
  std::vector<float> f{1, 2, 3};
  CHECK_THROWS_AS(w.write("/x", std::span<const float>(f), {2, 2}), RuntimeFailure);
}

#include <hdf5.h>

TEST_CASE("hostile HDF5 attributes and dataspaces give InputError", "[h5]") {
  const mlsys::test::TempDir scratch("h5hostile");
  const fs::path& dir = scratch.path;
  auto path = dir / "odd.h5";
  {
    hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(f >= 0);
    // A root attribute of 1000 doubles where readers expect one value.
    hsize_t n = 1000;
    hid_t space = H5Screate_simple(1, &n, nullptr);
    hid_t a = H5Acreate2(f, "score", H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT);
    std::vector<double> vals(1000, 1.0);
    H5Awrite(a, H5T_NATIVE_DOUBLE, vals.data());
    H5Aclose(a);
    H5Sclose(space);
    // A chunked dataset claiming 2^40 doubles that were never written (a few KB on disk).
    hsize_t big = hsize_t{1} << 40, chunk = 1024;
    hid_t bspace = H5Screate_simple(1, &big, nullptr);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    hid_t ds = H5Dcreate2(f, "huge", H5T_NATIVE_DOUBLE, bspace, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(bspace);
    H5Fclose(f);
  }
  H5Reader r(path);
  CHECK_THROWS_WITH(r.attr_double("/", "score"), Contains("odd.h5") && Contains("expected a scalar, found 1000 elements"));
  CHECK_THROWS_AS(r.attr_string("/", "score"), InputError);
  CHECK_THROWS_AS(r.attr_int("/", "score"), InputError);
  CHECK_THROWS_WITH(r.read_f64("/huge"), Contains("odd.h5: dataset '/huge': expected at most"));
}
