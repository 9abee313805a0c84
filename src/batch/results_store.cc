#include "batch/results_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <regex>
#include <stdexcept>

#include <fmt/format.h>

#include "batch/clock.h"
#include "util/fs.h"

namespace kbrun::batch {

using nlohmann::json;

std::string JsonText(const json& doc, int indent) {
  return doc.dump(indent, ' ', false, json::error_handler_t::replace);
}

ResultsStore::ResultsStore(fs::path root) : root_(std::move(root)) {}

ResultsStore::~ResultsStore() {
  if (lock_fd_ >= 0) close(lock_fd_);
}

void ResultsStore::Lock() {
  fs::create_directories(root_);
  fs::path path = root_ / ".lock";
  lock_fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) throw std::runtime_error("cannot open " + path.string());
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    std::string holder = ReadFile(path).value_or("");
    close(lock_fd_);
    lock_fd_ = -1;
    throw std::runtime_error(fmt::format("another kbrun batch{} is using {}: wait for it, or stop it first",
                                         holder.empty() ? "" : " (pid " + holder + ")", root_.string()));
  }
}

void ResultsStore::WriteLockHolder() const {
  if (lock_fd_ < 0) return;
  std::string pid = std::to_string(getpid());
  if (ftruncate(lock_fd_, 0) == 0 && write(lock_fd_, pid.data(), pid.size()) < 0) {
    // Only informative: the lock itself is what matters.
  }
}

void ResultsStore::RemoveStaleTempFiles(const std::string& problem) const {
  std::error_code ec;
  for (const fs::path& dir : {root_, ProblemDir(problem)}) {
    if (!fs::is_directory(dir, ec)) continue;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.path().filename().string().find(".tmp-") != std::string::npos) fs::remove(entry.path(), ec);
    }
  }
}

fs::path ResultsStore::PromptPath(const std::string& problem, int index) const {
  return ProblemDir(problem) / fmt::format("prompt_{}.txt", index);
}
fs::path ResultsStore::ResponsePath(const std::string& problem, int index) const {
  return ProblemDir(problem) / fmt::format("response_{}.txt", index);
}
fs::path ResultsStore::RawResponsePath(const std::string& problem, int index) const {
  return ProblemDir(problem) / fmt::format("response_{}.raw", index);
}
fs::path ResultsStore::ResponseMetaPath(const std::string& problem, int index) const {
  return ProblemDir(problem) / fmt::format("response_{}.meta.json", index);
}
fs::path ResultsStore::CodePath(const std::string& problem, int index) const {
  return ProblemDir(problem) / fmt::format("code_{}.py", index);
}
fs::path ResultsStore::ResultPath(const std::string& problem, int index) const {
  return ProblemDir(problem) / fmt::format("result_{}.json", index);
}

std::map<int, SampleRecord> ResultsStore::LoadRecords(const std::string& problem) const {
  static const std::regex result_file(R"(^result_(\d+)\.json$)");
  std::map<int, SampleRecord> records;
  std::error_code ec;
  if (!fs::is_directory(ProblemDir(problem), ec)) return records;
  for (const auto& entry : fs::directory_iterator(ProblemDir(problem), ec)) {
    std::smatch m;
    std::string name = entry.path().filename().string();
    if (!std::regex_match(name, m, result_file)) continue;
    auto text = ReadFile(entry.path());
    if (!text) continue;
    auto doc = json::parse(*text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) continue;
    SampleRecord r = RecordFromJson(doc);
    r.id.index = std::stoi(m[1].str());  // the file name is authoritative
    if (r.id.problem.empty()) r.id.problem = problem;
    records[r.id.index] = std::move(r);
  }
  return records;
}

std::optional<std::string> ResultsStore::ReadResponse(const std::string& problem, int index) const {
  return ReadFile(ResponsePath(problem, index));
}
std::optional<std::string> ResultsStore::ReadPrompt(const std::string& problem, int index) const {
  return ReadFile(PromptPath(problem, index));
}
std::optional<std::string> ResultsStore::ReadCode(const std::string& problem, int index) const {
  return ReadFile(CodePath(problem, index));
}

void ResultsStore::WritePrompt(const std::string& problem, int index, const std::string& text) const {
  WriteFileAtomic(PromptPath(problem, index), text);
}
void ResultsStore::WriteResponse(const std::string& problem, int index, const std::string& text) const {
  WriteFileAtomic(ResponsePath(problem, index), text);
}
void ResultsStore::WriteResponseMeta(const std::string& problem, int index, const json& meta) const {
  WriteFileAtomic(ResponseMetaPath(problem, index), JsonText(meta) + "\n");
}
json ResultsStore::ReadResponseMeta(const std::string& problem, int index) const {
  auto text = ReadFile(ResponseMetaPath(problem, index));
  json meta = text ? json::parse(*text, nullptr, false) : json::object();
  return meta.is_object() ? meta : json::object();
}
void ResultsStore::WriteCode(const std::string& problem, int index, const std::string& code) const {
  WriteFileAtomic(CodePath(problem, index), code);
}
void ResultsStore::WriteResult(const SampleRecord& record) const {
  WriteFileAtomic(ResultPath(record.id.problem, record.id.index), JsonText(record.doc) + "\n");
}

void ResultsStore::WriteBest(const SampleRecord& record) const {
  const std::string& p = record.id.problem;
  fs::path dir = ProblemDir(p);
  if (auto prompt = ReadPrompt(p, record.id.index)) WriteFileAtomic(dir / "best_prompt.txt", *prompt);
  if (auto code = record.has_code ? ReadCode(p, record.id.index) : std::nullopt) {
    WriteFileAtomic(dir / "best_code.py", *code);
  }
  // Written last: best_result.json names the sample the other two files came from.
  WriteFileAtomic(dir / "best_result.json", JsonText(record.doc) + "\n");
}

void ResultsStore::Log(const std::string& message) const { AppendLine(LogPath(), IsoTime(NowUnix()) + " " + message); }

void ResultsStore::AppendTimeline(const json& event) const { AppendLine(TimelinePath(), JsonText(event, -1)); }

void ResultsStore::WriteSummary(const json& summary) const { WriteFileAtomic(SummaryPath(), JsonText(summary) + "\n"); }

std::optional<json> ResultsStore::ReadSummary() const {
  SummaryFile file = LoadSummary();
  if (file.state != SummaryFile::State::kOk) return std::nullopt;
  return file.doc;
}

ResultsStore::SummaryFile ResultsStore::LoadSummary() const {
  SummaryFile file;
  std::error_code ec;
  if (!fs::exists(SummaryPath(), ec)) return file;
  file.state = SummaryFile::State::kDamaged;
  auto text = ReadFile(SummaryPath());
  if (!text) {
    file.problem = "cannot be read";
    return file;
  }
  try {
    file.doc = json::parse(*text);
  } catch (const json::parse_error& e) {
    file.problem = fmt::format("is not valid JSON ({} bytes): {}", text->size(), e.what());
    return file;
  }
  if (!file.doc.is_object()) {
    file.problem = "is not a JSON object";
    return file;
  }
  file.state = SummaryFile::State::kOk;
  return file;
}

}  // namespace kbrun::batch
