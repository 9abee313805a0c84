// The batch's HTML page (report/html_report.h). Over 400 lines for a reason: one self-contained
// page, its sections (fast_p, distribution, timeline, drill-down, rules) in the order they
// appear; the parts shared with compare's page are in report/html_parts.cc.
#include "report/html_report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "batch/clock.h"
#include "batch/results_store.h"
#include "report/html_parts.h"
#include "util/line_diff.h"
#include "util/text.h"

namespace kbrun::report {

using nlohmann::json;

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
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
      case '\'':
        out += "&#39;";
        break;
      case '\0':
        out += "&#xFFFD;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string ProblemAnchor(const std::string& name) {
  std::string out = "problem-";
  for (unsigned char c : name) {
    if (std::isalnum(c) || c == '_' || c == '.') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("-{:02X}", c);
    }
  }
  return out;
}

std::string SampleAnchor(const std::string& problem, int index) {
  return "sample-" + ProblemAnchor(problem).substr(8) + "-" + std::to_string(index);
}

std::vector<TimelineSpan> ReadTimeline(const std::filesystem::path& path) {
  std::vector<TimelineSpan> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    json e = json::parse(line, nullptr, false);
    if (!e.is_object() || !e.value("start", json()).is_number() || !e.value("end", json()).is_number() ||
        !e.value("stage", json()).is_string()) {
      continue;
    }
    TimelineSpan s;
    s.stage = e["stage"].get<std::string>();
    s.start = e["start"].get<double>();
    s.end = e["end"].get<double>();
    if (s.start <= 0 || s.end < s.start) continue;
    if (e.value("problem", json()).is_string()) s.problem = e["problem"].get<std::string>();
    if (e.value("index", json()).is_number_integer()) s.index = e["index"].get<int>();
    if (e.value("lane", json()).is_number_integer()) s.lane = e["lane"].get<int>();
    out.push_back(std::move(s));
  }
  return out;
}

