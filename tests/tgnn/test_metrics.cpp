// AP, AUC and MRR against values worked out by hand (and matching sklearn's
// average_precision_score / roc_auc_score), including ties; per-batch vs global.
#include <catch2/catch.hpp>

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
