// {{placeholder}} substitution for prompt templates.
#include <algorithm>
#include <cctype>
#include <stdexcept>

#include <fmt/format.h>

#include "prompts/prompt_config.h"
#include "util/text.h"

namespace kbrun::prompts {
namespace {

bool IsIdentifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

}  // namespace

std::string RenderTemplate(const std::string& text, const std::map<std::string, std::string>& vars) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (;;) {
    size_t open = text.find("{{", pos);
    size_t close = open == std::string::npos ? std::string::npos : text.find("}}", open + 2);
    if (close == std::string::npos) {
      out.append(text, pos, std::string::npos);
      return out;
    }
    std::string name = Trim(std::string_view(text).substr(open + 2, close - open - 2));
    // Only {{identifier}} is a placeholder: "{{1, 2}}" in example C++ code stays as it is.
    if (!IsIdentifier(name)) {
      out.append(text, pos, open + 2 - pos);
      pos = open + 2;
      continue;
    }
    auto it = vars.find(name);
    if (it == vars.end()) {
      size_t line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<long>(open), '\n'));
      std::string known;
      for (const auto& [k, v] : vars) known += (known.empty() ? "" : ", ") + k;
      throw std::invalid_argument(
          fmt::format("unknown placeholder {{{{{}}}}} on line {}; this template can use: {}", name, line, known));
    }
    out.append(text, pos, open - pos);
    out += it->second;  // values are not scanned again: a problem's source may contain "{{"
    pos = close + 2;
  }
}

}  // namespace kbrun::prompts