namespace {

using html::Num;
using html::Pct;
using html::Plot;
using html::Row;

std::string KindsText(const std::map<std::string, int>& kinds) {
  if (kinds.empty()) return "-";
  std::string out;
  for (const auto& [kind, n] : kinds) out += fmt::format("{}{} x{}", out.empty() ? "" : ", ", kind, n);
  return out;
}

const json& Field(const json& doc, std::initializer_list<const char*> path) {
  static const json null_json;
  const json* at = &doc;
  for (const char* key : path) {
    if (!at->is_object() || !at->contains(key)) return null_json;
    at = &(*at)[key];
  }
  return *at;
}

std::string FieldText(const json& doc, std::initializer_list<const char*> path) {
  const json& v = Field(doc, path);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return Num(v.get<double>());
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return "";
}

std::optional<double> FieldNumber(const json& doc, std::initializer_list<const char*> path) {
  const json& v = Field(doc, path);
  if (v.is_number()) return v.get<double>();
  return std::nullopt;
}

// The fast_p curve: fast(p) = problems correct with speedup > p / problems, a step function
// that drops at each problem's best speedup; points at p = 0, each distinct best speedup
// and KernelBench's thresholds, on a linear x axis from 0 to max(largest speedup, 2).
std::string FastPPlot(const Report& r) {
  std::vector<std::optional<double>> picked = BestPicked(r);
  // Each other baseline's curve: the best kernels' speedups over it.
  std::vector<std::pair<std::string, std::vector<std::optional<double>>>> others;
  for (size_t i = 1; i < r.baselines.size(); ++i) {
    std::vector<std::optional<double>> v;
    for (const auto& p : r.problems) v.push_back(p.BaselineSpeedup(r.baselines[i].name));
    others.push_back({r.baselines[i].name, std::move(v)});
  }
  std::set<double> ps(kFastPThresholds.begin(), kFastPThresholds.end());
  double xmax = kFastPThresholds.back();
  for (const auto& s : picked) {
    if (s) {
      ps.insert(*s);
      xmax = std::max(xmax, *s);
    }
  }
  for (const auto& [name, v] : others) {
    for (const auto& s : v) {
      if (s) xmax = std::max(xmax, *s);
    }
  }
  Plot g;
  auto X = [&](double p) { return g.left + p / xmax * g.PlotW(); };
  auto Y = [&](double f) { return g.top + (1 - f) * g.PlotH(); };
  std::string out =
      fmt::format(R"(<svg id="fast-p-plot" class="plot" width="{}" height="{}" viewBox="0 0 {} {}" role="img" )"
                  R"(aria-label="fast_p curve">)",
                  g.width, g.height, g.width, g.height);
  for (int i = 0; i <= 4; ++i) {
    double f = i / 4.0;
    out += fmt::format(R"(<line class="grid" x1="{:.2f}" x2="{:.2f}" y1="{:.2f}" y2="{:.2f}"/>)", g.left,
                       g.left + g.PlotW(), Y(f), Y(f));
    out +=
        fmt::format(R"(<text x="{:.2f}" y="{:.2f}" text-anchor="end">{:.0f}%</text>)", g.left - 6, Y(f) + 4, f * 100);
  }
  double step = xmax <= 4 ? 0.5 : xmax <= 10 ? 1 : std::pow(10, std::floor(std::log10(xmax)));
  for (double p = 0; p <= xmax + 1e-9; p += step) {
    out += fmt::format(R"(<text x="{:.2f}" y="{:.2f}" text-anchor="middle">{}</text>)", X(p), g.top + g.PlotH() + 15,
                       Num(p));
  }
  out += fmt::format(R"(<line class="axis" x1="{0:.2f}" x2="{0:.2f}" y1="{1:.2f}" y2="{2:.2f}"/>)", g.left, g.top,
                     g.top + g.PlotH());
  out += fmt::format(R"(<line class="axis" x1="{0:.2f}" x2="{1:.2f}" y1="{2:.2f}" y2="{2:.2f}"/>)", g.left,
                     g.left + g.PlotW(), g.top + g.PlotH());
  out += fmt::format(R"(<text x="{:.2f}" y="{:.2f}" text-anchor="middle">p (speedup threshold, linear)</text>)",
                     g.left + g.PlotW() / 2, g.height - 8);
  // One step curve over `values`, points where it is evaluated.
  auto curve = [&](const std::vector<std::optional<double>>& values, const std::set<double>& at,
                   const std::string& path_class, const std::string& point_class, const std::string& extra_attr,
                   const std::string& label) {
    std::string path, points;
    for (double p : at) {
      double f = FractionFaster(values, p);
      path += path.empty() ? fmt::format("M{:.2f} {:.2f}", X(p), Y(f)) : fmt::format(" H{:.2f} V{:.2f}", X(p), Y(f));
      points += fmt::format(R"(<circle class="{}" cx="{:.2f}" cy="{:.2f}" r="3"{} data-p="{}" data-fast="{}">)"
                            R"(<title>{}fast_{} = {}</title></circle>)",
                            point_class, X(p), Y(f), extra_attr, Num(p), Num(f), label, Num(p), Pct(f));
    }
    path += fmt::format(" H{:.2f}", X(xmax));
    return fmt::format(R"(<path class="{}" d="{}"/>)", path_class, path) + points;
  };
  double legend_y = g.top + 12;
  for (const auto& [name, values] : others) {
    std::set<double> at(kFastPThresholds.begin(), kFastPThresholds.end());
    for (const auto& v : values) {
      if (v) at.insert(*v);
    }
    std::string cls = "baseline-" + HtmlEscape(name);
    out += curve(values, at, "curve-baseline " + cls, "point-baseline " + cls,
                 " data-baseline=\"" + HtmlEscape(name) + "\"", "vs " + HtmlEscape(name) + ": ");
    out += fmt::format(R"(<line class="curve-baseline {0}" x1="{1:.2f}" x2="{2:.2f}" y1="{3:.2f}" y2="{3:.2f}"/>)"
                       R"(<text x="{4:.2f}" y="{5:.2f}">vs {6}</text>)",
                       cls, g.left + g.PlotW() - 150, g.left + g.PlotW() - 120, legend_y, g.left + g.PlotW() - 114,
                       legend_y + 4, HtmlEscape(name));
    legend_y += 16;
  }
  if (!others.empty()) {
    out += fmt::format(R"(<line class="curve" x1="{0:.2f}" x2="{1:.2f}" y1="{2:.2f}" y2="{2:.2f}"/>)"
                       R"(<text x="{3:.2f}" y="{4:.2f}">vs eager</text>)",
                       g.left + g.PlotW() - 150, g.left + g.PlotW() - 120, legend_y, g.left + g.PlotW() - 114,
                       legend_y + 4);
  }
  out += curve(picked, ps, "curve", "point", "", "");
  return out + "</svg>";
}

struct CorrectSample {
  std::string problem;
  int index = 0;
  double speedup = 0;
};

// Speedups of every correct sample on a log10 axis, one dot each (jittered rows), with the
// geometric mean of the problems' best kernels as a red line.
std::string SpeedupPlot(const Report& r, const std::vector<CorrectSample>& samples) {
  Plot g;
  g.height = 200;
  double lo = 1, hi = 1;
  for (const auto& s : samples) {
    if (s.speedup > 0) {
      lo = std::min(lo, s.speedup);
      hi = std::max(hi, s.speedup);
    }
  }
  if (r.geomean_speedup) lo = std::min(lo, *r.geomean_speedup), hi = std::max(hi, *r.geomean_speedup);
  double d0 = std::floor(std::log10(lo)), d1 = std::ceil(std::log10(hi));
  if (d1 <= d0) d1 = d0 + 1;
  auto X = [&](double v) { return g.left + (std::log10(v) - d0) / (d1 - d0) * g.PlotW(); };
  std::string out =
      fmt::format(R"(<svg id="speedup-plot" class="plot" width="{}" height="{}" viewBox="0 0 {} {}" role="img" )"
                  R"(aria-label="speedups of correct samples">)",
                  g.width, g.height, g.width, g.height);
  for (double d = d0; d <= d1; ++d) {
    for (int m = 1; m <= (d < d1 ? 9 : 1); ++m) {
      double v = m * std::pow(10, d);
      out += fmt::format(R"(<line class="grid" x1="{0:.2f}" x2="{0:.2f}" y1="{1:.2f}" y2="{2:.2f}"/>)", X(v), g.top,
                         g.top + g.PlotH());
      if (m == 1 || m == 2 || m == 5) {
        out += fmt::format(R"(<text x="{:.2f}" y="{:.2f}" text-anchor="middle">{}x</text>)", X(v),
                           g.top + g.PlotH() + 15, Num(v));
      }
    }
  }
  out += fmt::format(R"(<line class="axis" x1="{0:.2f}" x2="{0:.2f}" y1="{1:.2f}" y2="{2:.2f}"/>)", X(1), g.top,
                     g.top + g.PlotH());
  out += fmt::format(R"(<text x="{:.2f}" y="{:.2f}" text-anchor="middle">speedup (log scale)</text>)",
                     g.left + g.PlotW() / 2, g.height - 8);
  int n = 0;
  for (const auto& s : samples) {
    if (s.speedup <= 0) continue;
    double y = g.top + 8 + (n++ * 37 % 97) / 97.0 * (g.PlotH() - 16);
    out += fmt::format(R"(<circle class="sample-point" cx="{:.2f}" cy="{:.2f}" r="4" data-problem="{}" )"
                       R"(data-index="{}" data-speedup="{}"><title>{} #{}: {:.3f}x</title></circle>)",
                       X(s.speedup), y, HtmlEscape(s.problem), s.index, Num(s.speedup), HtmlEscape(s.problem), s.index,
                       s.speedup);
  }
  if (r.geomean_speedup) {
    out += fmt::format(R"(<line class="geomean" x1="{0:.2f}" x2="{0:.2f}" y1="{1:.2f}" y2="{2:.2f}" )"
                       R"(data-geomean="{3}"><title>geomean of the best kernels {4:.3f}x</title></line>)",
                       X(*r.geomean_speedup), g.top, g.top + g.PlotH(), Num(*r.geomean_speedup), *r.geomean_speedup);
  }
  return out + "</svg>";
}

// Horizontal bars, one per key; `attr` names the data-* attribute that holds the key.
std::string BarChart(const std::string& id, const std::string& attr, const std::map<std::string, int>& counts,
                     int total) {
  double row = 22, left = 220, width = 760, bar_w = width - left - 80;
  double height = row * counts.size() + 10;
  int most = 1;
  for (const auto& [k, n] : counts) most = std::max(most, n);
  std::string out = fmt::format(R"(<svg id="{}" class="plot" width="{}" height="{}" viewBox="0 0 {} {}">)", id, width,
                                height, width, height);
  double y = 5;
  for (const auto& [key, n] : counts) {
    double w = bar_w * n / most;
    out += fmt::format(R"(<text x="{:.2f}" y="{:.2f}" text-anchor="end">{}</text>)", left - 6, y + 14, HtmlEscape(key));
    out += fmt::format(R"(<rect class="bar{}" x="{:.2f}" y="{:.2f}" width="{:.2f}" height="{:.2f}" )"
                       R"(data-{}="{}" data-count="{}"><title>{}: {}</title></rect>)",
                       key == "correct" ? " correct" : "", left, y + 2, std::max(w, 1.0), row - 6, attr,
                       HtmlEscape(key), n, HtmlEscape(key), n);
    out += fmt::format(R"(<text x="{:.2f}" y="{:.2f}">{}{}</text>)", left + w + 6, y + 14, n,
                       total > 0 ? " (" + Pct(double(n) / total) + ")" : "");
    y += row;
  }
  return out + "</svg>";
}

// The timeline as rows over time: the LLM calls and the compiles packed into as many rows as
// overlap, then one row per GPU lane.
std::string TimelinePlot(const std::vector<TimelineSpan>& spans) {
  double t0 = spans.front().start, t1 = spans.front().end;
  for (const auto& s : spans) t0 = std::min(t0, s.start), t1 = std::max(t1, s.end);
  if (t1 <= t0) t1 = t0 + 1;
  struct Placed {
    const TimelineSpan* span;
    int row;
  };
  std::vector<Placed> placed;
  std::vector<std::string> labels;
  std::vector<double> heights;
  auto pack = [&](const std::string& stage, const std::string& label) {
    std::vector<const TimelineSpan*> mine;
    for (const auto& s : spans) {
      if (s.stage == stage) mine.push_back(&s);
    }
    if (mine.empty()) return;
    std::sort(mine.begin(), mine.end(), [](auto* a, auto* b) { return a->start < b->start; });
    std::vector<double> ends;
    int first = static_cast<int>(labels.size());
    for (const auto* s : mine) {
      size_t k = 0;
      while (k < ends.size() && ends[k] > s->start) ++k;
      if (k == ends.size()) ends.push_back(0);
      ends[k] = s->end;
      placed.push_back({s, first + static_cast<int>(k)});
    }
    for (size_t k = 0; k < ends.size(); ++k) {
      labels.push_back(k == 0 ? label : "");
      heights.push_back(ends.size() > 8 ? 4 : 10);
    }
  };
  pack("llm", "LLM");
  pack("compile", "compile pool");
  pack("remote", "remote evaluator");  // batch --evaluator: submit to done, at the service
  std::set<int> lanes;
  for (const auto& s : spans) {
    if (s.stage == "gpu") lanes.insert(s.lane);
  }
  for (int lane : lanes) {
    int row = static_cast<int>(labels.size());
    labels.push_back(fmt::format("GPU lane {}", lane));
    heights.push_back(16);
    for (const auto& s : spans) {
      if (s.stage == "gpu" && s.lane == lane) placed.push_back({&s, row});
    }
  }
  std::vector<double> row_y;
  double y = 10;
  for (size_t i = 0; i < heights.size(); ++i) {
    if (i > 0 && !labels[i].empty()) y += 8;  // a gap between groups
    row_y.push_back(y);
    y += heights[i] + 2;
  }
  double left = 110, width = 1000, plot_w = width - left - 20, height = y + 35;
  auto X = [&](double t) { return left + (t - t0) / (t1 - t0) * plot_w; };
  std::string out = fmt::format(
      R"(<svg id="timeline-plot" class="plot" width="{}" height="{:.0f}" viewBox="0 0 {} {:.0f}" role="img" )"
      R"(aria-label="batch timeline">)",
      width, height, width, height);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!labels[i].empty()) {
      out +=
          fmt::format(R"(<text x="{:.2f}" y="{:.2f}" text-anchor="end">{}</text>)", left - 6, row_y[i] + 10, labels[i]);
    }
  }
  for (int i = 0; i <= 5; ++i) {
    double t = t0 + (t1 - t0) * i / 5;
    out += fmt::format(R"(<line class="grid" x1="{0:.2f}" x2="{0:.2f}" y1="5" y2="{1:.2f}"/>)", X(t), y);
    out += fmt::format(R"(<text x="{:.2f}" y="{:.2f}" text-anchor="middle">{}</text>)", X(t), y + 14,
                       FormatDuration(t - t0));
  }
  out += fmt::format(R"(<text x="{:.2f}" y="{:.2f}" text-anchor="middle">time since the first stage began</text>)",
                     left + plot_w / 2, y + 30);
  for (const auto& p : placed) {
    const TimelineSpan& s = *p.span;
    out += fmt::format(
        R"(<rect class="span span-{}" x="{:.2f}" y="{:.2f}" width="{:.2f}" height="{:.2f}" data-stage="{}" )"
        R"(data-problem="{}" data-index="{}" data-lane="{}" data-start="{}" data-end="{}">)"
        R"(<title>{} #{} {} {:.1f} s</title></rect>)",
        HtmlEscape(s.stage), X(s.start), row_y[p.row], std::max(X(s.end) - X(s.start), 0.5), heights[p.row],
        HtmlEscape(s.stage), HtmlEscape(s.problem), s.index, s.lane, Num(s.start), Num(s.end), HtmlEscape(s.problem),
        s.index, HtmlEscape(s.stage), s.end - s.start);
  }
  return out + "</svg>";
}

