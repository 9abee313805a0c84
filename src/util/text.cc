#include "util/text.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace kbrun {

std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      if (start < text.size()) lines.emplace_back(text.substr(start));
      break;
    }
    lines.emplace_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }
bool Contains(std::string_view s, std::string_view needle) { return s.find(needle) != std::string_view::npos; }

std::string ToLower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string KeepHeadTailLines(std::string_view text, size_t max_lines) {
  auto lines = SplitLines(text);
  if (lines.size() <= max_lines) return std::string(text);
  size_t head = max_lines / 2, tail = max_lines - head;
  std::string out;
  for (size_t i = 0; i < head; ++i) out += lines[i] + "\n";
  out += fmt::format("[... {} lines omitted ...]\n", lines.size() - head - tail);
  for (size_t i = lines.size() - tail; i < lines.size(); ++i) out += lines[i] + "\n";
  return out;
}

std::string ExtractCompilerErrors(std::string_view log, size_t max_lines) {
  auto lines = SplitLines(log);
  std::vector<bool> keep(lines.size(), false);
  bool any = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string low = ToLower(lines[i]);
    bool is_error = Contains(low, "error") && !Contains(low, "-werror") && !Contains(low, "error_");
    if (!is_error) continue;
    any = true;
    // The error line, one line before (the location) and two after (the code and caret).
    for (size_t j = (i == 0 ? 0 : i - 1); j < std::min(lines.size(), i + 3); ++j) keep[j] = true;
  }
  if (!any) return KeepHeadTailLines(log, max_lines);
  std::string out;
  size_t kept = 0;
  bool gap = false;
  for (size_t i = 0; i < lines.size() && kept < max_lines; ++i) {
    if (!keep[i]) { gap = true; continue; }
    if (gap && !out.empty()) out += "...\n";
    gap = false;
    out += lines[i] + "\n";
    ++kept;
  }
  return out;
}

std::string FormatDuration(double seconds) {
  if (seconds < 60) return fmt::format("{:.1f} s", seconds);
  int total = static_cast<int>(seconds + 0.5);
  if (total < 3600) return fmt::format("{} min {:02d} s", total / 60, total % 60);
  return fmt::format("{} h {:02d} min", total / 3600, (total % 3600) / 60);
}

}  // namespace kbrun
