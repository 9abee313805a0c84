// kbrun compare --html: the comparison as one self-contained page (inline CSS and SVG, no script,
// nothing fetched; the building blocks of detailed_report.html, html_parts.h): the runs' settings
// and the like-for-like warning, the summary with the geomean B/A and its interval, each problem's
// B/A with its timing interval on a log axis, the verdict changes (fixed, broken), and every
// problem side by side. Every string from the results trees is HTML-escaped. docs/RESULTS.md
// "kbrun compare".
#pragma once

#include <string>

#include "report/compare.h"

namespace kbrun::report {

std::string CompareHtml(const Comparison& c);

}  // namespace kbrun::report
