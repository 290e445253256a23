// AP, AUC and MRR against values worked out by hand (and matching sklearn's
// average_precision_score / roc_auc_score), including ties; per-batch vs global.
#include <catch2/catch.hpp>

#include <functional>
#include <limits>
#include <string>
#include <utility>

#include "core/error.hpp"
#include "core/signals.hpp"
#include "tests/support/expect_error.hpp"
#include "tgnn/edgebank.hpp"
#include "tgnn/metrics.hpp"

using namespace mlsys::tgnn;

TEST_CASE("AP and AUC on distinct scores", "[metrics]") {
  // Ranking: 0.9(+) 0.5(-) 0.4(+) 0.1(-): AP = 1/2 * 1 + 1/2 * 2/3; AUC = 3 of 4 pairs.
  REQUIRE(average_precision({0.9, 0.4}, {0.5, 0.1}) == Approx(5.0 / 6.0));
  REQUIRE(roc_auc({0.9, 0.4}, {0.5, 0.1}) == Approx(0.75));
  REQUIRE(average_precision({0.9, 0.8}, {0.1, 0.2}) == Approx(1.0));
  REQUIRE(roc_auc({0.1}, {0.9}) == Approx(0.0));
  // 3 positives, 2 negatives: 0.8+ 0.7- 0.6+ 0.5- 0.4+ -> 1/3 (1 + 2/3 + 3/5).
  REQUIRE(average_precision({0.8, 0.6, 0.4}, {0.7, 0.5}) == Approx((1.0 + 2.0 / 3.0 + 0.6) / 3.0));
  REQUIRE(roc_auc({0.8, 0.6, 0.4}, {0.7, 0.5}) == Approx(3.0 / 6.0));
}

TEST_CASE("AP and AUC with tied scores (EdgeBank's 0/1)", "[metrics]") {
  // Threshold 1: tp 1, fp 1 -> recall 1/2 at precision 1/2; threshold 0: recall 1 at 1/2.
  REQUIRE(average_precision({1, 0}, {1, 0}) == Approx(0.5));
  REQUIRE(roc_auc({1, 0}, {1, 0}) == Approx(0.5));
  // pos {1,1,0}, neg {0,0,0}: threshold 1 -> P=1, R=2/3; threshold 0 -> P=1/2, R=1.
  REQUIRE(average_precision({1, 1, 0}, {0, 0, 0}) == Approx(2.0 / 3.0 + 1.0 / 6.0));
  // AUC: 6 of 9 pairs won, 3 tied -> (6 + 1.5) / 9.
  REQUIRE(roc_auc({1, 1, 0}, {0, 0, 0}) == Approx(7.5 / 9.0));
}

TEST_CASE("MRR with q negatives, ties counted one half", "[metrics]") {
  // Event 0: 0.5 below 0.6 and 0.7 -> rank 3. Event 1: 0.9 ties one -> rank 1.5.
  REQUIRE(mean_reciprocal_rank({0.5, 0.9}, {0.6, 0.7, 0.1, 0.1, 0.2, 0.9}, 3) == Approx((1.0 / 3 + 1.0 / 1.5) / 2));
  REQUIRE(mean_reciprocal_rank({1.0}, {0.0, 0.0}, 2) == Approx(1.0));
  REQUIRE(mean_reciprocal_rank({1.0}, {1.0, 1.0}, 2) == Approx(0.5));
}

TEST_CASE("accumulator: per-batch mean differs from the global value", "[metrics]") {
  MetricAccumulator acc(2);
  // Batch 1 perfectly ranked, batch 2 inverted; q = 2, first negative used for AP/AUC.
  acc.add_batch({0.9, 0.8}, {0.1, 0.95, 0.2, 0.0});
  acc.add_batch({0.3}, {0.4, 0.35});
  const LinkMetrics m = acc.result();
  REQUIRE(m.events == 3);
  REQUIRE(m.ap_batch == Approx((1.0 + 0.5) / 2));    // batch 2: one pos below one neg
  REQUIRE(m.auc_batch == Approx((1.0 + 0.0) / 2));
  // Global: 0.9+ 0.8+ 0.4- 0.3+ 0.2- 0.1-: AP = 1/3 (1 + 1 + 3/4).
  REQUIRE(m.ap == Approx((1.0 + 1.0 + 0.75) / 3));
  REQUIRE(m.auc == Approx(8.0 / 9.0));
  // MRR: ranks 2 (0.95 > 0.9), 1, 3 -> (1/2 + 1 + 1/3) / 3.
  REQUIRE(m.mrr == Approx((0.5 + 1.0 + 1.0 / 3) / 3));
}

