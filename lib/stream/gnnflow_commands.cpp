// gnnflow-stream subcommands: load or generate a stream, push it through the block store,
// sample, compare with a T-CSR rebuilt per increment; print a table (or JSON with --json)
// and write a JSON artifact.
#include "stream/gnnflow_commands.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>

#include "core/artifact.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/report.hpp"
#include "core/signals.hpp"
#include "core/timer.hpp"
#include "graph/feature_cache.hpp"
#include "graph/sampler.hpp"
#include "graph/temporal_sampling.hpp"

namespace mlsys::stream {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

GnnflowConfig load(const core::CommonOptions& opts) { return read_gnnflow_config(core::load_config(opts)); }

std::string num(double v, int prec = 2) { return core::fixed(v, prec); }
std::string mib(size_t bytes) { return core::fixed(static_cast<double>(bytes) / (1 << 20), 2); }
// "12.3 M/s" style rates.
std::string per_second(double count, double seconds) {
  if (seconds <= 0) return "-";
  const double r = count / seconds;
  return r >= 1e6 ? core::fixed(r / 1e6, 2) + " M/s" : core::fixed(r / 1e3, 1) + " k/s";
}

void check_stop(const char* what) {
  if (core::stop_requested()) throw core::RuntimeFailure(std::string("stopped during ") + what);
}

json memory_json(const graph::StoreMemory& m) {
  return {{"nodes", m.nodes},
          {"blocks", m.blocks},
          {"edges", m.edges},
          {"edge_bytes", m.edge_bytes},
          {"used_edge_bytes", m.used_edge_bytes},
          {"capacity_use", m.capacity_use()},
          {"header_bytes", m.header_bytes},
          {"node_table_bytes", m.node_table_bytes},
          {"metadata_bytes", m.metadata_bytes()},
          {"scratch_bytes", m.scratch_bytes},
          {"pool", {{"reserved_bytes", m.pool.reserved_bytes},
                    {"in_use_bytes", m.pool.in_use_bytes},
                    {"free_listed_bytes", m.pool.free_listed_bytes},
                    {"chunks", m.pool.chunks},
                    {"huge_page_chunks", m.pool.huge_page_chunks}}}};
}

std::string memory_table(const graph::StoreMemory& m) {
  const double per_edge = m.edges > 0 ? static_cast<double>(m.edge_bytes + m.metadata_bytes()) / static_cast<double>(m.edges) : 0;
  return core::format_table({{"memory", "MiB", "note"},
                             {"edge data", mib(m.edge_bytes), "sum of capacity x 24 B (ts f64, dst i64, eid i64)"},
                             {"  used", mib(m.used_edge_bytes), "capacity use " + num(100 * m.capacity_use(), 1) + " %"},
                             {"block headers", mib(m.header_bytes), std::to_string(m.blocks) + " blocks x 40 B (+ array slack)"},
                             {"node table", mib(m.node_table_bytes), std::to_string(m.nodes) + " nodes"},
                             {"insert scratch", mib(m.scratch_bytes), ""},
                             {"pool reserved", mib(m.pool.reserved_bytes),
                              std::to_string(m.pool.chunks) + " mappings, " + std::to_string(m.pool.huge_page_chunks) +
                                  " with MADV_HUGEPAGE accepted"},
                             {"pool free-listed", mib(m.pool.free_listed_bytes), "expired blocks kept for reuse"},
                             {"per live entry", num(per_edge, 1) + " B", "edge data + metadata"}});
}

// Roots of a link-prediction batch: src and dst of events [b, e) at their event times.
void event_roots(const graph::EdgeStream& s, size_t b, size_t e, std::vector<int64_t>& roots, std::vector<double>& times) {
  roots.clear(), times.clear();
  for (size_t i = b; i < e; ++i) roots.push_back(s.src[i]), times.push_back(s.ts[i]);
  for (size_t i = b; i < e; ++i) roots.push_back(s.dst[i]), times.push_back(s.ts[i]);
}

struct Spread {
  double median = 0, min = 0, max = 0;
};
Spread spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return {n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]), v.front(), v.back()};
}
json spread_json(const Spread& s) { return {{"median", s.median}, {"min", s.min}, {"max", s.max}}; }
std::string spread_text(const Spread& s, double scale, int prec) {
  return num(s.median / scale, prec) + " [" + num(s.min / scale, prec) + ", " + num(s.max / scale, prec) + "]";
}

}  // namespace

