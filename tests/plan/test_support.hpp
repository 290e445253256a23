// Shared bits of the plan tests.
#pragma once

#include <string>

extern std::string g_dynapipe_plan;  // path of the dynapipe-plan executable (from DYNAPIPE_PLAN)
