#include "report/compare.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include <fmt/format.h>

#include "batch/clock.h"
#include "report/text_table.h"

namespace kbrun::report {

using nlohmann::json;

namespace {

CompareSide Side(const ProblemReport& p) {
  CompareSide s;
  s.verdict = p.best_status.empty() ? p.status : p.best_status;
  s.correct = p.correct;
  if (p.correct) s.speedup = p.best_speedup;
  for (const auto& [name, entry] : p.baselines) {
    if (name == "eager") continue;
    if (auto v = p.BaselineSpeedup(name)) s.baseline_speedups[name] = *v;
  }
  if (p.correct) s.log_speedup_variance = LogSpeedupVariance(p.best_timing);
  return s;
}

bool Fast1(const std::optional<CompareSide>& s) { return s && s->correct && s->speedup && *s->speedup > 1.0; }

std::vector<std::string> Keys(const std::map<std::string, int>& counts) {
  std::vector<std::string> keys;
  for (const auto& [key, n] : counts) keys.push_back(key);
  return keys;
}

CompareSetting Setting(std::string key, std::string label, std::vector<std::string> a, std::vector<std::string> b) {
  bool differs = !a.empty() && !b.empty() && a != b;
  return {std::move(key), std::move(label), std::move(a), std::move(b), differs};
}

std::vector<std::string> OneOrNone(const std::string& value) {
  return value.empty() ? std::vector<std::string>{} : std::vector<std::string>{value};
}

std::string Join(const std::vector<std::string>& values) {
  if (values.empty()) return "(not recorded)";
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "" : " + ") + v;
  return out;
}

std::string Percent(double fraction) { return fmt::format("{:.1f}%", fraction * 100); }

json SideJson(const std::optional<CompareSide>& s) {
  if (!s) return nullptr;
  return {{"verdict", s->verdict}, {"correct", s->correct}, {"best_speedup", s->speedup ? json(*s->speedup) : json()}};
}

json IntervalJson(const std::optional<RatioInterval>& i) {
  if (!i) return nullptr;
  return {{"low", i->low}, {"high", i->high}};
}

std::string IntervalText(const std::optional<RatioInterval>& i) {
  return i ? fmt::format("{:.3f}x to {:.3f}x", i->low, i->high) : "-";
}

std::string SpeedupText(const std::optional<CompareSide>& s) {
  return s && s->speedup ? fmt::format("{:.3f}x", *s->speedup) : "-";
}

}  // namespace

std::string SpeedChange(double ratio) {
  if (ratio > 1.0 + kSameSpeedBand) return "faster";
  if (ratio < 1.0 - kSameSpeedBand) return "slower";
  return "same";
}

std::string ChangeText(const ProblemComparison& p) {
  static const std::map<std::string, std::string> kChange = {
      {"only_a", "only in A"}, {"only_b", "only in B"},         {"fixed", "fixed"},
      {"broken", "broken"},    {"wrong_both", "wrong in both"}, {"correct_both", "correct in both"}};
  if (!p.speed.empty()) return p.speed == "same" ? "same speed" : "B " + p.speed;
  auto it = kChange.find(p.change);
  return it == kChange.end() ? p.change : it->second;
}

bool Comparison::like_for_like() const {
  return std::none_of(settings.begin(), settings.end(), [](const CompareSetting& s) { return s.differs; });
}

