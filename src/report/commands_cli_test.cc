// The kbrun binary's shared behaviour across subcommands: `--version` on every one of them (the list
// read from `kbrun --help`, so a new subcommand is checked too), `report --json` printing the JSON
// alone on stdout whatever else it writes, and `compare --html` (the page itself: compare_html_test.cc,
// in a browser: tests/report/compare_browser_test.py).
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "report/budget_tree_test_util.h"
#include "report/html_parts.h"
#include "report/kbrun_stdout_test_util.h"
#include "util/env_options.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::report {
namespace {

// The subcommands `kbrun --help` lists (CLI11's SUBCOMMANDS section: "  name   description").
std::vector<std::string> Subcommands() {
  std::istringstream help(KbrunStdout("--help").out);
  std::vector<std::string> names;
  bool in_section = false;
  for (std::string line; std::getline(help, line);) {
    if (line == "SUBCOMMANDS:" || line == "Subcommands:") {
      in_section = true;
    } else if (in_section && line.starts_with("  ") && line.size() > 2 && line[2] != ' ') {
      names.push_back(line.substr(2, line.find(' ', 2) - 2));
    } else if (in_section && !line.empty() && !line.starts_with(" ")) {
      in_section = false;
    }
  }
  return names;
}

TEST(ReportCommands, VersionOnEverySubcommand) {
  std::vector<std::string> names = Subcommands();
  for (const char* expected :
       {"eval", "generate", "batch", "report", "monitor", "export", "compare", "serve", "merge"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected << " not in kbrun --help";
  }
  names.push_back("");  // kbrun --version itself
  for (const auto& name : names) {
    Ran version = KbrunStdout(name + " --version");
    EXPECT_EQ(version.exit_code, 0) << name;
    EXPECT_EQ(version.out, std::string("kbrun ") + KBRUN_VERSION + "\n") << name;
  }
}

// The variables a subcommand's --help names come from the table (util/env_options.cc): its
// footer holds EnvOptionsHelp(command) as generated, no other line describes a variable of the
// table (a line that begins with its name), an option's "(env NAME" is the variable whose flag
// that option is, and every other name that looks like a variable is the table's or the system's.
TEST(ReportCommands, HelpFootersTakeTheirVariablesFromTheTable) {
  std::map<std::string, std::string> flag_of;
  for (const auto& o : EnvOptions()) flag_of[o.name] = o.flag;
  // The toolchain's and the system's names: MAX_JOBS is torch's build variable (--compile-jobs
  // sets it), RLIMIT_DATA a resource limit.
  const std::set<std::string> system = {"CUDA_HOME",       "ROCM_PATH", "XDG_CACHE_HOME",
                                        "LD_LIBRARY_PATH", "MAX_JOBS",  "RLIMIT_DATA"};
  const std::regex variable(R"((?:^|[^/\w])([A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9])\b(?!\.md))");  // not docs/X_Y.md
  const std::regex row(R"(^\s+([A-Z][A-Z0-9_]+)(\s|,|$))");
  const std::regex option(R"(^\s+(-[^ ]*(?: [A-Z]+)?)\s.*\(env ([A-Z][A-Z0-9_]+))");
  for (const auto& command : Subcommands()) {
    std::string help = KbrunStdout(command + " --help").out;
    std::string block = EnvOptionsHelp(command);
    size_t at = block.empty() ? std::string::npos : help.find(block);
    EXPECT_TRUE(block.empty() || at != std::string::npos) << command << " --help lacks its variables:\n" << help;
    std::string rest = at == std::string::npos ? help : help.substr(0, at) + help.substr(at + block.size());
    for (const auto& line : SplitLines(rest)) {
      std::smatch m;
      if (std::regex_search(line, m, row)) {
        EXPECT_FALSE(flag_of.count(m[1])) << command << " --help describes " << m[1] << " by hand: " << line;
      }
      if (std::regex_search(line, m, option) && flag_of.count(m[2])) {
        std::string long_name = std::regex_replace(std::string(m[1]), std::regex("^.*,| [A-Z]+$"), "");
        std::string flags = ", " + flag_of[m[2]] + ",";  // "--gpus, --gpu": either
        EXPECT_TRUE(Contains(flags, " " + long_name + ","))
            << command << ": " << line << "\nbut the table's flag of " << m[2] << " is '" << flag_of[m[2]] << "'";
      }
      for (std::sregex_iterator it(line.begin(), line.end(), variable), e; it != e; ++it) {
        std::string name = (*it)[1];
        EXPECT_TRUE(flag_of.count(name) || system.count(name))
            << command << " --help names " << name << ", not in util/env_options.cc: " << line;
      }
    }
  }
}

// stdout is the JSON document alone, with --html too: the messages go to stderr.
TEST(ReportCommands, ReportJsonIsTheOnlyThingOnStdout) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-report-json-html-");
  test_tree::WriteBudgetTree(dir);
  for (const char* flags : {"--json", "--json --html", "--html --json"}) {
    Ran ran = KbrunStdout("report '" + dir.string() + "' " + flags);
    EXPECT_EQ(ran.exit_code, 0) << flags;
    nlohmann::json printed = nlohmann::json::parse(ran.out);  // throws on anything but one document
    EXPECT_EQ(printed, nlohmann::json::parse(*ReadFile(dir / "detailed_report.json"))) << flags;
  }
  EXPECT_TRUE(fs::exists(dir / "detailed_report.html"));
  EXPECT_EQ(KbrunStdout("report --json /nonexistent/results").out, "");
  fs::remove_all(dir);
}

TEST(ReportCommands, CompareWritesTheHtmlPage) {
  fs::path root = MakeUniqueDir(fs::temp_directory_path(), "kbrun-compare-html-cli-");
  test_tree::WriteBudgetTree(root / "a");
  test_tree::WriteTree(root / "b",
                       {{"1_A", 1, 1, 1, "correct", "", 4.0}, {"2_B", 1, 1, 1, "incorrect", "value_mismatch"}});
  std::string a = "'" + (root / "a").string() + "'", b = "'" + (root / "b").string() + "'";
  fs::path page = root / "compare.html";
  Ran ran = KbrunStdout("compare " + a + " " + b + " --json --html '" + page.string() + "'");
  EXPECT_EQ(ran.exit_code, 0);
  nlohmann::json doc = nlohmann::json::parse(ran.out);                   // stdout: the JSON alone
  EXPECT_DOUBLE_EQ(doc["summary"]["geomean_ratio"].get<double>(), 2.0);  // 1_A: 4.0x over 2.0x
  auto page_html = ReadFile(page);
  ASSERT_TRUE(page_html);
  EXPECT_TRUE(page_html->starts_with("<!DOCTYPE html>"));
  EXPECT_TRUE(Contains(*page_html, "<span id=\"geomean-ratio\" data-ratio=\"" +
                                       html::Num(doc["summary"]["geomean_ratio"].get<double>()) + "\""))
      << *page_html;
  EXPECT_TRUE(Contains(*page_html, "data-problem=\"2_B\" data-change=\"broken\""));
  // The text, with the interval, is still printed beside the page.
  Ran text = KbrunStdout("compare " + a + " " + b + " --html '" + page.string() + "'");
  EXPECT_TRUE(Contains(text.out, "Geomean B/A    2.000x over 1 problem correct in both\n  95% interval ")) << text.out;
  EXPECT_FALSE(fs::exists(root / "a" / "detailed_report.html"));  // compare never writes into the runs
  fs::remove_all(root);
}

}  // namespace
}  // namespace kbrun::report
