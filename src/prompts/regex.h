// Regular expressions with Python `re` syntax, through PCRE2 (the two agree on
// everything prompt patterns use: alternation, classes, groups, (?P<name>...)).
#pragma once

#include <memory>
#include <string>

namespace kbrun::prompts {

class Regex {
 public:
  // Throws std::invalid_argument with PCRE2's message and the offset of the error.
  static Regex Compile(const std::string& pattern, bool case_insensitive);
  // Unanchored, like Python's re.search. Thread-safe.
  bool Search(const std::string& subject) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
  std::string pattern_;
};

}  // namespace kbrun::prompts