Comparison Compare(const Report& a, const Report& b) {
  Comparison c;
  c.a_dir = a.results_dir;
  c.b_dir = b.results_dir;
  std::map<std::string, ProblemComparison> by_name;
  for (const auto& p : a.problems) {
    auto& pc = by_name[p.name];
    pc.name = p.name;
    pc.number = p.number;
    pc.a = Side(p);
  }
  for (const auto& p : b.problems) {
    auto& pc = by_name[p.name];
    pc.name = p.name;
    if (!pc.a) pc.number = p.number;
    pc.b = Side(p);
  }
  std::vector<LogRatio> log_ratios;
  int fast_a = 0, fast_b = 0;
  for (auto& [name, pc] : by_name) {
    if (Fast1(pc.a)) ++fast_a;
    if (Fast1(pc.b)) ++fast_b;
    if (!pc.b) {
      pc.change = "only_a";
      ++c.only_a;
    } else if (!pc.a) {
      pc.change = "only_b";
      ++c.only_b;
    } else {
      ++c.in_both;
      if (pc.a->correct && pc.b->correct) {
        pc.change = "correct_both";
        ++c.correct_both;
        if (*pc.a->speedup > 0 && *pc.b->speedup > 0) {
          pc.ratio = *pc.b->speedup / *pc.a->speedup;
          pc.speed = SpeedChange(*pc.ratio);
          if (pc.speed == "faster") {
            ++c.faster;
          } else if (pc.speed == "slower") {
            ++c.slower;
          } else {
            ++c.same;
          }
          LogRatio lr{std::log(*pc.ratio), 0};
          if (pc.a->log_speedup_variance && pc.b->log_speedup_variance) {
            lr.variance = *pc.a->log_speedup_variance + *pc.b->log_speedup_variance;
            pc.ratio_interval = TimingOnlyRatioInterval(lr);
          } else {
            ++c.ratios_without_spread;
          }
          log_ratios.push_back(lr);
        }
      } else if (pc.b->correct) {
        pc.change = "fixed";
        ++c.fixed;
      } else if (pc.a->correct) {
        pc.change = "broken";
        ++c.broken;
      } else {
        pc.change = "wrong_both";
        ++c.wrong_both;
      }
    }
    c.problems.push_back(std::move(pc));
  }
  std::sort(c.problems.begin(), c.problems.end(),
            [](const auto& x, const auto& y) { return x.number != y.number ? x.number < y.number : x.name < y.name; });
  if (!log_ratios.empty()) {
    double log_sum = 0;
    for (const auto& lr : log_ratios) log_sum += lr.log_ratio;
    c.geomean_ratio = std::exp(log_sum / static_cast<double>(log_ratios.size()));
    c.geomean_interval = BootstrapGeomeanInterval(log_ratios);
    c.geomean_timing_interval = TimingOnlyGeomeanInterval(log_ratios);
  }
  double n = static_cast<double>(c.problems.size());
  c.fast_1_a = n > 0 ? fast_a / n : 0;
  c.fast_1_b = n > 0 ? fast_b / n : 0;
  // Against the other baselines either run recorded, in the report's order (A's first).
  std::vector<std::string> names;
  for (const Report* run : {&a, &b}) {
    for (size_t i = 1; i < run->baselines.size(); ++i) {
      if (std::find(names.begin(), names.end(), run->baselines[i].name) == names.end()) {
        names.push_back(run->baselines[i].name);
      }
    }
  }
  for (const auto& name : names) {
    BaselineFast1 f;
    f.name = name;
    for (const auto& p : c.problems) {
      for (auto [side, fast, measured] :
           {std::tuple{&p.a, &f.a, &f.measured_a}, std::tuple{&p.b, &f.b, &f.measured_b}}) {
        if (!*side) continue;
        auto it = (*side)->baseline_speedups.find(name);
        if (it == (*side)->baseline_speedups.end()) continue;
        ++*measured;
        if (it->second > 1.0) *fast += 1;
      }
    }
    f.a = n > 0 ? f.a / n : 0;
    f.b = n > 0 ? f.b / n : 0;
    c.baseline_fast_1.push_back(f);
  }
  c.settings = {Setting("tolerance_rules", "tolerance rule", Keys(a.tolerance_rules), Keys(b.tolerance_rules)),
                Setting("timing_methods", "timing method", Keys(a.timing_methods), Keys(b.timing_methods)),
                Setting("devices", "GPU", Keys(a.devices), Keys(b.devices)),
                Setting("precision", "precision", OneOrNone(a.precision), OneOrNone(b.precision))};
  return c;
}

json ComparisonJson(const Comparison& c) {
  json problems = json::array();
  for (const auto& p : c.problems) {
    problems.push_back({{"name", p.name},
                        {"number", p.number},
                        {"a", SideJson(p.a)},
                        {"b", SideJson(p.b)},
                        {"ratio", p.ratio ? json(*p.ratio) : json()},
                        {"ratio_interval", IntervalJson(p.ratio_interval)},
                        {"change", p.change},
                        {"speed", p.speed.empty() ? json() : json(p.speed)}});
  }
  json settings = json::array();
  for (const auto& s : c.settings) {
    settings.push_back({{"key", s.key}, {"a", s.a}, {"b", s.b}, {"differs", s.differs}});
  }
  return {{"kbrun_version", KBRUN_VERSION},
          {"generated_at", batch::IsoTime(batch::NowUnix())},
          {"a", c.a_dir},
          {"b", c.b_dir},
          {"same_speed_band", kSameSpeedBand},
          {"problems", problems},
          {"summary",
           {{"problems", c.problems.size()},
            {"in_both", c.in_both},
            {"only_a", c.only_a},
            {"only_b", c.only_b},
            {"correct_both", c.correct_both},
            {"fixed", c.fixed},
            {"broken", c.broken},
            {"wrong_both", c.wrong_both},
            {"faster", c.faster},
            {"slower", c.slower},
            {"same", c.same},
            {"geomean_ratio", c.geomean_ratio ? json(*c.geomean_ratio) : json()},
            {"geomean_ratio_interval",
             [&] {
               if (!c.geomean_interval) return json();
               json out = IntervalJson(c.geomean_interval);
               out.update({{"level", kIntervalLevel},
                           {"method", "bootstrap_problems_and_timing"},
                           {"resamples", kIntervalResamples},
                           {"seed", kIntervalSeed},
                           {"timing_only", IntervalJson(c.geomean_timing_interval)},
                           {"ratios_without_spread", c.ratios_without_spread}});
               return out;
             }()},
            {"fast_1", {{"a", c.fast_1_a}, {"b", c.fast_1_b}}},
            {"fast_1_vs_baselines",
             [&] {
               json out = json::object();
               for (const auto& f : c.baseline_fast_1) {
                 out[f.name] = {{"a", f.a}, {"b", f.b}, {"measured_a", f.measured_a}, {"measured_b", f.measured_b}};
               }
               return out;
             }()}}},
          {"like_for_like", c.like_for_like()},
          {"settings", settings}};
}

