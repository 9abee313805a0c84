// The building blocks kbrun's HTML pages share (detailed_report.html: html_report.cc; kbrun compare
// --html: compare_html.cc): the page's head (inline CSS, a Content-Security-Policy that forbids
// scripts and fetches), numbers for data-* attributes, table rows and the SVG plot frame.
#pragma once

#include <string>

namespace kbrun::report::html {

// <!DOCTYPE html> ... <body>: charset, viewport, the policy, the title (escaped here) and the
// shared style sheet, plus `extra_css` (trusted, kbrun's own).
std::string PageStart(const std::string& title, const std::string& extra_css = "");
// A number for a data-* attribute: the shortest text that reads back as the same double.
std::string Num(double v);
// 0.375 -> "37.5%".
std::string Pct(double fraction);
// <tr><th>label</th><td>value</td></tr>; both are HTML already (escape what came from results).
std::string Row(const std::string& label, const std::string& value_html);

// An SVG plot's frame: size and margins, in pixels.
struct Plot {
  double width = 760, height = 300, left = 60, right = 20, top = 20, bottom = 45;
  double PlotW() const { return width - left - right; }
  double PlotH() const { return height - top - bottom; }
};

}  // namespace kbrun::report::html
