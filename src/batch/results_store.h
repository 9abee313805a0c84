// The results tree (docs/RESULTS.md) and every read and write to it.
//
//   results/summary.json       batch state, rewritten atomically on every change
//   results/batch_run.log      one timestamped line per event
//   results/timeline.jsonl     one line per finished stage of a sample (llm, compile, gpu)
//   results/<problem>/prompt_N.txt, response_N.txt (+ response_N.raw, response_N.meta.json),
//                     code_N.py, result_N.json
//   results/<problem>/best_prompt.txt, best_code.py, best_result.json
//
// Files are written with WriteFileAtomic (a crash leaves the old file or the new one,
// never half of one) and lines with AppendLine (O_APPEND), so a batch can be resumed
// after kill -9 and read by `kbrun monitor` while it runs.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "batch/sample_record.h"

namespace kbrun::batch {

namespace fs = std::filesystem;

// JSON text for the results tree. Strings that are not UTF-8 (a candidate's output, a file
// name) never make it throw: their bad bytes become U+FFFD. indent < 0: one line.
std::string JsonText(const nlohmann::json& doc, int indent = 2);

class ResultsStore {
 public:
  explicit ResultsStore(fs::path root);
  ~ResultsStore();
  ResultsStore(const ResultsStore&) = delete;
  ResultsStore& operator=(const ResultsStore&) = delete;

  const fs::path& root() const { return root_; }
  fs::path ProblemDir(const std::string& problem) const { return root_ / problem; }
  fs::path PromptPath(const std::string& problem, int index) const;
  fs::path ResponsePath(const std::string& problem, int index) const;
  fs::path RawResponsePath(const std::string& problem, int index) const;
  fs::path ResponseMetaPath(const std::string& problem, int index) const;
  fs::path CodePath(const std::string& problem, int index) const;
  fs::path ResultPath(const std::string& problem, int index) const;
  fs::path SummaryPath() const { return root_ / "summary.json"; }
  fs::path LogPath() const { return root_ / "batch_run.log"; }
  fs::path TimelinePath() const { return root_ / "timeline.jsonl"; }

  // Every result_N.json of a problem that parses, by index. Unreadable files are skipped
  // (they cannot be half-written, but a user may have edited one).
  std::map<int, SampleRecord> LoadRecords(const std::string& problem) const;
  std::optional<std::string> ReadResponse(const std::string& problem, int index) const;
  std::optional<std::string> ReadPrompt(const std::string& problem, int index) const;
  std::optional<std::string> ReadCode(const std::string& problem, int index) const;

  void WritePrompt(const std::string& problem, int index, const std::string& text) const;
  void WriteResponse(const std::string& problem, int index, const std::string& text) const;
  // Tokens, latency and model of the call that produced response_N.txt, so that a resumed
  // batch still accounts for them. Written before the response itself.
  void WriteResponseMeta(const std::string& problem, int index, const nlohmann::json& meta) const;
  nlohmann::json ReadResponseMeta(const std::string& problem, int index) const;  // {} when missing
  void WriteCode(const std::string& problem, int index, const std::string& code) const;
  void WriteResult(const SampleRecord& record) const;
  // Copies the sample's prompt, code and result to best_*; the caller decides it is the best.
  void WriteBest(const SampleRecord& record) const;

  // "2026-11-24T20:31:23.123Z message" appended to batch_run.log.
  void Log(const std::string& message) const;
  void AppendTimeline(const nlohmann::json& event) const;
  void WriteSummary(const nlohmann::json& summary) const;
  // summary.json when it parses as a JSON object; nullopt when it is missing or damaged.
  std::optional<nlohmann::json> ReadSummary() const;
  // The same, saying which: kMissing, or kDamaged with the reason (unreadable, the JSON
  // parser's error, not an object).
  struct SummaryFile {
    enum class State { kOk, kMissing, kDamaged } state = State::kMissing;
    nlohmann::json doc;
    std::string problem;  // why it is damaged
  };
  SummaryFile LoadSummary() const;

  // Temporary files of atomic writes that a kill -9 interrupted (never read: removing them
  // only frees space). Call before writers start.
  void RemoveStaleTempFiles(const std::string& problem) const;

  // One batch at a time per results folder: an exclusive flock on <root>/.lock, released
  // when the process ends however it ends. Throws std::runtime_error when another holds it.
  void Lock();
  // Writes this process's pid into .lock, for the message of a batch refused by it. Separate
  // from Lock() so that a batch that takes the lock and then refuses to run changes nothing.
  void WriteLockHolder() const;

 private:
  fs::path root_;
  int lock_fd_ = -1;  // held open while the store lives
};

}  // namespace kbrun::batch
