// ExtractCode on the messy responses models really give.
#include "prompts/extract.h"

#include <gtest/gtest.h>

namespace kbrun::prompts {
namespace {

constexpr const char* kModelNew = "import torch\nclass ModelNew(torch.nn.Module):\n    pass\n";

TEST(ExtractCode, SinglePythonBlockWithProse) {
  auto r = ExtractCode(std::string("Here is the kernel:\n\n```python\n") + kModelNew + "```\n\nIt is fast because...");
  ASSERT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.code, kModelNew);
  EXPECT_TRUE(r.note.empty());
}

TEST(ExtractCode, PicksTheBlockThatDefinesModelNewAmongSeveral) {
  std::string response = "First the CUDA part:\n```cpp\n__global__ void k() {}\n```\nThen Python:\n```py\n" +
                         std::string(kModelNew) + "```\nUsage:\n```bash\npython run.py\n```\n";
  auto r = ExtractCode(response);
  ASSERT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.code, kModelNew);
}

TEST(ExtractCode, LastModelNewBlockWins) {
  std::string response =
      "Draft:\n```python\nclass ModelNew:\n    v = 1\n```\nFinal version:\n```python\nclass ModelNew:\n    v = "
      "2\n```\n";
  auto r = ExtractCode(response);
  ASSERT_TRUE(r.ok);
  EXPECT_NE(r.code.find("v = 2"), std::string::npos);
  EXPECT_EQ(r.code.find("v = 1"), std::string::npos);
}

TEST(ExtractCode, NoLanguageTagTildesAndIndentedFences) {
  auto untagged = ExtractCode(std::string("```\n") + kModelNew + "```");
  ASSERT_TRUE(untagged.ok);
  EXPECT_EQ(untagged.code, kModelNew);
  auto tildes = ExtractCode(std::string("~~~python\n") + kModelNew + "~~~\n");
  ASSERT_TRUE(tildes.ok);
  EXPECT_EQ(tildes.code, kModelNew);
  auto indented = ExtractCode(std::string("1. The code:\n   ```python\n") + kModelNew + "   ```\n");
  ASSERT_TRUE(indented.ok);
  EXPECT_NE(indented.code.find("class ModelNew"), std::string::npos);
}

TEST(ExtractCode, FenceInsideCodeDoesNotCloseALongerFence) {
  std::string response = "````python\n" + std::string(kModelNew) + "doc = '''\n```\nexample\n```\n'''\n````\n";
  auto r = ExtractCode(response);
  ASSERT_TRUE(r.ok);
  EXPECT_NE(r.code.find("example"), std::string::npos);
}

TEST(ExtractCode, UnclosedFinalFenceIsTakenWithANote) {
  auto r = ExtractCode(std::string("Sure!\n```python\n") + kModelNew + "    def forward(self, x):\n        return x");
  ASSERT_TRUE(r.ok) << r.reason;
  EXPECT_NE(r.code.find("return x"), std::string::npos);
  EXPECT_FALSE(r.note.empty());
}

TEST(ExtractCode, CrlfLineEndings) {
  auto r = ExtractCode("```python\r\nclass ModelNew:\r\n    pass\r\n```\r\n");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.code, "class ModelNew:\n    pass\n");
}

TEST(ExtractCode, BarePythonWithoutFences) {
  auto r = ExtractCode(std::string("Here you go\n") + kModelNew);
  ASSERT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.code, kModelNew);
  EXPECT_FALSE(r.note.empty());
}

TEST(ExtractCode, ThinkingSectionsAreIgnored) {
  std::string response =
      "<think>\nmaybe:\n```python\nclass ModelNew:\n    draft = True\n```\n</think>\nI cannot do it.";
  auto r = ExtractCode(response);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failure, "no_code");
  auto answered = ExtractCode(response + "\n```python\n" + kModelNew + "```");
  ASSERT_TRUE(answered.ok);
  EXPECT_EQ(answered.code, kModelNew);
  // The chat template already opened the section: only "</think>" is in the content.
  auto half = ExtractCode("reasoning ```python\nclass ModelNew: draft\n``` </think>\n```python\n" +
                          std::string(kModelNew) + "```");
  ASSERT_TRUE(half.ok);
  EXPECT_EQ(half.code, kModelNew);
}

TEST(ExtractCode, NoCode) {
  auto empty = ExtractCode("   \n");
  EXPECT_FALSE(empty.ok);
  EXPECT_EQ(empty.failure, "no_code");
  EXPECT_FALSE(empty.reason.empty());
  auto prose = ExtractCode("I'm sorry, I can't write that kernel. Consider using cuBLAS instead.");
  EXPECT_FALSE(prose.ok);
  EXPECT_EQ(prose.failure, "no_code");
  EXPECT_NE(prose.reason.find("prose"), std::string::npos) << prose.reason;
  auto inline_only = ExtractCode("Use ```python torch.relu(x)``` and you are done.");
  EXPECT_EQ(inline_only.failure, "no_code");
}

TEST(ExtractCode, CodeWithoutModelNew) {
  auto r = ExtractCode("```python\nimport torch\nclass Model(torch.nn.Module):\n    pass\n```\n```cpp\nint x;\n```");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failure, "no_model_new");
  EXPECT_NE(r.reason.find("2 code blocks"), std::string::npos) << r.reason;
  auto bare = ExtractCode("import torch\nclass ModelNewer:\n    pass\n");
  EXPECT_EQ(bare.failure, "no_model_new");
  auto mention = ExtractCode("```python\n# TODO: write class ModelNew later\nx = 1\n```");
  EXPECT_EQ(mention.failure, "no_model_new");
}

}  // namespace
}  // namespace kbrun::prompts