graph::EdgeStream load_or_generate(const GnnflowConfig& c) {
  if (!c.data.path.empty()) {
    graph::EdgeStream s = graph::load_stream(c.data.path, c.data.format);
    log::info("{}: {} events, {} nodes", s.source, s.size(), s.num_nodes);
    return s;
  }
  core::Timer t;
  graph::EdgeStream s = graph::generate_stream(c.generate.gen, c.seed);
  log::info("generated preset {} ({} nodes, {} events, seed {}) in {:.2f} s", c.generate.preset, s.num_nodes, s.size(),
            c.seed, t.seconds());
  return s;
}

IngestTiming ingest_range(graph::TimeIndexedBlockStore& st, const graph::EdgeStream& s, size_t begin, size_t end,
                          int64_t batch, double expire_window) {
  IngestTiming r;
  double newest = -std::numeric_limits<double>::infinity();
  core::Timer t;
  for (size_t b = begin; b < end;) {
    const size_t e = std::min(end, b + static_cast<size_t>(batch));
    const size_t n = e - b;
    st.insert(std::span(s.src).subspan(b, n), std::span(s.dst).subspan(b, n), std::span(s.ts).subspan(b, n),
              std::span(s.eid).subspan(b, n));
    ++r.batches;
    if (expire_window > 0) {
      for (size_t i = b; i < e; ++i) newest = std::max(newest, s.ts[i]);
      r.expired += st.expire_before(newest - expire_window);
    }
    b = e;
    if ((r.batches & 15) == 0) check_stop("ingest");
  }
  r.seconds = t.seconds();
  return r;
}

int gnnflow_generate(const core::CommonOptions& opts) {
  const GnnflowConfig c = load(opts);
  core::Timer timer;
  const graph::EdgeStream s = graph::generate_stream(c.generate.gen, c.seed);
  const double gen_s = timer.seconds();
  const fs::path bin = fs::path(opts.out) / "stream.bin";
  graph::write_stream_binary(bin, s);
  json files = json::array({bin.string()});
  if (c.generate.csv) {
    const fs::path csv = fs::path(opts.out) / "stream.csv";
    graph::write_stream_csv(csv, s);
    files.push_back(csv.string());
  }
  size_t ties = 0, late = 0;
  double newest = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && s.ts[i] == s.ts[i - 1]) ++ties;
    if (s.ts[i] < newest) ++late;
    newest = std::max(newest, s.ts[i]);
  }
  std::vector<int64_t> deg(static_cast<size_t>(s.num_nodes), 0);
  for (size_t i = 0; i < s.size(); ++i) ++deg[static_cast<size_t>(s.src[i])], ++deg[static_cast<size_t>(s.dst[i])];
  const int64_t max_deg = deg.empty() ? 0 : *std::max_element(deg.begin(), deg.end());
  const json body = {{"files", files},
                     {"events", s.size()},
                     {"nodes", s.num_nodes},
                     {"ties", ties},
                     {"out_of_order", late},
                     {"max_degree", max_deg},
                     {"first_time", s.size() ? s.ts.front() : 0.0},
                     {"last_time", newest},
                     {"generate_seconds", gen_s}};
  core::write_json_artifact(fs::path(opts.out) / "manifest.json", core::artifact_info(opts, c.resolved), body);
  std::string text = "wrote " + bin.string() + (c.generate.csv ? " and stream.csv" : "") + " (preset " + c.generate.preset +
                     ", seed " + std::to_string(c.seed) + ")\n";
  text += core::format_table({{"events", "nodes", "ties", "out of order", "max degree", "generate s"},
                              {std::to_string(s.size()), std::to_string(s.num_nodes), std::to_string(ties), std::to_string(late),
                               std::to_string(max_deg), num(gen_s, 2)}});
  core::emit_result(opts, body, text);
  return 0;
}

