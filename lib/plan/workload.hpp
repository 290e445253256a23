// The samples and global batches a dynapipe-plan subcommand works on (data.path or the
// generator, clipped to data.max_seqlen, split into global batches), and the planner
// called on one of them with errors that name the sample's file and line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plan/dynapipe_config.hpp"

namespace mlsys::plan {

struct Workload {
  std::vector<SampleLength> samples;
  std::vector<size_t> lines;  // file line of each sample (empty when generated)
  std::vector<std::vector<int64_t>> batches;
  std::string source;
};

Workload load_workload(const DynapipeConfig& c);

// plan_batch on batch `b`, a sample that fits nowhere (or past a measured profile's
// longest sequence) reported as core::InputError naming its file:line or generated index.
BatchPlan plan_one(const CostModel& cost, const Workload& w, const DynapipeConfig& c, size_t b, const PlannerOptions& po,
                   bool record_timeline = false);

}  // namespace mlsys::plan
