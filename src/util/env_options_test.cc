// The table of environment variables (util/env_options.h): docs/OPTIONS.md is generated from
// it, and every variable the sources read is in it.
#include "util/env_options.h"

#include <cstdlib>
#include <regex>
#include <set>
#include <stdexcept>

#include <gtest/gtest.h>

#include "util/fs.h"
#include "util/text.h"

namespace kbrun {
namespace {

const fs::path kSource = KBRUN_SOURCE_DIR;

std::set<std::string> TableNames() {
  std::set<std::string> names;
  for (const auto& o : EnvOptions()) names.insert(o.name);
  return names;
}

// Every file under `dir` whose name ends with one of `exts`.
std::vector<fs::path> Files(const fs::path& dir, const std::vector<std::string>& exts) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    for (const auto& ext : exts) {
      if (e.path().extension() == ext) out.push_back(e.path());
    }
  }
  return out;
}

TEST(EnvOptions, TableRowsAreCompleteAndUnique) {
  std::set<std::string> seen;
  for (const auto& o : EnvOptions()) {
    EXPECT_TRUE(seen.insert(o.name).second) << o.name << " twice";
    EXPECT_TRUE(std::regex_match(std::string(o.name), std::regex("[A-Z][A-Z0-9_]*"))) << o.name;
    EXPECT_NE(std::string(o.commands), "") << o.name;
    EXPECT_NE(std::string(o.meaning), "") << o.name;
  }
}

TEST(EnvOptions, GetReadsOnlyTableNames) {
  EXPECT_THROW(GetEnvOption("KBRUN_NOT_AN_OPTION"), std::logic_error);
  setenv("KBRUN_GPU_NAME", "", 1);
  EXPECT_EQ(GetEnvOption("KBRUN_GPU_NAME"), std::nullopt);  // empty counts as unset
  setenv("KBRUN_GPU_NAME", "H200", 1);
  EXPECT_EQ(GetEnvOption("KBRUN_GPU_NAME"), "H200");
  unsetenv("KBRUN_GPU_NAME");
  EXPECT_EQ(GetEnvOption("KBRUN_GPU_NAME"), std::nullopt);
}

// docs/OPTIONS.md holds EnvOptionsMarkdown() between its markers; on a change, paste the
// text this test prints.
TEST(EnvOptions, DocsPageIsGeneratedFromTheTable) {
  std::string page = ReadFileOrThrow(kSource / "docs/OPTIONS.md");
  const std::string begin = "<!-- BEGIN generated from src/util/env_options.cc -->\n";
  const std::string end = "<!-- END generated -->";
  size_t a = page.find(begin), b = page.find(end);
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  std::string table = page.substr(a + begin.size(), b - a - begin.size());
  EXPECT_EQ(table, EnvOptionsMarkdown()) << "docs/OPTIONS.md is out of date; its table should read:\n"
                                         << EnvOptionsMarkdown();
}

// A --help footer's block holds every row that names the command, flag and meaning word for word,
// within 100 columns; a qualified command ("eval (--profile)") counts, a longer word does not.
TEST(EnvOptions, HelpListsTheRowsThatNameTheCommand) {
  auto fold = [](const std::string& text) {  // runs of white space as one space
    return std::regex_replace(text, std::regex(R"(\s+)"), " ");
  };
  for (const char* command : {"eval", "batch", "generate", "serve"}) {
    std::string help = EnvOptionsHelp(command);
    ASSERT_NE(help, "") << command;
    for (const auto& line : SplitLines(help)) EXPECT_LE(line.size(), 100u) << line;
    int rows = 0;
    for (const auto& o : EnvOptions()) {
      std::string entry = std::string(o.name) + " " + (*o.flag ? std::string(o.flag) + ": " : "") + o.meaning;
      bool listed = Contains(fold(help), " " + fold(entry) + " ");
      bool named = std::regex_search(std::string(o.commands), std::regex(std::string("(^|, )") + command + "\\b"));
      EXPECT_EQ(listed, named) << command << ": " << o.name << "\n" << help;
      rows += named;
    }
    EXPECT_GT(rows, 3) << command;
  }
  EXPECT_TRUE(Contains(EnvOptionsHelp("eval"), "KBRUN_NCU"));  // "eval, batch (--profile)"
  EXPECT_EQ(EnvOptionsHelp("report"), "");
  EXPECT_EQ(EnvOptionsHelp("eva"), "");
}

// Every variable that C++ reads by name (getenv, GetEnvOption, the LLM settings' EnvValue) is in
// the table, but for the system's own (HOME, XDG_CACHE_HOME, PATH, CUDA_HOME, LD_LIBRARY_PATH); and every
// KBRUN_* name in the sources, tests and scripts is a variable of the table, but for the
// compile definitions and CMake options named here.
TEST(EnvOptions, EveryVariableTheSourcesReadIsInTheTable) {
  const std::set<std::string> names = TableNames();
  const std::set<std::string> system = {"HOME", "XDG_CACHE_HOME", "PATH", "CUDA_HOME", "LD_LIBRARY_PATH"};
  const std::set<std::string> not_variables = {"KBRUN_SOURCE_DIR",    "KBRUN_VERSION", "KBRUN_BINARY",
                                               "KBRUN_TEST_DATA_DIR", "KBRUN_PROBE",   "KBRUN_SANITIZE"};
  const std::regex read(R"((?:getenv|GetEnvOption|EnvValue)\((?:env, )?"([A-Z][A-Z0-9_]*)\")");
  const std::regex kbrun_name(R"(\bKBRUN_[A-Z0-9_]+)");
  int reads = 0;
  auto check = [&](const fs::path& file, bool cpp) {
    std::string text = ReadFileOrThrow(file);
    std::string rel = fs::relative(file, kSource).string();
    if (cpp) {
      for (std::sregex_iterator it(text.begin(), text.end(), read), e; it != e; ++it) {
        std::string name = (*it)[1];
        ++reads;
        EXPECT_TRUE(names.count(name) || system.count(name))
            << rel << " reads " << name << ", not in util/env_options.cc";
      }
    }
    for (std::sregex_iterator it(text.begin(), text.end(), kbrun_name), e; it != e; ++it) {
      std::string name = (*it)[0];
      if (not_variables.count(name)) continue;
      EXPECT_TRUE(names.count(name)) << rel << " names " << name << ", not in util/env_options.cc";
    }
  };
  for (const auto& f : Files(kSource / "src", {".cc", ".h"})) {
    if (f.filename() != "env_options_test.cc") check(f, true);  // this file names a variable that is not one
  }
  for (const auto& f : Files(kSource / "src", {".py"})) check(f, false);
  for (const auto& f : Files(kSource / "tests", {".py", ".sh"})) check(f, false);
  for (const auto& f : Files(kSource / "scripts", {".sh"})) check(f, false);
  EXPECT_GT(reads, 20);  // the scan found the reads
}

}  // namespace
}  // namespace kbrun
