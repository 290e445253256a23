// time_encode (and time_encode_into) / time_encode_backward / segment_attention / segment_attention_backward /
// slot_attention / slot_attention_backward: the CUDA kernels (kernels/cuda/temporal.cu)
// against the CPU reference on the same random inputs. GPU only: part of test_kernels_cuda,
// which meson reports as skipped where there is no CUDA device (cuda_main.cpp).
#include "tests/support/torch_catch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "kernels/dispatch.hpp"

namespace mk = mlsys::kernels;

namespace {

// got (on the GPU) equals want (on the CPU) up to rtol relative and atol times the
// magnitude of want (at least 1) absolute.
void require_close(const at::Tensor& got, const at::Tensor& want, double rtol, double atol) {
  REQUIRE(got.is_cuda());
  const at::Tensor g = got.cpu();
  REQUIRE(g.sizes() == want.sizes());
  if (want.numel() == 0) return;
  const double scale = std::max(1.0, want.abs().max().item<double>());
  INFO("max |gpu - cpu| = " << (g - want).abs().max().item<double>() << ", max |cpu| = " << scale);
  REQUIRE(at::allclose(g, want, rtol, atol * scale));
}

// Offsets (int64, R + 1 entries) of roots owning `lengths[r]` slots each.
at::Tensor offsets_of(const std::vector<int64_t>& lengths) {
  std::vector<int64_t> o(lengths.size() + 1, 0);
  for (size_t r = 0; r < lengths.size(); ++r) o[r + 1] = o[r] + lengths[r];
  return at::tensor(o, at::kLong);
}

// Fills free blocks of the CUDA caching allocator of these sizes (in floats) with NaN, so
// that an output element a kernel fails to write (the outputs are allocated uninitialised)
// most likely shows up as NaN instead of a stale but plausible value.
void poison_cuda_blocks(const std::vector<int64_t>& sizes) {
  std::vector<at::Tensor> junk;
  for (const int64_t n : sizes) {
    if (n > 0) junk.push_back(at::full({n}, std::numeric_limits<float>::quiet_NaN(), at::device(at::kCUDA)));
  }
}

}  // namespace

