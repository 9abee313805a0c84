#include "report/html_parts.h"

#include <fmt/format.h>

#include "report/html_report.h"

namespace kbrun::report::html {

namespace {

const char* const kStyle = R"css(
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
dl.rules{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dl.rules dt{font-weight:600}
dl.rules dd{margin:0}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:6px;overflow:auto;max-height:40em;white-space:pre}
pre.message{white-space:pre-wrap}
.diff .add{background:#e6ffec;display:block}.diff .del{background:#ffebe9;display:block}
details.problem{border:1px solid #ddd;margin:.4em 0;padding:.3em .6em}
details.problem>summary{cursor:pointer;font-weight:600}
.sample{border-left:4px solid #ccc;margin:.6em 0;padding:.2em .8em}
.sample.best{border-left-color:#2a8a2a;background:#f4fbf4}
.status-correct,.status-solved{color:#1d7a1d}.status-slow{color:#9a6a00}
.status-failed,.status-incorrect,.status-compile_error,.status-runtime_error,.status-timeout,
.status-rejected,.status-no_code,.status-llm_error,.status-internal_error{color:#b02020}
svg{background:#fff;border:1px solid #e3e3e3;margin:.3em 0}svg text{font:11px sans-serif;fill:#333}
.axis{stroke:#888;stroke-width:1}.grid{stroke:#eee;stroke-width:1}
.curve{fill:none;stroke:#2060c0;stroke-width:2}.point{fill:#2060c0}
.curve-baseline{fill:none;stroke:#888;stroke-width:2;stroke-dasharray:6 3}.point-baseline{fill:#888}
.curve-baseline.baseline-compile{stroke:#c06020}.point-baseline.baseline-compile{fill:#c06020}
.curve-baseline.baseline-cudagraph{stroke:#8a3ab0}.point-baseline.baseline-cudagraph{fill:#8a3ab0}
.sample-point{fill:#2a8a2a;fill-opacity:.6}.geomean{stroke:#c03030;stroke-width:2}
.bar{fill:#5080c0}.bar.correct{fill:#2a8a2a}
.span-llm{fill:#8a6ad0}.span-compile{fill:#e0a030}.span-gpu{fill:#2a8a2a}.span-remote{fill:#2a6ab0}
.caption{color:#555;font-size:.92em}
)css";

}  // namespace

std::string PageStart(const std::string& title, const std::string& extra_css) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width\">"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
      "<title>{}</title><style>{}{}</style></head><body>\n",
      HtmlEscape(title), kStyle, extra_css);
}

std::string Num(double v) { return fmt::format("{}", v); }

std::string Pct(double fraction) { return fmt::format("{:.1f}%", fraction * 100); }

std::string Row(const std::string& label, const std::string& value_html) {
  return fmt::format("<tr><th>{}</th><td>{}</td></tr>", label, value_html);
}

}  // namespace kbrun::report::html
