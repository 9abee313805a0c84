#include "prompts/extract.h"

#include <fmt/format.h>

#include <cctype>
#include <vector>

#include "util/text.h"

namespace kbrun::prompts {
namespace {

struct Block {
  std::string code;
  bool closed = false;
};

// Leading spaces/tabs removed.
std::string_view LeftTrim(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

// Markdown fences: ``` or ~~~ (3 or more), any indentation (models indent them in lists),
// any info string ("python", "py", none...). A closing fence uses the same character, at
// least as many times, and nothing else. An unclosed last block runs to the end.
std::vector<Block> FencedBlocks(const std::string& text) {
  std::vector<Block> blocks;
  bool inside = false;
  char fence_char = 0;
  size_t fence_len = 0;
  for (std::string line : SplitLines(text)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string_view t = LeftTrim(line);
    size_t run = 0;
    char c = t.empty() ? 0 : t[0];
    if (c == '`' || c == '~') {
      while (run < t.size() && t[run] == c) ++run;
    }
    if (!inside) {
      // "```python print(1)```" on one line is inline code, not a fence.
      if (run >= 3 && !(c == '`' && t.substr(run).find('`') != std::string_view::npos)) {
        inside = true;
        fence_char = c;
        fence_len = run;
        blocks.push_back({});
      }
      continue;
    }
    if (c == fence_char && run >= fence_len && Trim(t.substr(run)).empty()) {
      inside = false;
      blocks.back().closed = true;
      continue;
    }
    blocks.back().code += line;
    blocks.back().code += '\n';
  }
  return blocks;
}

// A line "class ModelNew(...)" / "class ModelNew:" at any indentation.
bool DefinesModelNew(const std::string& code) {
  for (const auto& line : SplitLines(code)) {
    std::string_view t = LeftTrim(line);
    if (!StartsWith(t, "class")) continue;
    t = t.substr(5);
    if (t.empty() || (t[0] != ' ' && t[0] != '\t')) continue;
    t = LeftTrim(t);
    if (!StartsWith(t, "ModelNew")) continue;
    t = t.substr(8);
    if (t.empty() || !(std::isalnum(static_cast<unsigned char>(t[0])) || t[0] == '_')) return true;
  }
  return false;
}

bool LooksLikePythonLine(std::string_view line) {
  for (std::string_view start : {"import ", "from ", "class ", "def ", "@", "#"}) {
    if (StartsWith(line, start)) return true;
  }
  return false;
}

// Reasoning models may put drafts in <think>...</think>; only the answer after it counts.
std::string StripThinking(const std::string& response) {
  std::string text = response;
  for (const char* tag : {"think", "thinking"}) {
    std::string open = fmt::format("<{}>", tag), close = fmt::format("</{}>", tag);
    for (;;) {
      size_t end = text.find(close);
      if (end == std::string::npos) break;
      size_t begin = text.rfind(open, end);
      // A close tag without an open one: the chat template already emitted "<think>".
      text.erase(begin == std::string::npos ? 0 : begin, end + close.size() - (begin == std::string::npos ? 0 : begin));
    }
  }
  return text;
}

ExtractedCode Fail(const std::string& failure, const std::string& reason) {
  ExtractedCode r;
  r.failure = failure;
  r.reason = reason;
  return r;
}

ExtractedCode Ok(std::string code, std::string note = "") {
  ExtractedCode r;
  r.ok = true;
  if (!code.empty() && code.back() != '\n') code += '\n';
  r.code = std::move(code);
  r.note = std::move(note);
  return r;
}

}  // namespace

ExtractedCode ExtractCode(const std::string& response) {
  std::string text = StripThinking(response);
  if (Trim(text).empty()) {
    return Fail("no_code", Trim(response).empty() ? "the response is empty"
                                                  : "the response has only a <think> section and no answer");
  }
  std::vector<Block> blocks = FencedBlocks(text);
  // The last block that defines ModelNew: models restate their final version last.
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
    if (DefinesModelNew(it->code)) {
      return Ok(it->code, it->closed ? "" : "the code block's closing fence is missing (truncated response?)");
    }
  }
  size_t non_empty = 0;
  for (const auto& b : blocks) non_empty += Trim(b.code).empty() ? 0 : 1;
  if (non_empty > 0) {
    return Fail("no_model_new",
                fmt::format("{} code block{} but none defines `class ModelNew`", non_empty, non_empty == 1 ? "" : "s"));
  }
  // No fences: the answer may be bare Python.
  auto lines = SplitLines(text);
  size_t first = 0;
  while (first < lines.size() && !LooksLikePythonLine(lines[first])) ++first;
  if (first < lines.size()) {
    std::string code;
    for (size_t i = first; i < lines.size(); ++i) code += lines[i] + "\n";
    if (DefinesModelNew(code)) return Ok(code, "the response has no code fences: took it as Python");
    return Fail("no_model_new", "the response is unfenced Python that does not define `class ModelNew`");
  }
  return Fail("no_code",
              fmt::format("no code block and no Python in the response ({} characters of prose)", Trim(text).size()));
}

}  // namespace kbrun::prompts