// A file's text for a <pre>, escaped; past `limit` bytes cut, saying where the whole is.
std::string PreText(const std::string& text, const std::string& file, size_t limit = 256 * 1024) {
  if (text.size() <= limit) return HtmlEscape(text);
  return HtmlEscape(text.substr(0, limit)) +
         fmt::format("\n[... {} more bytes; the whole text is in {}]", text.size() - limit, HtmlEscape(file));
}

std::string Collapsed(const std::string& summary, const std::string& body_html, bool open = false) {
  return fmt::format("<details{}><summary>{}</summary>{}</details>", open ? " open" : "", summary, body_html);
}

std::string DiffHtml(const std::string& before, const std::string& after) {
  std::string out = R"(<pre class="diff">)";
  for (const auto& line : LineDiff(before, after)) {
    const char* cls = line.kind == DiffLine::Kind::kAdded ? "add" : line.kind == DiffLine::Kind::kRemoved ? "del" : "";
    const char* mark = line.kind == DiffLine::Kind::kAdded ? "+ " : line.kind == DiffLine::Kind::kRemoved ? "- " : "  ";
    if (*cls) {
      out += fmt::format(R"(<span class="{}">{}{}</span>)", cls, mark, HtmlEscape(line.text));
    } else {
      out += mark + HtmlEscape(line.text) + "\n";
    }
  }
  return out + "</pre>";
}

