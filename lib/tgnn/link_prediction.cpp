// Link-prediction evaluation of a temporal graph stream; see link_prediction.hpp.
#include "tgnn/link_prediction.hpp"

#include <algorithm>
#include <charconv>
#include <random>
#include <set>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/signals.hpp"
#include "tgnn/edgebank.hpp"

namespace mlsys::tgnn {

std::vector<int64_t> sample_negatives(const std::vector<int64_t>& pool, size_t n, size_t q, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> d(0, pool.size() - 1);
  std::vector<int64_t> out(n * q);
  for (size_t i = 0; i < out.size(); ++i) {
    core::poll_stop(i);
    out[i] = pool[d(rng)];
  }
  return out;
}

std::vector<int64_t> eval_negatives(const std::vector<int64_t>& pool, size_t n, size_t q, uint64_t ap_seed,
                                    uint64_t mrr_seed) {
  const std::vector<int64_t> first = sample_negatives(pool, n, 1, ap_seed);
  if (q <= 1) return first;
  const std::vector<int64_t> extra = sample_negatives(pool, n, q - 1, mrr_seed);
  std::vector<int64_t> out(n * q);
  for (size_t i = 0; i < n; ++i) {
    out[i * q] = first[i];
    for (size_t j = 1; j < q; ++j) out[i * q + j] = extra[i * (q - 1) + j - 1];
  }
  return out;
}

std::vector<int64_t> destination_pool(const graph::EventStream& s, const std::vector<size_t>& events, const std::string& kind) {
  std::vector<int64_t> pool;
  if (kind == "nodes") {
    for (int64_t v = 0; v < s.num_nodes; ++v) pool.push_back(v);
    return pool;
  }
  std::set<int64_t> seen;
  for (size_t e : events) seen.insert(s.dst[e]);
  return {seen.begin(), seen.end()};
}

SplitMetrics score_split(const graph::EventStream& s, const graph::Split& sp, const std::vector<size_t>& events,
                         const std::vector<double>& pos, const std::vector<double>& neg, size_t q, size_t batch) {
  MetricAccumulator all(q), ind(q);
  for (size_t b0 = 0; b0 < events.size(); b0 += batch) {
    core::throw_if_stop_requested();
    const size_t b1 = std::min(events.size(), b0 + batch);
    std::vector<double> p(pos.begin() + static_cast<long>(b0), pos.begin() + static_cast<long>(b1));
    std::vector<double> n(neg.begin() + static_cast<long>(b0 * q), neg.begin() + static_cast<long>(b1 * q));
    all.add_batch(p, n);
    std::vector<double> pi, ni;
    for (size_t i = b0; i < b1; ++i) {
      if (!sp.is_inductive(s, events[i])) continue;
      pi.push_back(pos[i]);
      ni.insert(ni.end(), neg.begin() + static_cast<long>(i * q), neg.begin() + static_cast<long>((i + 1) * q));
    }
    ind.add_batch(pi, ni);
  }
  return {all.result(), ind.result()};
}

Eval edgebank_eval(const graph::EventStream& s, const graph::Split& sp, const std::vector<int64_t>& val_neg,
                   const std::vector<int64_t>& test_neg, size_t q, size_t batch) {
  EdgeBank bank;
  for (size_t e : sp.train) bank.add(s.src[e], s.dst[e]);
  auto run = [&](const std::vector<size_t>& ev, const std::vector<int64_t>& negs, size_t qq) {
    std::vector<double> pos(ev.size()), neg(negs.size());
    for (size_t b0 = 0; b0 < ev.size(); b0 += batch) {
      core::throw_if_stop_requested();
      const size_t b1 = std::min(ev.size(), b0 + batch);
      for (size_t i = b0; i < b1; ++i) {
        pos[i] = bank.score(s.src[ev[i]], s.dst[ev[i]]);
        for (size_t j = 0; j < qq; ++j) neg[i * qq + j] = bank.score(s.src[ev[i]], negs[i * qq + j]);
      }
      for (size_t i = b0; i < b1; ++i) bank.add(s.src[ev[i]], s.dst[ev[i]]);
    }
    return score_split(s, sp, ev, pos, neg, qq, batch);
  };
  Eval r;
  r.val = run(sp.val, val_neg, 1);
  r.test = run(sp.test, test_neg, q);
  return r;
}

double oracle_ap(const graph::Oracle& oracle, const graph::Split& sp, size_t batch, double* per_batch) {
  if (oracle.p_pos.empty()) return -1;
  MetricAccumulator acc(1);
  for (size_t b0 = 0; b0 < sp.test.size(); b0 += batch) {
    core::throw_if_stop_requested();
    std::vector<double> p, n;
    for (size_t i = b0; i < std::min(sp.test.size(), b0 + batch); ++i) {
      p.push_back(oracle.p_pos[sp.test[i]]);
      n.push_back(oracle.p_neg[sp.test[i]]);
    }
    acc.add_batch(p, n);
  }
  const LinkMetrics m = acc.result();
  if (per_batch) *per_batch = m.ap_batch;
  return m.ap;
}

void write_split_negatives(const std::filesystem::path& path, const graph::EventStream& s, const graph::Split& sp,
                           const std::vector<int64_t>& val_neg, const std::vector<int64_t>& test_neg, size_t q) {
  if (std::filesystem::is_directory(path)) {
    throw core::ConfigError("eval.negatives_out: " + path.string() + " is a folder (expected a file path)");
  }
  std::string o = "split,event,src,dst,time,neg\n";
  o.reserve(64 * (sp.train.size() + sp.val.size() + sp.test.size()));
  char tbuf[64];  // shortest round-trip form of the time
  auto rows = [&](const char* name, const std::vector<size_t>& ev, const std::vector<int64_t>* neg, size_t stride) {
    for (size_t i = 0; i < ev.size(); ++i) {
      core::poll_stop(i);
      const size_t e = ev[i];
      const auto [end, ec] = std::to_chars(tbuf, tbuf + sizeof tbuf, s.t[e]);
      (void)ec;  // 64 chars always fit a double
      o += name;
      o += ',' + std::to_string(e) + ',' + std::to_string(s.src[e]) + ',' + std::to_string(s.dst[e]) + ',' +
           std::string(tbuf, end) + ',' +
           std::to_string(neg ? (*neg)[i * stride] : int64_t{-1}) + '\n';
    }
  };
  rows("train", sp.train, nullptr, 1);
  rows("val", sp.val, &val_neg, 1);
  rows("test", sp.test, &test_neg, q);
  core::write_file_atomic(path, o);
  log::info("wrote the split and the evaluation negatives to {}", path.string());
}

}  // namespace mlsys::tgnn
