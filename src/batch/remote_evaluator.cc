#include "batch/remote_evaluator.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "llm/http_client.h"
#include "util/env_options.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::batch {

using nlohmann::json;

namespace {

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Sleeps `seconds` in small steps; false when Ctrl-C came first.
bool SleepUnlessCancelled(double seconds) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (CancelRequested()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return !CancelRequested();
}

// The "error" of a JSON error body, else the body's first line, shortened.
std::string ErrorText(const std::string& body) {
  json doc = json::parse(body, nullptr, false);
  if (doc.is_object() && doc.contains("error") && doc["error"].is_string()) return doc["error"].get<std::string>();
  auto lines = SplitLines(Trim(body));
  std::string first = lines.empty() ? "" : lines[0];
  return first.size() > 200 ? first.substr(0, 200) + "..." : first;
}

}  // namespace

std::string RedactUrl(const std::string& url) {
  std::string out = url;
  size_t cut = out.find_first_of("?#");
  if (cut != std::string::npos) out.erase(cut);
  size_t scheme = out.find("://");
  size_t host_start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t path = out.find('/', host_start);
  size_t at = out.rfind('@', path == std::string::npos ? std::string::npos : path);
  if (at != std::string::npos && at >= host_start) out.erase(host_start, at + 1 - host_start);
  while (out.size() > host_start && out.back() == '/') out.pop_back();
  return out;
}

json RemoteRequestOptions(const eval::EvalOptions& o, double target_speedup) {
  json options = {{"correct_trials", o.correctness_trials},
                  {"perf_trials", o.timing_trials},
                  {"warmup", o.warmup_runs},
                  {"precision", o.precision},
                  {"shapes", o.shapes},
                  {"baselines", o.baselines},
                  {"target_speedup", target_speedup}};
  // atol/rtol select the fixed rule; the service refuses them beside another rule.
  if (o.atol || o.rtol) {
    if (o.atol) options["atol"] = *o.atol;
    if (o.rtol) options["rtol"] = *o.rtol;
  } else {
    options["tolerance"] = o.tolerance;
  }
  if (o.seed) options["seed"] = *o.seed;
  return options;
}

std::string RefuseUnsupportedFlags(const std::vector<std::string>& given) {
  // How and where a candidate is built and run: the service's own flags decide.
  static const std::vector<std::string> kLocalOnly = {"--device",
                                                      "--gpu",
                                                      "--gpus",
                                                      "--backend",
                                                      "--tk-root",
                                                      "--hk-root",
                                                      "--python",
                                                      "--work-dir",
                                                      "--keep-work-dir",
                                                      "--compile-timeout",
                                                      "--run-timeout",
                                                      "--compile-jobs",
                                                      "--compile-mode",
                                                      "--compile-cache",
                                                      "--no-compile-cache",
                                                      "--no-pch",
                                                      "--warm-worker",
                                                      "--memory-limit",
                                                      "--profile",
                                                      "--profile-timeout",
                                                      "--allow-library-kernels",
                                                      "--slurm",
                                                      "--slurm-opts",
                                                      "--slurm-tasks",
                                                      "--slurm-wait",
                                                      "--slurm-poll",
                                                      "--slurm-shard"};
  std::vector<std::string> refused;
  for (const auto& flag : kLocalOnly) {
    if (std::find(given.begin(), given.end(), flag) != given.end()) refused.push_back(flag);
  }
  if (refused.empty()) return "";
  std::string list;
  for (const auto& f : refused) list += (list.empty() ? "" : ", ") + f;
  return fmt::format(
      "--evaluator: {} cannot be honoured by the evaluation service, which compiles and runs with its own flags "
      "(give them to kbrun serve); per evaluation it takes only --correct-trials, --perf-trials, --warmup, "
      "--precision, --shapes, --tolerance, --atol, --rtol, --seed, --baseline and --target-speedup",
      list);
}

