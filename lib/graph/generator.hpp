// A seeded synthetic generator of bipartite user-item interaction streams with a planted
// temporal structure (modelled on the statistics of the JODIE/TGL interaction data sets): Zipf item popularity, heavy-tailed user
// activity, self-exciting bursts, user preferences drifting as an Ornstein-Uhlenbeck
// process with regime switches between cluster centres, and repeat visits of recent items.
// What a user does next depends on its recent history, so node memory has something to
// learn. The generator knows each event's true probability, so the best achievable AP
// (the oracle) is known.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "graph/events.hpp"

namespace mlsys::graph {

struct SyntheticConfig {
  int64_t users = 1000;
  int64_t items = 200;
  int64_t events = 20000;
  double span_days = 30;
  int64_t edge_dim = 16;
  int64_t latent_dim = 8;      // D of item latents and user preferences
  int64_t clusters = 20;       // regime centres
  double repeat_prob = 0.6;    // rho_rep: revisit one of the last 5 items
  double beta = 4;             // preference sharpness
  double zipf = 1.0;           // item popularity exponent
  double activity_sigma = 1.5; // LogNormal sigma of user activity
  double burst_prob = 0.6;     // next event's user drawn from the last hour's users
  double burst_window_s = 3600;
  double drift_days = 5;       // OU mean-reversion time (1/theta)
  double drift_sigma = 0.3;    // per sqrt(day)
  double switch_days = 7;      // mean time between regime switches
  double feature_noise = 0.5;
};

// "tiny" (200 users, 50 items, 5k events), "small" (1k, 200, 20k), "wiki" (8,227, 1,000,
// 157,474, d_e 172), "reddit" (10,000, 984, 672,447, d_e 172). ConfigError otherwise.
SyntheticConfig synthetic_preset(const std::string& name);

struct SyntheticData {
  EventStream events;            // users 0..U-1, items U..U+I-1; label = regime switch
  std::vector<double> oracle_pos;  // per event: true probability of its item
  std::vector<int64_t> oracle_neg; // per event: a uniformly drawn item (node id)
  std::vector<double> oracle_neg_p;  // its true probability at that moment
};

SyntheticData generate_synthetic(const SyntheticConfig& c, uint64_t seed);

// Writes into `dir`: edges.csv + edge_features.npy (TGL; ext_roll by 70/15/15 position)
// when `tgl`, jodie.csv (user_id,item_id,timestamp,state_label,f1..fd) when `jodie`,
// oracle.csv (event,p_pos,neg_dst,p_neg) and meta.json (`meta_json`). Each file atomically.
void write_synthetic(const std::filesystem::path& dir, const SyntheticData& d, bool tgl, bool jodie,
                     const std::string& meta_json);

// Reads oracle.csv beside a TGL/JODIE data set (empty vectors when it is absent).
struct Oracle {
  std::vector<double> p_pos, p_neg;
  std::vector<int64_t> neg;
};
Oracle load_oracle(const std::filesystem::path& data_path, size_t expected_events);

}  // namespace mlsys::graph