std::string TimingCell(const json& eval, const char* who) {
  auto median = FieldNumber(eval, {"timing", who, "median_ms"});
  if (!median) return "-";
  std::string out = fmt::format("{:.4g} ms median", *median);
  if (auto mean = FieldNumber(eval, {"timing", who, "mean_ms"})) out += fmt::format(", {:.4g} ms mean", *mean);
  if (auto trials = FieldNumber(eval, {"timing", who, "trials"})) out += fmt::format(", {} trials", Num(*trials));
  return out;
}

// One sample's figures against a baseline (eval.baselines.<name>): its median, the candidate's
// speedup over it, its setup time; or why it was not measured.
std::string BaselineCell(const std::string& name, const json& b) {
  std::string status = b.value("status", "");
  if (status != "measured") {
    return fmt::format(R"(<span class="baseline-status" data-baseline="{}" data-status="{}">{}</span>: {})",
                       HtmlEscape(name), HtmlEscape(status), HtmlEscape(status),
                       HtmlEscape(b.value("reason", std::string("no reason given"))));
  }
  std::string out;
  if (auto ms = FieldNumber(b, {"median_ms"})) out += fmt::format("{:.4g} ms median", *ms);
  if (auto sp = FieldNumber(b, {"speedup"})) {
    out +=
        fmt::format(R"(; candidate <span class="baseline-speedup" data-baseline="{}" data-speedup="{}">{:.3f}x</span>)",
                    HtmlEscape(name), Num(*sp), *sp);
  }
  if (auto over = FieldNumber(b, {"speedup_over_eager"})) out += fmt::format("; {:.3f}x over eager", *over);
  for (const char* k : {"compile_s", "capture_s"}) {
    if (auto v = FieldNumber(b, {k})) out += fmt::format("; {} {:.2f} s (not timed)", k, *v);
  }
  if (auto breaks = FieldNumber(b, {"graph_breaks"}); breaks && *breaks > 0) {
    out += fmt::format("; {} graph break{}", Num(*breaks), *breaks == 1 ? "" : "s");
  }
  return out;
}

