// SVG and text renderings of a simulated pipeline iteration.
#include "plan/timeline.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace mlsys::plan {
namespace {

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

// A stable colour per micro-batch; backward passes are drawn darker.
std::string colour(int mb, bool backward) {
  const double hue = std::fmod(mb * 137.508, 360.0);
  char buf[48];
  std::snprintf(buf, sizeof buf, "hsl(%.0f,65%%,%d%%)", hue, backward ? 38 : 68);
  return buf;
}

}  // namespace

std::string timeline_svg(const PipelineSpec& spec, const SimResult& sim, const std::string& title) {
  const int D = spec.devices;
  const double left = 90, right = 20, top = 40, row = 26, comm_row = 10, gap = 8, mem_h = 60;
  const double width = 1200;
  const double plot_w = width - left - right;
  const double span = std::max(sim.makespan_ms, 1e-9);
  const double x_of = plot_w / span;
  const double lane = row + comm_row + gap;
  const double mem_top = top + D * lane + 30;
  const double height = mem_top + D * (mem_h + gap) + 40;
  std::string o;
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt(width) + "\" height=\"" + fmt(height) +
       "\" font-family=\"monospace\" font-size=\"11\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<text x=\"" + fmt(left) + "\" y=\"20\" font-size=\"14\">" + escape(title) + " | makespan " +
       fmt(sim.makespan_ms) + " ms</text>\n";
  for (int d = 0; d < D; ++d) {
    const double y = top + d * lane;
    o += "<text x=\"5\" y=\"" + fmt(y + row * 0.7) + "\">device " + std::to_string(d) + "</text>\n";
    o += "<rect x=\"" + fmt(left) + "\" y=\"" + fmt(y) + "\" width=\"" + fmt(plot_w) + "\" height=\"" + fmt(row) +
         "\" fill=\"#f4f4f4\"/>\n";
  }
  for (const auto& t : sim.timeline) {
    const double y = top + t.device * lane + (t.comm ? row : 0);
    const double h = t.comm ? comm_row - 2 : row;
    const double x = left + t.start * x_of, w = std::max(0.5, (t.end - t.start) * x_of);
    const std::string label = (t.op.backward ? "B" : "F") + std::to_string(t.op.mb) + "/s" + std::to_string(t.op.stage);
    o += "<rect x=\"" + fmt(x) + "\" y=\"" + fmt(y) + "\" width=\"" + fmt(w) + "\" height=\"" + fmt(h) + "\" fill=\"" +
         (t.comm ? std::string("#888") : colour(t.op.mb, t.op.backward)) + "\" stroke=\"white\" stroke-width=\"0.5\">";
    o += "<title>" + escape(label) + (t.comm ? " send to device " + std::to_string(t.peer) : "") + " " +
         fmt(t.start) + "-" + fmt(t.end) + " ms</title></rect>\n";
    if (!t.comm && w > 24) {
      o += "<text x=\"" + fmt(x + 2) + "\" y=\"" + fmt(y + row * 0.65) + "\" fill=\"" +
           (t.op.backward ? "white" : "black") + "\">" + (t.op.backward ? "B" : "F") + std::to_string(t.op.mb) +
           "</text>\n";
    }
  }
  // Memory per device.
  double mem_max = 1e-9;
  for (const auto& m : sim.memory) {
    for (const auto& p : m) mem_max = std::max(mem_max, p.second);
  }
  o += "<text x=\"" + fmt(left) + "\" y=\"" + fmt(mem_top - 8) + "\">memory (MB), peak per device; scale 0-" +
       fmt(mem_max) + " MB</text>\n";
  for (int d = 0; d < D && d < static_cast<int>(sim.memory.size()); ++d) {
    const double y0 = mem_top + d * (mem_h + gap);
    o += "<rect x=\"" + fmt(left) + "\" y=\"" + fmt(y0) + "\" width=\"" + fmt(plot_w) + "\" height=\"" + fmt(mem_h) +
         "\" fill=\"none\" stroke=\"#ccc\"/>\n";
    o += "<text x=\"5\" y=\"" + fmt(y0 + mem_h / 2) + "\">dev " + std::to_string(d) + " " +
         fmt(d < static_cast<int>(sim.peak_mb.size()) ? sim.peak_mb[static_cast<size_t>(d)] : 0) + "</text>\n";
    std::string pts;
    double last = 0;
    for (const auto& [t, mb] : sim.memory[static_cast<size_t>(d)]) {
      const double x = left + t * x_of;
      const double y = y0 + mem_h - mb / mem_max * mem_h;
      if (!pts.empty()) pts += fmt(x) + "," + fmt(last) + " ";
      pts += fmt(x) + "," + fmt(y) + " ";
      last = y;
    }
    pts += fmt(left + plot_w) + "," + fmt(last);
    o += "<polyline fill=\"none\" stroke=\"#c0392b\" stroke-width=\"1\" points=\"" + pts + "\"/>\n";
    if (d < static_cast<int>(spec.memory_limit_mb.size()) && spec.memory_limit_mb[static_cast<size_t>(d)] <= mem_max) {
      const double y = y0 + mem_h - spec.memory_limit_mb[static_cast<size_t>(d)] / mem_max * mem_h;
      o += "<line x1=\"" + fmt(left) + "\" x2=\"" + fmt(left + plot_w) + "\" y1=\"" + fmt(y) + "\" y2=\"" + fmt(y) +
           "\" stroke=\"black\" stroke-dasharray=\"4 3\"/>\n";
    }
  }
  // Time axis.
  const double axis_y = height - 20;
  for (int k = 0; k <= 10; ++k) {
    const double x = left + plot_w * k / 10.0;
    o += "<text x=\"" + fmt(x - 10) + "\" y=\"" + fmt(axis_y) + "\">" + fmt(span * k / 10.0) + "</text>\n";
  }
  o += "<text x=\"" + fmt(left + plot_w - 40) + "\" y=\"" + fmt(axis_y + 14) + "\">time (ms)</text>\n";
  o += "</svg>\n";
  return o;
}

