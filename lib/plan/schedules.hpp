// Pipeline schedules as per-device compute orders (DynaPipe, arXiv 2311.10418): 1F1B and
// interleaved 1F1B as in Megatron-LM, and DynaPipe's memory-aware cyclic schedule, whose
// order is then replayed wait-free by the event simulator ("wait-free-cyclic").
#pragma once

#include <string>
#include <vector>

#include "plan/simulator.hpp"

namespace mlsys::plan {

// Linear assignment (virtual stage i on device i): warm-up of (devices - d - 1) forwards,
// then one forward / one backward, then the remaining backwards.
Schedule one_f_one_b(const PipelineSpec& spec, int n_mb);

// Interleaved assignment (stage v on device v % devices, `chunks` = stages / devices):
// Megatron's warm-up 2(p - d - 1) + (chunks - 1) p and chunked micro-batch order.
// Requires n_mb to be a multiple of the device count (as Megatron does).
Schedule interleaved_one_f_one_b(const PipelineSpec& spec, int n_mb);

struct CyclicOptions {
  int max_in_flight = 0;  // the reference's max_otf_microbatches (0 = unbounded)
  bool check_memory = true;
};

// DynaPipe's cyclic schedule (schedule_opt/cyclic_schedule.py), in synchronous rounds. Each
// stage's forward and backward has a FIFO buffer of micro-batches whose predecessor ran in
// an earlier round. In a round every device takes the head op of each buffer it holds,
// sorts backwards and forwards each by (micro-batch, chain position), and runs them
// alternately starting with a backward. A forward of a micro-batch newer than any this
// device has run forward is skipped while current + its peak activation would exceed the
// device's memory limit, or while (newest forward id - newest backward id) >= max_in_flight.
// Transfers are fast-forwarded within the round, each device sending in the same
// alternating order (this is the schedule's comm_order). If nothing can run in a round the
// reference gives up; here the oldest skipped forward runs (the plan then breaks the
// memory limit and is rejected by the caller). The returned orders are replayed wait-free
// by the event simulator ("wait-free-cyclic").
Schedule cyclic(const PipelineSpec& spec, const std::vector<MicroBatchWork>& mbs, const CyclicOptions& opt = {});

// The shape of a stage -> device assignment, as the reference names it: `linear` (stage v
// on device v, one stage per device), `interleaved` (stage v on device v % devices, a
// multiple of the devices in stages) or `other` (zig-zag and any user-given layout).
enum class Layout { linear, interleaved, other };
Layout classify_layout(const PipelineSpec& spec);
std::string to_string(Layout l);

// The schedules a layout allows, as the reference's: wait-free-cyclic always, plus 1F1B
// (linear) or interleaved 1F1B (interleaved, when n_mb is a multiple of the devices).
std::vector<std::string> valid_schedules(const PipelineSpec& spec, int n_mb);

// The schedule of that name (one of valid_schedules); std::invalid_argument otherwise.
Schedule make_schedule(const std::string& name, const PipelineSpec& spec, const std::vector<MicroBatchWork>& mbs,
                       const CyclicOptions& opt = {});

}  // namespace mlsys::plan
