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
    if (!keep[i]) {
      gap = true;
      continue;
    }
    if (gap && !out.empty()) out += "...\n";
    gap = false;
    out += lines[i] + "\n";
    ++kept;
  }
  return out;
}

std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    size_t len = 0;
    // Second-byte ranges exclude overlong forms and surrogates (RFC 3629).
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
      len = 1;
    else if (c >= 0xC2 && c <= 0xDF)
      len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      unsigned char b = s[i + k];
      ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    }
    if (ok) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for one bad byte, then resynchronise
      ++i;
    }
  }
  return out;
}

std::string RedactValues(std::string_view text, const std::vector<std::string>& values) {
  std::string out(text);
  for (const auto& value : values) {
    if (value.empty()) continue;
    for (size_t at = out.find(value); at != std::string::npos; at = out.find(value, at + 10)) {
      out.replace(at, value.size(), "[redacted]");
    }
  }
  return out;
}

std::optional<unsigned long long> ParseByteSize(std::string_view text) {
  std::string t = ToLower(Trim(text));
  size_t digits = 0;
  while (digits < t.size() && (std::isdigit(static_cast<unsigned char>(t[digits])) || t[digits] == '.')) ++digits;
  if (digits == 0) return std::nullopt;
  double value = 0;
  try {
    value = std::stod(t.substr(0, digits));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::string unit = Trim(t.substr(digits));
  if (!unit.empty() && unit.back() == 'b') unit.pop_back();  // "gb", "gib", "b"
  if (unit.size() == 2 && unit.back() == 'i') unit.pop_back();
  static const std::string kUnits = "kmgt";
  double scale = 1;
  if (unit.size() == 1 && kUnits.find(unit[0]) != std::string::npos) {
    for (size_t i = 0; i <= kUnits.find(unit[0]); ++i) scale *= 1024;
  } else if (!unit.empty()) {
    return std::nullopt;
  }
  return static_cast<unsigned long long>(value * scale);
}

std::string FormatBytes(unsigned long long bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int u = 0;
  while (value >= 1024 && u < 4) {
    value /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, units[u]);
}

std::string FormatDuration(double seconds) {
  if (seconds < 60) return fmt::format("{:.1f} s", seconds);
  int total = static_cast<int>(seconds + 0.5);
  if (total < 3600) return fmt::format("{} min {:02d} s", total / 60, total % 60);
  return fmt::format("{} h {:02d} min", total / 3600, (total % 3600) / 60);
}

}  // namespace kbrun
