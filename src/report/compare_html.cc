#include "report/compare_html.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "batch/clock.h"
#include "report/html_parts.h"
#include "report/html_report.h"

namespace kbrun::report {

namespace {

using html::Num;
using html::Pct;
using html::Row;

const char* kCompareCss = R"css(
.warning{background:#fff4e0;border:1px solid #e0a030;padding:.4em .8em}
.ratio-point{fill:#2060c0}.ratio-whisker{stroke:#2060c0;stroke-width:2}
.ci-band{fill:#c03030;fill-opacity:.12}.change-fixed{color:#1d7a1d}.change-broken{color:#b02020}
tr.differs td{background:#fff4e0}
)css";

std::string X3(const std::optional<double>& v) { return v ? fmt::format("{:.3f}x", *v) : "-"; }

std::string IntervalCell(const std::optional<RatioInterval>& i) {
  return i ? fmt::format("{:.3f}x to {:.3f}x", i->low, i->high) : "-";
}

std::string Values(const std::vector<std::string>& values) {
  if (values.empty()) return "(not recorded)";
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "" : " + ") + v;
  return HtmlEscape(out);
}

// Each problem correct in both: B/A on a log10 axis, its timing interval as a whisker; the
// geomean as a red line and its bootstrap interval as a band.
std::string RatioPlot(const Comparison& c) {
  std::vector<const ProblemComparison*> rows;
  for (const auto& p : c.problems) {
    if (p.ratio) rows.push_back(&p);
  }
  if (rows.empty()) return "<p>No problem is correct in both runs.</p>";
  double lo = 1, hi = 1;
  auto widen = [&](double v) {
    if (v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
  };
  for (const auto* p : rows) {
    widen(*p->ratio);
    if (p->ratio_interval) widen(p->ratio_interval->low), widen(p->ratio_interval->high);
  }
  if (c.geomean_interval) widen(c.geomean_interval->low), widen(c.geomean_interval->high);
  html::Plot g;
  g.left = 180;
  double row = 18;
  g.height = g.top + g.bottom + row * static_cast<double>(rows.size());
  double d0 = std::floor(std::log10(lo)), d1 = std::ceil(std::log10(hi));
  if (d1 <= d0) d1 = d0 + 1;
  auto X = [&](double v) { return g.left + (std::log10(v) - d0) / (d1 - d0) * g.PlotW(); };
  std::string out =
      fmt::format(R"(<svg id="ratio-plot" class="plot" width="{0}" height="{1}" viewBox="0 0 {0} {1}" role="img" )"
                  R"(aria-label="B/A per problem">)",
                  g.width, g.height);
  double bottom = g.top + g.PlotH();
  for (double d = d0; d <= d1; ++d) {
    for (int m = 1; m <= (d < d1 ? 9 : 1); ++m) {
      double v = m * std::pow(10, d);
      out += fmt::format(R"(<line class="grid" x1="{0:.2f}" x2="{0:.2f}" y1="{1:.2f}" y2="{2:.2f}"/>)", X(v), g.top,
                         bottom);
      if (m == 1 || m == 2 || m == 5) {
        out += fmt::format(R"(<text x="{:.2f}" y="{:.2f}" text-anchor="middle">{}x</text>)", X(v), bottom + 15, Num(v));
      }
    }
  }
  if (c.geomean_ratio && c.geomean_interval) {
    out += fmt::format(R"(<rect class="ci-band" x="{:.2f}" y="{:.2f}" width="{:.2f}" height="{:.2f}" )"
                       R"(data-low="{}" data-high="{}"><title>95% interval {:.3f}x to {:.3f}x</title></rect>)",
                       X(c.geomean_interval->low), g.top,
                       std::max(X(c.geomean_interval->high) - X(c.geomean_interval->low), 1.0), g.PlotH(),
                       Num(c.geomean_interval->low), Num(c.geomean_interval->high), c.geomean_interval->low,
                       c.geomean_interval->high);
  }
  out +=
      fmt::format(R"(<line class="axis" x1="{0:.2f}" x2="{0:.2f}" y1="{1:.2f}" y2="{2:.2f}"/>)", X(1), g.top, bottom);
  out += fmt::format(R"(<text x="{:.2f}" y="{:.2f}" text-anchor="middle">B/A of the best speedups (log scale)</text>)",
                     g.left + g.PlotW() / 2, g.height - 8);
  double y = g.top + row / 2;
  for (const auto* p : rows) {
    out += fmt::format(R"(<text x="{:.2f}" y="{:.2f}" text-anchor="end">{}</text>)", g.left - 6, y + 4,
                       HtmlEscape(p->name));
    if (p->ratio_interval) {
      out += fmt::format(R"(<line class="ratio-whisker" x1="{0:.2f}" x2="{1:.2f}" y1="{2:.2f}" y2="{2:.2f}" )"
                         R"(data-problem="{3}" data-low="{4}" data-high="{5}"/>)",
                         X(p->ratio_interval->low), X(p->ratio_interval->high), y, HtmlEscape(p->name),
                         Num(p->ratio_interval->low), Num(p->ratio_interval->high));
    }
    out += fmt::format(R"(<circle class="ratio-point" cx="{:.2f}" cy="{:.2f}" r="4" data-problem="{}" )"
                       R"(data-ratio="{}"><title>{}: B/A {:.3f}x</title></circle>)",
                       X(*p->ratio), y, HtmlEscape(p->name), Num(*p->ratio), HtmlEscape(p->name), *p->ratio);
    y += row;
  }
  if (c.geomean_ratio) {
    out += fmt::format(R"(<line class="geomean" x1="{0:.2f}" x2="{0:.2f}" y1="{1:.2f}" y2="{2:.2f}" )"
                       R"(data-geomean="{3}"><title>geomean B/A {4:.3f}x</title></line>)",
                       X(*c.geomean_ratio), g.top, bottom, Num(*c.geomean_ratio), *c.geomean_ratio);
  }
  return out + "</svg>";
}

std::string SideCells(const std::optional<CompareSide>& s) {
  if (!s) return R"(<td>-</td><td class="num">-</td>)";
  return fmt::format(R"(<td class="status-{0}">{0}</td><td class="num">{1}</td>)", HtmlEscape(s->verdict),
                     X3(s->speedup));
}

std::string ProblemRow(const ProblemComparison& p) {
  std::string attrs = fmt::format(R"( data-problem="{}" data-change="{}")", HtmlEscape(p.name), HtmlEscape(p.change));
  if (p.a && p.a->speedup) attrs += fmt::format(R"( data-a-speedup="{}")", Num(*p.a->speedup));
  if (p.b && p.b->speedup) attrs += fmt::format(R"( data-b-speedup="{}")", Num(*p.b->speedup));
  if (p.ratio) attrs += fmt::format(R"( data-ratio="{}")", Num(*p.ratio));
  if (p.ratio_interval) {
    attrs += fmt::format(R"( data-ratio-low="{}" data-ratio-high="{}")", Num(p.ratio_interval->low),
                         Num(p.ratio_interval->high));
  }
  return fmt::format(
      R"(<tr{}><td>{}</td>{}{}<td class="num">{}</td><td class="num">{}</td><td class="change-{}">{}</td></tr>)", attrs,
      HtmlEscape(p.name), SideCells(p.a), SideCells(p.b), X3(p.ratio), IntervalCell(p.ratio_interval),
      HtmlEscape(p.change), HtmlEscape(ChangeText(p)));
}

const char* kProblemHeader =
    "<tr><th>Problem</th><th>A verdict</th><th>A best</th><th>B verdict</th><th>B best</th><th>B/A</th>"
    "<th>B/A 95% (timing)</th><th>Change</th></tr>";

}  // namespace

std::string CompareHtml(const Comparison& c) {
  std::string out = html::PageStart(fmt::format("kbrun compare: {} vs {}", c.a_dir, c.b_dir), kCompareCss);
  out += fmt::format("<h1>kbrun compare: A = {}, B = {}</h1>\n", HtmlEscape(c.a_dir), HtmlEscape(c.b_dir));
  if (!c.like_for_like()) {
    out +=
        "<p id=\"not-like-for-like\" class=\"warning\">Not like for like: the runs were judged or timed "
        "differently (the rows marked below); their speedups are not measured alike.</p>\n";
  }
  out += "<h2>Runs</h2><table id=\"settings\"><tr><th>Setting</th><th>A</th><th>B</th></tr>";
  out +=
      fmt::format("<tr><td>results folder</td><td>{}</td><td>{}</td></tr>", HtmlEscape(c.a_dir), HtmlEscape(c.b_dir));
  for (const auto& s : c.settings) {
    out += fmt::format(R"(<tr data-setting="{}"{}><td>{}</td><td>{}</td><td>{}</td></tr>)", HtmlEscape(s.key),
                       s.differs ? R"( class="differs" data-differs="true")" : "", HtmlEscape(s.label), Values(s.a),
                       Values(s.b));
  }
  out += fmt::format("</table><p class=\"caption\">kbrun {}, generated at {}.</p>\n", KBRUN_VERSION,
                     batch::IsoTime(batch::NowUnix()));

  int ratios = c.faster + c.slower + c.same;
  out += "<h2>Summary</h2><table id=\"summary\">";
  out += Row("Problems", fmt::format("{}: {} in both, {} only in A, {} only in B", c.problems.size(), c.in_both,
                                     c.only_a, c.only_b));
  out += Row("Correctness", fmt::format("{} correct in both, {} fixed (wrong in A, correct in B), {} broken (correct "
                                        "in A, wrong in B), {} wrong in both",
                                        c.correct_both, c.fixed, c.broken, c.wrong_both));
  out +=
      Row("Speed", fmt::format("of the {} correct in both: B faster {}, slower {}, same {} (same: B/A within {:.0f}%)",
                               c.correct_both, c.faster, c.slower, c.same, kSameSpeedBand * 100));
  std::string geomean = "- (no problem correct in both)";
  if (c.geomean_ratio) {
    std::string attrs = fmt::format(R"( data-ratio="{}" data-over="{}")", Num(*c.geomean_ratio), ratios);
    if (c.geomean_interval) {
      attrs +=
          fmt::format(R"( data-low="{}" data-high="{}")", Num(c.geomean_interval->low), Num(c.geomean_interval->high));
    }
    if (c.geomean_timing_interval) {
      attrs += fmt::format(R"( data-timing-low="{}" data-timing-high="{}")", Num(c.geomean_timing_interval->low),
                           Num(c.geomean_timing_interval->high));
    }
    geomean = fmt::format(R"(<span id="geomean-ratio"{}>{:.3f}x</span> over {} problem{} correct in both; )"
                          R"(95% interval {} (bootstrap over problems and timing, {} resamples, fixed seed); )"
                          R"(timing alone {})",
                          attrs, *c.geomean_ratio, ratios, ratios == 1 ? "" : "s", IntervalCell(c.geomean_interval),
                          kIntervalResamples, IntervalCell(c.geomean_timing_interval));
    if (c.ratios_without_spread) {
      geomean += fmt::format(" ({} without timing stats, counted without spread)", c.ratios_without_spread);
    }
  }
  out += Row("Geomean B/A", geomean);
  out +=
      Row("fast_1", fmt::format(R"(<span id="fast-1" data-a="{}" data-b="{}">A {} B {}</span> (correct and speedup )"
                                R"(&gt; 1, over the {} problems of either run))",
                                Num(c.fast_1_a), Num(c.fast_1_b), Pct(c.fast_1_a), Pct(c.fast_1_b), c.problems.size()));
  for (const auto& f : c.baseline_fast_1) {
    out += Row("fast_1 vs " + HtmlEscape(f.name),
               fmt::format(R"(<span data-baseline="{}" data-a="{}" data-b="{}">A {} B {}</span> (measured for A {}, )"
                           R"(B {} of the problems))",
                           HtmlEscape(f.name), Num(f.a), Num(f.b), Pct(f.a), Pct(f.b), f.measured_a, f.measured_b));
  }
  out += "</table>\n<h2>B/A per problem correct in both</h2>\n" + RatioPlot(c) +
         "\n<p class=\"caption\">Dots: B/A of the best speedups; whiskers: its 95% interval from the two runs' timing "
         "stats; red line: the geometric mean, the band its 95% bootstrap interval (docs/RESULTS.md).</p>\n";

  out += "<h2>Verdict changes</h2>";
  std::string changes;
  for (const auto& p : c.problems) {
    if (p.change == "fixed" || p.change == "broken") changes += ProblemRow(p);
  }
  out += changes.empty() ? "<p id=\"verdict-changes\">No problem was fixed or broken.</p>\n"
                         : "<table id=\"verdict-changes\">" + std::string(kProblemHeader) + changes + "</table>\n";
  out += "<h2>Problems</h2><table id=\"problems\">" + std::string(kProblemHeader);
  for (const auto& p : c.problems) out += ProblemRow(p);
  out += "</table>\n</body></html>\n";
  return out;
}

}  // namespace kbrun::report
