// prompts/config.json: pattern selection, backend sections, hints, errors.
#include "prompts/prompt_config.h"

#include <gtest/gtest.h>

#include "util/fs.h"

namespace kbrun::prompts {
namespace {

class PromptConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeUniqueDir(fs::temp_directory_path(), "kbrun-promptconfig-test-");
    for (const char* name : {"elementwise_bf16.txt", "gemm_cublas.txt", "gemm_tk.txt", "a.txt", "b.txt"}) {
      WriteFileAtomic(dir_ / name, name);
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path Config(const std::string& json) {
    WriteFileAtomic(dir_ / "config.json", json);
    return dir_ / "config.json";
  }
  std::string LoadError(const std::string& json) {
    fs::path path = Config(json);
    try {
      PromptConfig::Load(path);
    } catch (const std::runtime_error& e) {
      std::string message = e.what();
      EXPECT_NE(message.find(path.string()), std::string::npos) << "error does not name the file: " << message;
      return message;
    }
    ADD_FAILURE() << "no error for " << json;
    return "";
  }

  fs::path dir_;
};

constexpr const char* kExample = R"({
  "default_prompt": "elementwise_bf16.txt",
  "patterns": { "relu|sigmoid|tanh": "elementwise_bf16.txt", "matmul|matrix_multiplication|gemm": "gemm_cublas.txt" },
  "reflection_hints": { "PERFORMANCE TOO SLOW": ["hint1", "hint2"], "Compile error": ["hint1"] }
})";

TEST_F(PromptConfigTest, ExampleConfigSelectsByProblemName) {
  PromptConfig c = PromptConfig::Load(Config(kExample));
  PromptChoice relu = c.Select("19_ReLU");  // case-insensitive: "relu" matches "ReLU"
  EXPECT_EQ(relu.template_path, dir_ / "elementwise_bf16.txt");
  EXPECT_NE(relu.reason.find("relu|sigmoid|tanh"), std::string::npos) << relu.reason;
  EXPECT_NE(relu.reason.find("19_ReLU"), std::string::npos) << relu.reason;
  EXPECT_EQ(c.Select("1_Square_matrix_multiplication_").template_path, dir_ / "gemm_cublas.txt");
  EXPECT_EQ(c.Select("6_Matmul_with_large_K_dimension_").template_path, dir_ / "gemm_cublas.txt");
  PromptChoice other = c.Select("23_Softmax");
  EXPECT_EQ(other.template_path, dir_ / "elementwise_bf16.txt");
  EXPECT_NE(other.reason.find("default_prompt"), std::string::npos);
}

TEST_F(PromptConfigTest, FirstMatchInFileOrderWins) {
  PromptConfig relu_first =
      PromptConfig::Load(Config(R"({"default_prompt": "a.txt", "patterns": {"relu": "a.txt", "leakyrelu": "b.txt"}})"));
  EXPECT_EQ(relu_first.Select("20_LeakyReLU").template_path, dir_ / "a.txt");
  PromptConfig leaky_first =
      PromptConfig::Load(Config(R"({"default_prompt": "a.txt", "patterns": {"leakyrelu": "b.txt", "relu": "a.txt"}})"));
  EXPECT_EQ(leaky_first.Select("20_LeakyReLU").template_path, dir_ / "b.txt");
  EXPECT_EQ(leaky_first.Select("19_ReLU").template_path, dir_ / "a.txt");
}

TEST_F(PromptConfigTest, PatternsArePythonStyleSearches) {
  PromptConfig c = PromptConfig::Load(Config(
      R"json({"default_prompt": "a.txt", "patterns": {"^1_": "b.txt", "(?P<op>conv)_(?:standard|transposed)": "gemm_tk.txt"}})json"));
  EXPECT_EQ(c.Select("1_Square_matrix_multiplication_").template_path, dir_ / "b.txt");
  EXPECT_EQ(c.Select("11_4D_tensor").template_path, dir_ / "a.txt");  // "^" anchors: "11_" is not "1_"
  EXPECT_EQ(c.Select("21_Sigmoid").template_path, dir_ / "a.txt");
  EXPECT_EQ(c.Select("50_conv_standard_2D").template_path, dir_ / "gemm_tk.txt");  // unanchored search
}

