// detailed_report.html: the report as one self-contained page (inline CSS and SVG, no
// script, nothing fetched): the rules behind the numbers, the fast_p curve, the speedups of
// the correct samples, outcomes and failure kinds, the batch's timeline, and per problem every
// sample with its verdict, timings, code, prompt and the diff from the previous attempt.
// Every string that comes from the results tree is HTML-escaped. docs/RESULTS.md "kbrun report".
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "report/report.h"

namespace kbrun::report {

// & < > " ' as entities: safe in text and in quoted attribute values.
std::string HtmlEscape(std::string_view text);

// The id of a problem's <details>: "problem-" + the name with every byte outside
// [A-Za-z0-9_.] written as -XX (hex), so different names never share an id.
std::string ProblemAnchor(const std::string& name);
// The id of one sample's block: "sample-" + the same encoding of the name + "-N".
std::string SampleAnchor(const std::string& problem, int index);

// One line of timeline.jsonl (docs/RESULTS.md "timeline.jsonl").
struct TimelineSpan {
  std::string problem, stage;  // stage: llm, compile or gpu
  int index = 0, lane = -1;    // lane: gpu spans only
  double start = 0, end = 0;   // Unix seconds
};
// The spans of a timeline file; lines that do not parse or lack times are skipped; empty
// when the file is missing.
std::vector<TimelineSpan> ReadTimeline(const std::filesystem::path& path);

// The page for a report built from `report.results_dir` (reads its result, code and prompt
// files and timeline.jsonl again for the drill-down).
std::string HtmlReport(const Report& report);

}  // namespace kbrun::report
