// RenderTemplate and the placeholder sets of prompt_vars.h.
#include <gtest/gtest.h>

#include "prompts/prompt_config.h"
#include "prompts/prompt_vars.h"

namespace kbrun::prompts {
namespace {

TEST(PromptTemplate, ReplacesPlaceholders) {
  EXPECT_EQ(RenderTemplate("Problem {{problem_name}} on {{ gpu_name }}.",
                           {{"problem_name", "19_ReLU"}, {"gpu_name", "H100"}}),
            "Problem 19_ReLU on H100.");
  EXPECT_EQ(RenderTemplate("{{a}}{{a}}", {{"a", "x"}}), "xx");
  EXPECT_EQ(RenderTemplate("no placeholders", {}), "no placeholders");
}

TEST(PromptTemplate, UnknownPlaceholderIsAnErrorNamingIt) {
  try {
    RenderTemplate("line one\nline {{problem_nmae}}", {{"problem_name", "x"}});
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("{{problem_nmae}}"), std::string::npos) << m;
    EXPECT_NE(m.find("line 2"), std::string::npos) << m;
    EXPECT_NE(m.find("problem_name"), std::string::npos) << m;  // lists what is known
  }
}

TEST(PromptTemplate, OnlyIdentifiersArePlaceholdersAndValuesAreNotRescanned) {
  EXPECT_EQ(RenderTemplate("dim3 g{{1, 2}}; {{x}}", {{"x", "y"}}), "dim3 g{{1, 2}}; y");
  EXPECT_EQ(RenderTemplate("{{src}}", {{"src", "s = '{{not_a_var}}'"}}), "s = '{{not_a_var}}'");
  EXPECT_EQ(RenderTemplate("unclosed {{x", {{"x", "y"}}), "unclosed {{x");
}

TEST(PromptTemplate, GenerationAndReflectionVars) {
  GenerationInputs g{"19_ReLU", "class Model: ...", "cuda", "NVIDIA H100", "bf16"};
  auto vars = GenerationVars(g);
  for (const char* name : {"problem_name", "problem_source", "backend", "gpu_name", "precision", "torch_dtype"}) {
    EXPECT_TRUE(vars.count(name)) << name;
  }
  EXPECT_EQ(vars["torch_dtype"], "torch.bfloat16");
  EXPECT_EQ(TorchDtype("fp32"), "torch.float32");
  EXPECT_EQ(TorchDtype("fp16"), "torch.float16");

  ReflectionInputs r{g, "class ModelNew: ...", "Compile error: boom", {"first", "second"}};
  auto rv = ReflectionVars(r);
  EXPECT_EQ(rv["hints"], "- first\n- second\n");
  EXPECT_EQ(rv["previous_code"], "class ModelNew: ...");
  EXPECT_EQ(rv["feedback"], "Compile error: boom");
  EXPECT_EQ(rv["problem_name"], "19_ReLU");
  r.hints.clear();
  EXPECT_EQ(ReflectionVars(r)["hints"], "(none)");
  EXPECT_EQ(ProblemName("a/b/19_ReLU.py"), "19_ReLU");
}

}  // namespace
}  // namespace kbrun::prompts