std::string ReadEvaluatorToken(const std::string& token_file) {
  if (!token_file.empty()) {
    auto text = ReadFile(token_file);
    if (!text) throw std::runtime_error(fmt::format("--evaluator-token-file {}: cannot read it", token_file));
    std::string token = Trim(*text);
    if (token.empty()) throw std::runtime_error(fmt::format("--evaluator-token-file {}: empty", token_file));
    return token;
  }
  std::string token = Trim(GetEnvOption("KBRUN_EVALUATOR_TOKEN").value_or(""));
  if (token.empty()) {
    throw std::runtime_error(
        "--evaluator needs the service's token: --evaluator-token-file FILE, or the environment variable "
        "KBRUN_EVALUATOR_TOKEN (never on the command line)");
  }
  return token;
}

eval::EvalResult EvalResultFromDocument(const json& doc) {
  eval::EvalResult r;
  r.json = doc;
  auto status =
      doc.is_object() && doc["status"].is_string() ? eval::ParseStatus(doc["status"].get<std::string>()) : std::nullopt;
  if (!status) {
    r.status = eval::Status::kRuntimeError;
    r.error_category = "internal_error";
    r.error_message = "the evaluation service answered a result without a known status";
    return r;
  }
  r.status = *status;
  r.compiled = doc.value("compiled", false);
  r.correct = doc.value("correct", false) && r.status == eval::Status::kCorrect;
  r.speedup = doc.contains("speedup") && doc["speedup"].is_number() ? doc["speedup"].get<double>() : 0;
  if (doc.contains("error") && doc["error"].is_object()) {
    r.error_category = doc["error"].value("category", "");
    r.error_message = doc["error"].value("message", "");
  }
  return r;
}

struct RemoteEvaluator::Reply {
  RemoteFailure failure = RemoteFailure::kNone;
  long status = 0;
  std::string body, message;
  int requests = 0;
};

RemoteEvaluator::RemoteEvaluator(RemoteEvaluatorOptions options) : o_(std::move(options)) {
  base_ = o_.url;
  while (!base_.empty() && base_.back() == '/') base_.pop_back();
  display_url_ = RedactUrl(base_);
}

// One request, retried with backoff while the failure is transient (no connection, timeout,
// 5xx, 429) and the retry window lasts. 401/403 is kAuth; any other answer is returned.
RemoteEvaluator::Reply RemoteEvaluator::Request(bool post, const std::string& path, const std::string& body,
                                                double retry_window_s) const {
  llm::HttpRequest request;
  request.url = base_ + path;
  request.headers = {"Authorization: Bearer " + o_.token, "Accept: application/json"};
  if (post) request.headers.push_back("Content-Type: application/json");
  request.body = body;
  request.connect_timeout_s = std::min(10.0, o_.request_timeout_s);
  request.total_timeout_s = o_.request_timeout_s;
  Reply reply;
  double start = Now(), backoff = o_.backoff_initial_s;
  while (true) {
    if (CancelRequested()) {
      reply.failure = RemoteFailure::kCancelled;
      reply.message = "interrupted";
      return reply;
    }
    llm::HttpResponse r = post ? llm::HttpPost(request) : llm::HttpGet(request);
    ++reply.requests;
    std::string what;
    if (r.interrupted) {
      reply.failure = RemoteFailure::kCancelled;
      reply.message = "interrupted";
      return reply;
    }
    if (!r.transport_ok) {
      what = r.transport_error;
    } else if (r.status == 401 || r.status == 403) {
      reply.failure = RemoteFailure::kAuth;
      reply.status = r.status;
      reply.message = fmt::format(
          "the evaluation service at {} refused the token (HTTP {}: {}); check "
          "--evaluator-token-file or KBRUN_EVALUATOR_TOKEN",
          display_url_, r.status, ErrorText(r.body));
      return reply;
    } else if (r.status >= 500 || r.status == 429 || r.status == 408) {
      what = fmt::format("HTTP {}: {}", r.status, ErrorText(r.body));
    } else {
      reply.status = r.status;
      reply.body = std::move(r.body);
      return reply;
    }
    // Transient: try again while the window lasts.
    double elapsed = Now() - start;
    if (elapsed + backoff > retry_window_s) {
      reply.failure = RemoteFailure::kUnavailable;
      reply.message = fmt::format("the evaluation service at {} failed {} {} {} time{} over {} (last: {})",
                                  display_url_, post ? "POST" : "GET", path, reply.requests,
                                  reply.requests == 1 ? "" : "s", FormatDuration(elapsed), what);
      return reply;
    }
    if (!SleepUnlessCancelled(backoff)) continue;  // the loop's top reports the cancel
    backoff = std::min(backoff * 2, o_.backoff_max_s);
  }
}

