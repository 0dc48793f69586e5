// The timeline SVG (plot.h). Plain string building: two panels sharing the time axis.
#include "sim/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace corral::sim {
namespace {

constexpr int kWidth = 1000;
constexpr int kLeft = 70;
constexpr int kRight = 20;
constexpr int kPlotW = kWidth - kLeft - kRight;  // one bucket per pixel column
constexpr int kPanelH = 200;
constexpr int kTop1 = 50;
constexpr int kTop2 = kTop1 + kPanelH + 60;
constexpr int kHeight = kTop2 + kPanelH + 50;

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// 1, 2 or 5 times a power of ten, so that `span` gets about `ticks` steps.
double NiceStep(double span, int ticks) {
  if (span <= 0) return 1;
  const double raw = span / ticks;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= raw) return m * p;
  }
  return 10 * p;
}

std::string Text(double x, double y, const std::string& s, const char* anchor = "middle",
                 const char* extra = "") {
  return "<text x=\"" + Num(x) + "\" y=\"" + Num(y) + "\" text-anchor=\"" + anchor + "\"" + extra +
         ">" + Escape(s) + "</text>\n";
}

std::string Line(double x1, double y1, double x2, double y2, const char* style) {
  return "<line x1=\"" + Num(x1) + "\" y1=\"" + Num(y1) + "\" x2=\"" + Num(x2) + "\" y2=\"" +
         Num(y2) + "\" " + style + "/>\n";
}

// A filled step area over the columns: values[i] in panel units, 0..top.
std::string Area(const std::vector<double>& values, double top, int panel_y, const char* fill) {
  std::string d = "M" + Num(kLeft) + "," + Num(panel_y + kPanelH);
  for (size_t i = 0; i < values.size(); ++i) {
    const double y = panel_y + kPanelH - (top > 0 ? values[i] / top : 0) * kPanelH;
    d += " L" + Num(kLeft + static_cast<double>(i)) + "," + Num(y) + " L" +
         Num(kLeft + static_cast<double>(i) + 1) + "," + Num(y);
  }
  d += " L" + Num(kLeft + static_cast<double>(values.size())) + "," + Num(panel_y + kPanelH) + " Z";
  return "<path d=\"" + d + "\" fill=\"" + fill + "\" stroke=\"none\"/>\n";
}

std::string Frame(int panel_y, const std::string& label) {
  return "<rect x=\"" + Num(kLeft) + "\" y=\"" + Num(panel_y) + "\" width=\"" + Num(kPlotW) +
         "\" height=\"" + Num(kPanelH) + "\" fill=\"none\" stroke=\"#333\"/>\n" +
         Text(18, panel_y + kPanelH / 2.0, label, "middle",
              (" transform=\"rotate(-90 18 " + Num(panel_y + kPanelH / 2.0) + ")\"").c_str());
}

}  // namespace

std::string TimelineSvg(const std::vector<TimelinePoint>& timeline, int64_t procs,
                        const std::string& title) {
  std::vector<double> util(kPlotW, 0), queue(kPlotW, 0);
  double max_queue = 0;
  const int64_t t0 = timeline.empty() ? 0 : timeline.front().t_s;
  const int64_t t1 = timeline.empty() ? 1 : std::max(timeline.back().t_s, t0 + 1);
  const double dt = static_cast<double>(t1 - t0) / kPlotW;  // seconds per column
  // Each point holds until the next; its busy-seconds go to the columns it overlaps.
  for (size_t i = 0; i < timeline.size(); ++i) {
    const double s = static_cast<double>(timeline[i].t_s - t0);
    const double e = i + 1 < timeline.size() ? static_cast<double>(timeline[i + 1].t_s - t0) : s;
    const int first = std::clamp(static_cast<int>(s / dt), 0, kPlotW - 1);
    const int last = std::clamp(static_cast<int>(e / dt), 0, kPlotW - 1);
    const double q = static_cast<double>(timeline[i].queued);
    for (int c = first; c <= last; ++c) {
      const double overlap = std::min(e, (c + 1) * dt) - std::max(s, c * dt);
      if (overlap > 0)
        util[static_cast<size_t>(c)] += overlap * static_cast<double>(timeline[i].busy);
      queue[static_cast<size_t>(c)] = std::max(queue[static_cast<size_t>(c)], q);
    }
    max_queue = std::max(max_queue, q);
  }
  for (double& u : util) u = procs > 0 ? 100.0 * u / (dt * static_cast<double>(procs)) : 0;

  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Num(kWidth) +
                    "\" height=\"" + Num(kHeight) + "\" viewBox=\"0 0 " + Num(kWidth) + " " +
                    Num(kHeight) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += Text(kWidth / 2.0, 24, title, "middle", " font-size=\"15\"");

  // Panels.
  svg += Area(util, 100, kTop1, "#4a7ab8");
  svg += Frame(kTop1, "utilization (%)");
  const double qtop = std::max(1.0, max_queue);
  const double qstep = NiceStep(qtop, 4);
  const double qaxis = std::ceil(qtop / qstep) * qstep;
  svg += Area(queue, qaxis, kTop2, "#d08a3a");
  svg += Frame(kTop2, "queued jobs (max per column)");
  for (int p = 0; p <= 100; p += 25) {
    const double y = kTop1 + kPanelH - p / 100.0 * kPanelH;
    svg += Line(kLeft - 4, y, kLeft, y, "stroke=\"#333\"");
    svg += Text(kLeft - 6, y + 4, std::to_string(p), "end");
  }
  for (double v = 0; v <= qaxis + qstep / 2; v += qstep) {
    const double y = kTop2 + kPanelH - v / qaxis * kPanelH;
    svg += Line(kLeft - 4, y, kLeft, y, "stroke=\"#333\"");
    char label[32];
    std::snprintf(label, sizeof label, "%g", v);
    svg += Text(kLeft - 6, y + 4, label, "end");
  }

  // Time axis, in days for spans over two days, hours over two hours, else minutes.
  const double span = static_cast<double>(t1 - t0);
  const char* unit_name = span >= 2 * 86400.0 ? "days" : span >= 2 * 3600.0 ? "hours" : "minutes";
  const double unit = span >= 2 * 86400.0 ? 86400.0 : span >= 2 * 3600.0 ? 3600.0 : 60.0;
  const double step = NiceStep(span / unit, 8);
  for (double v = 0; v * unit <= span + 1e-9; v += step) {
    const double x = kLeft + v * unit / span * kPlotW;
    for (int panel_y : {kTop1, kTop2}) {
      svg += Line(x, panel_y + kPanelH, x, panel_y + kPanelH + 4, "stroke=\"#333\"");
      svg += Line(x, panel_y, x, panel_y + kPanelH, "stroke=\"#ccc\" stroke-dasharray=\"2,3\"");
    }
    char label[32];
    std::snprintf(label, sizeof label, "%g", v);
    svg += Text(x, kTop1 + kPanelH + 16, label);
    svg += Text(x, kTop2 + kPanelH + 16, label);
  }
  const std::string axis = std::string("time since the first event (") + unit_name + ")";
  svg += Text(kLeft + kPlotW / 2.0, kTop2 + kPanelH + 36, axis);
  svg += "</svg>\n";
  return svg;
}

}  // namespace corral::sim
