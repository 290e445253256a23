// HDF5 artifacts: round trips, root attributes, h5dump readability, bad files, atomicity.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "core/h5.hpp"
#include "core/h5_seal.hpp"
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
  // hdf5-tools is installed by scripts/install-deps: a missing h5dump fails this test.
  REQUIRE(std::system("command -v h5dump >/dev/null 2>&1") == 0);
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
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_userblock(fcpl, kH5UserBlock);
    hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    H5Pclose(fcpl);
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
    seal_h5_file(path);  // well-formed but hostile: it passes the seal and reaches our checks
  }
  H5Reader r(path);
  CHECK_THROWS_WITH(r.attr_double("/", "score"), Contains("odd.h5") && Contains("expected a scalar, found 1000 elements"));
  CHECK_THROWS_AS(r.attr_string("/", "score"), InputError);
  CHECK_THROWS_AS(r.attr_int("/", "score"), InputError);
  CHECK_THROWS_WITH(r.read_f64("/huge"), Contains("odd.h5: dataset '/huge': expected at most"));
}

namespace {
void flip_byte(const fs::path& p, uint64_t at) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(at));
  f.put(static_cast<char>(c ^ 0x20));
}
fs::path sealed_file(const fs::path& dir, const std::string& name) {
  auto p = dir / name;
  H5Writer w(p, {"p", R"({"a":1})"});
  std::vector<double> d(1000, 2.5);
  w.write("/x", std::span<const double>(d));
  w.commit();
  return p;
}
}  // namespace

