// Catch2 for tests that use LibTorch: c10's glog-style CHECK macro (c10/util/Logging.h)
// clashes with Catch's, so LibTorch comes first, its CHECK is dropped, then Catch.
// Include this instead of <catch2/catch.hpp> in any test that touches ATen.
#pragma once

#include <ATen/ATen.h>
#undef CHECK
#include <catch2/catch.hpp>
