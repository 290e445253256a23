// safetensors: round trips of every dtype, byte equality with Python's safetensors, and
// hostile files that must each give an InputError naming the file and the tensor.
#include "tests/support/torch_catch.hpp"  // first: see there

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "tensor/safetensors.hpp"
#include "tests/support/harness.hpp"

using namespace mlsys;
using namespace mlsys::tensor;
using Catch::Matchers::Contains;
using mlsys::test::TempDir;
using mlsys::test::write_file;

namespace {

// The bytes of Python's safetensors 0.8 (safetensors.numpy.save) for
//   {"weight": float32 [[1.5, -2], [0.25, 3]], "bias": float16 [1, -0.5, 2],
//    "ids": int64 [1, -2, 3], "mask": bool [True, False, True], "scale": float64 0.125 (0-dim),
//    "codes": int8 [-128, 5, 127]}, metadata={"format": "pt"}
// produced once with numpy and pasted here.
const std::string kPythonFixture(
"\x80\x01\x00\x00\x00\x00\x00\x00{\"__metadata__\":{\"format\":\"pt\"},\"ids\":{\"dtype\":\""
"I64\",\"shape\":[3],\"data_offsets\":[0,24]},\"scale\":{\"dtype\":\"F64\",\"shape\":[],\"d"
"ata_offsets\":[24,32]},\"weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[32,"
"48]},\"bias\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[48,54]},\"codes\":{\"dtyp"
"e\":\"I8\",\"shape\":[3],\"data_offsets\":[54,57]},\"mask\":{\"dtype\":\"BOOL\",\"shape\":"
"[3],\"data_offsets\":[57,60]}} \x01\x00\x00\x00\x00\x00\x00\x00\xfe\xff\xff\xff\xff\xff\xff"
"\xff\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xc0?\x00\x00\xc0?\x00\x00\x00"
"\xc0\x00\x00\x80>\x00\x00@@\x00<\x00\xb8\x00@\x80\x05\x7f\x01\x00\x01",
    452);

NamedTensors fixture_tensors() {
  return {
      {"weight", at::tensor({1.5F, -2.0F, 0.25F, 3.0F}).reshape({2, 2})},
      {"bias", at::tensor({1.0F, -0.5F, 2.0F}).to(at::kHalf)},
      {"ids", at::tensor({int64_t{1}, int64_t{-2}, int64_t{3}})},
      {"mask", test::bools({1, 0, 1})},
      {"scale", at::scalar_tensor(0.125, at::kDouble)},
      {"codes", at::tensor({-128, 5, 127}).to(at::kChar)},
  };
}

// A file made of an 8-byte length, `header` and `data`.
std::string st_file(const std::string& header, const std::string& data = {}) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

}  // namespace

