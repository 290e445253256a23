// HAP's linear program for the sharding ratios of a fixed program (arXiv 2401.05965 Eq. 3;
// notes §1.5), solved with GLPK's simplex. Variables: the ratios b_i (sum 1), and per cost
// term its max over devices; the objective is the program time with every constant term
// kept. Terms that are a positive multiple of max_i b_i or of max_i b_i / flops_i share
// one variable (exact: max_i a*x_i = a*max_i x_i), so the LP stays small for 64 devices.
// Memory rows keep every device under its budget. Torch-free.
#pragma once

#include <string>
#include <vector>

#include "plan/spmd_program.hpp"

namespace mlsys::plan {

struct LpResult {
  bool optimal = false;
  std::string status;          // GLPK's status in words when not optimal
  std::vector<double> ratios;  // one per device, sum 1
  double objective = 0;        // the program time at `ratios` (seconds)
  int rows = 0, cols = 0;
};

LpResult solve_ratios(const SpmdCostModel& m, const Program& p);

}  // namespace mlsys::plan