int gnnflow_ingest(const core::CommonOptions& opts) {
  const GnnflowConfig c = load(opts);
  const graph::EdgeStream s = load_or_generate(c);
  graph::TimeIndexedBlockStore st(c.store);
  const IngestTiming r = ingest_range(st, s, 0, s.size(), c.ingest.batch_size, c.ingest.expire_window);
  const graph::InsertStats& is = st.stats();
  const graph::StoreMemory m = st.memory();
  if (const std::string bad = st.check_invariants(); !bad.empty()) {
    throw core::RuntimeFailure("block store invariant broken after ingest: " + bad);
  }
  const json body = {{"source", s.source},
                     {"events", s.size()},
                     {"entries", is.edges},
                     {"batches", r.batches},
                     {"seconds", r.seconds},
                     {"events_per_second", r.seconds > 0 ? static_cast<double>(s.size()) / r.seconds : 0.0},
                     {"entries_per_second", r.seconds > 0 ? static_cast<double>(is.edges) / r.seconds : 0.0},
                     {"late_inserted", is.late_inserted},
                     {"late_rejected", is.late_rejected},
                     {"too_old", is.too_old},
                     {"blocks_allocated", is.blocks_allocated},
                     {"blocks_split", is.blocks_split},
                     {"expired_entries", r.expired},
                     {"memory", memory_json(m)}};
  core::write_json_artifact(fs::path(opts.out) / "ingest.json", core::artifact_info(opts, c.resolved), body);
  std::string text = core::format_table(
      {{"events", "entries", "batches", "seconds", "events/s", "entries/s", "late in", "late rejected", "too old", "expired"},
       {std::to_string(s.size()), std::to_string(is.edges), std::to_string(r.batches), num(r.seconds, 3),
        per_second(static_cast<double>(s.size()), r.seconds), per_second(static_cast<double>(is.edges), r.seconds),
        std::to_string(is.late_inserted), std::to_string(is.late_rejected), std::to_string(is.too_old), std::to_string(r.expired)}});
  text += "\n" + memory_table(m);
  core::emit_result(opts, body, text);
  return 0;
}

int gnnflow_sample(const core::CommonOptions& opts) {
  const GnnflowConfig c = load(opts);
  graph::validate(c.sample.layers);
  const graph::EdgeStream s = load_or_generate(c);
  graph::TimeIndexedBlockStore st(c.store);
  const IngestTiming ing = ingest_range(st, s, 0, s.size(), c.ingest.batch_size, c.ingest.expire_window);
  const size_t n_ev = c.sample.max_events > 0 ? std::min(s.size(), static_cast<size_t>(c.sample.max_events)) : s.size();
  const size_t first = s.size() - n_ev;
  const auto B = static_cast<size_t>(c.sample.batch_size);
  const int64_t k = c.sample.layers.fanouts.front();
  std::vector<std::string> kinds;
  if (c.sample.strategy != "uniform") kinds.push_back("recent");
  if (c.sample.strategy != "recent") kinds.push_back("uniform");
  const bool layered = c.sample.layers.fanouts.size() > 1 || c.sample.layers.snapshots > 1 || c.sample.layers.window > 0;
  std::vector<std::vector<std::string>> rows{{"sampler", "roots", "sampled", "seconds", "roots/s", "sampled/s"}};
  json results = json::array();
  std::vector<int64_t> roots;
  std::vector<double> times;
  for (const std::string& kind : kinds) {
    for (const bool multi : layered ? std::vector<bool>{false, true} : std::vector<bool>{false}) {
      std::mt19937_64 rng(c.seed);
      graph::NeighborBlock nb;
      graph::TemporalSamplingConfig lc = c.sample.layers;
      lc.strategy = kind == "recent" ? graph::SamplingStrategy::recent : graph::SamplingStrategy::uniform;
      double secs = 0;
      int64_t n_roots = 0, sampled = 0;
      for (size_t b = first; b < s.size(); b += B) {
        event_roots(s, b, std::min(s.size(), b + B), roots, times);
        core::Timer t;
        if (multi) {
          const auto blocks = graph::sample_layers(st, lc, roots, times, rng);
          secs += t.seconds();
          for (const auto& blk : blocks) sampled += static_cast<int64_t>(blk.edges());
        } else {
          if (kind == "recent") {
            graph::sample_recent(st, roots, times, k, nb, false, c.sample.prefetch);
          } else {
            graph::sample_uniform(st, roots, times, k, rng, nb, c.sample.prefetch);
          }
          secs += t.seconds();
          for (int64_t x : nb.nbr) sampled += x >= 0 ? 1 : 0;
        }
        n_roots += static_cast<int64_t>(roots.size());
        check_stop("sample");
      }
      std::string name = kind + (multi ? " layers " : " k=") ;
      if (multi) {
        for (size_t l = 0; l < lc.fanouts.size(); ++l) name += (l ? "x" : "") + std::to_string(lc.fanouts[l]);
        name += " S=" + std::to_string(lc.snapshots);
      } else {
        name += std::to_string(k);
      }
      rows.push_back({name, std::to_string(n_roots), std::to_string(sampled), num(secs, 3),
                      per_second(static_cast<double>(n_roots), secs), per_second(static_cast<double>(sampled), secs)});
      results.push_back({{"sampler", name},
                         {"strategy", kind},
                         {"layered", multi},
                         {"roots", n_roots},
                         {"sampled", sampled},
                         {"seconds", secs},
                         {"roots_per_second", secs > 0 ? static_cast<double>(n_roots) / secs : 0.0}});
    }
  }
  const json body = {{"source", s.source},
                     {"events", s.size()},
                     {"sampled_events", n_ev},
                     {"ingest_seconds", ing.seconds},
                     {"results", results},
                     {"memory", memory_json(st.memory())}};
  core::write_json_artifact(fs::path(opts.out) / "sample.json", core::artifact_info(opts, c.resolved), body);
  std::string text = "ingested " + std::to_string(s.size()) + " events in " + num(ing.seconds, 3) + " s; sampled the endpoints of the last " +
                     std::to_string(n_ev) + " events at their event times (strictly earlier edges)\n";
  text += core::format_table(rows);
  core::emit_result(opts, body, text);
  return 0;
}

