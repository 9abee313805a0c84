#include "batch/sample_record.h"

#include "batch/reflection.h"

namespace kbrun::batch {

using nlohmann::json;

int SampleIndex(int attempt, int sample, int samples_per_attempt) {
  return (attempt - 1) * samples_per_attempt + sample;
}

SampleId MakeSampleId(const std::string& problem, int attempt, int sample, int samples_per_attempt) {
  return {problem, SampleIndex(attempt, sample, samples_per_attempt), attempt, sample};
}

std::string FailureKindFor(const std::string& status, bool success) {
  if (success) return "";
  if (status == "correct") return kKindTooSlow;
  if (status == "incorrect") return kKindIncorrect;
  if (status == "compile_error") return kKindCompile;
  if (status == "timeout") return kKindTimeout;
  if (status == "rejected") return kKindRejected;
  if (status == kStatusNoCode) return kKindNoCode;
  if (status == kStatusLlmError) return kKindLlmError;
  if (status == kStatusInternalError) return kKindInternal;
  return kKindRuntime;
}

namespace {
json SpanJson(const StageSpan& s) {
  if (!s.ran()) return nullptr;
  return {{"start", s.start}, {"end", s.end}, {"seconds", s.end - s.start}};
}

template <typename T>
T Get(const json& j, const char* key, T fallback) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  try {
    return j[key].get<T>();
  } catch (const json::exception&) {
    return fallback;
  }
}
}  // namespace

SampleRecord RecordFromJson(const json& doc) {
  SampleRecord r;
  r.id.problem = Get<std::string>(doc, "problem", "");
  r.id.index = Get<int>(doc, "index", 0);
  r.id.attempt = Get<int>(doc, "attempt", 0);
  r.id.sample = Get<int>(doc, "sample", 0);
  r.status = Get<std::string>(doc, "status", "runtime_error");
  r.correct = Get<bool>(doc, "correct", false);
  r.success = Get<bool>(doc, "success", false);
  r.speedup = Get<double>(doc, "speedup", 0.0);
  r.failure_kind = Get<std::string>(doc, "failure_kind", FailureKindFor(r.status, r.success));
  if (doc.contains("error") && doc["error"].is_object()) {
    r.error_category = Get<std::string>(doc["error"], "category", "");
    r.error_message = Get<std::string>(doc["error"], "message", "");
  }
  r.feedback = Get<std::string>(doc, "feedback", "");
  r.has_code = doc.contains("files") && doc["files"].is_object() && doc["files"].contains("code") &&
               doc["files"]["code"].is_string();
  r.doc = doc;
  return r;
}

SampleRecord MakeRecord(const SampleId& id, const eval::EvalResult* eval_result, const std::string& status,
                        const std::string& message, const SampleExtras& extras) {
  SampleRecord r;
  r.id = id;
  if (eval_result) {
    r.status = eval::StatusName(eval_result->status);
    r.correct = eval_result->correct;
    r.speedup = eval_result->correct ? eval_result->speedup : 0;
    r.error_category = eval_result->error_category;
    r.error_message = eval_result->error_message;
  } else {
    r.status = status;
    r.error_category = extras.error_category.empty() ? status : extras.error_category;
    r.error_message = message;
  }
  r.success = r.correct && r.speedup >= extras.target_speedup;
  r.failure_kind = FailureKindFor(r.status, r.success);
  r.has_code = extras.has_code;
  std::string n = std::to_string(id.index);
  r.doc = {
      {"kbrun_version", KBRUN_VERSION},
      {"problem", id.problem},
      {"index", id.index},
      {"attempt", id.attempt},
      {"sample", id.sample},
      {"status", r.status},
      {"correct", r.correct},
      {"success", r.success},
      {"speedup", r.speedup > 0 ? json(r.speedup) : json(nullptr)},
      {"target_speedup", extras.target_speedup},
      {"failure_kind", r.failure_kind.empty() ? json(nullptr) : json(r.failure_kind)},
      {"error", r.error_category.empty() && r.error_message.empty()
                    ? json(nullptr)
                    : json{{"category", r.error_category}, {"message", r.error_message}}},
      {"files",
       {{"prompt", "prompt_" + n + ".txt"},
        {"response", "response_" + n + ".txt"},
        {"code", r.has_code ? json("code_" + n + ".py") : json(nullptr)}}},
      {"llm", extras.llm},
      {"stages",
       {{"llm", SpanJson(extras.llm_stage)},
        {"compile", SpanJson(extras.compile_stage)},
        {"gpu", SpanJson(extras.gpu_stage)}}},
      {"gpu_lane", extras.gpu_lane >= 0 ? json(extras.gpu_lane) : json(nullptr)},
      {"rerun_after_lane_failure",
       extras.reruns_after_lane_failure.empty() ? json(nullptr) : extras.reruns_after_lane_failure},
      {"eval", eval_result ? eval_result->json : json(nullptr)},
  };
  if (extras.remote_stage.ran()) r.doc["stages"]["remote"] = SpanJson(extras.remote_stage);
  if (!extras.remote.is_null()) r.doc["remote"] = extras.remote;
  // The feedback reads the figures from the document, so it comes last.
  r.feedback = r.success ? "" : FeedbackFor(r, extras.target_speedup);
  r.doc["feedback"] = r.feedback.empty() ? json(nullptr) : json(r.feedback);
  return r;
}

}  // namespace kbrun::batch