TEST_CASE("safetensors round trip of every dtype", "[tensor][safetensors]") {
  const TempDir dir("st_roundtrip");
  const auto path = dir / "all.safetensors";
  at::manual_seed(7);
  NamedTensors in = {
      {"f64", at::randn({3, 2}, at::kDouble)},
      {"f32", at::randn({2, 3, 4}, at::kFloat)},
      {"f16", at::tensor({0.5F, -1.25F, 65504.0F, 0.0F}).to(at::kHalf)},
      {"bf16", at::tensor({1.0F, -3.5F, 256.0F}).to(at::kBFloat16)},
      {"i64", at::tensor({int64_t{1} << 40, int64_t{-7}, int64_t{0}})},
      {"i32", at::tensor({-2147483647 - 1, 2147483647, 5})},
      {"i16", at::tensor({-32768, 32767, 1}).to(at::kShort)},
      {"i8", at::tensor({-128, 127, 0}).to(at::kChar)},
      {"u8", at::tensor({0, 255, 17}).to(at::kByte)},
      {"bool", test::bools({1, 0, 0, 1})},
      {"transposed", at::arange(6, at::kFloat).reshape({2, 3}).t()},  // non-contiguous
      {"scalar", at::scalar_tensor(42, at::kLong)},
      {"empty", at::empty({0, 5}, at::kFloat)},
  };
  save_safetensors(path, in, {{"format", "pt"}, {"note", "a \"quoted\" value"}});

  const auto file = SafeTensorsFile::open(path);
  REQUIRE(file.names().size() == in.size());
  REQUIRE(file.metadata().size() == 2);
  CHECK(file.metadata().at("format") == "pt");
  CHECK(file.metadata().at("note") == "a \"quoted\" value");
  for (const auto& [name, t] : in) {
    INFO("tensor " << name);
    REQUIRE(file.contains(name));
    const TensorInfo& info = file.info(name);
    CHECK(info.scalar_type == t.scalar_type());
    CHECK(info.shape == t.sizes().vec());
    CHECK(info.nbytes() == static_cast<uint64_t>(t.numel()) * t.element_size());
    const at::Tensor back = file.get(name);
    CHECK(back.scalar_type() == t.scalar_type());
    CHECK(back.sizes() == t.sizes());
    CHECK(back.is_contiguous());
    CHECK(at::equal(back, t));
  }
  CHECK(file.info("bf16").dtype == "BF16");
  CHECK(file.info("bool").dtype == "BOOL");
  CHECK(file.info("u8").dtype == "U8");
  CHECK(file.get("i64")[0].item<int64_t>() == (int64_t{1} << 40));
  CHECK(file.get("bf16")[1].item<float>() == -3.5F);

  // Loading by names, and the missing-name error.
  const auto some = load_safetensors(path, {"i8", "f32"});
  REQUIRE(some.size() == 2);
  CHECK(at::equal(some.at("i8"), in[7].second));
  CHECK(load_safetensors(path).size() == in.size());
  REQUIRE_THROWS_AS(load_safetensors(path, {"f32", "missing"}), core::InputError);
  REQUIRE_THROWS_WITH(load_safetensors(path, {"f32", "missing"}),
                      path.string() + ": tensor 'missing' not found");
  REQUIRE_THROWS_WITH(file.get("nope"), path.string() + ": tensor 'nope' not found");
  REQUIRE_THROWS_AS(file.info("nope"), core::InputError);

  // Saving again replaces the file whole.
  save_safetensors(path, {{"only", at::ones({2}, at::kFloat)}});
  const auto again = SafeTensorsFile::open(path);
  CHECK(again.names() == std::vector<std::string>{"only"});
  CHECK(again.metadata().empty());
}

TEST_CASE("safetensors writer matches Python's bytes", "[tensor][safetensors]") {
  REQUIRE(kPythonFixture.size() == 452);
  CHECK(safetensors_bytes(fixture_tensors(), {{"format", "pt"}}) == kPythonFixture);

  // And the reader reads Python's file.
  const TempDir dir("st_python");
  const auto path = dir / "python.safetensors";
  write_file(path, kPythonFixture);
  const auto file = SafeTensorsFile::open(path);
  CHECK(file.names() == std::vector<std::string>{"ids", "scale", "weight", "bias", "codes", "mask"});
  CHECK(file.metadata() == std::map<std::string, std::string>{{"format", "pt"}});
  CHECK(file.info("weight").begin == 32);
  CHECK(file.info("weight").end == 48);
  for (const auto& [name, t] : fixture_tensors()) {
    INFO("tensor " << name);
    CHECK(at::equal(file.get(name), t));
  }
  CHECK(file.get("scale").dim() == 0);
  CHECK(file.get("scale").item<double>() == 0.125);
  CHECK(file.get("bias")[1].item<float>() == -0.5F);

  // Header padding: always a multiple of 8, with spaces.
  const std::string one = safetensors_bytes({{"a", at::zeros({1}, at::kByte)}});
  uint64_t n = 0;
  std::memcpy(&n, one.data(), 8);
  CHECK(n % 8 == 0);
  CHECK(one.substr(8, n) == "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}   ");
}

