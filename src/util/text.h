// Text helpers for messages that go to users and into prompts.
#pragma once

#include <optional>
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
// `text` with every byte sequence that is not valid UTF-8 replaced by U+FFFD, so that
// whatever a child process printed can go into a JSON document.
std::string ValidUtf8(std::string_view text);
// `text` with every occurrence of each value (empty ones skipped) replaced by "[redacted]".
std::string RedactValues(std::string_view text, const std::vector<std::string>& values);
// "8G", "512M", "1.5GiB", "4096" (bytes; K, M, G, T are powers of 1024): nullopt if malformed.
std::optional<unsigned long long> ParseByteSize(std::string_view text);
// Bytes as "2.0 GiB", "512 MiB", ...
std::string FormatBytes(unsigned long long bytes);
// Seconds as "1.2 s", "3 min 04 s", ...
std::string FormatDuration(double seconds);

}  // namespace kbrun
