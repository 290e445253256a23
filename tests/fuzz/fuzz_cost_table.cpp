// Fuzz target: dynapipe-plan simulate's cost-table JSON (plan::read_cost_table), then what
// simulate does with a table it accepted: merge consecutive layers into stages, build the
// named schedule, run the event simulator.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "plan/cost_table.hpp"
#include "plan/simulator.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mlsys;
  const std::string_view bytes = fuzz::begin(data, size);
  const auto path = fuzz::write_input("costs.json", bytes);
  fuzz::expect_typed("read_cost_table", [&] {
    const plan::CostTable t = plan::read_cost_table(path);
    const plan::StagedPipeline p = plan::merge_layers(t);
    const plan::Schedule s = plan::table_schedule(t, p, path.string());
    const plan::SimResult r = plan::simulate(p.spec, p.work, s);
    if (r.ok && !(r.makespan_ms >= 0)) fuzz::finding("simulate", "a negative or NaN makespan", "");
  });
  return 0;
}
