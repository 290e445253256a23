// The synthetic interaction-stream generator (graph/generator.hpp says what it models) and its writers.
#include "graph/generator.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <deque>
#include <random>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/signals.hpp"

namespace mlsys::graph {
namespace fs = std::filesystem;

SyntheticConfig synthetic_preset(const std::string& name) {
  SyntheticConfig c;
  if (name == "tiny") {
    c.users = 200, c.items = 50, c.events = 5000;
  } else if (name == "small") {
    c.users = 1000, c.items = 200, c.events = 20000;
  } else if (name == "wiki") {
    c.users = 8227, c.items = 1000, c.events = 157474, c.edge_dim = 172;
  } else if (name == "reddit") {
    c.users = 10000, c.items = 984, c.events = 672447, c.edge_dim = 172;
  } else {
    throw core::ConfigError("generate.preset: expected tiny, small, wiki or reddit, found '" + name + "'");
  }
  return c;
}

SyntheticData generate_synthetic(const SyntheticConfig& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  const int64_t U = c.users, I = c.items, D = c.latent_dim, De = c.edge_dim;
  const double day = 86400.0;

  // Items: latent q_j ~ N(0, I/D); popularity Zipf over a random rank order.
  std::vector<double> q(static_cast<size_t>(I * D));
  for (auto& x : q) x = normal(rng) / std::sqrt(static_cast<double>(D));
  std::vector<int64_t> rank(static_cast<size_t>(I));
  for (int64_t j = 0; j < I; ++j) rank[static_cast<size_t>(j)] = j + 1;
  std::shuffle(rank.begin(), rank.end(), rng);
  std::vector<double> log_pop(static_cast<size_t>(I));
  for (int64_t j = 0; j < I; ++j) log_pop[static_cast<size_t>(j)] = -c.zipf * std::log(static_cast<double>(rank[static_cast<size_t>(j)]));
  // Regime centres and users.
  std::vector<double> centre(static_cast<size_t>(c.clusters * D));
  for (auto& x : centre) x = normal(rng);
  std::vector<double> act_cum(static_cast<size_t>(U));
  double acc = 0;
  for (int64_t u = 0; u < U; ++u) acc = act_cum[static_cast<size_t>(u)] = acc + std::exp(c.activity_sigma * normal(rng));
  std::vector<double> pref(static_cast<size_t>(U * D));
  std::vector<int64_t> cluster(static_cast<size_t>(U));
  std::vector<double> last_t(static_cast<size_t>(U), 0.0);
  std::uniform_int_distribution<int64_t> pick_cluster(0, c.clusters - 1);
  for (int64_t u = 0; u < U; ++u) {
    cluster[static_cast<size_t>(u)] = pick_cluster(rng);
    for (int64_t d = 0; d < D; ++d) {
      pref[static_cast<size_t>(u * D + d)] = centre[static_cast<size_t>(cluster[static_cast<size_t>(u)] * D + d)] + 0.3 * normal(rng);
    }
  }
  std::vector<std::deque<int64_t>> recent(static_cast<size_t>(U));  // last 5 items, newest first
  // Fixed random projection of [q_j || p_u] to the edge features.
  std::vector<double> R(static_cast<size_t>(De * 2 * D));
  for (auto& x : R) x = normal(rng) / std::sqrt(static_cast<double>(D));

  SyntheticData out;
  EventStream& s = out.events;
  const auto E = static_cast<size_t>(c.events);
  s.src.resize(E), s.dst.resize(E), s.t.resize(E), s.label.resize(E);
  s.num_sources = U;
  s.num_nodes = U + I;
  s.edge_dim = De;
  s.edge_feat.resize(E * static_cast<size_t>(De));
  s.source = "synthetic";
  out.oracle_pos.resize(E), out.oracle_neg.resize(E), out.oracle_neg_p.resize(E);

  const double span = c.span_days * day;
  std::exponential_distribution<double> gap(static_cast<double>(E) / span);
  std::uniform_int_distribution<int64_t> any_item(0, I - 1);
  std::deque<std::pair<double, int64_t>> window;  // (time, user) of the last burst_window_s
  std::vector<double> logit(static_cast<size_t>(I)), prob(static_cast<size_t>(I));
  const double theta = 1.0 / c.drift_days;
  double t = 0;
  for (size_t e = 0; e < E; ++e) {
    t += gap(rng);
    while (!window.empty() && window.front().first < t - c.burst_window_s) window.pop_front();
    int64_t u = 0;
    if (!window.empty() && unif(rng) < c.burst_prob) {
      u = window[static_cast<size_t>(unif(rng) * static_cast<double>(window.size())) % window.size()].second;
    } else {
      u = std::upper_bound(act_cum.begin(), act_cum.end(), unif(rng) * acc) - act_cum.begin();
      u = std::min(u, U - 1);
    }
    window.emplace_back(t, u);
    const auto su = static_cast<size_t>(u);
    // Preference: regime switch (a jump towards a new centre), then OU drift (exact step).
    const double dt_days = (t - last_t[su]) / day;
    last_t[su] = t;
    double* p = &pref[su * static_cast<size_t>(D)];
    int8_t label = 0;
    if (unif(rng) < 1.0 - std::exp(-dt_days / c.switch_days)) {
      cluster[su] = pick_cluster(rng);
      for (int64_t d = 0; d < D; ++d) p[d] = 0.3 * p[d] + 0.7 * centre[static_cast<size_t>(cluster[su] * D + d)];
      label = 1;
    }
    const double decay = std::exp(-theta * dt_days);
    const double sd = c.drift_sigma * std::sqrt((1.0 - decay * decay) / (2.0 * theta));
    for (int64_t d = 0; d < D; ++d) {
      const double cd = centre[static_cast<size_t>(cluster[su] * D + d)];
      p[d] = cd + (p[d] - cd) * decay + sd * normal(rng);
    }
    // True distribution over items: repeat part + preference softmax.
    double mx = -INFINITY;
    for (int64_t j = 0; j < I; ++j) {
      double dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += p[d] * q[static_cast<size_t>(j * D + d)];
      logit[static_cast<size_t>(j)] = log_pop[static_cast<size_t>(j)] + c.beta * dot;
      mx = std::max(mx, logit[static_cast<size_t>(j)]);
    }
    double z = 0;
    for (int64_t j = 0; j < I; ++j) z += prob[static_cast<size_t>(j)] = std::exp(logit[static_cast<size_t>(j)] - mx);
    const auto& hist = recent[su];
    const double rho = hist.empty() ? 0.0 : c.repeat_prob;
    double wsum = 0;
    for (size_t h = 0; h < hist.size(); ++h) wsum += std::ldexp(1.0, -static_cast<int>(h));
    for (int64_t j = 0; j < I; ++j) prob[static_cast<size_t>(j)] *= (1.0 - rho) / z;
    for (size_t h = 0; h < hist.size(); ++h) prob[static_cast<size_t>(hist[h])] += rho * std::ldexp(1.0, -static_cast<int>(h)) / wsum;
    // Draw the item from that distribution.
    double r = unif(rng), cum = 0;
    int64_t item = I - 1;
    for (int64_t j = 0; j < I; ++j) {
      cum += prob[static_cast<size_t>(j)];
      if (r < cum) {
        item = j;
        break;
      }
    }
    const int64_t neg = any_item(rng);
    out.oracle_pos[e] = prob[static_cast<size_t>(item)];
    out.oracle_neg[e] = U + neg;
    out.oracle_neg_p[e] = prob[static_cast<size_t>(neg)];
    auto& h = recent[su];
    h.push_front(item);
    if (h.size() > 5) h.pop_back();
    s.src[e] = u;
    s.dst[e] = U + item;
    s.t[e] = t;
    s.label[e] = label;
    float* f = &s.edge_feat[e * static_cast<size_t>(De)];
    for (int64_t k = 0; k < De; ++k) {
      double v = c.feature_noise * normal(rng);
      const double* row = &R[static_cast<size_t>(k * 2 * D)];
      for (int64_t d = 0; d < D; ++d) v += row[d] * q[static_cast<size_t>(item * D + d)] + row[D + d] * p[d];
      f[k] = static_cast<float>(std::tanh(v));
    }
  }
  // Rescale to exactly the span and round to milliseconds (what the CSV holds).
  const double scale = span / std::max(t, 1e-9);
  for (auto& x : s.t) x = std::round(x * scale * 1000.0) / 1000.0;
  return out;
}

namespace {

void append_num(std::string& o, double v, int prec) {
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  o.append(buf, static_cast<size_t>(n));
}

}  // namespace

void write_synthetic(const fs::path& dir, const SyntheticData& d, bool tgl, bool jodie, const std::string& meta_json) {
  const EventStream& s = d.events;
  const size_t E = s.size();
  const auto De = static_cast<size_t>(s.edge_dim);
  fs::create_directories(dir);
  if (tgl) {
    std::string o = ",src,dst,time,int_roll,ext_roll\n";
    o.reserve(E * 40);
    for (size_t e = 0; e < E; ++e) {
      const int roll = e < E * 70 / 100 ? 0 : (e < E * 85 / 100 ? 1 : 2);
      o += std::to_string(e) + "," + std::to_string(s.src[e]) + "," + std::to_string(s.dst[e]) + ",";
      append_num(o, s.t[e], 3);
      o += ",0," + std::to_string(roll) + "\n";
    }
    write_npy(dir / "edge_features.npy", s.edge_feat, static_cast<int64_t>(E), s.edge_dim);
    core::write_file_atomic(dir / "edges.csv", o);
  }
  if (jodie) {
    std::string o = "user_id,item_id,timestamp,state_label,comma_separated_list_of_features\n";
    o.reserve(E * (30 + De * 8));
    for (size_t e = 0; e < E; ++e) {
      o += std::to_string(s.src[e]) + "," + std::to_string(s.dst[e] - s.num_sources) + ",";
      append_num(o, s.t[e], 3);
      o += "," + std::to_string(static_cast<int>(s.label[e]));
      for (size_t k = 0; k < De; ++k) {
        o += ',';
        append_num(o, s.edge_feat[e * De + k], 4);
      }
      o += '\n';
    }
    core::write_file_atomic(dir / "jodie.csv", o);
  }
  std::string o = "event,p_pos,neg_dst,p_neg\n";
  for (size_t e = 0; e < E; ++e) {
    char buf[128];
    const int n = std::snprintf(buf, sizeof buf, "%zu,%.6g,%lld,%.6g\n", e, d.oracle_pos[e],
                                static_cast<long long>(d.oracle_neg[e]), d.oracle_neg_p[e]);
    o.append(buf, static_cast<size_t>(n));
  }
  core::write_file_atomic(dir / "oracle.csv", o);
  core::write_file_atomic(dir / "meta.json", meta_json + "\n");
}

Oracle load_oracle(const fs::path& data_path, size_t expected_events) {
  Oracle o;
  const fs::path file = (fs::is_directory(data_path) ? data_path : data_path.parent_path()) / "oracle.csv";
  if (!fs::exists(file)) return o;
  const std::string text = core::read_file(file);
  size_t pos = text.find('\n');
  size_t line = 1;
  while (pos != std::string::npos && pos + 1 < text.size()) {
    const size_t e = text.find('\n', pos + 1);
    const std::string row = text.substr(pos + 1, (e == std::string::npos ? text.size() : e) - pos - 1);
    ++line;
    pos = e;
    if (row.empty()) continue;
    size_t ev = 0;
    double pp = 0, pn = 0;
    long long neg = 0;
    core::poll_stop(o.p_pos.size());
    if (std::sscanf(row.c_str(), "%zu,%lf,%lld,%lf", &ev, &pp, &neg, &pn) != 4 || ev != o.p_pos.size()) {
      throw core::InputError(file.string() + ":" + std::to_string(line) + ": expected event,p_pos,neg_dst,p_neg in event order");
    }
    // sscanf reads "nan" and "inf": a NaN probability would stall AP's ranking.
    for (const auto& [name, p] : {std::pair{"p_pos", pp}, std::pair{"p_neg", pn}}) {
      if (!(p >= 0 && p <= 1)) {
        throw core::InputError(file.string() + ":" + std::to_string(line) + ": column '" + name +
                               "': expected a probability in [0, 1], found " + std::to_string(p));
      }
    }
    o.p_pos.push_back(pp);
    o.neg.push_back(neg);
    o.p_neg.push_back(pn);
  }
  if (o.p_pos.size() != expected_events) {
    throw core::InputError(file.string() + ": expected " + std::to_string(expected_events) + " rows (one per event), found " +
                           std::to_string(o.p_pos.size()));
  }
  return o;
}

}  // namespace mlsys::graph
