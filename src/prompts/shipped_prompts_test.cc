// The prompt sets shipped in prompts/: they load, render, teach the format, and
// send KernelBench problems of every level to the intended templates.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <sstream>

#include "prompts/prompt_config.h"
#include "prompts/prompt_vars.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::prompts {
namespace {

const fs::path kPrompts = fs::path(KBRUN_TEST_DATA_DIR).parent_path() / "prompts";

std::string Stem(const PromptChoice& c) { return c.template_path.filename().string(); }

TEST(ShippedPrompts, EveryBackendLoads) {
  for (const char* backend : {"cuda", "thunderkittens", "hip", "hipkittens"}) {
    EXPECT_NO_THROW(PromptConfig::Load(PromptConfigPathFor(kPrompts, backend), backend)) << backend;
  }
}

TEST(ShippedPrompts, NvidiaSelection) {
  PromptConfig cuda = PromptConfig::Load(kPrompts / "config.json", "cuda");
  for (const char* name :
       {"1_Square_matrix_multiplication_", "2_Standard_matrix_multiplication_", "3_Batched_matrix_multiplication",
        "4_Matrix_vector_multiplication_", "6_Matmul_with_large_K_dimension_", "9_Tall_skinny_matrix_multiplication_",
        "10_3D_tensor_matrix_multiplication", "12_Matmul_with_diagonal_matrices_", "18_Matmul_with_transposed_both"}) {
    EXPECT_EQ(Stem(cuda.Select(name)), "gemm_cublas.txt") << name;
  }
  for (const char* name :
       {"19_ReLU", "20_LeakyReLU", "21_Sigmoid", "22_Tanh", "25_Swish", "26_GELU_", "27_SELU_", "28_HardSigmoid",
        "29_Softplus", "30_Softsign", "31_ELU", "32_HardTanh", "5_Matrix_scalar_multiplication", "88_MinGPTNewGelu"}) {
    EXPECT_EQ(Stem(cuda.Select(name)), "elementwise_bf16.txt") << name;
  }
  for (const char* name : {"23_Softmax", "33_BatchNorm", "47_Sum_reduction_over_a_dimension",
                           "50_conv_standard_2D__square_input__square_kernel", "89_cumsum",
                           "97_ScaledDotProductAttention", "100_HingeLoss"}) {
    EXPECT_EQ(Stem(cuda.Select(name)), "generic.txt") << name;
  }
  PromptConfig tk = PromptConfig::Load(kPrompts / "config.json", "thunderkittens");
  EXPECT_EQ(Stem(tk.Select("1_Square_matrix_multiplication_")), "gemm_thunderkittens.txt");
  EXPECT_EQ(Stem(tk.Select("13_Matmul_for_symmetric_matrices")), "gemm_thunderkittens.txt");
  EXPECT_EQ(Stem(tk.Select("19_ReLU")), "elementwise_bf16.txt");
}

// Every KernelBench name of levels 1-3 (tests/prompts/kernelbench_names.txt): level 2 (fused operators)
// picks fused_operators.txt and level 3 (whole networks) whole_model.txt, whatever operator their
// names contain ("1_Conv2D_ReLU_BiasAdd" holds "relu", "12_Gemm_Multiply_LeakyReLU" "gemm",
// "50_ReLUSelfAttention" "relu"); no level-1 name picks either.
TEST(ShippedPrompts, EveryKernelBenchNamePicksItsLevelsTemplate) {
  PromptConfig cuda = PromptConfig::Load(kPrompts / "config.json", "cuda");
  std::istringstream names(ReadFileOrThrow(fs::path(KBRUN_TEST_DATA_DIR) / "prompts/kernelbench_names.txt"));
  std::map<int, int> seen;
  std::string line;
  while (std::getline(names, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    int level = 0;
    std::string name;
    fields >> level >> name;
    ASSERT_FALSE(name.empty()) << line;
    ++seen[level];
    const std::string picked = Stem(cuda.Select(name));
    if (level == 2) {
      EXPECT_EQ(picked, "fused_operators.txt") << name;
    } else if (level == 3) {
      EXPECT_EQ(picked, "whole_model.txt") << name;
    } else {
      EXPECT_NE(picked, "fused_operators.txt") << name;
      EXPECT_NE(picked, "whole_model.txt") << name;
    }
  }
  EXPECT_EQ(seen[1], 100);
  EXPECT_EQ(seen[2], 100);
  EXPECT_EQ(seen[3], 50);
  // The choice says why (kbrun generate --verbose prints it).
  EXPECT_TRUE(Contains(cuda.Select("1_Conv2D_ReLU_BiasAdd").reason, "1_Conv2D_ReLU_BiasAdd"));
  // A level-2 name is told by its CamelCase chain, not by a list: one KernelBench does not have yet.
  EXPECT_EQ(Stem(cuda.Select("101_Conv1d_Swish_LayerNorm")), "fused_operators.txt");
}

TEST(ShippedPrompts, AmdSelection) {
  PromptConfig hip = PromptConfig::Load(kPrompts / "hip" / "config.json", "hip");
  EXPECT_EQ(Stem(hip.Select("1_Square_matrix_multiplication_")), "gemm_rocblas.txt");
  EXPECT_EQ(Stem(hip.Select("19_ReLU")), "elementwise_bf16_hip.txt");
  EXPECT_EQ(Stem(hip.Select("23_Softmax")), "generic_hip.txt");
  PromptConfig hk = PromptConfig::Load(kPrompts / "hip" / "config.json", "hipkittens");
  EXPECT_EQ(Stem(hk.Select("2_Standard_matrix_multiplication_")), "gemm_hipkittens.txt");
  EXPECT_EQ(hk.reflection_template().filename(), "reflection.txt");
}

TEST(ShippedPrompts, EveryTemplateRendersAndTeachesTheFormat) {
  GenerationInputs g{"19_ReLU", "class Model(nn.Module): ...", "cuda", "NVIDIA H100", "fp32"};
  int templates = 0;
  for (const auto& entry : fs::recursive_directory_iterator(kPrompts)) {
    if (entry.path().extension() != ".txt") continue;
    ++templates;
    std::string text = ReadFileOrThrow(entry.path());
    bool reflection = entry.path().filename() == "reflection.txt";
    std::string rendered;
    ASSERT_NO_THROW(rendered = RenderTemplate(
                        text, reflection ? ReflectionVars({g, "class ModelNew: ...", "Compile error", {"hint"}})
                                         : GenerationVars(g)))
        << entry.path();
    EXPECT_NE(rendered.find("class Model(nn.Module): ..."), std::string::npos) << entry.path();
    EXPECT_NE(rendered.find("ModelNew"), std::string::npos) << entry.path();
    EXPECT_NE(rendered.find("load_inline"), std::string::npos) << entry.path();
    EXPECT_NE(rendered.find("```python"), std::string::npos) << entry.path();
    EXPECT_EQ(rendered.find("{{"), std::string::npos) << entry.path() << ": a placeholder was left";
    if (!reflection) {
      EXPECT_NE(rendered.find("NVIDIA H100"), std::string::npos) << entry.path();
      EXPECT_NE(rendered.find("class ModelNew(nn.Module)"), std::string::npos) << entry.path();
    }
  }
  EXPECT_GE(templates, 9);
}

// The split-layout examples teach what kbrun compiles fastest: their CUDA part must
// build with no torch header at all (nvcc, no torch include path).
TEST(ShippedPrompts, SplitLayoutExamplesCompileWithoutTorchHeaders) {
  fs::path nvcc = "/usr/local/cuda/bin/nvcc";
  if (const char* home = std::getenv("CUDA_HOME"); home && *home) nvcc = fs::path(home) / "bin/nvcc";
  if (!fs::exists(nvcc)) GTEST_SKIP() << "no nvcc";
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-prompt-example-");
  for (const char* name : {"generic.txt", "elementwise_bf16.txt", "fused_operators.txt", "whole_model.txt"}) {
    std::string text = ReadFileOrThrow(kPrompts / name);
    const std::string open = "cuda_source = r\"\"\"\n";
    size_t a = text.find(open);
    ASSERT_NE(a, std::string::npos) << name;
    size_t b = text.find("\"\"\"", a + open.size());
    std::string cuda = text.substr(a + open.size(), b - a - open.size());
    EXPECT_EQ(cuda.find("torch"), std::string::npos) << name;
    WriteFileAtomic(dir / "example.cu", cuda);
    ProcessSpec spec;
    spec.argv = {nvcc.string(), "-std=c++17", "-c", (dir / "example.cu").string(), "-o", (dir / "example.o").string()};
    spec.env = CurrentEnvironment();
    spec.timeout_s = 300;
    ProcessResult p = RunProcess(spec);
    EXPECT_EQ(p.exit_code, 0) << name << ": " << p.output;
  }
  fs::remove_all(dir);
}

// The ThunderKittens example relies on kbrun's thunderkittens backend for include paths and
// flags (eval/backend.h) and keeps the split layout; its CUDA part is the one of
// tests/gpu/tk/tk_matmul.py, which tests/device/thunderkittens_gemm.sh runs on the H100.
TEST(ShippedPrompts, ThunderKittensExampleIsSplitAndLeavesFlagsToKbrun) {
  std::string text = ReadFileOrThrow(kPrompts / "gemm_thunderkittens.txt");
  auto cuda_part = [](const std::string& t) {
    const std::string open = "cuda_source = r\"\"\"\n";
    size_t a = t.find(open);
    if (a == std::string::npos) return std::string();
    return t.substr(a + open.size(), t.find("\"\"\"", a + open.size()) - a - open.size());
  };
  std::string cuda = cuda_part(text);
  ASSERT_FALSE(cuda.empty());
  EXPECT_NE(cuda.find("#include \"kittens.cuh\""), std::string::npos);
  EXPECT_FALSE(std::regex_search(cuda, std::regex("torch|ATen|c10|at::"))) << "not split";
  EXPECT_EQ(text.find("extra_include_paths"), std::string::npos);
  EXPECT_EQ(text.find("-gencode"), std::string::npos);
  fs::path fixture = fs::path(KBRUN_SOURCE_DIR) / "tests/gpu/tk/tk_matmul.py";
  EXPECT_EQ(cuda, cuda_part(ReadFileOrThrow(fixture)));
}

TEST(ShippedPrompts, EveryFailureKindHasTwoToFourHints) {
  for (const char* backend : {"cuda", "hip"}) {
    PromptConfig c = PromptConfig::Load(PromptConfigPathFor(kPrompts, backend), backend);
    for (const char* kind : {"Compile error", "Runtime error", "Incorrect", "Timeout", "PERFORMANCE TOO SLOW"}) {
      size_t n = c.HintsFor(kind).size();
      EXPECT_GE(n, 2u) << backend << " " << kind;
      EXPECT_LE(n, 4u) << backend << " " << kind;
    }
  }
}

}  // namespace
}  // namespace kbrun::prompts