std::string timeline_ascii(const PipelineSpec& spec, const SimResult& sim, int width) {
  const int D = spec.devices;
  width = std::max(width, 10);
  const double span = std::max(sim.makespan_ms, 1e-9);
  std::vector<std::string> rows(static_cast<size_t>(D), std::string(static_cast<size_t>(width), '.'));
  for (const auto& t : sim.timeline) {
    if (t.comm) continue;
    const int a = static_cast<int>(std::floor(t.start / span * width));
    int b = static_cast<int>(std::ceil(t.end / span * width));
    b = std::max(b, a + 1);
    const char c = static_cast<char>((t.op.backward ? 'a' : 'A') + t.op.mb % 26);
    for (int x = a; x < b && x < width; ++x) {
      // A cell shared by two ops shows the one covering its centre.
      const double mid = (x + 0.5) / width * span;
      if ((mid >= t.start && mid < t.end) || rows[static_cast<size_t>(t.device)][static_cast<size_t>(x)] == '.') {
        rows[static_cast<size_t>(t.device)][static_cast<size_t>(x)] = c;
      }
    }
  }
  std::string o;
  for (int d = 0; d < D; ++d) {
    char head[64];
    std::snprintf(head, sizeof head, "dev %-2d |", d);
    o += head + rows[static_cast<size_t>(d)] + "| peak " +
         fmt(d < static_cast<int>(sim.peak_mb.size()) ? sim.peak_mb[static_cast<size_t>(d)] : 0) + " MB\n";
  }
  o += "        0 ms" + std::string(static_cast<size_t>(std::max(1, width - 14)), ' ') + fmt(span) + " ms\n";
  o += "legend: A-Z forward of micro-batch 0-25 (mod 26), a-z its backward, . idle\n";
  return o;
}

}  // namespace mlsys::plan