int gnnflow_bench(const core::CommonOptions& opts) {
  const GnnflowConfig c = load(opts);
  graph::EdgeStream s = load_or_generate(c);
  // The T-CSR needs chronological events: a stream with late events is sorted (stably)
  // first, for both sides, and eids renumbered to positions.
  bool sorted_first = false;
  if (!std::is_sorted(s.ts.begin(), s.ts.end())) {
    std::vector<size_t> order(s.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s.ts[a] < s.ts[b]; });
    graph::EdgeStream t;
    t.num_nodes = s.num_nodes, t.source = s.source;
    for (size_t i : order) t.src.push_back(s.src[i]), t.dst.push_back(s.dst[i]), t.ts.push_back(s.ts[i]);
    s = std::move(t);
    sorted_first = true;
  }
  s.eid.resize(s.size());
  std::iota(s.eid.begin(), s.eid.end(), int64_t{0});
  const graph::EventStream ev = s.to_events();
  const size_t E = s.size();
  const auto init = static_cast<size_t>(c.bench.initial_fraction * static_cast<double>(E));
  const auto N = static_cast<size_t>(c.bench.increments);
  std::vector<size_t> bounds{init};
  for (size_t j = 1; j <= N; ++j) bounds.push_back(init + (E - init) * j / N);
  const int64_t k = c.bench.fanout;
  // Each increment's query roots: endpoints of its events at their times, evenly strided
  // down to roots_per_increment.
  std::vector<std::vector<int64_t>> inc_roots(N);
  std::vector<std::vector<double>> inc_times(N);
  for (size_t j = 0; j < N; ++j) {
    event_roots(s, bounds[j], bounds[j + 1], inc_roots[j], inc_times[j]);
    const auto want = static_cast<size_t>(c.bench.roots_per_increment);
    if (want > 0 && inc_roots[j].size() > want) {
      std::vector<int64_t> r;
      std::vector<double> t;
      const size_t n = inc_roots[j].size();
      for (size_t q = 0; q < want; ++q) r.push_back(inc_roots[j][q * n / want]), t.push_back(inc_times[j][q * n / want]);
      inc_roots[j] = std::move(r), inc_times[j] = std::move(t);
    }
  }
  int64_t total_roots = 0;
  for (const auto& r : inc_roots) total_roots += static_cast<int64_t>(r.size());
  const auto inc_events = static_cast<double>(E - init);

  struct Side {
    std::vector<double> update_s, recent_s, uniform_s;
  } store_side, tcsr_side;
  std::vector<double> store_init_s;
  graph::StoreMemory store_mem;
  size_t tcsr_bytes = 0;
  for (int64_t rep = 0; rep < c.bench.repeats; ++rep) {
    auto run_store = [&] {
      graph::TimeIndexedBlockStore st(c.store);
      store_init_s.push_back(ingest_range(st, s, 0, init, c.ingest.batch_size, 0).seconds);
      double upd = 0, rec = 0, uni = 0;
      std::mt19937_64 rng(c.seed);
      graph::NeighborBlock nb;
      for (size_t j = 0; j < N; ++j) {
        upd += ingest_range(st, s, bounds[j], bounds[j + 1], c.ingest.batch_size, 0).seconds;
        core::Timer t;
        graph::sample_recent(st, inc_roots[j], inc_times[j], k, nb);
        rec += t.seconds();
        t.reset();
        graph::sample_uniform(st, inc_roots[j], inc_times[j], k, rng, nb);
        uni += t.seconds();
        check_stop("bench");
      }
      store_side.update_s.push_back(upd), store_side.recent_s.push_back(rec), store_side.uniform_s.push_back(uni);
      store_mem = st.memory();
    };
    auto run_tcsr = [&] {
      double upd = 0, rec = 0, uni = 0;
      std::mt19937_64 rng(c.seed);
      graph::NeighborBlock nb;
      for (size_t j = 0; j < N; ++j) {
        core::Timer t;
        std::vector<size_t> prefix(bounds[j + 1]);
        std::iota(prefix.begin(), prefix.end(), size_t{0});
        const graph::TemporalGraph g(ev, &prefix, c.store.undirected);
        upd += t.seconds();
        t.reset();
        graph::sample_recent(g, inc_roots[j], inc_times[j], k, nb);
        rec += t.seconds();
        t.reset();
        graph::sample_uniform(g, inc_roots[j], inc_times[j], k, rng, nb);
        uni += t.seconds();
        if (j + 1 == N) {
          tcsr_bytes = g.indptr().capacity() * 8 + g.neighbors().capacity() * 8 + g.event_ids().capacity() * 8 +
                       g.times().capacity() * 8;
        }
        check_stop("bench");
      }
      tcsr_side.update_s.push_back(upd), tcsr_side.recent_s.push_back(rec), tcsr_side.uniform_s.push_back(uni);
    };
    if (rep % 2 == 0) {
      run_store(), run_tcsr();
    } else {
      run_tcsr(), run_store();
    }
    log::info("repeat {}/{}: store update {:.3f} s, T-CSR rebuilds {:.3f} s", rep + 1, c.bench.repeats,
              store_side.update_s.back(), tcsr_side.update_s.back());
  }
  // Identical samples: the whole stream in both, every increment's roots, recent and uniform.
  bool identical = true;
  {
    graph::TimeIndexedBlockStore st(c.store);
    ingest_range(st, s, 0, E, c.ingest.batch_size, 0);
    const graph::TemporalGraph g(ev, nullptr, c.store.undirected);
    std::mt19937_64 r1(c.seed + 1), r2(c.seed + 1);
    for (size_t j = 0; j < N && identical; ++j) {
      graph::NeighborBlock a, b;
      graph::sample_recent(g, inc_roots[j], inc_times[j], k, a);
      graph::sample_recent(st, inc_roots[j], inc_times[j], k, b);
      identical = identical && a.nbr == b.nbr && a.eid == b.eid && a.t == b.t;
      graph::sample_uniform(g, inc_roots[j], inc_times[j], k, r1, a);
      graph::sample_uniform(st, inc_roots[j], inc_times[j], k, r2, b);
      identical = identical && a.nbr == b.nbr && a.eid == b.eid && a.t == b.t;
    }
  }
  if (!identical) throw core::RuntimeFailure("bench: the block store and the T-CSR gave different samples on the same stream");

  const double R = static_cast<double>(total_roots);
  auto rate = [](const std::vector<double>& secs, double count) {
    std::vector<double> r;
    for (double x : secs) r.push_back(x > 0 ? count / x : 0.0);
    return spread(r);
  };
  const Spread st_ins = rate(store_side.update_s, inc_events), tc_ins = rate(tcsr_side.update_s, inc_events);
  const Spread st_rec = rate(store_side.recent_s, R), tc_rec = rate(tcsr_side.recent_s, R);
  const Spread st_uni = rate(store_side.uniform_s, R), tc_uni = rate(tcsr_side.uniform_s, R);
  const Spread st_init = rate(store_init_s, static_cast<double>(init));
  std::vector<double> ratio;
  for (size_t r = 0; r < store_side.update_s.size(); ++r) ratio.push_back(tcsr_side.update_s[r] / store_side.update_s[r]);
  const Spread speedup = spread(ratio);
  const json body = {
      {"source", s.source},
      {"events", E},
      {"initial_events", init},
      {"increments", N},
      {"repeats", c.bench.repeats},
      {"fanout", k},
      {"roots_sampled", total_roots},
      {"sorted_first", sorted_first},
      {"identical_samples", identical},
      {"store", {{"initial_events_per_second", spread_json(st_init)},
                 {"update_events_per_second", spread_json(st_ins)},
                 {"recent_roots_per_second", spread_json(st_rec)},
                 {"uniform_roots_per_second", spread_json(st_uni)},
                 {"update_seconds", store_side.update_s},
                 {"memory", memory_json(store_mem)}}},
      {"tcsr_rebuild", {{"update_events_per_second", spread_json(tc_ins)},
                        {"recent_roots_per_second", spread_json(tc_rec)},
                        {"uniform_roots_per_second", spread_json(tc_uni)},
                        {"update_seconds", tcsr_side.update_s},
                        {"bytes", tcsr_bytes}}},
      {"update_speedup", spread_json(speedup)}};
  core::write_json_artifact(fs::path(opts.out) / "bench.json", core::artifact_info(opts, c.resolved), body);
  std::string text = std::to_string(E) + " events: " + std::to_string(init) + " first, then " + std::to_string(N) +
                     " increments; " + std::to_string(c.bench.repeats) + " alternating repeats, median [min, max]; " +
                     std::to_string(total_roots) + " roots sampled per repeat, k = " + std::to_string(k) +
                     (sorted_first ? "; late events sorted first (the T-CSR needs chronological events)" : "") + "\n";
  text += core::format_table({{"", "update M events/s", "recent M roots/s", "uniform M roots/s"},
                              {"block store", spread_text(st_ins, 1e6, 3), spread_text(st_rec, 1e6, 3), spread_text(st_uni, 1e6, 3)},
                              {"T-CSR rebuilt per increment", spread_text(tc_ins, 1e6, 3), spread_text(tc_rec, 1e6, 3),
                               spread_text(tc_uni, 1e6, 3)}});
  text += "update speedup (T-CSR rebuild time / store insert time): " + spread_text(speedup, 1, 1) +
          "; samples identical: " + (identical ? "yes" : "no") + "\nstore memory " + mib(store_mem.edge_bytes + store_mem.metadata_bytes()) +
          " MiB (capacity use " + num(100 * store_mem.capacity_use(), 1) + " %), T-CSR " + mib(tcsr_bytes) + " MiB\n";
  core::emit_result(opts, body, text);
  return 0;
}