std::string ComparisonText(const Comparison& c) {
  std::string out = fmt::format("kbrun compare: A = {}, B = {}\n\n", c.a_dir, c.b_dir);
  using Align = TextTable::Align;
  TextTable table({"Problem", "A verdict", "A best", "B verdict", "B best", "B/A", "B/A 95% (timing)", "Change"},
                  {Align::kLeft, Align::kLeft, Align::kRight, Align::kLeft, Align::kRight, Align::kRight, Align::kRight,
                   Align::kLeft});
  for (const auto& p : c.problems) {
    table.AddRow({p.name, p.a ? p.a->verdict : "-", SpeedupText(p.a), p.b ? p.b->verdict : "-", SpeedupText(p.b),
                  p.ratio ? fmt::format("{:.3f}x", *p.ratio) : "-", IntervalText(p.ratio_interval), ChangeText(p)});
  }
  out += table.Render() + "\n";
  out += fmt::format("Problems       {}: {} in both, {} only in A, {} only in B\n", c.problems.size(), c.in_both,
                     c.only_a, c.only_b);
  out += fmt::format(
      "Correctness    {} correct in both, {} fixed (wrong in A, correct in B), {} broken (correct in A, wrong in B), "
      "{} wrong in both\n",
      c.correct_both, c.fixed, c.broken, c.wrong_both);
  out += fmt::format(
      "Speed          of the {} correct in both: B faster {}, slower {}, same {} (same: B/A within {:.0f}%)\n",
      c.correct_both, c.faster, c.slower, c.same, kSameSpeedBand * 100);
  out += "Geomean B/A    " +
         (c.geomean_ratio ? fmt::format("{:.3f}x over {} problem{} correct in both", *c.geomean_ratio,
                                        c.faster + c.slower + c.same, c.faster + c.slower + c.same == 1 ? "" : "s")
                          : std::string("- (no problem correct in both)")) +
         "\n";
  if (c.geomean_interval) {
    out += fmt::format(
        "  95% interval {} (bootstrap over problems and timing, {} resamples, fixed seed); "
        "timing alone {}{}\n",
        IntervalText(c.geomean_interval), kIntervalResamples, IntervalText(c.geomean_timing_interval),
        c.ratios_without_spread ? fmt::format(" ({} problem{} without timing stats, counted without spread)",
                                              c.ratios_without_spread, c.ratios_without_spread == 1 ? "" : "s")
                                : "");
  }
  out += fmt::format("fast_1         A {}   B {}   (correct and speedup > 1, over the {} problems of either run)\n",
                     Percent(c.fast_1_a), Percent(c.fast_1_b), c.problems.size());
  for (const auto& f : c.baseline_fast_1) {
    out += fmt::format(
        "fast_1 vs {:<9} A {}   B {}   (correct and speedup over {} > 1; measured for A {}, B {} of the "
        "problems)\n",
        f.name, Percent(f.a), Percent(f.b), f.name, f.measured_a, f.measured_b);
  }
  std::string differences;
  for (const auto& s : c.settings) {
    if (s.differs) {
      differences += fmt::format("{}{}: A {}, B {}", differences.empty() ? "" : "; ", s.label, Join(s.a), Join(s.b));
    }
  }
  if (!differences.empty()) {
    out += "Warning: not like for like, the runs were judged or timed differently: " + differences + "\n";
  }
  return out;
}

}  // namespace kbrun::report
