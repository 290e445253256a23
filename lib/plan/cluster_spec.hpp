// The pipeline cluster: stages and data-parallel replicas, per-device memory and compute
// throughput, the point-to-point link between neighbouring stages, ZeRO stage.
#pragma once

#include <cstdint>

namespace mlsys::plan {

struct ClusterSpec {
  int stages = 4;
  int data_parallel = 1;
  double device_memory_mb = 80000.0;  // "80 GB" devices, as configs/dynapipe-plan/default.json
  double peak_tflops = 312.0;       // dense 16-bit peak of one device
  double efficiency = 0.55;         // fraction of peak reached by large GEMMs
  double half_saturation_tokens = 512.0;  // tokens at which a layer reaches half that efficiency
  double kernel_overhead_us = 30.0;  // fixed launch cost per layer and pass
  double link_gbps = 100.0;         // p2p bandwidth between neighbouring stages
  double link_latency_us = 5.0;
  int zero_stage = 0;               // 0..3: what the optimizer state sharding divides by dp

  // Milliseconds to move `mb` megabytes over the link: latency + MB * 8 / Gb/s.
  [[nodiscard]] double p2p_ms(double mb) const {
    return mb <= 0 ? 0.0 : link_latency_us * 1e-3 + mb * 8.0 / link_gbps;
  }
};

}  // namespace mlsys::plan
