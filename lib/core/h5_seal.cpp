#include "core/h5_seal.hpp"

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/error.hpp"

namespace mlsys::core {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[] = "mlsys-tools HDF5 seal v1\n";

std::string seal_text(uint64_t bytes, const std::string& digest) {
  return std::string(kMagic) + "bytes " + std::to_string(bytes) + "\nsha256 " + digest + "\n";
}

// The bytes of the 8-byte HDF5 format signature, which a file without a user block starts with.
bool is_hdf5_signature(const char* p) { return std::memcmp(p, "\x89HDF\r\n\x1a\n", 8) == 0; }

}  // namespace

std::string sha256_file_range(const fs::path& file, uint64_t offset, uint64_t count) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string() + ": cannot open for reading");
  in.seekg(static_cast<std::streamoff>(offset));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    throw RuntimeFailure("OpenSSL: cannot start a SHA-256 digest");
  }
  std::vector<char> buf(size_t{1} << 20);
  uint64_t left = count;
  while (left > 0) {
    const auto want = static_cast<std::streamsize>(std::min<uint64_t>(left, buf.size()));
    in.read(buf.data(), want);
    if (in.gcount() != want) throw InputError(file.string() + ": shorter than expected while computing its digest");
    if (EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(want)) != 1) {
      throw RuntimeFailure("OpenSSL: SHA-256 update failed");
    }
    left -= static_cast<uint64_t>(want);
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), md.data(), &len) != 1) throw RuntimeFailure("OpenSSL: SHA-256 final failed");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

void seal_h5_file(const fs::path& file) {
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  if (ec || size < kH5UserBlock) throw RuntimeFailure(file.string() + ": cannot seal: not a file with a user block");
  std::string block = seal_text(size - kH5UserBlock, sha256_file_range(file, kH5UserBlock, size - kH5UserBlock));
  block.resize(kH5UserBlock, '\0');
  std::FILE* f = std::fopen(file.c_str(), "r+b");
  if (f == nullptr) throw RuntimeFailure(file.string() + ": cannot open to write its seal");
  const bool ok = std::fwrite(block.data(), 1, block.size(), f) == block.size();
  if (std::fclose(f) != 0 || !ok) throw RuntimeFailure(file.string() + ": cannot write its seal");
}

void check_h5_seal(const fs::path& file) {
  const std::string name = file.string();
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  if (ec) throw InputError(name + ": cannot read its size (" + ec.message() + ")");
  std::string head(kH5UserBlock, '\0');
  {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw InputError(name + ": cannot open for reading");
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(in.gcount()));
  }
  if (head.compare(0, std::strlen(kMagic), kMagic) != 0) {
    if (head.size() >= 8 && is_hdf5_signature(head.data())) {
      throw InputError(name + ": an HDF5 file without the mlsys-tools integrity seal (written by another tool "
                              "or an older version; expected the seal in a 512-byte user block)");
    }
    throw InputError(name + ": not an HDF5 file written by mlsys-tools (expected its integrity seal at the start, found " +
                     (head.empty() ? std::string("an empty file") : "other bytes") + ")");
  }
  // Parse "bytes N\nsha256 HEX\n" and require the block to be exactly what seal_h5_file writes.
  const size_t p = std::strlen(kMagic);
  const size_t nl1 = head.find('\n', p);
  const size_t nl2 = nl1 == std::string::npos ? nl1 : head.find('\n', nl1 + 1);
  uint64_t declared = 0;
  bool parsed = nl2 != std::string::npos && head.compare(p, 6, "bytes ") == 0 && nl1 > p + 6 && nl1 - (p + 6) <= 19;
  if (parsed) {
    for (size_t i = p + 6; i < nl1; ++i) {
      if (head[i] < '0' || head[i] > '9') parsed = false;
      else declared = declared * 10 + static_cast<uint64_t>(head[i] - '0');
    }
  }
  std::string digest = parsed && head.compare(nl1 + 1, 7, "sha256 ") == 0 ? head.substr(nl1 + 8, nl2 - (nl1 + 8)) : "";
  if (!parsed || digest.size() != 64 || head.size() != kH5UserBlock ||
      head != [&] { std::string b = seal_text(declared, digest); b.resize(kH5UserBlock, '\0'); return b; }()) {
    throw InputError(name + ": damaged integrity seal (its 512-byte header is not the one mlsys-tools writes)");
  }
  if (size - kH5UserBlock != declared) {
    throw InputError(name + ": truncated or extended after it was written (the seal says " + std::to_string(declared) +
                     " bytes after the header, the file has " + std::to_string(size - kH5UserBlock) + ")");
  }
  // CRYPTO_memcmp, not operator!=: a comparison that sanitizers intercept lets libFuzzer read
  // the expected digest and forge it (it did, within 6 minutes), which turned the fuzzing
  // of damaged files into the fuzzing of libhdf5 on crafted ones.
  const std::string actual = sha256_file_range(file, kH5UserBlock, declared);
  if (actual.size() != digest.size() || CRYPTO_memcmp(actual.data(), digest.data(), digest.size()) != 0) {
    throw InputError(name + ": damaged (the SHA-256 of its contents does not match its seal); not opened");
  }
}

}  // namespace mlsys::core
