// The sharding-ratio LP with GLPK (Debian libglpk-dev).
#include "plan/spmd_lp.hpp"

#include <glpk.h>

#include <algorithm>
#include <map>
#include <memory>
#include <tuple>

#include "plan/spmd_search.hpp"

namespace mlsys::plan {

namespace {

constexpr double kMs = 1e3;  // the LP works in milliseconds and gigabytes: GLPK's tolerances are absolute

struct Row {
  std::vector<std::pair<int, double>> coef;  // 1-based column, value
  int type;
  double lo, hi;
};

}  // namespace

LpResult solve_ratios(const SpmdCostModel& m, const Program& p) {
  const int n = m.devices();
  const auto& devs = m.cluster().devices;
  const double fmax = m.cluster().max_flops();
  std::vector<double> phi(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) phi[static_cast<size_t>(i)] = fmax / devs[static_cast<size_t>(i)].flops;

  std::vector<CostTerm> terms, mem;
  for (const auto& st : p.steps) {
    m.step_terms(st, terms);
    m.memory_terms(st, mem);
  }
  double constant = 0, coef_w = 0, coef_z = 0;
  std::map<std::tuple<double, double, double, double>, int> mixed;  // identical terms share a column
  for (const auto& t : terms) {
    const double A = t.c_per_flops / fmax, B = t.l_per_flops / fmax;
    if (t.l_uniform == 0 && t.l_per_flops == 0) {
      double mx = -1e300;
      for (int i = 0; i < n; ++i) mx = std::max(mx, t.c_uniform + A * phi[static_cast<size_t>(i)]);
      constant += mx;
    } else if (t.c_per_flops == 0 && t.l_per_flops == 0 && t.l_uniform > 0) {
      constant += t.c_uniform;
      coef_w += t.l_uniform;
    } else if (t.c_per_flops == 0 && t.l_uniform == 0 && t.l_per_flops > 0) {
      constant += t.c_uniform;
      coef_z += B;
    } else {
      mixed[{t.c_uniform, A, t.l_uniform, B}] += 1;
    }
  }
  double mem_c = 0, mem_l = 0;
  for (const auto& t : mem) {
    mem_c += t.c_uniform;
    mem_l += t.l_uniform;
  }

  // Columns: b_1..b_n, then W (max b_i), Z (max b_i phi_i), one per distinct mixed term.
  int col = n;
  const int w_col = coef_w > 0 ? ++col : 0;
  const int z_col = coef_z > 0 ? ++col : 0;
  std::vector<std::pair<int, double>> mixed_cols;  // column, multiplicity
  std::vector<Row> rows;
  Row sum{{}, GLP_FX, 1.0, 1.0};
  for (int i = 1; i <= n; ++i) sum.coef.emplace_back(i, 1.0);
  rows.push_back(sum);
  for (int i = 1; i <= n; ++i) {
    if (w_col) rows.push_back({{{w_col, 1.0}, {i, -1.0}}, GLP_LO, 0.0, 0.0});
    if (z_col) rows.push_back({{{z_col, 1.0}, {i, -phi[static_cast<size_t>(i - 1)]}}, GLP_LO, 0.0, 0.0});
  }
  for (const auto& [key, count] : mixed) {
    const auto [cu, A, lu, B] = key;
    const int c = ++col;
    mixed_cols.emplace_back(c, count);
    for (int i = 1; i <= n; ++i) {
      const double ph = phi[static_cast<size_t>(i - 1)];
      rows.push_back({{{c, 1.0}, {i, -(lu + B * ph) * kMs}}, GLP_LO, (cu + A * ph) * kMs, 0.0});
    }
  }
  if (mem_l > 0) {
    for (int i = 1; i <= n; ++i) {
      const double budget = m.options().memory_fraction * devs[static_cast<size_t>(i - 1)].memory_bytes;
      rows.push_back({{{i, mem_l / 1e9}}, GLP_UP, 0.0, (budget - mem_c) / 1e9});
    }
  }

  std::unique_ptr<glp_prob, decltype(&glp_delete_prob)> lp(glp_create_prob(), &glp_delete_prob);
  glp_set_obj_dir(lp.get(), GLP_MIN);
  glp_add_cols(lp.get(), col);
  for (int i = 1; i <= n; ++i) glp_set_col_bnds(lp.get(), i, GLP_DB, 0.0, 1.0);
  if (w_col) {
    glp_set_col_bnds(lp.get(), w_col, GLP_LO, 0.0, 0.0);
    glp_set_obj_coef(lp.get(), w_col, coef_w * kMs);
  }
  if (z_col) {
    glp_set_col_bnds(lp.get(), z_col, GLP_LO, 0.0, 0.0);
    glp_set_obj_coef(lp.get(), z_col, coef_z * kMs);
  }
  for (const auto& [c, count] : mixed_cols) {
    glp_set_col_bnds(lp.get(), c, GLP_FR, 0.0, 0.0);
    glp_set_obj_coef(lp.get(), c, static_cast<double>(count));
  }
  glp_set_obj_coef(lp.get(), 0, constant * kMs);
  glp_add_rows(lp.get(), static_cast<int>(rows.size()));
  std::vector<int> ia{0}, ja{0};
  std::vector<double> ar{0.0};
  for (size_t r = 0; r < rows.size(); ++r) {
    glp_set_row_bnds(lp.get(), static_cast<int>(r) + 1, rows[r].type, rows[r].lo, rows[r].hi);
    for (const auto& [c, v] : rows[r].coef) {
      ia.push_back(static_cast<int>(r) + 1);
      ja.push_back(c);
      ar.push_back(v);
    }
  }
  glp_load_matrix(lp.get(), static_cast<int>(ar.size()) - 1, ia.data(), ja.data(), ar.data());
  const int term_was = glp_term_out(GLP_OFF);  // glp_scale_prob prints otherwise
  glp_scale_prob(lp.get(), GLP_SF_AUTO);
  glp_smcp parm;
  glp_init_smcp(&parm);
  parm.msg_lev = GLP_MSG_OFF;
  parm.presolve = GLP_ON;
  LpResult res;
  res.rows = static_cast<int>(rows.size());
  res.cols = col;
  const int rc = glp_simplex(lp.get(), &parm);
  glp_term_out(term_was);
  const int status = rc == 0 ? glp_get_status(lp.get()) : GLP_UNDEF;
  if (rc != 0 || status != GLP_OPT) {
    res.status = rc == GLP_ENOPFS || status == GLP_NOFEAS ? "infeasible (no ratios fit every device's memory)"
                 : rc == GLP_ENODFS || status == GLP_UNBND ? "unbounded"
                                                           : "GLPK simplex failed (code " + std::to_string(rc) + ")";
    return res;
  }
  res.optimal = true;
  res.ratios.resize(static_cast<size_t>(n));
  double s = 0;
  for (int i = 1; i <= n; ++i) s += res.ratios[static_cast<size_t>(i - 1)] = std::max(0.0, glp_get_col_prim(lp.get(), i));
  for (auto& r : res.ratios) r /= s;
  res.objective = program_cost(m, p, res.ratios);
  return res;
}

}  // namespace mlsys::plan
