// The dynapipe-plan executable the CLI tests run: meson passes its path in DYNAPIPE_PLAN
// (the tests fail, not skip, when it is missing).
#include <cstdlib>
#include <string>

#include "test_support.hpp"

std::string g_dynapipe_plan = std::getenv("DYNAPIPE_PLAN") != nullptr ? std::getenv("DYNAPIPE_PLAN") : "";
