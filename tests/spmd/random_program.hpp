// A random valid spmd-plan program for a graph: every op takes a random signature whose
// inputs can be made (an existing property, or a random conversion from one), parameters a
// random gradient completion (all-reduce, or SFB for a batch-split linear's weight). The
// executor tests run these to reach every instruction kind, not only the ones the cost
// model prefers.
#pragma once

#include <algorithm>
#include <numeric>
#include <random>

#include "plan/spmd_program.hpp"

namespace mlsys::test {

inline plan::Program random_program(const plan::SpmdGraph& g, std::mt19937& rng) {
  using namespace plan;
  std::vector<uint32_t> avail(g.tensors.size(), 0);
  Program p;
  for (size_t k = 0; k < g.ops.size(); ++k) {
    const SpmdOp& op = g.ops[k];
    const auto sigs = signatures(g, op);
    std::vector<int> order(sigs.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    bool placed = false;
    for (int si : order) {
      const Signature& s = sigs[static_cast<size_t>(si)];
      Step st;
      st.op = static_cast<int>(k);
      st.sig = si;
      st.out = s.out;
      std::vector<uint32_t> av = avail;
      bool ok = true, weight_sfb = false;
      for (size_t i = 0; i < op.inputs.size() && ok; ++i) {
        const auto& t = g.tensors[static_cast<size_t>(op.inputs[i])];
        InputUse u;
        u.prop = s.in[i];
        if (t.kind == SpmdTensorKind::param) {
          u.source = InputUse::parameter;
          if (u.prop.kind == Prop::I) {
            u.grad = InputUse::all_reduce;
            if (s.batch_split_linear && i == 1 && rng() % 2 == 0) {
              u.grad = InputUse::sfb;
              u.sfb_variant = static_cast<Variant>(rng() % 2);
              weight_sfb = true;
            } else if (i == 2 && weight_sfb) {
              u.grad = InputUse::sfb;
            }
          }
        } else if (t.kind != SpmdTensorKind::activation) {
          u.source = InputUse::placeholder;
        } else if (av[static_cast<size_t>(op.inputs[i])] & u.prop.bit()) {
          u.source = InputUse::existing;
        } else {
          std::vector<Conversion> cands;
          for (int b = 0; b < 8; ++b) {
            if (!(av[static_cast<size_t>(op.inputs[i])] & (1u << b))) continue;
            const Prop from = b == 0 ? Prop{Prop::I, 0} : b == 1 ? Prop{Prop::R, 0} : Prop::gather(b - 2);
            for (const auto& c : conversions(t, from, u.prop)) cands.push_back(c);
          }
          if (cands.empty()) {
            ok = false;
            break;
          }
          u.source = InputUse::converted;
          u.conv = cands[rng() % cands.size()];
          av[static_cast<size_t>(op.inputs[i])] |= u.prop.bit();
        }
        st.inputs.push_back(u);
      }
      if (!ok) continue;
      av[static_cast<size_t>(op.output)] |= s.out.bit();
      avail = av;
      p.steps.push_back(std::move(st));
      placed = true;
      break;
    }
    if (!placed) throw std::runtime_error("random_program: no signature of op " + op.name + " can be made");
  }
  return p;
}

}  // namespace mlsys::test
