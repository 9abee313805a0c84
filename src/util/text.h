// Text helpers for messages that go to users and into prompts.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kbrun {

std::vector<std::string> SplitLines(std::string_view text);
std::string Trim(std::string_view s);
bool StartsWith(std::string_view s, std::string_view prefix);
bool Contains(std::string_view s, std::string_view needle);
std::string ToLower(std::string_view s);
// At most `max_lines` lines: the first half and the last half, with a marker between.
std::string KeepHeadTailLines(std::string_view text, size_t max_lines);
// Compiler output trimmed to what matters: lines that say "error" and a little context.
std::string ExtractCompilerErrors(std::string_view log, size_t max_lines = 40);
// Seconds as "1.2 s", "3 min 04 s", ...
std::string FormatDuration(double seconds);

}  // namespace kbrun
