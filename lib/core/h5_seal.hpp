// The integrity seal of the suite's HDF5 artifacts. libhdf5 (Debian's 1.10.8) is not safe
// on damaged files: fuzzing found heap overflows, segfaults, endless loops and terabyte
// allocations inside it (tests/fuzz/README.md). So no file reaches libhdf5 before its
// contents are proven to be the bytes a program of the suite wrote:
//
//   every HDF5 artifact starts with a 512-byte HDF5 user block (which libhdf5, h5dump and
//   h5py skip) holding, as text,
//       "mlsys-tools HDF5 seal v1\nbytes <N>\nsha256 <64 hex digits>\n"
//   then zeros; N is the number of bytes after the user block and the digest is SHA-256
//   (OpenSSL) of exactly those bytes.
//
// A truncated, extended or bit-flipped file, a file of another tool, and a file with a
// user block that is not exactly this are refused with one line, before libhdf5 opens it.
// This guards against damage (disk, copies, kills, hand edits); a file crafted on purpose
// with a matching digest still reaches libhdf5, whose own robustness is then what holds.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace mlsys::core {

inline constexpr uint64_t kH5UserBlock = 512;

// Writes the seal into the user block of `file` (an HDF5 file created with a user block of
// kH5UserBlock bytes, closed). RuntimeFailure when the file cannot be read or written.
void seal_h5_file(const std::filesystem::path& file);

// InputError naming `file` and what is wrong unless the file carries a valid seal.
void check_h5_seal(const std::filesystem::path& file);

// The SHA-256 of bytes [offset, offset + count) of `file`, as 64 lowercase hex digits.
std::string sha256_file_range(const std::filesystem::path& file, uint64_t offset, uint64_t count);

}  // namespace mlsys::core
