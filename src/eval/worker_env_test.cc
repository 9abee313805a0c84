// The worker's environment: the allow-list, KBRUN_PASS_ENV, secrets kept out, the private
// dir's folders and the one visible GPU.
#include "eval/worker_env.h"

#include <gtest/gtest.h>

namespace kbrun::eval {
namespace {

TEST(WorkerEnv, PassesTheAllowListAndNothingElse) {
  std::map<std::string, std::string> current = {
      {"PATH", "/usr/bin"}, {"CUDA_HOME", "/cuda"}, {"EDITOR", "vi"}, {"LLM_GATEWAY_KEY", "sk-0123456789"}};
  EvalOptions o;
  o.gpu_index = 3;
  o.compile_jobs = 2;
  auto env = WorkerEnvironment(current, o, PythonEnv{}, "/w/eval-1", true);
  EXPECT_EQ(env.at("PATH"), "/usr/bin");
  EXPECT_EQ(env.at("CUDA_HOME"), "/cuda");
  EXPECT_FALSE(env.count("EDITOR"));
  EXPECT_FALSE(env.count("LLM_GATEWAY_KEY"));
  EXPECT_EQ(env.at("HOME"), "/w/eval-1/home");
  EXPECT_EQ(env.at("TMPDIR"), "/w/eval-1/tmp");
  EXPECT_EQ(env.at("TORCH_EXTENSIONS_DIR"), "/w/eval-1/build");
  EXPECT_EQ(env.at("TRITON_HOME"), "/w/eval-1/home");
  EXPECT_EQ(env.at("TRITON_CACHE_DIR"), "/w/eval-1/home/.triton/cache");
  EXPECT_EQ(env.at("TORCHINDUCTOR_COMPILE_THREADS"), "1");
  EXPECT_EQ(env.at("PYTHONDONTWRITEBYTECODE"), "1");
  EXPECT_EQ(env.at("PYTHONUNBUFFERED"), "1");
  EXPECT_EQ(env.at("MAX_JOBS"), "2");
  EXPECT_EQ(env.at("CUDA_VISIBLE_DEVICES"), "3");
  EXPECT_EQ(env.at("HIP_VISIBLE_DEVICES"), "3");
  // The compile phase sees no GPU.
  env = WorkerEnvironment(current, o, PythonEnv{}, "/w/eval-1", false);
  EXPECT_EQ(env.at("CUDA_VISIBLE_DEVICES"), "");
  EXPECT_EQ(env.at("HIP_VISIBLE_DEVICES"), "");
}

TEST(WorkerEnv, PassEnvAddsNamesButNeverSecrets) {
  std::map<std::string, std::string> current = {
      {"KBRUN_PASS_ENV", "FOO, MY_TOKEN,BAR,MISSING"}, {"FOO", "1"}, {"BAR", "2"}, {"MY_TOKEN", "abcdefghij"}};
  auto env = WorkerEnvironment(current, EvalOptions{}, PythonEnv{}, "/w", false);
  EXPECT_EQ(env.at("FOO"), "1");
  EXPECT_EQ(env.at("BAR"), "2");
  EXPECT_FALSE(env.count("MY_TOKEN"));
  EXPECT_FALSE(env.count("MISSING"));
  EXPECT_FALSE(env.count("KBRUN_PASS_ENV"));
}

TEST(WorkerEnv, SecretsByNameAndLongEnoughValue) {
  EXPECT_TRUE(LooksSecret("OPENAI_API_KEY"));
  EXPECT_TRUE(LooksSecret("github_token"));
  EXPECT_TRUE(LooksSecret("DB_PASSWORD"));
  EXPECT_TRUE(LooksSecret("AWS_CREDENTIALS"));
  EXPECT_TRUE(LooksSecret("HTTP_AUTHORIZATION"));
  EXPECT_FALSE(LooksSecret("PATH"));
  auto values = SecretValues({{"API_KEY", "sk-0123456789"}, {"SHORT_TOKEN", "1"}, {"PATH", "/usr/bin/long/enough"}});
  EXPECT_EQ(values, std::vector<std::string>{"sk-0123456789"});
}

}  // namespace
}  // namespace kbrun::eval
