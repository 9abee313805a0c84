// Replay: answers come from files instead of a server, for tests, demos and
// re-running extraction/evaluation on responses already paid for.
#include <chrono>

#include <fmt/format.h>

#include "llm/provider_factories.h"
#include "llm/retry.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::llm {
namespace {

class ReplayProvider : public Provider {
 public:
  explicit ReplayProvider(ProviderConfig config) : config_(std::move(config)) {}

  bool NeedsApiKey() const override { return false; }

  Completion Complete(const CompletionRequest& request) override {
    auto start = std::chrono::steady_clock::now();
    fs::path file = Locate(request.replay_key);
    auto text = ReadFile(file);
    if (!text) throw LlmError(LlmErrorKind::kReplayMissing, fmt::format("replay: cannot read {}", file.string()));
    // A simulated model's think time (benchmarks of the batch pipeline); Ctrl-C cuts it short
    // like a backoff, and the call is then lost like an interrupted HTTP one.
    if (config_.replay_latency_s > 0 && !SleepUnlessCancelled(config_.replay_latency_s)) {
      throw LlmError(LlmErrorKind::kNetwork, "replay: interrupted");
    }
    // Same contract as the HTTP providers: the raw response is on disk before anything else.
    if (!request.raw_response_path.empty()) WriteFileAtomic(request.raw_response_path, *text);
    Completion c;
    c.text = *text;
    c.raw = *text;
    c.model = "replay:" + file.string();
    c.latency_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return c;
  }

 private:
  fs::path Locate(const std::string& key) const {
    const fs::path& source = config_.replay_source;
    if (fs::is_regular_file(source)) return source;  // one response for every request
    if (!fs::is_directory(source)) {
      throw LlmError(LlmErrorKind::kReplayMissing,
                     fmt::format("replay: the source {} is neither a file nor a folder", source.string()));
    }
    auto candidates = ReplayCandidates(source, key);
    for (const auto& candidate : candidates) {
      if (fs::is_regular_file(candidate)) return candidate;
    }
    std::string tried;
    for (const auto& candidate : candidates) tried += (tried.empty() ? "" : ", ") + candidate.string();
    throw LlmError(LlmErrorKind::kReplayMissing,
                   key.empty()
                       ? fmt::format("replay: {} is a folder, but the request has no replay key", source.string())
                       : fmt::format("replay: no response for '{}' (tried {})", key, tried));
  }

  const ProviderConfig config_;
};

}  // namespace

std::vector<fs::path> ReplayCandidates(const fs::path& folder, const std::string& replay_key) {
  std::string key = Trim(replay_key);
  while (!key.empty() && key.front() == '/') key.erase(0, 1);
  while (!key.empty() && key.back() == '/') key.pop_back();
  std::vector<fs::path> out;
  if (key.empty() || key == ".." || StartsWith(key, "../") || Contains(key, "/../") || key.ends_with("/..")) return out;
  out.push_back(folder / (key + ".txt"));
  size_t slash = key.find('/');
  if (slash == std::string::npos) return out;
  // "P/attempt2_sample1": drop trailing "_xxx" parts of the last component one at a time,
  // so that one file can serve every sample of an attempt, then fall back to "P.txt".
  std::string problem = key.substr(0, slash), rest = key.substr(slash + 1);
  for (;;) {
    size_t us = rest.rfind('_');
    size_t last_slash = rest.rfind('/');
    size_t component_start = last_slash == std::string::npos ? 0 : last_slash + 1;
    if (us == std::string::npos || us <= component_start) break;
    rest.erase(us);
    out.push_back(folder / problem / (rest + ".txt"));
  }
  out.push_back(folder / (problem + ".txt"));
  return out;
}

std::unique_ptr<Provider> MakeReplayProvider(const ProviderConfig& config) {
  return std::make_unique<ReplayProvider>(config);
}

}  // namespace kbrun::llm
