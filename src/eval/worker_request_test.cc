// The request files: the worker's, the checker's, and the build block they and the profiled
// run share.
#include "eval/worker_request.h"

#include <gtest/gtest.h>

namespace kbrun::eval {
namespace {

using nlohmann::json;

TEST(WorkerRequest, BuildBlockFollowsTheOptions) {
  EvalOptions o;
  o.compile_cache_dir = "/tmp/kbrun-cache-test";
  json b = BuildRequest(o, PythonEnv{});
  EXPECT_EQ(b["mode"], "fast");
  EXPECT_EQ(b["cache_dir"], "/tmp/kbrun-cache-test");
  EXPECT_EQ(b["pch"], true);
  EXPECT_TRUE(b["backend"].is_object());
  o.compile_cache = false;
  EXPECT_TRUE(BuildRequest(o, PythonEnv{})["cache_dir"].is_null());
  o.compile_cache = true;
  o.compile_mode = "plain";
  EXPECT_TRUE(BuildRequest(o, PythonEnv{})["cache_dir"].is_null());
  EXPECT_EQ(CompileCacheDir(o), "");
}

TEST(WorkerRequest, WorkerAndCheckerRequests) {
  EvalOptions o;
  o.precision = "fp16";
  o.atol = 0.5;
  o.correctness_trials = 7;
  o.baselines = {"eager", "compile"};
  json w = WorkerRequest("run", o, PythonEnv{}, "cuda", 42, "/w/eval-1", "abc");
  EXPECT_EQ(w["phase"], "run");
  EXPECT_EQ(w["problem"], "/w/eval-1/problem.py");
  EXPECT_EQ(w["code"], "/w/eval-1/candidate.py");
  EXPECT_EQ(w["device"], "cuda");
  EXPECT_EQ(w["precision"], "fp16");
  EXPECT_EQ(w["seed"], 42);
  EXPECT_EQ(w["correctness_trials"], 7);
  EXPECT_EQ(w["atol"], 0.5);
  EXPECT_TRUE(w["rtol"].is_null());
  EXPECT_EQ(w["nonce"], "abc");
  EXPECT_EQ(w["build"], BuildRequest(o, PythonEnv{}));
  EXPECT_FALSE(w.contains("checker"));

  json c = CheckerRequest(w, o, "cuda", 42, "def");
  EXPECT_EQ(c["problem"], w["problem"]);
  EXPECT_EQ(c["atol"], 0.5);
  EXPECT_TRUE(c["rtol"].is_null());
  EXPECT_EQ(c["seed"], 42);
  EXPECT_EQ(c["tolerance"], "evidence");
  EXPECT_EQ(c["shapes"], "fixed");
  EXPECT_EQ(c["baselines"], json({"eager", "compile"}));
  EXPECT_EQ(c["nonce"], "def");
  EXPECT_FALSE(c.contains("code"));  // the checker never sees the candidate
}

}  // namespace
}  // namespace kbrun::eval
