// detailed_report.html against detailed_report.json: the budget tree (budget_tree_test_util.h)
// plus a problem whose name, error message and code are hostile HTML, prompts, a timeline.
#include "report/html_report.h"

#include <gtest/gtest.h>

#include <map>
#include <regex>

#include "report/budget_tree_test_util.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::report {
namespace {

using nlohmann::json;

const char* kHostileName = "9_<img src=x onerror=alert(1)>";
const char* kHostileMessage = "</script><img src=x onerror=alert(1)> & \"quoted\" 'single'";
const char* kHostileCode = "</pre><script>alert(1)</script>\nclass ModelNew:\n    pass\n";

std::string Unescape(std::string s) {
  for (const auto& [entity, c] : std::vector<std::pair<std::string, std::string>>{
           {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}}) {
    size_t at = 0;
    while ((at = s.find(entity, at)) != std::string::npos) {
      s.replace(at, entity.size(), c);
      at += c.size();
    }
  }
  return s;
}

// The attributes of every <tag ...> whose start tag holds `marker` (e.g. class="point").
std::vector<std::map<std::string, std::string>> Elements(const std::string& html, const std::string& tag,
                                                         const std::string& marker) {
  std::vector<std::map<std::string, std::string>> out;
  static const std::regex attr(R"re(([a-zA-Z][\w-]*)="([^"]*)")re");
  size_t at = 0;
  while ((at = html.find("<" + tag + " ", at)) != std::string::npos) {
    size_t end = html.find('>', at);
    std::string start_tag = html.substr(at, end - at);
    at = end;
    if (!Contains(start_tag, marker)) continue;
    std::map<std::string, std::string> attrs;
    for (std::sregex_iterator it(start_tag.begin(), start_tag.end(), attr), stop; it != stop; ++it) {
      attrs[(*it)[1].str()] = Unescape((*it)[2].str());
    }
    out.push_back(attrs);
  }
  return out;
}

// The SVG element with this id, start to </svg>.
std::string Svg(const std::string& html, const std::string& id) {
  size_t start = html.find("<svg id=\"" + id + "\"");
  if (start == std::string::npos) return "";
  return html.substr(start, html.find("</svg>", start) - start);
}

class HtmlReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeUniqueDir(fs::temp_directory_path(), "kbrun-html-report-test-");
    test_tree::WriteBudgetTree(dir_);
    batch::ResultsStore store(dir_);
    for (const auto& s : test_tree::BudgetTreeSamples()) {
      store.WritePrompt(s.problem, s.index, "Write a kernel for " + s.problem + " <b>not bold</b>\n");
    }
    json doc = {{"problem", kHostileName},
                {"index", 1},
                {"attempt", 1},
                {"sample", 1},
                {"status", "compile_error"},
                {"correct", false},
                {"success", false},
                {"speedup", nullptr},
                {"error", {{"category", "build_failed"}, {"message", kHostileMessage}}},
                {"files", {{"code", "code_1.py"}}},
                {"eval", {{"status", "compile_error"}, {"output_tail", kHostileMessage}}}};
    store.WriteCode(kHostileName, 1, kHostileCode);
    WriteFileAtomic(store.ResultPath(kHostileName, 1), batch::JsonText(doc) + "\n");
    // 1_A #1 was profiled (roofline fraction, profile digest) and says which torch ran it.
    json r1 = json::parse(*ReadFile(store.ResultPath("1_A", 1)));
    r1["eval"]["roofline"] = {{"fraction_of_roofline", 0.25}};
    r1["eval"]["profile"] = {{"status", "ok"}, {"summary", "kernel_a 12.5 us memory-bound <dram 80%>"}};
    r1["eval"]["env"] = {{"torch_version", "2.5.1"}};
    WriteFileAtomic(store.ResultPath("1_A", 1), batch::JsonText(r1) + "\n");
    // A timeline: two LLM calls that overlap, one compile, two GPU lanes, and a damaged line.
    for (const auto& e : std::vector<json>{
             {{"problem", "1_A"}, {"index", 1}, {"stage", "llm"}, {"start", 1000.0}, {"end", 1010.0}},
             {{"problem", "2_B"}, {"index", 1}, {"stage", "llm"}, {"start", 1002.0}, {"end", 1008.5}},
             {{"problem", "1_A"}, {"index", 1}, {"stage", "compile"}, {"start", 1010.0}, {"end", 1020.0}},
             {{"problem", "1_A"}, {"index", 1}, {"stage", "gpu"}, {"start", 1020.0}, {"end", 1023.0}, {"lane", 0}},
             {{"problem", "2_B"}, {"index", 2}, {"stage", "gpu"}, {"start", 1021.0}, {"end", 1025.0}, {"lane", 1}}}) {
      store.AppendTimeline(e);
    }
    AppendLine(store.TimelinePath(), "{\"stage\": \"gpu\", \"start\": ");  // cut short: skipped
    WriteOptions options;
    options.html_path = dir_ / "detailed_report.html";
    WriteReport(dir_, nullptr, options);
    report_ = json::parse(*ReadFile(dir_ / "detailed_report.json"));
    html_ = *ReadFile(dir_ / "detailed_report.html");
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  json report_;
  std::string html_;
};

TEST_F(HtmlReportTest, FastPPointsEqualTheJsonReport) {
  std::string plot = Svg(html_, "fast-p-plot");
  auto points = Elements(plot, "circle", "class=\"point\"");
  ASSERT_FALSE(points.empty());
  // Every point: problems whose best speedup (detailed_report.json) is > p / problems.
  std::vector<double> best;
  for (const auto& p : report_["problems"]) {
    if (!p["best_speedup"].is_null()) best.push_back(p["best_speedup"].get<double>());
  }
  double n = report_["problems"].size();
  EXPECT_EQ(n, 5);  // the four of the tree and the hostile one
  std::map<double, double> by_p;
  for (const auto& pt : points) {
    double p = std::stod(pt.at("data-p")), fast = std::stod(pt.at("data-fast"));
    by_p[p] = fast;
    int faster = 0;
    for (double s : best) faster += s > p;
    EXPECT_DOUBLE_EQ(fast, faster / n) << "p = " << p;
  }
  // KernelBench's thresholds are points, with detailed_report.json's fast_p values.
  for (const auto& [key, value] : report_["overall"]["fast_p"].items()) {
    double p = std::stod(key.substr(5));
    ASSERT_TRUE(by_p.count(p)) << key;
    EXPECT_DOUBLE_EQ(by_p[p], value.get<double>()) << key;
  }
  // ...and every best speedup (3.0 the largest: the curve reaches 0 there).
  for (double s : best) EXPECT_TRUE(by_p.count(s)) << s;
  EXPECT_DOUBLE_EQ(by_p.at(3.0), 0.0);
  EXPECT_DOUBLE_EQ(by_p.at(0.0), 3.0 / 5);  // 1_A, 2_B, 3_C
}

TEST_F(HtmlReportTest, SpeedupsGeomeanAndBarsEqualTheJsonReport) {
  auto samples = Elements(Svg(html_, "speedup-plot"), "circle", "class=\"sample-point\"");
  EXPECT_EQ(samples.size(), report_["overall"]["samples_correct"].get<size_t>());
  std::multiset<double> speedups;
  for (const auto& s : samples) speedups.insert(std::stod(s.at("data-speedup")));
  EXPECT_EQ(speedups, (std::multiset<double>{2.0, 0.5, 1.5, 3.0}));
  auto geomean = Elements(html_, "line", "class=\"geomean\"");
  ASSERT_EQ(geomean.size(), 1u);
  EXPECT_DOUBLE_EQ(std::stod(geomean[0].at("data-geomean")), report_["overall"]["geomean_speedup"].get<double>());

  auto status_bars = Elements(Svg(html_, "status-plot"), "rect", "data-status");
  std::map<std::string, int> by_status;
  for (const auto& b : status_bars) by_status[b.at("data-status")] = std::stoi(b.at("data-count"));
  EXPECT_EQ(json(by_status), report_["overall"]["samples_by_status"]);
  auto kind_bars = Elements(Svg(html_, "failure-plot"), "rect", "data-kind");
  std::map<std::string, int> by_kind;
  for (const auto& b : kind_bars) by_kind[b.at("data-kind")] = std::stoi(b.at("data-count"));
  EXPECT_EQ(json(by_kind), report_["overall"]["failure_kinds"]);
  EXPECT_FALSE(by_kind.empty());

  // The budget table's fast_p cells: one-shot and best of all.
  for (const char* budget : {"one_shot", "best_of_all"}) {
    size_t row = html_.find(std::string("data-budget=\"") + budget + "\"");
    ASSERT_NE(row, std::string::npos) << budget;
    auto cells = Elements(html_.substr(row, html_.find("</tr>", row) - row), "td", "data-fast");
    ASSERT_EQ(cells.size(), kFastPThresholds.size());
    for (const auto& c : cells) {
      EXPECT_DOUBLE_EQ(
          std::stod(c.at("data-fast")),
          report_["overall"]["budget"][budget]["fast_p"][FastPKey(std::stod(c.at("data-p")))].get<double>());
    }
  }
}

TEST_F(HtmlReportTest, EveryProblemHasAnAnchorAndATableLink) {
  auto rows = Elements(html_, "tr", "data-problem");
  ASSERT_EQ(rows.size(), report_["problems"].size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& p = report_["problems"][i];
    std::string name = p["name"].get<std::string>();
    EXPECT_EQ(rows[i].at("data-problem"), name);
    if (p["best_speedup"].is_null()) {
      EXPECT_FALSE(rows[i].count("data-best-speedup")) << name;
    } else {
      EXPECT_DOUBLE_EQ(std::stod(rows[i].at("data-best-speedup")), p["best_speedup"].get<double>()) << name;
    }
    std::string anchor = ProblemAnchor(name);
    EXPECT_TRUE(Contains(html_, "href=\"#" + anchor + "\"")) << name;
    auto details = Elements(html_, "details", "id=\"" + anchor + "\"");
    EXPECT_EQ(details.size(), 1u) << name;
  }
  EXPECT_EQ(ProblemAnchor(kHostileName), "problem-9_-3Cimg-20src-3Dx-20onerror-3Dalert-281-29-3E");
  EXPECT_NE(ProblemAnchor("a-b"), ProblemAnchor("a_b"));
  // The best sample is marked, with its speedup.
  auto best = Elements(html_, "div", "class=\"sample best\"");
  size_t with_best = 0;
  for (const auto& p : report_["problems"]) with_best += !p["best_index"].is_null();
  ASSERT_EQ(best.size(), with_best);
  ASSERT_GE(best.size(), 3u);
  EXPECT_EQ(best[2].at("id"), SampleAnchor("3_C", report_["problems"][2]["best_index"].get<int>()));
  EXPECT_EQ(best[2].at("id"), SampleAnchor("3_C", 4));
  EXPECT_DOUBLE_EQ(std::stod(best[2].at("data-speedup")), 3.0);
}

TEST_F(HtmlReportTest, ResultStringsAreEscaped) {
  // Neither the name, the message, the output tail nor the code makes an element.
  EXPECT_FALSE(Contains(html_, "<img")) << "unescaped <img";
  EXPECT_FALSE(Contains(html_, "<script")) << "unescaped <script";
  EXPECT_FALSE(Contains(html_, "</script>"));
  EXPECT_FALSE(Contains(html_, "<b>not bold</b>"));
  EXPECT_TRUE(
      Contains(html_, "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quoted&quot; &#39;single&#39;"));
  EXPECT_TRUE(Contains(html_, "9_&lt;img src=x onerror=alert(1)&gt;"));
  EXPECT_TRUE(Contains(html_, "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_EQ(HtmlEscape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  // No script and nothing fetched: the page's policy forbids both.
  EXPECT_TRUE(Contains(html_, "default-src 'none'"));
  EXPECT_FALSE(Contains(html_, "http://"));
  EXPECT_FALSE(Contains(html_, "https://"));
}

TEST_F(HtmlReportTest, HeaderSaysWhatProducedTheNumbers) {
  // 11 evaluated samples (all but the no_code one and the hostile compile error without eval
  // fields), judged by the evidence rule on an H200; two correct ones timed.
  EXPECT_EQ(report_["overall"]["devices"], json({{"NVIDIA H200", 11}}));
  EXPECT_EQ(report_["overall"]["torch_versions"], json({{"2.5.1", 1}}));
  EXPECT_EQ(report_["config"]["precision"], "fp32");
  EXPECT_TRUE(Contains(html_, "<dt>Judged by</dt><dd>evidence x11")) << html_.substr(0, 3000);
  EXPECT_TRUE(Contains(html_, "<dt>Timed by</dt><dd>cuda_events_launch_hidden_l2_flush x4"));
  EXPECT_TRUE(Contains(html_, "<dt>GPU / device</dt><dd>NVIDIA H200 x11"));
  EXPECT_TRUE(Contains(html_, "<dt>Torch</dt><dd>2.5.1 x1"));
  EXPECT_TRUE(Contains(html_, "<dt>Precision</dt><dd>fp32</dd>"));
  EXPECT_TRUE(Contains(html_, "<dt>Model</dt><dd>test-model</dd>"));
  EXPECT_TRUE(Contains(*ReadFile(dir_ / "detailed_report.txt"), "Devices        NVIDIA H200 x11"));
  // The profiled sample shows its roofline fraction and digest (escaped).
  auto roofline = Elements(html_, "span", "class=\"roofline\"");
  ASSERT_EQ(roofline.size(), 1u);
  EXPECT_DOUBLE_EQ(std::stod(roofline[0].at("data-roofline")), 0.25);
  EXPECT_TRUE(Contains(html_, "kernel_a 12.5 us memory-bound &lt;dram 80%&gt;"));
}

TEST_F(HtmlReportTest, LaterAttemptsShowTheDiffFromTheSameSampleBefore) {
  // 3_C #4 is attempt 2 sample 1: its diff is from #1 (attempt 1, sample 1).
  size_t block = html_.find("id=\"" + SampleAnchor("3_C", 4) + "\"");
  ASSERT_NE(block, std::string::npos);
  std::string sample = html_.substr(block, html_.find("</div>", block) - block);
  EXPECT_TRUE(Contains(sample, "Diff from <a href=\"#" + SampleAnchor("3_C", 1) + "\">#1</a>")) << sample;
  EXPECT_TRUE(Contains(sample, "<span class=\"del\">- # 3_C sample 1</span>")) << sample;
  EXPECT_TRUE(Contains(sample, "<span class=\"add\">+ # 3_C sample 4</span>")) << sample;
  EXPECT_TRUE(Contains(sample, "  class ModelNew:\n")) << sample;
  // Timings of that sample: reference 3.0 ms, candidate 1.0 ms.
  EXPECT_TRUE(Contains(sample, "3 ms median")) << sample;
  EXPECT_TRUE(Contains(sample, "1 ms median")) << sample;
  // Attempt-1 samples have no diff; the prompt is there, collapsed.
  size_t first = html_.find("id=\"" + SampleAnchor("3_C", 1) + "\"");
  std::string first_sample = html_.substr(first, html_.find("</div>", first) - first);
  EXPECT_FALSE(Contains(first_sample, "Diff from"));
  EXPECT_TRUE(Contains(first_sample, "<details><summary>Prompt</summary>")) << first_sample;
}

TEST_F(HtmlReportTest, TimelineSpansAreTheTimelineFile) {
  auto spans = Elements(Svg(html_, "timeline-plot"), "rect", "class=\"span ");
  ASSERT_EQ(spans.size(), 5u);  // the damaged line is skipped
  std::map<std::string, int> by_stage;
  for (const auto& s : spans) ++by_stage[s.at("data-stage")];
  EXPECT_EQ(by_stage, (std::map<std::string, int>{{"llm", 2}, {"compile", 1}, {"gpu", 2}}));
  EXPECT_EQ(spans[0].at("data-start"), "1000");
  EXPECT_EQ(spans[0].at("data-end"), "1010");
  // The two overlapping LLM calls sit in different rows.
  EXPECT_NE(spans[0].at("y"), spans[1].at("y"));
  EXPECT_TRUE(Contains(html_, "GPU lane 1"));
}

// --baseline compile --baseline cudagraph (test_tree::BaselineTreeSamples): the table against each
// baseline, its fast_p curves and the problem table's columns carry detailed_report.json's figures;
// a baseline's reason is escaped like any result string.
TEST(HtmlReport, BaselinesEqualTheJsonReport) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-html-baselines-");
  test_tree::WriteTree(dir, test_tree::BaselineTreeSamples());
  WriteOptions options;
  options.html_path = dir / "detailed_report.html";
  WriteReport(dir, nullptr, options);
  json report = json::parse(*ReadFile(dir / "detailed_report.json"));
  std::string html = *ReadFile(dir / "detailed_report.html");
  const json& overall = report["overall"]["baselines"];

  // The table: one row per baseline, every fast_p cell as the JSON has it.
  auto rows = Elements(html, "tr", "data-baseline");
  ASSERT_EQ(rows.size(), 3u);
  for (const char* name : {"eager", "compile", "cudagraph"}) {
    size_t row = html.find(std::string("<tr data-baseline=\"") + name + "\"");
    ASSERT_NE(row, std::string::npos) << name;
    auto cells = Elements(html.substr(row, html.find("</tr>", row) - row), "td", "data-fast");
    ASSERT_EQ(cells.size(), kFastPThresholds.size()) << name;
    for (const auto& c : cells) {
      EXPECT_DOUBLE_EQ(std::stod(c.at("data-fast")),
                       overall[name]["fast_p"][FastPKey(std::stod(c.at("data-p")))].get<double>())
          << name << " p = " << c.at("data-p");
    }
  }
  // The fast_p plot: a curve per other baseline, its points the fraction of all problems whose
  // best kernel beats that baseline by more than p.
  std::string plot = Svg(html, "fast-p-plot");
  for (const char* name : {"compile", "cudagraph"}) {
    std::vector<double> speedups;
    for (const auto& p : report["problems"]) {
      const json& b = p["baselines"].value(name, json::object());
      if (p["correct"].get<bool>() && b.value("status", "") == "measured")
        speedups.push_back(b["speedup"].get<double>());
    }
    auto points = Elements(plot, "circle", std::string("data-baseline=\"") + name + "\"");
    ASSERT_GE(points.size(), kFastPThresholds.size()) << name;
    for (const auto& pt : points) {
      double p = std::stod(pt.at("data-p"));
      int faster = 0;
      for (double v : speedups) faster += v > p;
      EXPECT_DOUBLE_EQ(std::stod(pt.at("data-fast")), faster / 4.0) << name << " p = " << p;
    }
    EXPECT_TRUE(Contains(plot, std::string(">vs ") + name + "</text>")) << name;  // the legend
  }
  // eager's curve: the thresholds and the best speedups 1.2 and 3.0 (2.0 is a threshold).
  EXPECT_EQ(Elements(plot, "circle", "class=\"point\"").size(), 6u + 2u);
  // The problems table: a column per other baseline, the best kernel's speedup where measured.
  auto cells = Elements(html, "td", "data-baseline=");
  ASSERT_EQ(cells.size(), 4u * 2u);
  std::map<std::string, int> with_speedup;
  for (const auto& c : cells) {
    if (c.count("data-speedup")) ++with_speedup[c.at("data-baseline")];
  }
  EXPECT_EQ(with_speedup["compile"], 1);    // 1_A
  EXPECT_EQ(with_speedup["cudagraph"], 2);  // 1_A, 2_B
  EXPECT_TRUE(Contains(html, R"(data-baseline="compile" data-speedup="0.8">0.800x</td>)")) << html;
  // The sample drill-down says what each baseline measured, and why one was not.
  auto spans = Elements(html, "span", "class=\"baseline-speedup\"");
  EXPECT_EQ(spans.size(), 4u);  // 1_A #1 (both), #2 (compile), 2_B #1 (cudagraph)
  EXPECT_TRUE(Contains(html, "compile_s 12.50 s (not timed)"));
  EXPECT_TRUE(Contains(html, R"(data-status="unavailable">unavailable</span>: compile failed: RuntimeError: )"
                             "&lt;img src=x onerror=alert(1)&gt;"))
      << html;
  EXPECT_FALSE(Contains(html, "<img"));
  EXPECT_TRUE(Contains(html, "<dt>Baselines</dt>")) << html;
  fs::remove_all(dir);
}

TEST(HtmlReport, NoTimelineNoCorrectSampleStillAPage) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-html-empty-");
  batch::ResultsStore store(dir);
  store.WriteSummary({{"state", "finished"}, {"problems", json::array({{{"name", "1_X"}, {"number", 1}}})}});
  Report r = BuildReport(dir);
  std::string html = HtmlReport(r);
  EXPECT_FALSE(Contains(html, "timeline-plot"));
  auto points = Elements(Svg(html, "fast-p-plot"), "circle", "class=\"point\"");
  EXPECT_EQ(points.size(), kFastPThresholds.size());
  for (const auto& p : points) EXPECT_EQ(p.at("data-fast"), "0");
  EXPECT_TRUE(Contains(html, "<p>No sample finished.</p>"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kbrun::report
