// CPU passes of the fused GRU cell (kernels::gru_cell / gru_cell_backward): the
// elementwise arithmetic of torch.nn.GRUCell around its sigmoid and tanh, which the
// dispatcher leaves to ATen's vectorised ones. Rows u < U, columns c < d; gi is U x 3d
// ([r, z, n] input parts), gh is U x hw with hw = 3d ([r, z, n]) or 4d ([r, z, n_in, n]:
// a hidden-side part added to the n input, for updaters that fold input terms into the
// hidden GEMM); every matrix contiguous. The caller has validated shapes.
#pragma once

#include <cstdint>

namespace mlsys::kernels::cpu {

// a[u, c] = gi[u, c] + gh[u, c] for c < 2d (a is U x 2d: the r and z pre-activations).
void gru_gate_inputs(const float* gi, const float* gh, int64_t U, int64_t d, int64_t hw, float* a);

// p[u, c] = gi[u, 2d + c] (+ gh[u, 2d + c] when hw = 4d) + r[u, c] * gh[u, hw - d + c], with
// r = rz[:, :d] (p is U x d: the n pre-activation).
void gru_candidate_input(const float* gi, const float* gh, const float* rz, int64_t U, int64_t d, int64_t hw, float* p);

// out[u, c] = n + z (m - n), z = rz[:, d:] (torch.nn.GRUCell's h' = (1 - z) n + z h in
// ATen's n + z * (h - n) form).
void gru_output(const float* n, const float* rz, const float* m, int64_t U, int64_t d, float* out);

// The backward pass from dout (U x d), given r and z (rz), n and gh: writes dgi (U x 3d),
// dgh (U x hw) and, when dm is not null, dm (U x d):
//   dn = dout (1 - z), dz = dout (m - n), dpre = dn (1 - n^2), dr = dpre * gh_n,
//   da_r = dr (1 - r) r, da_z = dz (1 - z) z,
//   dgi = [da_r, da_z, dpre], dgh = [da_r, da_z, (dpre,) dpre r], dm = dout z.
void gru_backward(const float* dout, const float* rz, const float* n, const float* gh, const float* m, int64_t U,
                  int64_t d, int64_t hw, float* dgi, float* dgh, float* dm);

}  // namespace mlsys::kernels::cpu
