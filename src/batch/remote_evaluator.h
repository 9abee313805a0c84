// `kbrun batch --evaluator URL` (docs/SCALING.md "A remote evaluator"): the compile and run of
// each sample go to a `kbrun serve` service (docs/SERVE.md) instead of this host's pools and
// lanes. The client side only: POST /v1/evaluations, then GET /v1/evaluations/<id> with backoff
// until done, over libcurl (llm/http_client.h). The scheduler saves the id beside the sample
// before polling, so that a resumed batch polls it again instead of submitting twice.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/evaluation.h"

namespace kbrun::batch {

struct RemoteEvaluatorOptions {
  std::string url;    // the service's base URL, e.g. http://gpu-box:8080 (a trailing / is dropped)
  std::string token;  // its bearer token: never logged, never written to the results tree
  // Transient failures (no connection, a timeout, 5xx, 429) of one request are retried with
  // backoff for this long before the sample is recorded as evaluator_unavailable.
  double retry_window_s = 120;
  double backoff_initial_s = 0.5, backoff_max_s = 15;
  // Polls of a pending evaluation: from poll_initial_s, doubling to poll_max_s.
  double poll_initial_s = 0.2, poll_max_s = 5;
  double request_timeout_s = 60;  // one HTTP request
};

// Error categories of a sample the service could not evaluate (its status is internal_error:
// no verdict on the candidate). evaluator_unavailable is retried by a resumed batch.
inline constexpr const char* kCategoryEvaluatorUnavailable = "evaluator_unavailable";
inline constexpr const char* kCategoryEvaluatorRejected = "evaluator_rejected";

enum class RemoteFailure {
  kNone,
  kAuth,         // 401/403: the token is wrong; the batch stops
  kUnavailable,  // transient failures outlasted the retry window
  kRejected,     // the service refused this evaluation (400, 413, ...): retrying will not help
  kCancelled,    // Ctrl-C
};

struct RemoteOutcome {
  RemoteFailure failure = RemoteFailure::kNone;
  std::string message;       // why, when failed (never holds the token)
  std::string id;            // the service's id, once one was given
  bool resubmitted = false;  // a saved id was unknown to the service (its state dir lost it)
  nlohmann::json result;     // done: the result document (docs/RESULT_SCHEMA.md)
  int http_requests = 0;
};

// The URL without credentials (user:password@), query or fragment: what logs, summary.json
// and the report show.
std::string RedactUrl(const std::string& url);

// The eval options the service can set per evaluation (docs/SERVE.md "options"), from the
// batch's: trials, warm-up, precision, shapes, tolerance (atol/rtol), seed, baselines and
// target_speedup. Everything else is the service's own flags.
nlohmann::json RemoteRequestOptions(const eval::EvalOptions& options, double target_speedup);

// Flags of `kbrun batch` that change how a candidate is compiled or run on this host, which a
// service evaluating with its own flags cannot honour: given with --evaluator, the batch is
// refused (exit 64). `given` holds the long names of the flags on the command line ("--device").
// Returns the error message, empty when none is given.
std::string RefuseUnsupportedFlags(const std::vector<std::string>& given);

// The token: the trimmed content of `token_file` when given, else of the environment variable
// KBRUN_EVALUATOR_TOKEN. Throws std::runtime_error (with the file's name, never its content)
// when neither gives a non-empty token.
std::string ReadEvaluatorToken(const std::string& token_file);

// The service's result document as the EvalResult a local eval::Run returns (status, verdict,
// speedup, error; `json` the document itself). A document without a known status is an
// internal_error of the evaluator.
eval::EvalResult EvalResultFromDocument(const nlohmann::json& doc);

class RemoteEvaluator {
 public:
  explicit RemoteEvaluator(RemoteEvaluatorOptions options);

  const std::string& display_url() const { return display_url_; }
  const RemoteEvaluatorOptions& options() const { return o_; }

  // One authenticated GET /metrics, retried for up to 10 s: kNone when the service answers,
  // kAuth when it refuses the token, kUnavailable when it cannot be reached.
  RemoteOutcome Check() const;

  // Evaluates `code` against `problem` (their sources) with `options` (RemoteRequestOptions).
  // With `saved_id`, polls that evaluation first (submitted by an earlier run); an id the
  // service does not know (404) is submitted again. `on_submitted(id)` runs after the 202
  // and before the first poll (the caller saves the id there). Blocks until done or failed.
  RemoteOutcome Evaluate(const std::string& problem, const std::string& code, const nlohmann::json& options,
                         const std::string& saved_id,
                         const std::function<void(const std::string&)>& on_submitted) const;

  // POSTs accepted (202) by this evaluator so far.
  int submissions() const { return submissions_.load(); }

 private:
  struct Reply;
  Reply Request(bool post, const std::string& path, const std::string& body, double retry_window_s) const;

  RemoteEvaluatorOptions o_;
  std::string base_, display_url_;
  mutable std::atomic<int> submissions_{0};
};

}  // namespace kbrun::batch