std::string SampleHtml(const batch::ResultsStore& store, const ProblemReport& p, const batch::SampleRecord& rec,
                       const std::map<int, batch::SampleRecord>& records) {
  const json& doc = rec.doc;
  const json& eval = Field(doc, {"eval"});
  bool best = p.best_index && *p.best_index == rec.id.index;
  std::string out = fmt::format(
      R"(<div class="sample{}" id="{}" data-index="{}" data-attempt="{}" data-sample="{}" data-status="{}"{}>)",
      best ? " best" : "", SampleAnchor(p.name, rec.id.index), rec.id.index, rec.id.attempt, rec.id.sample,
      HtmlEscape(rec.status), rec.correct ? fmt::format(R"( data-speedup="{}")", Num(rec.speedup)) : "");
  out += fmt::format(R"(<h4>#{} (attempt {}, sample {}): <span class="status-{}">{}</span>{}{}</h4>)", rec.id.index,
                     rec.id.attempt, rec.id.sample, HtmlEscape(rec.status), HtmlEscape(rec.status),
                     rec.correct ? fmt::format(", {:.3f}x", rec.speedup) : "", best ? " &#9733; best sample" : "");
  std::string table;
  if (!rec.failure_kind.empty()) table += Row("Failure kind", HtmlEscape(rec.failure_kind));
  if (!rec.error_category.empty()) table += Row("Error category", HtmlEscape(rec.error_category));
  if (!rec.error_message.empty()) {
    table += Row("Error message", R"(<pre class="message">)" + HtmlEscape(rec.error_message) + "</pre>");
  }
  if (!Field(eval, {"timing"}).is_null()) {
    table += Row("Reference", TimingCell(eval, "reference"));
    table += Row("Candidate", TimingCell(eval, "candidate"));
    std::string method = FieldText(eval, {"timing", "method"});
    if (!method.empty()) table += Row("Timed by", HtmlEscape(method));
  }
  if (rec.correct) table += Row("Speedup", fmt::format("{:.3f}x (reference median / candidate median)", rec.speedup));
  static const json kNone = json::object();
  const json& baselines = Field(eval, {"baselines"}).is_object() ? Field(eval, {"baselines"}) : kNone;
  for (const auto& [name, b] : baselines.items()) {
    if (name == "eager" || !b.is_object()) continue;
    table += Row("vs " + HtmlEscape(name), BaselineCell(name, b));
  }
  std::string rule = FieldText(eval, {"tolerance", "rule"});
  if (!rule.empty()) table += Row("Judged by", HtmlEscape(rule));
  if (auto run = FieldNumber(eval, {"correctness", "trials_run"})) {
    table += Row("Correctness trials",
                 fmt::format("{} of {} passed", Num(FieldNumber(eval, {"correctness", "trials_passed"}).value_or(0)),
                             Num(*run)));
  }
  std::string device = FieldText(eval, {"device", "name"});
  if (!device.empty()) table += Row("Device", HtmlEscape(device));
  std::string fallback = FieldText(eval, {"fallback", "fallback_reason"});
  if (!fallback.empty()) table += Row("Own code unused", HtmlEscape(fallback));
  if (auto roof = FieldNumber(eval, {"roofline", "fraction_of_roofline"})) {
    table += Row("Roofline", fmt::format(R"(<span class="roofline" data-roofline="{}">{}</span> of the roofline time)",
                                         Num(*roof), Pct(*roof)));
  }
  std::string llm_model = FieldText(doc, {"llm", "model"});
  if (!llm_model.empty()) {
    table +=
        Row("LLM", fmt::format("{}, {} prompt + {} completion tokens", HtmlEscape(llm_model),
                               FieldText(doc, {"llm", "prompt_tokens"}), FieldText(doc, {"llm", "completion_tokens"})));
  }
  if (!table.empty()) out += "<table>" + table + "</table>";
  std::string profile = FieldText(eval, {"profile", "summary"});
  if (!profile.empty()) out += Collapsed("Profile digest", "<pre>" + HtmlEscape(profile) + "</pre>", true);
  std::string tail = FieldText(eval, {"output_tail"});
  if (!tail.empty()) out += Collapsed("Worker output (tail)", "<pre>" + HtmlEscape(tail) + "</pre>");
  std::optional<std::string> code = store.ReadCode(p.name, rec.id.index);
  std::string n = std::to_string(rec.id.index);
  if (code) out += Collapsed("Code", R"(<pre class="code">)" + PreText(*code, "code_" + n + ".py") + "</pre>", best);
  // The diff from the same sample of the previous attempt.
  if (code && rec.id.attempt > 1) {
    for (const auto& [index, prev] : records) {
      if (prev.id.attempt != rec.id.attempt - 1 || prev.id.sample != rec.id.sample) continue;
      std::optional<std::string> before = store.ReadCode(p.name, index);
      if (!before) break;
      out += Collapsed(fmt::format(R"(Diff from <a href="#{}">#{}</a> (attempt {}, sample {}))",
                                   SampleAnchor(p.name, index), index, prev.id.attempt, prev.id.sample),
                       DiffHtml(*before, *code));
      break;
    }
  }
  if (auto prompt = store.ReadPrompt(p.name, rec.id.index)) {
    out += Collapsed("Prompt", R"(<pre class="prompt">)" + PreText(*prompt, "prompt_" + n + ".txt") + "</pre>");
  }
  return out + "</div>";
}

}  // namespace

