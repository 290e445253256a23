// The error-path check the test suites share: `f` must throw E (core::InputError by
// default) with a one-line message that contains every needle (a file, a field, a line
// number, an expected-vs-found phrase). Include after Catch.
#pragma once

#include <initializer_list>
#include <string>

#include "core/error.hpp"

namespace mlsys::test {

template <class E = core::InputError, class F>
void expect_error(F&& f, std::initializer_list<std::string> needles) {
  try {
    f();
    FAIL("no error; expected one naming " << *needles.begin());
  } catch (const E& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find('\n') == std::string::npos);
    for (const auto& n : needles) CHECK(msg.find(n) != std::string::npos);
  }
}

}  // namespace mlsys::test