int gnnflow_cache(const core::CommonOptions& opts) {
  const GnnflowConfig c = load(opts);
  const graph::EdgeStream s = load_or_generate(c);
  const size_t E = s.size();
  const auto init = static_cast<size_t>(c.bench.initial_fraction * static_cast<double>(E));
  const auto N = static_cast<size_t>(c.bench.increments);
  // The access sequence, once: per increment its batches' lookups and its eids.
  graph::TimeIndexedBlockStore st(c.store);
  ingest_range(st, s, 0, init, c.ingest.batch_size, 0);
  std::vector<std::vector<std::vector<int64_t>>> batches(N);
  std::vector<std::vector<int64_t>> inc_eids(N);
  std::vector<int64_t> roots;
  std::vector<double> times;
  graph::NeighborBlock nb;
  int64_t lookups = 0;
  core::Timer seq_timer;
  for (size_t j = 0; j < N; ++j) {
    const size_t lo = init + (E - init) * j / N, hi = init + (E - init) * (j + 1) / N;
    ingest_range(st, s, lo, hi, c.ingest.batch_size, 0);
    inc_eids[j].assign(s.eid.begin() + static_cast<std::ptrdiff_t>(lo), s.eid.begin() + static_cast<std::ptrdiff_t>(hi));
    for (size_t b = lo; b < hi; b += static_cast<size_t>(c.cache.batch_size)) {
      const size_t e = std::min(hi, b + static_cast<size_t>(c.cache.batch_size));
      std::vector<int64_t> ids(s.eid.begin() + static_cast<std::ptrdiff_t>(b), s.eid.begin() + static_cast<std::ptrdiff_t>(e));
      event_roots(s, b, e, roots, times);
      graph::sample_recent(st, roots, times, c.cache.fanout, nb);
      for (int64_t x : nb.eid) {
        if (x >= 0) ids.push_back(x);
      }
      lookups += static_cast<int64_t>(ids.size());
      batches[j].push_back(std::move(ids));
    }
    check_stop("cache");
  }
  log::info("access sequence: {} increments, {} lookups, built in {:.2f} s", N, lookups, seq_timer.seconds());
  // Hashed edge features: nothing is stored, every miss computes its row.
  const auto dim = static_cast<size_t>(c.cache.dim);
  const graph::FeatureSource source = [dim](int64_t id, float* row) {
    uint64_t x = static_cast<uint64_t>(id) * 0x9e3779b97f4a7c15ULL;
    for (size_t q = 0; q < dim; ++q) {
      x ^= x >> 31, x *= 0xbf58476d1ce4e5b9ULL, x ^= x >> 29;
      row[q] = static_cast<float>(x >> 40) * 0x1.0p-24f;
    }
  };
  std::vector<std::vector<std::string>> rows{{"policy", "ratio", "slots", "restoration", "hit rate", "fetched", "seconds"}};
  json results = json::array();
  std::vector<float> out;
  for (const std::string& pname : c.cache.policies) {
    for (double ratio : c.cache.ratios) {
      for (const bool restore : c.cache.restoration ? std::vector<bool>{false, true} : std::vector<bool>{false}) {
        const auto cap = static_cast<int64_t>(std::llround(ratio * static_cast<double>(E)));
        graph::DynamicFeatureCache cache(cap, c.cache.dim, graph::parse_cache_policy(pname));
        core::Timer t;
        for (size_t j = 0; j < N; ++j) {
          if (restore) cache.restore(inc_eids[j], source);
          for (const auto& ids : batches[j]) {
            out.resize(ids.size() * dim);
            cache.gather(ids, source, out.data());
          }
          check_stop("cache");
        }
        const double secs = t.seconds();
        const graph::CacheStats& cs = cache.stats();
        rows.push_back({pname, num(100 * ratio, 2) + " %", std::to_string(cap), restore ? "yes" : "no",
                        num(100 * cs.hit_rate(), 2) + " %", std::to_string(cs.fetched), num(secs, 2)});
        results.push_back({{"policy", pname},
                           {"ratio", ratio},
                           {"capacity", cap},
                           {"restoration", restore},
                           {"lookups", cs.lookups},
                           {"hits", cs.hits},
                           {"hit_rate", cs.hit_rate()},
                           {"fetched", cs.fetched},
                           {"seconds", secs}});
      }
    }
  }
  const json body = {{"source", s.source},
                     {"events", E},
                     {"initial_events", init},
                     {"increments", N},
                     {"lookups", lookups},
                     {"results", results}};
  core::write_json_artifact(fs::path(opts.out) / "cache.json", core::artifact_info(opts, c.resolved), body);
  std::string text = "edge-feature cache over " + std::to_string(N) + " increments after the first " + std::to_string(init) +
                     " events: " + std::to_string(lookups) + " lookups (each batch's own eids + recent-" +
                     std::to_string(c.cache.fanout) + " neighbour eids of its endpoints); ratio = slots / events\n";
  text += core::format_table(rows);
  core::emit_result(opts, body, text);
  return 0;
}

}  // namespace mlsys::stream