RemoteOutcome RemoteEvaluator::Check() const {
  RemoteOutcome out;
  Reply r = Request(false, "/metrics", "", std::min(o_.retry_window_s, 10.0));
  out.http_requests = r.requests;
  out.failure = r.failure;
  out.message = r.message;
  if (r.failure == RemoteFailure::kNone && r.status != 200) {
    out.failure = RemoteFailure::kRejected;
    out.message = fmt::format("{}/metrics answered HTTP {} ({}): is it a kbrun serve service?", display_url_, r.status,
                              ErrorText(r.body));
  }
  return out;
}

RemoteOutcome RemoteEvaluator::Evaluate(const std::string& problem, const std::string& code, const json& options,
                                        const std::string& saved_id,
                                        const std::function<void(const std::string&)>& on_submitted) const {
  RemoteOutcome out;
  auto fail = [&](RemoteFailure failure, const std::string& message) {
    out.failure = failure;
    out.message = message;
    return out;
  };
  std::string id = saved_id;
  bool submitted_here = false;
  while (true) {
    if (id.empty()) {
      json body = {{"problem", problem}, {"code", code}, {"options", options}};
      Reply r = Request(true, "/v1/evaluations", body.dump(), o_.retry_window_s);
      out.http_requests += r.requests;
      if (r.failure != RemoteFailure::kNone) return fail(r.failure, r.message);
      if (r.status != 202) {
        return fail(RemoteFailure::kRejected, fmt::format("the evaluation service at {} refused the evaluation "
                                                          "(HTTP {}: {})",
                                                          display_url_, r.status, ErrorText(r.body)));
      }
      json doc = json::parse(r.body, nullptr, false);
      if (!doc.is_object() || !doc["id"].is_string() || doc["id"].get<std::string>().empty()) {
        return fail(RemoteFailure::kRejected, fmt::format("the evaluation service at {} answered 202 without an id: {}",
                                                          display_url_, ErrorText(r.body)));
      }
      id = doc["id"].get<std::string>();
      submitted_here = true;
      ++submissions_;
      out.id = id;
      if (on_submitted) on_submitted(id);
    }
    out.id = id;
    double poll = o_.poll_initial_s;
    bool unknown = false;
    while (true) {
      Reply r = Request(false, "/v1/evaluations/" + id, "", o_.retry_window_s);
      out.http_requests += r.requests;
      if (r.failure != RemoteFailure::kNone) return fail(r.failure, r.message);
      if (r.status == 404 && !submitted_here) {
        unknown = true;  // the service no longer has it (another state dir): submit it again
        break;
      }
      if (r.status != 200) {
        return fail(RemoteFailure::kRejected, fmt::format("GET {}/v1/evaluations/{} answered HTTP {} ({})",
                                                          display_url_, id, r.status, ErrorText(r.body)));
      }
      json doc = json::parse(r.body, nullptr, false);
      std::string state = doc.is_object() && doc["state"].is_string() ? doc["state"].get<std::string>() : "";
      if (state == "done") {
        if (!doc.contains("result") || !doc["result"].is_object()) {
          return fail(RemoteFailure::kRejected,
                      fmt::format("evaluation {} is done but its answer holds no result document", id));
        }
        out.result = doc["result"];
        return out;
      }
      if (state != "queued" && state != "running") {
        return fail(RemoteFailure::kRejected,
                    fmt::format("evaluation {}: unexpected answer: {}", id, ErrorText(r.body)));
      }
      if (!SleepUnlessCancelled(poll)) return fail(RemoteFailure::kCancelled, "interrupted");
      poll = std::min(poll * 2, o_.poll_max_s);
    }
    if (unknown) {
      out.resubmitted = true;
      id.clear();
    }
  }
}

}  // namespace kbrun::batch
