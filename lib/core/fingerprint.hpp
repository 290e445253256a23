// FNV-1a over 64-bit words: the fingerprint of a training set that a checkpoint records,
// so that --resume refuses data that changed since.
#pragma once

#include <cstdint>

namespace mlsys::core {

struct Fingerprint {
  uint64_t h = 1469598103934665603ULL;

  void add(int64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= static_cast<uint64_t>(v >> (8 * i)) & 0xffU;
      h *= 1099511628211ULL;
    }
  }
  // The length, then every element.
  template <class Seq>
  void add_all(const Seq& seq) {
    add(static_cast<int64_t>(seq.size()));
    for (auto v : seq) add(static_cast<int64_t>(v));
  }
};

}  // namespace mlsys::core