TEST_F(PromptConfigTest, BackendSectionIsTriedFirstAndOverrides) {
  fs::path path = Config(R"({
    "default_prompt": "a.txt",
    "patterns": {"matmul": "gemm_cublas.txt"},
    "backends": {"thunderkittens": {"patterns": {"matmul": "gemm_tk.txt"}, "default_prompt": "b.txt",
                                    "reflection_hints": {"Timeout": ["tk hint"]}}},
    "reflection_hints": {"Timeout": ["general hint"], "Incorrect": ["check"]}
  })");
  PromptConfig cuda = PromptConfig::Load(path, "cuda");
  EXPECT_EQ(cuda.Select("6_Matmul").template_path, dir_ / "gemm_cublas.txt");
  EXPECT_EQ(cuda.Select("19_ReLU").template_path, dir_ / "a.txt");
  EXPECT_EQ(cuda.HintsFor("Timeout"), std::vector<std::string>{"general hint"});
  PromptConfig tk = PromptConfig::Load(path, "thunderkittens");
  PromptChoice choice = tk.Select("6_Matmul");
  EXPECT_EQ(choice.template_path, dir_ / "gemm_tk.txt");
  EXPECT_NE(choice.reason.find("backends.thunderkittens"), std::string::npos) << choice.reason;
  EXPECT_EQ(tk.Select("19_ReLU").template_path, dir_ / "b.txt");
  EXPECT_EQ(tk.HintsFor("Timeout"), std::vector<std::string>{"tk hint"});
  EXPECT_EQ(tk.HintsFor("Incorrect"), std::vector<std::string>{"check"});
}

TEST_F(PromptConfigTest, HintsByKindOrStatusName) {
  PromptConfig c = PromptConfig::Load(Config(kExample));
  EXPECT_EQ(c.HintsFor("PERFORMANCE TOO SLOW").size(), 2u);
  EXPECT_EQ(c.HintsFor("Compile error"), std::vector<std::string>{"hint1"});
  EXPECT_EQ(c.HintsFor("compile_error"), std::vector<std::string>{"hint1"});
  EXPECT_TRUE(c.HintsFor("Timeout").empty());
}

TEST_F(PromptConfigTest, ReflectionTemplate) {
  EXPECT_TRUE(PromptConfig::Load(Config(kExample)).reflection_template().empty());
  WriteFileAtomic(dir_ / "reflection.txt", "r");
  EXPECT_EQ(PromptConfig::Load(Config(kExample)).reflection_template(), dir_ / "reflection.txt");
  EXPECT_EQ(
      PromptConfig::Load(Config(R"({"default_prompt": "a.txt", "reflection_prompt": "b.txt"})")).reflection_template(),
      dir_ / "b.txt");
}

TEST_F(PromptConfigTest, BrokenConfigsNameFileAndKey) {
  EXPECT_NE(LoadError("{ \"default_prompt\": ").find("invalid JSON"), std::string::npos);

  std::string e = LoadError(R"json({"default_prompt": "a.txt", "patterns": {"relu(": "a.txt"}})json");
  EXPECT_NE(e.find("patterns.relu("), std::string::npos) << e;
  EXPECT_NE(e.find("regular expression"), std::string::npos) << e;

  e = LoadError(R"({"default_prompt": "a.txt", "patterns": {"matmul": "missing_gemm.txt"}})");
  EXPECT_NE(e.find("patterns.matmul"), std::string::npos) << e;
  EXPECT_NE(e.find("missing_gemm.txt"), std::string::npos) << e;

  e = LoadError(R"({"default_prompt": "nope.txt"})");
  EXPECT_NE(e.find("'default_prompt'"), std::string::npos) << e;
  EXPECT_NE(e.find("nope.txt"), std::string::npos) << e;

  e = LoadError(R"({"patterns": {}})");
  EXPECT_NE(e.find("'default_prompt'"), std::string::npos) << e;

  e = LoadError(R"({"default_prompt": "a.txt", "pattern": {}})");
  EXPECT_NE(e.find("'pattern'"), std::string::npos) << e;

  e = LoadError(R"({"default_prompt": "a.txt", "reflection_hints": {"Timeout": [1, 2]}})");
  EXPECT_NE(e.find("reflection_hints.Timeout"), std::string::npos) << e;

  e = LoadError(R"({"default_prompt": "a.txt", "backends": {"cuda": {"patterns": {"[": "a.txt"}}}})");
  EXPECT_NE(e.find("backends.cuda.patterns.["), std::string::npos) << e;
}

TEST_F(PromptConfigTest, MissingConfigFile) {
  try {
    PromptConfig::Load(dir_ / "none.json");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("none.json"), std::string::npos);
  }
}

TEST(PromptConfigPaths, BackendPicksTheSet) {
  EXPECT_EQ(PromptConfigPathFor("p", "cuda"), fs::path("p/config.json"));
  EXPECT_EQ(PromptConfigPathFor("p", "thunderkittens"), fs::path("p/config.json"));
  EXPECT_EQ(PromptConfigPathFor("p", "hip"), fs::path("p/hip/config.json"));
  EXPECT_EQ(PromptConfigPathFor("p", "hipkittens"), fs::path("p/hip/config.json"));
}

}  // namespace
}  // namespace kbrun::prompts