TEST_CASE("safetensors writer refuses what it cannot write", "[tensor][safetensors]") {
  const auto x = at::zeros({2}, at::kFloat);
  REQUIRE_THROWS_AS(safetensors_bytes({{"a", x}, {"a", x}}), core::RuntimeFailure);
  REQUIRE_THROWS_WITH(safetensors_bytes({{"a", x}, {"a", x}}), Contains("'a'") && Contains("twice"));
  REQUIRE_THROWS_AS(safetensors_bytes({{"__metadata__", x}}), core::RuntimeFailure);
  REQUIRE_THROWS_WITH(safetensors_bytes({{"c", at::zeros({2}, at::kComplexFloat)}}),
                      Contains("'c'") && Contains("ComplexFloat"));

  // A failed save leaves the old file intact and no temporary behind.
  const TempDir dir("st_refuse");
  const auto path = dir / "keep.safetensors";
  save_safetensors(path, {{"old", at::ones({3}, at::kFloat)}});
  REQUIRE_THROWS_AS(save_safetensors(path, {{"a", x}, {"a", x}}), core::RuntimeFailure);
  CHECK(SafeTensorsFile::open(path).names() == std::vector<std::string>{"old"});
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path)) ++files;
  CHECK(files == 1);
}

TEST_CASE("safetensors hostile files give InputError naming the file and tensor", "[tensor][safetensors]") {
  const TempDir dir("st_hostile");
  int counter = 0;
  // Writes `bytes` to a fresh file and expects open() to fail with a message holding the
  // file's path and every one of `parts`.
  const auto expect_bad = [&](const std::string& bytes, const std::vector<std::string>& parts) {
    const auto path = dir / ("bad" + std::to_string(counter++) + ".safetensors");
    write_file(path, bytes);
    INFO("file " << path.string());
    REQUIRE_THROWS_AS(SafeTensorsFile::open(path), core::InputError);
    try {
      (void)SafeTensorsFile::open(path);
    } catch (const core::InputError& e) {
      const std::string msg = e.what();
      INFO("message: " << msg);
      CHECK(msg.starts_with(path.string() + ": "));
      for (const auto& p : parts) CHECK_THAT(msg, Contains(p));
    }
  };
  const std::string f32x2(8, '\0');  // two float32 zeros

  SECTION("truncated below the header length") {
    expect_bad(std::string("\x10\x00\x00", 3), {"at least 8 bytes", "found 3 bytes"});
    expect_bad("", {"found 0 bytes"});
  }
  SECTION("a header nested a million levels deep") {
    const std::string deep = R"({"x":)" + std::string(1000000, '[') + std::string(1000000, ']') + "}";
    expect_bad(st_file(deep, ""), {"nesting of at most 64 levels"});
    expect_bad(st_file(R"({"x":{"dtype":)" + std::string(40, '[') + std::string(40, ']') +
                           R"(,"shape":[0],"data_offsets":[0,0]}})", ""),
               {"tensor 'x'", "an array of 1 element"});
  }
  SECTION("an empty tensor whose strides overflow") {
    expect_bad(st_file(R"({"x":{"dtype":"F32","shape":[0,4611686018427387904,4611686018427387904],"data_offsets":[0,0]}})", ""),
               {"tensor 'x'", "fits 63 bits"});
  }
  SECTION("header length beyond the file") {
    std::string b = st_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32x2);
    b.resize(30);  // cut inside the header
    expect_bad(b, {"truncated", "found only 22 bytes"});
  }
  SECTION("absurd header length") {
    std::string b(16, '\0');
    const uint64_t n = uint64_t{1} << 40;
    std::memcpy(b.data(), &n, 8);
    expect_bad(b, {"at most 100000000", std::to_string(n)});
  }
  SECTION("header that is not JSON or not an object") {
    expect_bad(st_file("{\"x\": {\"dtype\": \"F32\", "), {"JSON"});
    expect_bad(st_file("not json at all!"), {"JSON"});
    expect_bad(st_file("[1, 2, 3]      "), {"JSON object", "array"});
  }
  SECTION("offsets beyond the buffer") {
    expect_bad(st_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(4, '\0')),
               {"tensor 'x'", "within the data buffer of 4 bytes", "[0, 8]"});
    // A real file with its data cut short.
    const std::string good = safetensors_bytes({{"w", at::ones({4}, at::kFloat)}});
    expect_bad(good.substr(0, good.size() - 3), {"tensor 'w'", "data buffer of 13 bytes"});
  }
  SECTION("overlapping offsets") {
    expect_bad(st_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                       std::string(12, '\0')),
               {"tensor 'y'", "overlap", "tensor 'x'"});
    // A range inside another one.
    expect_bad(st_file(R"({"big":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                       R"("small":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})",
                       std::string(16, '\0')),
               {"tensor 'small'", "overlaps tensor 'big'"});
  }
  SECTION("offsets out of order") {
    expect_bad(st_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", f32x2),
               {"tensor 'x'", "begin <= end", "[8, 0]"});
  }
  SECTION("wrong byte count for the shape") {
    expect_bad(st_file(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f32x2),
               {"tensor 'x'", "expected 12 bytes", "8 bytes"});
  }
  SECTION("unknown dtype") {
    expect_bad(st_file(R"({"x":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", f32x2),
               {"tensor 'x'", "F8_E4M3", "BF16"});
    expect_bad(st_file(R"({"x":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", f32x2),
               {"tensor 'x'", "dtype", "string"});
  }
  SECTION("bad shapes") {
    expect_bad(st_file(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f32x2),
               {"tensor 'x'", "non-negative", "-2"});
    expect_bad(st_file(R"({"x":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", f32x2),
               {"tensor 'x'", "non-negative"});
    expect_bad(st_file(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", f32x2),
               {"tensor 'x'", "fits"});
    // numel fits, numel * itemsize does not.
    expect_bad(st_file(R"({"x":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", f32x2),
               {"tensor 'x'", "fits 64 bits"});
  }
  SECTION("malformed entries and metadata") {
    expect_bad(st_file(R"({"x":[1,2]})"), {"tensor 'x'", "object"});
    expect_bad(st_file(R"({"x":{"dtype":"F32","shape":[2]}})", f32x2), {"tensor 'x'", "data_offsets"});
    expect_bad(st_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", f32x2),
               {"tensor 'x'", "[begin, end]"});
    expect_bad(st_file(R"({"x":{"dtype":"F32","data_offsets":[0,8]}})", f32x2), {"tensor 'x'", "shape"});
    expect_bad(st_file(R"({"__metadata__":{"a":1}})"), {"__metadata__", "'a'", "string"});
    expect_bad(st_file(R"({"__metadata__":"x"})"), {"__metadata__", "object"});
  }
  SECTION("not a file") {
    REQUIRE_THROWS_AS(SafeTensorsFile::open(dir / "missing.safetensors"), core::InputError);
    REQUIRE_THROWS_WITH(SafeTensorsFile::open(dir / "missing.safetensors"), Contains("missing.safetensors"));
    REQUIRE_THROWS_AS(SafeTensorsFile::open(dir.path), core::InputError);
  }
}

TEST_CASE("safetensors bool bytes are normalized", "[tensor][safetensors]") {
  const TempDir dir("st_bool");
  const auto path = dir / "b.safetensors";
  write_file(path, st_file(R"({"b":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}}     )",
                           std::string("\x00\x07\x01", 3)));
  const at::Tensor b = SafeTensorsFile::open(path).get("b");
  CHECK(at::equal(b, test::bools({0, 1, 1})));
  CHECK(b.to(at::kByte).sum().item<int64_t>() == 2);
}