TEST_CASE("CUDA temporal kernels match the CPU reference", "[kernels][cuda]") {
  if (!mk::built_with_cuda()) {  // a GPU, but kernels/cuda not built: a clear error, not a crash
    const auto cuda = at::device(at::kCUDA);
    REQUIRE_THROWS_WITH(mk::time_encode(at::rand({3}, cuda), at::randn({2}, cuda), at::randn({2}, cuda), true),
                        Catch::Contains("built without CUDA"));
    REQUIRE_THROWS_WITH(mk::segment_attention(at::randn({1, 4}, cuda), at::randn({2, 8}, cuda),
                                              at::tensor(std::vector<int64_t>{0, 2}).to(at::kCUDA), 2, 0.2,
                                              at::Tensor()),
                        Catch::Contains("built without CUDA"));
    REQUIRE_THROWS_WITH(mk::slot_attention(at::randn({2, 1, 4}, cuda), at::randn({2, 1}, cuda),
                                           at::randn({3, 4}, cuda),
                                           at::tensor(std::vector<int64_t>{0, 3}).to(at::kCUDA), 0.2, at::Tensor()),
                        Catch::Contains("built without CUDA"));
    return;
  }
  at::manual_seed(11);

  SECTION("time_encode and time_encode_backward") {
    struct Case {
      int64_t n, d;
    };
    // One element; fewer columns than a 32-column tile; a partial last tile; more rows than
    // one chunk of the backward (partial sums added in a second pass); the most chunks.
    const std::vector<Case> cases = {{1, 1}, {37, 5}, {3000, 33}, {5000, 100}, {150000, 4}};
    for (const auto& cs : cases) {
      for (const bool with_sin : {true, false}) {
        INFO("n=" << cs.n << " d=" << cs.d << " with_sin=" << with_sin);
        // Time deltas up to 1e4 and TGN's frequencies 1 / 10^(9 c / d), plus a bias.
        const at::Tensor delta = at::rand({cs.n}) * 1e4;
        const at::Tensor w = at::pow(10.0, -at::linspace(0.0, 9.0, cs.d)).to(at::kFloat);
        const at::Tensor b = at::randn({cs.d});
        const auto [co, si] = mk::time_encode(delta, w, b, with_sin);
        const auto [co_d, si_d] = mk::time_encode(delta.to(at::kCUDA), w.to(at::kCUDA), b.to(at::kCUDA), with_sin);
        require_close(co_d, co, 1e-5, 1e-5);
        REQUIRE(si_d.defined() == with_sin);
        // time_encode_into a column block of a wider CUDA buffer (the temp-and-copy path):
        // the block equals time_encode's output, the other columns keep their values.
        at::Tensor wide = at::full({cs.n, cs.d + 3}, 5.0, at::device(at::kCUDA));
        const at::Tensor si_into = mk::time_encode_into(wide.narrow(1, 1, cs.d), delta.to(at::kCUDA), w.to(at::kCUDA),
                                                        b.to(at::kCUDA), with_sin);
        REQUIRE(at::equal(wide.narrow(1, 1, cs.d), co_d));
        REQUIRE(at::equal(wide.narrow(1, 0, 1).cpu(), at::full({cs.n, 1}, 5.0)));
        REQUIRE(at::equal(wide.narrow(1, cs.d + 1, 2).cpu(), at::full({cs.n, 2}, 5.0)));
        REQUIRE(si_into.defined() == with_sin);
        if (!with_sin) continue;
        require_close(si_d, si, 1e-5, 1e-5);
        REQUIRE(at::equal(si_into, si_d));

        // The backward from the same (CPU) sin on both devices: sums in double, so the two
        // differ only by the order of the double additions.
        const at::Tensor grad = at::randn({cs.n, cs.d});
        const auto [dw, db] = mk::time_encode_backward(delta, si, grad);
        const auto [dw_d, db_d] =
            mk::time_encode_backward(delta.to(at::kCUDA), si.to(at::kCUDA), grad.to(at::kCUDA));
        require_close(dw_d, dw, 1e-5, 1e-5);
        require_close(db_d, db, 1e-5, 1e-5);
        // Deterministic: a second run gives the same bits.
        const auto [dw_again, db_again] =
            mk::time_encode_backward(delta.to(at::kCUDA), si.to(at::kCUDA), grad.to(at::kCUDA));
        REQUIRE(at::equal(dw_again, dw_d));
        REQUIRE(at::equal(db_again, db_d));
      }
    }
  }

  SECTION("segment_attention and segment_attention_backward") {
    struct Heads {
      int64_t heads, dh;
    };
    // dh of one lane's worth, over one warp (two column chunks), tiny, and odd.
    const std::vector<Heads> layouts = {{1, 8}, {2, 40}, {4, 3}, {3, 33}};
    // Roots with no slot, one slot, a full warp, one more than a warp, and segments of
    // several chunks (45, 70), among many small ones.
    std::vector<int64_t> lengths = {0, 1, 3, 0, 45, 2, 70, 1, 0, 16, 32, 33};
    const at::Tensor small = at::randint(0, 12, {200}, at::kLong);
    for (int64_t i = 0; i < small.numel(); ++i) lengths.push_back(small[i].item<int64_t>());
    lengths.push_back(0);  // the last root empty too

    for (const auto& hl : layouts) {
      for (const bool with_keep : {false, true}) {
        for (const bool no_slots : {false, true}) {
          // no_slots: every root empty, so kv has no rows.
          const std::vector<int64_t> lens =
              no_slots ? std::vector<int64_t>{0, 0, 0} : lengths;
          INFO("heads=" << hl.heads << " dh=" << hl.dh << " keep=" << with_keep << " no_slots=" << no_slots);
          const at::Tensor offsets = offsets_of(lens);
          const int64_t R = static_cast<int64_t>(lens.size());
          const int64_t S = offsets[R].item<int64_t>();
          const int64_t de = hl.heads * hl.dh;
          const double slope = 0.2;
          const at::Tensor q = at::randn({R, de}) * 0.5;
          const at::Tensor kv = at::randn({S, 2 * de}) * 0.5;
          // Dropout with p = 0.1: each weight kept (scaled by 1 / 0.9) or dropped.
          const at::Tensor keep =
              with_keep ? (at::rand({S, hl.heads}) > 0.1).to(at::kFloat) / 0.9 : at::Tensor();
          const at::Tensor keep_d = with_keep ? keep.to(at::kCUDA) : at::Tensor();

          const at::Tensor q_d = q.to(at::kCUDA), kv_d = kv.to(at::kCUDA), offsets_d = offsets.to(at::kCUDA);

          const auto [out, att] = mk::segment_attention(q, kv, offsets, hl.heads, slope, keep);
          poison_cuda_blocks({R * de, S * hl.heads});
          const auto [out_d, att_d] = mk::segment_attention(q_d, kv_d, offsets_d, hl.heads, slope, keep_d);
          require_close(att_d, att, 1e-5, 1e-5);
          require_close(out_d, out, 1e-5, 1e-5);

          const at::Tensor dout = at::randn({R, de});
          const at::Tensor att_cpu_d = att.to(at::kCUDA), dout_d = dout.to(at::kCUDA);
          const auto [dq, dkv] = mk::segment_attention_backward(q, kv, offsets, hl.heads, slope, keep, att, dout);
          poison_cuda_blocks({R * de, S * 2 * de});
          const auto [dq_d, dkv_d] =
              mk::segment_attention_backward(q_d, kv_d, offsets_d, hl.heads, slope, keep_d, att_cpu_d, dout_d);
          require_close(dq_d, dq, 1e-5, 1e-5);
          require_close(dkv_d, dkv, 1e-5, 1e-5);

          // Roots without slots: out and dq exactly 0.
          for (int64_t r = 0; r < R; ++r) {
            if (lens[static_cast<size_t>(r)] != 0) continue;
            REQUIRE(at::equal(out_d[r].cpu(), at::zeros({de})));
            REQUIRE(at::equal(dq_d[r].cpu(), at::zeros({de})));
          }
        }
      }
    }
  }

  SECTION("slot_attention and slot_attention_backward") {
    // Roots with no slot, one slot, a few, more than a warp (40), and more than one shared
    // tile of the backward (300: its dot products recomputed), among many small ones.
    std::vector<int64_t> lengths = {0, 1, 3, 40, 0, 300, 2, 1, 0, 33};
    const at::Tensor small = at::randint(0, 12, {150}, at::kLong);
    for (int64_t i = 0; i < small.numel(); ++i) lengths.push_back(small[i].item<int64_t>());
    lengths.push_back(0);  // the last root empty too

    for (const int64_t heads : {1, 2}) {
      for (const int64_t dx : {5, 372}) {
        for (const bool with_keep : {false, true}) {
          for (const bool no_slots : {false, true}) {
            // no_slots: every root empty, so x has no rows.
            const std::vector<int64_t> lens = no_slots ? std::vector<int64_t>{0, 0, 0} : lengths;
            INFO("heads=" << heads << " dx=" << dx << " keep=" << with_keep << " no_slots=" << no_slots);
            const at::Tensor offsets = offsets_of(lens);
            const int64_t R = static_cast<int64_t>(lens.size());
            const int64_t S = offsets[R].item<int64_t>();
            const double slope = 0.2;
            // Scores of order 1 whatever dx (both LeakyReLU branches taken).
            const at::Tensor qk = at::randn({heads, R, dx}) / std::sqrt(static_cast<double>(dx));
            const at::Tensor c = at::randn({heads, R}) * 0.5;
            const at::Tensor x = at::randn({S, dx});
            // Dropout with p = 0.1: each weight kept (scaled by 1 / 0.9) or dropped.
            const at::Tensor keep = with_keep ? (at::rand({S, heads}) > 0.1).to(at::kFloat) / 0.9 : at::Tensor();
            const at::Tensor keep_d = with_keep ? keep.to(at::kCUDA) : at::Tensor();

            const at::Tensor qk_d = qk.to(at::kCUDA), c_d = c.to(at::kCUDA), x_d = x.to(at::kCUDA),
                             offsets_d = offsets.to(at::kCUDA);

            const auto [ax, asum, att] = mk::slot_attention(qk, c, x, offsets, slope, keep);
            poison_cuda_blocks({heads * R * dx, heads * R, S * heads});
            const auto [ax_d, asum_d, att_d] = mk::slot_attention(qk_d, c_d, x_d, offsets_d, slope, keep_d);
            require_close(att_d, att, 1e-5, 1e-5);
            require_close(ax_d, ax, 1e-5, 1e-5);
            require_close(asum_d, asum, 1e-5, 1e-5);

            // The backward from the same (CPU) att on both devices.
            const at::Tensor dax = at::randn({heads, R, dx});
            const at::Tensor dasum = at::randn({heads, R});
            const auto [dqk, dc, dxo] = mk::slot_attention_backward(qk, c, x, offsets, slope, keep, att, dax, dasum);
            poison_cuda_blocks({heads * R * dx, heads * R, S * dx});
            const auto [dqk_d, dc_d, dxo_d] =
                mk::slot_attention_backward(qk_d, c_d, x_d, offsets_d, slope, keep_d, att.to(at::kCUDA),
                                            dax.to(at::kCUDA), dasum.to(at::kCUDA));
            require_close(dqk_d, dqk, 1e-5, 1e-5);
            require_close(dc_d, dc, 1e-5, 1e-5);
            require_close(dxo_d, dxo, 1e-5, 1e-5);
            // The gradient of x's first columns only (dx_out S x dx_cols).
            const int64_t cols = dx / 2;
            const at::Tensor dxo_part = std::get<2>(mk::slot_attention_backward(
                qk_d, c_d, x_d, offsets_d, slope, keep_d, att.to(at::kCUDA), dax.to(at::kCUDA), dasum.to(at::kCUDA), cols));
            require_close(dxo_part, dxo.narrow(1, 0, cols).contiguous(), 1e-5, 1e-5);

            // Roots without slots: ax, asum, dqk and dc exactly 0.
            for (int64_t r = 0; r < R; ++r) {
              if (lens[static_cast<size_t>(r)] != 0) continue;
              REQUIRE(at::equal(ax_d.select(1, r).cpu(), at::zeros({heads, dx})));
              REQUIRE(at::equal(asum_d.select(1, r).cpu(), at::zeros({heads})));
              REQUIRE(at::equal(dqk_d.select(1, r).cpu(), at::zeros({heads, dx})));
              REQUIRE(at::equal(dc_d.select(1, r).cpu(), at::zeros({heads})));
            }
          }
        }
      }
    }
  }
}
