// The client of `kbrun batch --evaluator` against an in-process HTTP server (cpp-httplib)
// playing the service: retries with backoff, 401, 404 of a saved id, refused options; and its
// pure helpers. The real service end to end: remote_evaluator_e2e_test.cc.
#include "batch/remote_evaluator.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>

#include "util/fs.h"

namespace kbrun::batch {
namespace {

using nlohmann::json;

const std::string kToken = "unit-token-42";

// A fake service on 127.0.0.1: the first `post_failures_` POSTs answer `fail_status_`, the first
// `get_failures_` GETs of a known id 503, the next `pending_polls_` "running"; then it behaves.
class FakeService {
 public:
  FakeService() {
    svr_.Post("/v1/evaluations", [this](const httplib::Request& req, httplib::Response& res) {
      if (!Authorized(req, res)) return;
      std::lock_guard<std::mutex> lock(mu_);
      ++posts_;
      if (post_failures_ > 0) {
        --post_failures_;
        res.status = fail_status_;
        res.set_content(R"({"error": "busy"})", "application/json");
        return;
      }
      if (reject_post_) {
        res.status = 400;
        res.set_content(R"({"error": "unknown option 'x'"})", "application/json");
        return;
      }
      last_body_ = json::parse(req.body);
      std::string id = "id" + std::to_string(posts_);
      known_.push_back(id);
      res.status = 202;
      res.set_content(json{{"id", id}}.dump(), "application/json");
    });
    svr_.Get(R"(/v1/evaluations/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      if (!Authorized(req, res)) return;
      std::lock_guard<std::mutex> lock(mu_);
      ++gets_;
      std::string id = req.matches[1];
      if (std::find(known_.begin(), known_.end(), id) == known_.end()) {
        res.status = 404;
        res.set_content(R"({"error": "no evaluation"})", "application/json");
        return;
      }
      if (get_failures_ > 0) {
        --get_failures_;
        res.status = 503;
        res.set_content("down for a moment", "text/plain");
        return;
      }
      if (pending_polls_ > 0) {
        --pending_polls_;
        res.set_content(json{{"id", id}, {"state", "running"}}.dump(), "application/json");
        return;
      }
      json result = {
          {"status", "correct"}, {"compiled", true}, {"correct", true}, {"speedup", 1.5}, {"error", nullptr}};
      res.set_content(json{{"id", id}, {"state", "done"}, {"result", result}}.dump(), "application/json");
    });
    svr_.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
      if (!Authorized(req, res)) return;
      res.set_content("kbrun_serve_queue_length 0\n", "text/plain");
    });
    port_ = svr_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
    while (!svr_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~FakeService() {
    svr_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::mutex mu_;
  int posts_ = 0, gets_ = 0, post_failures_ = 0, get_failures_ = 0, pending_polls_ = 0, fail_status_ = 503;
  bool reject_post_ = false;
  std::vector<std::string> known_;
  json last_body_;
  std::string seen_authorization_;

 private:
  bool Authorized(const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_authorization_ = req.get_header_value("Authorization");
    }
    if (req.get_header_value("Authorization") == "Bearer " + kToken) return true;
    res.status = 401;
    res.set_content(R"({"error": "invalid token"})", "application/json");
    return false;
  }

  httplib::Server svr_;
  std::thread thread_;
  int port_ = 0;
};

RemoteEvaluatorOptions Quick(const std::string& url, const std::string& token = kToken) {
  RemoteEvaluatorOptions o;
  o.url = url + "/";  // a trailing slash is dropped
  o.token = token;
  o.retry_window_s = 5;
  o.backoff_initial_s = 0.05;
  o.backoff_max_s = 0.2;
  o.poll_initial_s = 0.01;
  o.poll_max_s = 0.05;
  o.request_timeout_s = 5;
  return o;
}

TEST(RemoteEvaluator, SubmitsSavesTheIdFirstThenPollsUntilDone) {
  FakeService service;
  service.pending_polls_ = 3;
  RemoteEvaluator remote(Quick(service.url()));
  std::string saved;
  int gets_when_saved = -1;
  RemoteOutcome out = remote.Evaluate("problem src", "code src", {{"perf_trials", 3}}, "", [&](const std::string& id) {
    saved = id;
    std::lock_guard<std::mutex> lock(service.mu_);
    gets_when_saved = service.gets_;
  });
  ASSERT_EQ(out.failure, RemoteFailure::kNone) << out.message;
  EXPECT_EQ(out.id, "id1");
  EXPECT_EQ(saved, "id1");
  EXPECT_EQ(gets_when_saved, 0);  // saved before the first poll
  EXPECT_EQ(service.gets_, 4);
  EXPECT_EQ(out.result["status"], "correct");
  EXPECT_EQ(service.last_body_["problem"], "problem src");
  EXPECT_EQ(service.last_body_["code"], "code src");
  EXPECT_EQ(service.last_body_["options"]["perf_trials"], 3);
  EXPECT_EQ(remote.submissions(), 1);
  eval::EvalResult r = EvalResultFromDocument(out.result);
  EXPECT_EQ(r.status, eval::Status::kCorrect);
  EXPECT_TRUE(r.correct);
  EXPECT_DOUBLE_EQ(r.speedup, 1.5);
}

TEST(RemoteEvaluator, FiveHundredsAreRetriedWithBackoff) {
  FakeService service;
  service.post_failures_ = 2;
  service.get_failures_ = 2;
  RemoteEvaluator remote(Quick(service.url()));
  RemoteOutcome out = remote.Evaluate("p", "c", json::object(), "", nullptr);
  ASSERT_EQ(out.failure, RemoteFailure::kNone) << out.message;
  EXPECT_EQ(service.posts_, 3);
  EXPECT_EQ(remote.submissions(), 1);
  EXPECT_EQ(out.http_requests, 3 + 3);

  service.post_failures_ = 1000;  // never recovers: classified once the window is over
  auto o = Quick(service.url());
  o.retry_window_s = 0.3;
  RemoteEvaluator impatient(o);
  out = impatient.Evaluate("p", "c", json::object(), "", nullptr);
  EXPECT_EQ(out.failure, RemoteFailure::kUnavailable);
  EXPECT_NE(out.message.find("HTTP 503"), std::string::npos) << out.message;
  EXPECT_GE(out.http_requests, 2);
}

TEST(RemoteEvaluator, NoConnectionIsUnavailableAfterTheWindow) {
  std::string url;
  {
    FakeService gone;  // a port that was free a moment ago
    url = gone.url();
  }
  auto o = Quick(url);
  o.retry_window_s = 0.3;
  RemoteEvaluator remote(o);
  RemoteOutcome out = remote.Evaluate("p", "c", json::object(), "", nullptr);
  EXPECT_EQ(out.failure, RemoteFailure::kUnavailable);
  EXPECT_NE(out.message.find("POST /v1/evaluations"), std::string::npos) << out.message;
  EXPECT_EQ(remote.Check().failure, RemoteFailure::kUnavailable);
}

TEST(RemoteEvaluator, WrongTokenIsAuthAndTheTokenIsNeverInTheMessage) {
  FakeService service;
  RemoteEvaluator remote(Quick(service.url(), "wrong-secret-token"));
  RemoteOutcome check = remote.Check();
  EXPECT_EQ(check.failure, RemoteFailure::kAuth);
  EXPECT_EQ(check.http_requests, 1);  // not retried
  EXPECT_NE(check.message.find("refused the token"), std::string::npos) << check.message;
  EXPECT_EQ(check.message.find("wrong-secret-token"), std::string::npos) << check.message;
  EXPECT_EQ(service.seen_authorization_, "Bearer wrong-secret-token");
  RemoteOutcome out = remote.Evaluate("p", "c", json::object(), "", nullptr);
  EXPECT_EQ(out.failure, RemoteFailure::kAuth);
  EXPECT_EQ(RemoteEvaluator(Quick(service.url())).Check().failure, RemoteFailure::kNone);
}

TEST(RemoteEvaluator, ASavedIdIsPolledAndAnUnknownOneSubmittedAgain) {
  FakeService service;
  service.known_ = {"earlier"};
  RemoteEvaluator remote(Quick(service.url()));
  int saved = 0;
  RemoteOutcome out = remote.Evaluate("p", "c", json::object(), "earlier", [&](const std::string&) { ++saved; });
  ASSERT_EQ(out.failure, RemoteFailure::kNone) << out.message;
  EXPECT_EQ(out.id, "earlier");
  EXPECT_EQ(service.posts_, 0);
  EXPECT_EQ(saved, 0);
  EXPECT_FALSE(out.resubmitted);

  out = remote.Evaluate("p", "c", json::object(), "lost-by-the-service", [&](const std::string&) { ++saved; });
  ASSERT_EQ(out.failure, RemoteFailure::kNone) << out.message;
  EXPECT_TRUE(out.resubmitted);
  EXPECT_EQ(service.posts_, 1);
  EXPECT_EQ(saved, 1);
  EXPECT_EQ(out.id, "id1");
}

TEST(RemoteEvaluator, ARefusedEvaluationIsRejectedWithTheServicesReason) {
  FakeService service;
  service.reject_post_ = true;
  RemoteEvaluator remote(Quick(service.url()));
  RemoteOutcome out = remote.Evaluate("p", "c", json::object(), "", nullptr);
  EXPECT_EQ(out.failure, RemoteFailure::kRejected);
  EXPECT_NE(out.message.find("HTTP 400: unknown option 'x'"), std::string::npos) << out.message;
  EXPECT_EQ(service.posts_, 1);  // a 4xx is not retried
}

TEST(RemoteEvaluator, RedactUrlDropsCredentialsQueryAndTrailingSlash) {
  EXPECT_EQ(RedactUrl("http://user:secret@gpu-box:8080/"), "http://gpu-box:8080");
  EXPECT_EQ(RedactUrl("https://gpu-box/kbrun/?token=abc#x"), "https://gpu-box/kbrun");
  EXPECT_EQ(RedactUrl("http://127.0.0.1:9"), "http://127.0.0.1:9");
  EXPECT_EQ(RedactUrl("http://host/a@b"), "http://host/a@b");  // an @ in the path is not a credential
}

TEST(RemoteEvaluator, RequestOptionsCarryWhatTheServiceHonours) {
  eval::EvalOptions o;
  o.correctness_trials = 2;
  o.timing_trials = 7;
  o.warmup_runs = 1;
  o.precision = "bf16";
  o.seed = 9;
  json j = RemoteRequestOptions(o, 0.5);
  EXPECT_EQ(j, (json{{"correct_trials", 2},
                     {"perf_trials", 7},
                     {"warmup", 1},
                     {"precision", "bf16"},
                     {"shapes", "fixed"},
                     {"baselines", json::array({"eager"})},
                     {"target_speedup", 0.5},
                     {"tolerance", "evidence"},
                     {"seed", 9}}));
  o.atol = 1e-3;
  j = RemoteRequestOptions(o, 1);
  EXPECT_FALSE(j.contains("tolerance"));  // atol selects the fixed rule; the service refuses both
  EXPECT_EQ(j["atol"], 1e-3);
}

TEST(RemoteEvaluator, FlagsTheServiceCannotHonourAreRefused) {
  EXPECT_EQ(RefuseUnsupportedFlags({"--samples", "--perf-trials", "--precision", "--seed"}), "");
  std::string m = RefuseUnsupportedFlags({"--samples", "--device", "--allow-library-kernels"});
  EXPECT_NE(m.find("--device, --allow-library-kernels cannot be honoured"), std::string::npos) << m;
}

TEST(RemoteEvaluator, TokenFromFileElseEnvironmentNeverFromTheCommandLine) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-remote-token-");
  WriteFileAtomic(dir / "token", "  tok-from-file\n");
  WriteFileAtomic(dir / "empty", "\n");
  EXPECT_EQ(ReadEvaluatorToken((dir / "token").string()), "tok-from-file");
  EXPECT_THROW(ReadEvaluatorToken((dir / "empty").string()), std::runtime_error);
  EXPECT_THROW(ReadEvaluatorToken((dir / "missing").string()), std::runtime_error);
  const char* before = std::getenv("KBRUN_EVALUATOR_TOKEN");
  std::string saved = before ? before : "";
  setenv("KBRUN_EVALUATOR_TOKEN", " tok-from-env ", 1);
  EXPECT_EQ(ReadEvaluatorToken(""), "tok-from-env");
  unsetenv("KBRUN_EVALUATOR_TOKEN");
  EXPECT_THROW(ReadEvaluatorToken(""), std::runtime_error);
  if (before) setenv("KBRUN_EVALUATOR_TOKEN", saved.c_str(), 1);
  fs::remove_all(dir);
}

TEST(RemoteEvaluator, ADocumentWithoutAKnownStatusIsAnInternalError) {
  eval::EvalResult r = EvalResultFromDocument(json{{"status", "weird"}});
  EXPECT_EQ(r.status, eval::Status::kRuntimeError);
  EXPECT_EQ(r.error_category, "internal_error");
  r = EvalResultFromDocument(
      json{{"status", "incorrect"}, {"correct", false}, {"error", {{"category", "mismatch"}, {"message", "m"}}}});
  EXPECT_EQ(r.status, eval::Status::kIncorrect);
  EXPECT_EQ(r.error_category, "mismatch");
  EXPECT_EQ(r.error_message, "m");
}

}  // namespace
}  // namespace kbrun::batch
