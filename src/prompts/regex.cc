#include "prompts/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdexcept>

#include <fmt/format.h>

namespace kbrun::prompts {

struct Regex::Impl {
  pcre2_code* code = nullptr;
  ~Impl() { pcre2_code_free(code); }
};

Regex Regex::Compile(const std::string& pattern, bool case_insensitive) {
  uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (case_insensitive ? PCRE2_CASELESS : 0);
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &error, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    throw std::invalid_argument(
        fmt::format("bad regular expression at offset {}: {}", offset, reinterpret_cast<const char*>(message)));
  }
  auto impl = std::make_shared<Impl>();
  impl->code = code;
  Regex r;
  r.impl_ = impl;
  r.pattern_ = pattern;
  return r;
}

bool Regex::Search(const std::string& subject) const {
  if (!impl_) return false;
  // Match data is per call: the compiled pattern is shared read-only between threads.
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0, 0, md, nullptr);
  pcre2_match_data_free(md);
  return rc >= 0;
}

}  // namespace kbrun::prompts