TEST_CASE("EdgeBank remembers directed pairs", "[edgebank]") {
  EdgeBank b;
  b.add(3, 7);
  REQUIRE(b.score(3, 7) == 1.0);
  REQUIRE(b.score(7, 3) == 0.0);
  REQUIRE(b.score(3, 8) == 0.0);
  b.add(3, 7);
  REQUIRE(b.size() == 1);
}

// Issue 20 (hardening): NaN scores (a diverged model, or non-finite features) used to stall
// average_precision and roc_auc for ever (NaN == NaN is false, so a tie group never ends)
// and gave mean_reciprocal_rank a meaningless number. Every metric now refuses them with a
// run-time failure naming the metric and the score; inf is ordered, so it is a fine score.
TEST_CASE("hardening: NaN scores are a run-time failure in every metric, never a loop", "[metrics][hardening]") {
  using mlsys::test::expect_error;
  using mlsys::core::RuntimeFailure;
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  expect_error<RuntimeFailure>([&] { (void)average_precision({0.9, nan}, {0.1, 0.2}); },
                               {"average_precision", "positive score 1", "NaN"});
  expect_error<RuntimeFailure>([&] { (void)average_precision({0.9, 0.4}, {nan, 0.2}); },
                               {"average_precision", "negative score 0", "NaN"});
  expect_error<RuntimeFailure>([&] { (void)roc_auc({nan}, {0.1}); }, {"roc_auc", "positive score 0", "NaN"});
  expect_error<RuntimeFailure>([&] { (void)roc_auc({0.3, 0.5}, {0.1, nan}); }, {"roc_auc", "negative score 1", "NaN"});
  expect_error<RuntimeFailure>([&] { (void)mean_reciprocal_rank({0.5, nan}, {0.1, 0.2, 0.3, 0.4}, 2); },
                               {"mean_reciprocal_rank", "positive score 1", "NaN"});
  expect_error<RuntimeFailure>([&] { (void)mean_reciprocal_rank({0.5}, {0.1, nan}, 2); },
                               {"mean_reciprocal_rank", "negative score 1", "NaN"});
  // Too few negatives for q per positive was an out-of-bounds read.
  expect_error<RuntimeFailure>([&] { (void)mean_reciprocal_rank({0.5, 0.6}, {0.1, 0.2, 0.3}, 2); },
                               {"mean_reciprocal_rank", "4 negative scores", "found 3"});
  MetricAccumulator acc(2);
  expect_error<RuntimeFailure>([&] { acc.add_batch({0.9, nan}, {0.1, 0.2, 0.3, 0.4}); }, {"NaN"});
  expect_error<RuntimeFailure>([&] { acc.add_batch({0.9}, {0.1}); }, {"2 negative scores", "found 1"});
  // Infinite scores are ordered: no error, the usual values.
  REQUIRE(average_precision({inf, 0.5}, {-inf, 0.7}) == Approx(0.5 + 0.5 * 2.0 / 3.0));
  REQUIRE(roc_auc({inf}, {-inf}) == Approx(1.0));
  REQUIRE(mean_reciprocal_rank({inf}, {inf, 0.0}, 2) == Approx(1.0 / 1.5));
}

TEST_CASE("hardening: the metrics stop on a stop request", "[metrics][hardening]") {
  using mlsys::test::expect_error;
  using mlsys::core::RuntimeFailure;
  mlsys::core::request_stop();
  const std::vector<double> pos(100, 0.6), neg(100, 0.4);
  std::string ap, auc, mrr;
  for (auto [f, msg] : {std::pair<std::function<void()>, std::string*>{[&] { (void)average_precision(pos, neg); }, &ap},
                        {[&] { (void)roc_auc(pos, neg); }, &auc},
                        {[&] { (void)mean_reciprocal_rank(pos, neg, 1); }, &mrr}}) {
    try {
      f();
      *msg = "(no RuntimeFailure)";
    } catch (const RuntimeFailure& e) {
      *msg = e.what();
    }
  }
  mlsys::core::clear_stop_request();
  CHECK_THAT(ap, Catch::Contains("interrupted"));
  CHECK_THAT(auc, Catch::Contains("interrupted"));
  CHECK_THAT(mrr, Catch::Contains("interrupted"));
  REQUIRE(average_precision(pos, neg) == Approx(1.0));
}