TEST_CASE("every artifact carries a SHA-256 seal in its HDF5 user block", "[h5][seal]") {
  const mlsys::test::TempDir scratch("h5seal");
  auto p = sealed_file(scratch.path, "s.h5");
  std::ifstream in(p, std::ios::binary);
  std::string head(kH5UserBlock, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  const uint64_t body = fs::file_size(p) - kH5UserBlock;
  const std::string expect = "mlsys-tools HDF5 seal v1\nbytes " + std::to_string(body) + "\nsha256 " +
                             sha256_file_range(p, kH5UserBlock, body) + "\n";
  CHECK(head.substr(0, expect.size()) == expect);
  CHECK(head.find_first_not_of('\0', expect.size()) == std::string::npos);
  // SHA-256 itself, on a known vector: "abc".
  auto abc = scratch.path / "abc";
  { std::ofstream(abc, std::ios::binary) << "xxabc"; }
  CHECK(sha256_file_range(abc, 2, 3) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  H5Reader r(p);
  CHECK(r.read_f64("/x") == std::vector<double>(1000, 2.5));
  CHECK(r.attr_string("/", "config") == R"({"a":1})");
}

TEST_CASE("a damaged artifact is refused before libhdf5 opens it", "[h5][seal]") {
  const mlsys::test::TempDir scratch("h5damage");
  const fs::path& dir = scratch.path;
  const auto good = sealed_file(dir, "good.h5");
  const uint64_t size = fs::file_size(good);
  SECTION("one flipped bit anywhere after the header") {
    for (uint64_t at : {kH5UserBlock, kH5UserBlock + 100, size / 2, size - 1}) {
      auto p = dir / ("flip" + std::to_string(at) + ".h5");
      fs::copy_file(good, p);
      flip_byte(p, at);
      CHECK_THROWS_WITH(H5Reader(p), Contains(p.filename().string() + ": damaged (the SHA-256 of its contents does not match its seal)"));
    }
  }
  SECTION("truncated or extended") {
    auto t = dir / "t.h5";
    fs::copy_file(good, t);
    fs::resize_file(t, size - 7);
    CHECK_THROWS_WITH(H5Reader(t), Contains("t.h5: truncated or extended after it was written") &&
                                       Contains("the file has " + std::to_string(size - 7 - kH5UserBlock)));
    fs::resize_file(t, 100);
    CHECK_THROWS_WITH(H5Reader(t), Contains("t.h5: damaged integrity seal"));
    auto e = dir / "e.h5";
    fs::copy_file(good, e);
    { std::ofstream(e, std::ios::binary | std::ios::app) << "tail"; }
    CHECK_THROWS_WITH(H5Reader(e), Contains("e.h5: truncated or extended"));
  }
  SECTION("the seal's own bytes changed") {
    for (uint64_t at : {uint64_t{0}, uint64_t{26}, uint64_t{40}, kH5UserBlock - 1}) {
      auto p = dir / ("head" + std::to_string(at) + ".h5");
      fs::copy_file(good, p);
      flip_byte(p, at);
      CHECK_THROWS_AS(H5Reader(p), InputError);
    }
  }
  SECTION("an HDF5 file of another tool (no user block)") {
    auto p = dir / "foreign.h5";
    hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(f >= 0);
    H5Fclose(f);
    CHECK_THROWS_WITH(H5Reader(p), Contains("foreign.h5: an HDF5 file without the mlsys-tools integrity seal"));
  }
  SECTION("empty file") {
    auto p = dir / "empty.h5";
    { std::ofstream{p}; }
    CHECK_THROWS_WITH(H5Reader(p), Contains("empty.h5: not an HDF5 file written by mlsys-tools") && Contains("an empty file"));
  }
}

// Files that crashed, hung or exhausted memory inside libhdf5 1.10.8 when fuzzing
// (tests/fuzz/crashes/fuzz_h5): each is now refused with one line before libhdf5 sees it.
TEST_CASE("the libhdf5 crash reproducers are refused with InputError", "[h5][seal][fuzz]") {
  const fs::path dir = fs::path(MLSYS_SOURCE_ROOT) / "tests/fuzz/crashes/fuzz_h5";
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    ++n;
    INFO(e.path().string());
    CHECK_THROWS_WITH(H5Reader(e.path()), Contains(e.path().filename().string() + ": "));
    CHECK_THROWS_AS(H5Reader(e.path()), InputError);
  }
  CHECK(n >= 8);
}

// scripts/h5-seal: how a hand-edited artifact or a file of another tool becomes readable.
TEST_CASE("scripts/h5-seal seals a foreign HDF5 file and re-seals an edited artifact", "[h5][seal]") {
  const mlsys::test::TempDir scratch("h5sealscript");
  const fs::path script = fs::path(MLSYS_SOURCE_ROOT) / "scripts/h5-seal";
  auto foreign = scratch.path / "foreign.h5";
  {
    hid_t f = H5Fcreate(foreign.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(f >= 0);
    hsize_t n = 3;
    hid_t space = H5Screate_simple(1, &n, nullptr);
    hid_t ds = H5Dcreate2(f, "v", H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const double v[3] = {1.5, 2.5, 3.5};
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(ds);
    H5Sclose(space);
    H5Fclose(f);
  }
  CHECK_THROWS_WITH(H5Reader(foreign), Contains("without the mlsys-tools integrity seal"));
  REQUIRE(std::system((script.string() + " " + foreign.string()).c_str()) == 0);
  CHECK(H5Reader(foreign).read_f64("/v") == std::vector<double>{1.5, 2.5, 3.5});
  // An artifact changed after it was written is refused, then readable once re-sealed.
  auto art = sealed_file(scratch.path, "edited.h5");
  flip_byte(art, fs::file_size(art) - 1);
  CHECK_THROWS_WITH(H5Reader(art), Contains("damaged"));
  REQUIRE(std::system((script.string() + " " + art.string()).c_str()) == 0);
  CHECK_NOTHROW(H5Reader(art));
  // Anything else is refused with exit 1.
  auto junk = scratch.path / "junk.h5";
  { std::ofstream(junk) << "not hdf5"; }
  CHECK(std::system((script.string() + " " + junk.string() + " 2>/dev/null").c_str()) != 0);
}
