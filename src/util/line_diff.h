// A line diff of two texts: the longest common subsequence of their lines, as the
// unchanged, removed and added lines in order (what `diff` would mark ' ', '-', '+').
#pragma once

#include <string>
#include <vector>

namespace kbrun {

struct DiffLine {
  enum class Kind { kSame, kRemoved, kAdded };
  Kind kind;
  std::string text;  // the line without its newline
};

// O(n*m) time and memory in the lines left after the common head and tail are cut off;
// when that product exceeds `max_cells`, the middle is given as all removed then all added.
std::vector<DiffLine> LineDiff(const std::string& before, const std::string& after, size_t max_cells = 4'000'000);

// The diff as unified-style text: one line each, prefixed "  ", "- " or "+ ".
std::string DiffText(const std::vector<DiffLine>& diff);

}  // namespace kbrun
