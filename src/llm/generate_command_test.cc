// `kbrun generate` end to end: the real binary against the fake LLM server.
#include <gtest/gtest.h>

#include "llm/fake_server_test_util.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace kbrun {
namespace {

using nlohmann::json;
using test_util::FakeLlmServer;

const fs::path kTests = KBRUN_TEST_DATA_DIR;
const fs::path kPrompts = kTests.parent_path() / "prompts";
constexpr const char* kCode = "import torch\nclass ModelNew(torch.nn.Module):\n    pass\n";

// Runs kbrun with a clean environment: nothing from the developer's LLM_* variables leaks in.
ProcessResult Kbrun(const std::vector<std::string>& args, std::map<std::string, std::string> env, const fs::path& cwd) {
  ProcessSpec spec;
  spec.argv = {KBRUN_BINARY};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  env["KBRUN_GPU_NAME"] = "Test GPU 9000";
  spec.env = env;
  spec.cwd = cwd.string();
  spec.timeout_s = 60;
  return RunProcess(spec);
}

std::map<std::string, std::string> ServerEnv(const FakeLlmServer& server) {
  return {{"LLM_BASE_URL", server.base_url()}, {"LLM_GATEWAY_KEY", "test-key"}, {"LLM_MODEL", "test-model"}};
}

std::vector<std::string> GenerateArgs(const fs::path& problem, const fs::path& output) {
  return {"generate",      "--problem",     problem.string(),  "--output",
          output.string(), "--prompts-dir", kPrompts.string(), "--verbose"};
}

TEST(GenerateCommand, WritesCodeAndRawResponse) {
  FakeLlmServer server(json::array({{{"match", "x * self.alpha + y"},
                                     {"response_text", std::string("Here:\n```python\n") + kCode + "```\n"},
                                     {"usage", {{"prompt_tokens", 123}, {"completion_tokens", 45}}}}})
                           .dump());
  fs::path out = server.dir() / "out" / "code.py";
  auto r = Kbrun(GenerateArgs(kTests / "problems" / "1_ScaleAdd.py", out), ServerEnv(server), server.dir());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ReadFile(out).value_or(""), kCode);
  json raw = json::parse(ReadFile(out.string() + ".response.txt").value_or("null"));
  EXPECT_TRUE(raw.contains("choices")) << raw.dump();
  // --verbose says which prompt and why, latency and tokens.
  EXPECT_NE(r.output.find("generic.txt"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("default_prompt"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("123 prompt + 45 completion"), std::string::npos) << r.output;

  auto requests = server.Requests();
  ASSERT_EQ(requests.size(), 1u);
  std::string prompt = requests[0]["prompt"];
  EXPECT_NE(prompt.find("Test GPU 9000"), std::string::npos);
  EXPECT_NE(prompt.find("1_ScaleAdd"), std::string::npos);
  EXPECT_EQ(requests[0]["body"]["model"], "test-model");
}

TEST(GenerateCommand, ResponseWithoutCodeExitsTwoAndKeepsTheResponse) {
  FakeLlmServer server(json::array({{{"response_text", "Sorry, I cannot write this kernel."}}}).dump());
  fs::path out = server.dir() / "code.py";
  fs::path response = server.dir() / "kept" / "llm_response.txt";
  auto args = GenerateArgs(kTests / "problems" / "1_ScaleAdd.py", out);
  args.insert(args.end(), {"--response-file", response.string()});
  auto r = Kbrun(args, ServerEnv(server), server.dir());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("no_code"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_NE(ReadFile(response).value_or("").find("Sorry, I cannot"), std::string::npos);
}

TEST(GenerateCommand, LlmErrorExitsThree) {
  FakeLlmServer server(json::array({{{"status", 401}, {"body", R"({"error":{"message":"bad key"}})"}}}).dump());
  auto r = Kbrun(GenerateArgs(kTests / "problems" / "1_ScaleAdd.py", server.dir() / "code.py"), ServerEnv(server),
                 server.dir());
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("auth"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("LLM_GATEWAY_KEY"), std::string::npos) << r.output;
  EXPECT_EQ(server.Requests().size(), 1u);
}

TEST(GenerateCommand, MalformedResponseExitsThreeAndKeepsTheRawBody) {
  FakeLlmServer server(json::array({{{"body", "<html>gateway hiccup</html>"}}}).dump());
  fs::path out = server.dir() / "code.py";
  auto r = Kbrun(GenerateArgs(kTests / "problems" / "1_ScaleAdd.py", out), ServerEnv(server), server.dir());
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("malformed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("raw response kept"), std::string::npos) << r.output;
  EXPECT_EQ(ReadFile(out.string() + ".response.txt").value_or(""), "<html>gateway hiccup</html>");
  EXPECT_FALSE(fs::exists(out));
}

TEST(GenerateCommand, MissingKeyExitsThreeWithoutARequest) {
  FakeLlmServer server("[]");
  auto env = ServerEnv(server);
  env.erase("LLM_GATEWAY_KEY");
  auto r = Kbrun(GenerateArgs(kTests / "problems" / "1_ScaleAdd.py", server.dir() / "code.py"), env, server.dir());
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("no_key"), std::string::npos) << r.output;
  EXPECT_TRUE(server.Requests().empty());
}

TEST(GenerateCommand, ReplayAndPromptChoiceByName) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-generate-test-");
  fs::copy_file(kTests / "problems" / "1_ScaleAdd.py", dir / "19_ReLU.py");
  WriteFileAtomic(dir / "responses" / "19_ReLU.txt", std::string("```python\n") + kCode + "```");
  auto args = GenerateArgs(dir / "19_ReLU.py", dir / "code.py");
  args.insert(args.end(), {"--replay", (dir / "responses").string()});
  auto r = Kbrun(args, {}, dir);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ReadFile(dir / "code.py").value_or(""), kCode);
  EXPECT_NE(r.output.find("elementwise_bf16.txt"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("matched '19_ReLU'"), std::string::npos) << r.output;
  // No --backend: detected from the machine (AMD's compute driver or not).
  std::string detected = fs::exists("/dev/kfd") ? "backend: hip (detected)" : "backend: cuda (detected)";
  EXPECT_NE(r.output.find(detected), std::string::npos) << r.output;
  // A named backend picks its own prompt set.
  args.insert(args.end(), {"--backend", "hip", "--dry-run"});
  auto hip = Kbrun(args, {}, dir);
  EXPECT_EQ(hip.exit_code, 0) << hip.output;
  EXPECT_NE(hip.output.find("backend: hip\n"), std::string::npos) << hip.output;
  EXPECT_NE(hip.output.find("elementwise_bf16_hip.txt"), std::string::npos) << hip.output;
  fs::remove_all(dir);
}

TEST(GenerateCommand, UsageAndConfigErrors) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-generate-test-");
  fs::path problem = kTests / "problems" / "1_ScaleAdd.py";
  auto missing =
      Kbrun({"generate", "--problem", (dir / "nope.py").string(), "--output", (dir / "o.py").string()}, {}, dir);
  EXPECT_EQ(missing.exit_code, 64) << missing.output;

  WriteFileAtomic(dir / "bad.json", R"json({"default_prompt": "x.txt", "patterns": {"relu(": "x.txt"}})json");
  WriteFileAtomic(dir / "x.txt", "{{problem_source}}");
  auto bad = Kbrun({"generate", "--problem", problem.string(), "--output", (dir / "o.py").string(), "--prompt-config",
                    (dir / "bad.json").string()},
                   {}, dir);
  EXPECT_EQ(bad.exit_code, 78) << bad.output;
  EXPECT_NE(bad.output.find("bad.json"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("patterns.relu("), std::string::npos) << bad.output;

  WriteFileAtomic(dir / "typo.txt", "{{problem_sauce}}");
  auto typo = Kbrun({"generate", "--problem", problem.string(), "--output", (dir / "o.py").string(), "--prompt",
                     (dir / "typo.txt").string(), "--dry-run"},
                    {}, dir);
  EXPECT_EQ(typo.exit_code, 78) << typo.output;
  EXPECT_NE(typo.output.find("problem_sauce"), std::string::npos) << typo.output;

  auto env = Kbrun({"generate", "--problem", problem.string(), "--output", (dir / "o.py").string(), "--prompts-dir",
                    kPrompts.string()},
                   {{"LLM_TEMPERATURE", "hot"}}, dir);
  EXPECT_EQ(env.exit_code, 78) << env.output;
  EXPECT_NE(env.output.find("LLM_TEMPERATURE"), std::string::npos) << env.output;
  fs::remove_all(dir);
}

TEST(GenerateCommand, HelpDocumentsFlagsAndEnvironment) {
  auto r = Kbrun({"generate", "--help"}, {}, fs::temp_directory_path());
  EXPECT_EQ(r.exit_code, 0);
  for (const char* word : {"--problem",
                           "--output",
                           "--prompt",
                           "--response-file",
                           "--model",
                           "--provider",
                           "--base-url",
                           "--temperature",
                           "--max-tokens",
                           "--reasoning-effort",
                           "--header",
                           "--llm-config",
                           "--replay",
                           "--verbose",
                           "LLM_GATEWAY_KEY",
                           "OPENAI_API_KEY",
                           "ANTHROPIC_API_KEY",
                           "LLM_BASE_URL",
                           "LLM_MODEL",
                           "LLM_PROVIDER",
                           "LLM_TEMPERATURE",
                           "LLM_MAX_TOKENS",
                           "LLM_REASONING_EFFORT"}) {
    EXPECT_NE(r.output.find(word), std::string::npos) << word;
  }
}

}  // namespace
}  // namespace kbrun
