#include "util/line_diff.h"

#include <algorithm>
#include <cstdint>

namespace kbrun {

namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

}  // namespace

std::vector<DiffLine> LineDiff(const std::string& before, const std::string& after, size_t max_cells) {
  std::vector<std::string> a = Lines(before), b = Lines(after);
  size_t head = 0;
  while (head < a.size() && head < b.size() && a[head] == b[head]) ++head;
  size_t tail = 0;
  while (tail < a.size() - head && tail < b.size() - head && a[a.size() - 1 - tail] == b[b.size() - 1 - tail]) ++tail;
  size_t n = a.size() - head - tail, m = b.size() - head - tail;

  std::vector<DiffLine> out;
  for (size_t i = 0; i < head; ++i) out.push_back({DiffLine::Kind::kSame, a[i]});
  if (n > 0 && m > 0 && n * m <= max_cells) {
    // lcs[i][j]: LCS length of a[head+i..] and b[head+j..] (middle part only).
    std::vector<uint32_t> lcs((n + 1) * (m + 1), 0);
    auto at = [&](size_t i, size_t j) -> uint32_t& { return lcs[i * (m + 1) + j]; };
    for (size_t i = n; i-- > 0;) {
      for (size_t j = m; j-- > 0;) {
        at(i, j) = a[head + i] == b[head + j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
      }
    }
    size_t i = 0, j = 0;
    while (i < n && j < m) {
      if (a[head + i] == b[head + j]) {
        out.push_back({DiffLine::Kind::kSame, a[head + i]});
        ++i, ++j;
      } else if (at(i + 1, j) >= at(i, j + 1)) {
        out.push_back({DiffLine::Kind::kRemoved, a[head + i++]});
      } else {
        out.push_back({DiffLine::Kind::kAdded, b[head + j++]});
      }
    }
    for (; i < n; ++i) out.push_back({DiffLine::Kind::kRemoved, a[head + i]});
    for (; j < m; ++j) out.push_back({DiffLine::Kind::kAdded, b[head + j]});
  } else {
    for (size_t i = 0; i < n; ++i) out.push_back({DiffLine::Kind::kRemoved, a[head + i]});
    for (size_t j = 0; j < m; ++j) out.push_back({DiffLine::Kind::kAdded, b[head + j]});
  }
  for (size_t i = a.size() - tail; i < a.size(); ++i) out.push_back({DiffLine::Kind::kSame, a[i]});
  return out;
}

std::string DiffText(const std::vector<DiffLine>& diff) {
  std::string out;
  for (const auto& line : diff) {
    out += line.kind == DiffLine::Kind::kSame ? "  " : line.kind == DiffLine::Kind::kRemoved ? "- " : "+ ";
    out += line.text;
    out += '\n';
  }
  return out;
}

}  // namespace kbrun