std::string HtmlReport(const Report& r) {
  batch::ResultsStore store(r.results_dir);
  std::map<std::string, std::map<int, batch::SampleRecord>> records;
  std::vector<CorrectSample> correct_samples;
  for (const auto& p : r.problems) {
    records[p.name] = store.LoadRecords(p.name);
    for (const auto& [index, rec] : records[p.name]) {
      if (rec.correct) correct_samples.push_back({p.name, index, rec.speedup});
    }
  }

  std::string title = fmt::format("kbrun report: {}", r.results_dir);
  std::string out = html::PageStart(title);
  out += fmt::format("<h1>kbrun batch report: {}{}</h1>\n", HtmlEscape(r.results_dir),
                     r.batch_state.empty() ? "" : " (batch " + HtmlEscape(r.batch_state) + ")");

  // What produced the numbers.
  std::string rules;
  auto rule = [&](const std::string& label, const std::string& value, const std::string& note = "") {
    if (value.empty()) return;
    rules += fmt::format("<dt>{}</dt><dd>{}{}</dd>", label, HtmlEscape(value),
                         note.empty() ? "" : " <span class=\"caption\">" + note + "</span>");
  };
  rule("Judged by", r.tolerance_rules.empty() ? "" : KindsText(r.tolerance_rules), "(--tolerance rule: samples)");
  rule("Timed by", r.timing_methods.empty() ? "" : KindsText(r.timing_methods), "(timing.method: samples)");
  rule("GPU / device", r.devices.empty() ? "" : KindsText(r.devices), "(samples)");
  rule("Torch", r.torch_versions.empty() ? "" : KindsText(r.torch_versions), "(samples)");
  if (r.HasOtherBaselines()) {
    std::string text;
    for (const auto& b : r.baselines) {
      int unavailable = 0;
      for (const auto& [reason, n] : b.unavailable) unavailable += n;
      text += fmt::format("{}{} ({} sample{} measured{})", text.empty() ? "" : ", ", b.name, b.samples_measured,
                          b.samples_measured == 1 ? "" : "s",
                          unavailable ? fmt::format(", {} unavailable", unavailable) : "");
    }
    rule("Baselines", text,
         "(--baseline: eager is the reference as written; compile = torch.compile, inductor, "
         "default mode; cudagraph = the reference in a CUDA graph)");
  }
  rule("Precision", r.precision);
  rule("Backend", r.backend);
  rule("Model", r.model);
  rule("Target speedup", fmt::format("{:.2f}x", r.target_speedup));
  rule("kbrun", std::string(KBRUN_VERSION) + " (this report)" +
                    (r.kbrun_version.empty() ? "" : ", " + r.kbrun_version + " (the batch)"));
  rule("Generated at", batch::IsoTime(batch::NowUnix()));
  out += "<h2>Rules behind the numbers</h2><dl class=\"rules\">" + rules + "</dl>\n";

  // Headline figures.
  out += "<h2>Figures</h2><table>";
  out += Row("Problems", fmt::format("{}: {} with a correct kernel ({}), {} at or above {:.2f}x", r.problems.size(),
                                     r.correct, Pct(r.correctness_rate), r.solved, r.target_speedup));
  out += Row("Geomean speedup",
             r.geomean_speedup
                 ? fmt::format(R"(<span id="geomean" data-geomean="{}">{:.3f}x</span> over {} correct )"
                               R"(kernel{} (the problems' best))",
                               Num(*r.geomean_speedup), *r.geomean_speedup, r.correct, r.correct == 1 ? "" : "s")
                 : std::string("- (no correct kernel)"));
  out += Row("Samples", fmt::format("{} evaluated or attempted, {} correct", r.samples, r.samples_correct));
  out += Row("Tokens", fmt::format("{} prompt + {} completion", r.prompt_tokens, r.completion_tokens));
  out += Row("Wall time", r.wall_known ? FormatDuration(r.wall_s) : "unknown");
  if (r.evaluator.empty()) {  // batch --evaluator: the service's lanes (its /metrics)
    const batch::LaneCost& lanes = r.lane_cost;
    out += Row("GPU-lane time",
               lanes.median_s && lanes.p90_s && lanes.per_gpu_hour
                   ? fmt::format(R"(<span id="lane-cost" data-evaluations="{}" data-median-s="{}" data-p90-s="{}" )"
                                 R"(data-per-gpu-hour="{}" data-discarded-runs="{}">{}</span>)",
                                 lanes.evaluations, Num(*lanes.median_s), Num(*lanes.p90_s), Num(*lanes.per_gpu_hour),
                                 lanes.discarded_runs, HtmlEscape(batch::LaneCostText(lanes)))
                   : HtmlEscape(batch::LaneCostText(lanes)));
  }
  out += "</table>\n<table><tr><th>Budget</th><th>Correct</th>";
  for (double p : kFastPThresholds) out += "<th>" + FastPKey(p) + "</th>";
  out += "<th>Geomean</th></tr>";
  auto budget_row = [&](const char* label, const char* key, const SpeedupFigures& f) {
    out += fmt::format(R"(<tr data-budget="{}"><td>{}</td><td class="num">{}</td>)", key, label, f.correct);
    for (const auto& [p, v] : f.fast_p) {
      out += fmt::format(R"(<td class="num" data-p="{}" data-fast="{}">{}</td>)", Num(p), Num(v), Pct(v));
    }
    out += fmt::format(R"(<td class="num">{}</td></tr>)",
                       f.geomean_speedup ? fmt::format("{:.3f}x", *f.geomean_speedup) : "-");
  };
  budget_row("one-shot (attempt 1, sample 1)", "one_shot", r.one_shot);
  budget_row("best of all samples and attempts", "best_of_all", r.best_of_all);
  out += "</table>\n";

  if (!r.pass_at_k.empty()) {
    out += "<table><tr><th>k</th><th>Problems (n &gt;= k)</th><th>pass@k</th><th>fast_1@k</th></tr>";
    for (const auto& k : r.pass_at_k) {
      out += fmt::format(R"(<tr><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td>)"
                         R"(<td class="num">{}</td></tr>)",
                         k.k, k.problems, k.problems > 0 ? Pct(k.pass_at_k) : "-",
                         k.problems > 0 ? Pct(k.fast_1_at_k) : "-");
    }
    out += fmt::format(
        "</table><p class=\"caption\">pass@k over the samples of attempt 1 (unbiased estimator, {} "
        "per attempt).</p>\n",
        r.samples_per_attempt);
  }
  if (r.HasOtherBaselines()) {
    out += "<table id=\"baselines\"><tr><th>Against baseline</th><th>Measured</th>";
    for (double p : kFastPThresholds) out += "<th>" + FastPKey(p) + "</th>";
    out += "<th>Geomean</th><th>Baseline / eager</th></tr>";
    for (const auto& b : r.baselines) {
      out += fmt::format(R"(<tr data-baseline="{}"><td>{}</td><td class="num">{}</td>)", HtmlEscape(b.name),
                         HtmlEscape(b.name), b.measured);
      for (const auto& [p, v] : b.fast_p) {
        out += fmt::format(R"(<td class="num" data-p="{}" data-fast="{}">{}</td>)", Num(p), Num(v), Pct(v));
      }
      out += fmt::format(R"(<td class="num"{}>{}</td><td class="num">{}</td></tr>)",
                         b.geomean_speedup ? fmt::format(R"( data-geomean="{}")", Num(*b.geomean_speedup)) : "",
                         b.geomean_speedup ? fmt::format("{:.3f}x", *b.geomean_speedup) : "-",
                         b.geomean_baseline_over_eager ? fmt::format("{:.3f}x", *b.geomean_baseline_over_eager) : "-");
    }
    out +=
        "</table><p class=\"caption\">The best kernel of each problem against each baseline: fast_p = problems "
        "whose best kernel is correct with speedup over it &gt; p, over all problems; Measured = problems "
        "counted (that baseline measured for the best kernel); Baseline / eager = the baseline's own speedup "
        "over the reference as written (geomean over the same problems).";
    for (const auto& b : r.baselines) {
      if (!b.unavailable.empty()) {
        out += fmt::format(" {} unavailable: {}.", HtmlEscape(b.name), HtmlEscape(KindsText(b.unavailable)));
      }
    }
    out += "</p>\n";
  }

  out += "<h2>fast_p</h2>" + FastPPlot(r) +
         "<p class=\"caption\">Fraction of all problems whose best kernel is correct with speedup &gt; p "
         "(KernelBench's fast_p), for p from 0 to the largest speedup (at least 2), linear x axis; a point at "
         "every problem's best speedup and at KernelBench's thresholds.</p>\n";
  out += fmt::format("<h2>Speedups of correct samples ({})</h2>", correct_samples.size()) +
         SpeedupPlot(r, correct_samples) +
         "<p class=\"caption\">Every correct sample, every attempt, log x axis; the red line is the geometric mean "
         "of the problems' best kernels.</p>\n";
  out += "<h2>Samples by outcome</h2>" + BarChart("status-plot", "status", r.samples_by_status, r.samples);
  if (!r.failure_kinds.empty()) {
    out += "<h2>Failure kinds</h2>" + BarChart("failure-plot", "kind", r.failure_kinds, r.samples);
  }
  std::vector<TimelineSpan> spans = ReadTimeline(store.TimelinePath());
  if (!spans.empty()) {
    out += "<h2>Timeline</h2>" + TimelinePlot(spans) +
           "<p class=\"caption\">timeline.jsonl: LLM calls and compiles (packed into rows as they overlap), then "
           "each GPU lane.</p>\n";
  }

  // Problems: a table linking to each problem's drill-down.
  out += "<h2>Problems</h2><table id=\"problems\"><tr><th>Problem</th><th>Status</th><th>Best speedup</th>";
  for (size_t i = 1; i < r.baselines.size(); ++i) out += "<th>vs " + HtmlEscape(r.baselines[i].name) + "</th>";
  out += "<th>Best</th><th>Attempts</th><th>Samples</th><th>One-shot</th><th>Failure kinds</th></tr>";
  for (const auto& p : r.problems) {
    std::string against;
    for (size_t i = 1; i < r.baselines.size(); ++i) {
      const std::string& name = r.baselines[i].name;
      auto v = p.BaselineSpeedup(name);
      auto entry = p.baselines.find(name);
      std::string why = !v && entry != p.baselines.end() && entry->second.is_object() &&
                                entry->second.value("reason", json()).is_string()
                            ? fmt::format(R"( title="{}")", HtmlEscape(entry->second["reason"].get<std::string>()))
                            : "";
      against += v ? fmt::format(R"(<td class="num" data-baseline="{}" data-speedup="{}">{:.3f}x</td>)",
                                 HtmlEscape(name), Num(*v), *v)
                   : fmt::format(R"(<td class="num" data-baseline="{}"{}>-</td>)", HtmlEscape(name), why);
    }
    out += fmt::format(
        R"(<tr data-problem="{}"{}><td><a href="#{}">{}</a></td><td class="status-{}">{}</td><td class="num">{}</td>)"
        R"({}<td>{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td><td>{}</td></tr>)",
        HtmlEscape(p.name), p.correct ? fmt::format(R"( data-best-speedup="{}")", Num(p.best_speedup)) : "",
        ProblemAnchor(p.name), HtmlEscape(p.name), HtmlEscape(p.status), HtmlEscape(p.status),
        p.correct ? fmt::format("{:.3f}x", p.best_speedup) : "-", against,
        p.best_index ? fmt::format("#{} {}", *p.best_index, HtmlEscape(p.best_status)) : "-", p.attempts_used,
        p.samples_used, p.one_shot_status.empty() ? "-" : HtmlEscape(p.one_shot_status),
        HtmlEscape(KindsText(p.failure_kinds)));
  }
  out += "</table>\n<h2>Samples by problem</h2>\n";
  for (const auto& p : r.problems) {
    out += fmt::format(R"(<details class="problem" id="{}"><summary>{} <span class="status-{}">{}</span>{}</summary>)",
                       ProblemAnchor(p.name), HtmlEscape(p.name), HtmlEscape(p.status), HtmlEscape(p.status),
                       p.correct ? fmt::format(", best {:.3f}x (#{})", p.best_speedup, p.best_index.value_or(0)) : "");
    const auto& recs = records[p.name];
    if (recs.empty()) out += "<p>No sample finished.</p>";
    for (const auto& [index, rec] : recs) out += SampleHtml(store, p, rec, recs);
    out += "</details>\n";
  }
  out += "</body></html>\n";
  return out;
}

}  // namespace kbrun::report
