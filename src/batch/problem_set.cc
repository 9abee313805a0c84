#include "batch/problem_set.h"

#include <algorithm>
#include <regex>
#include <stdexcept>

#include <fmt/format.h>

namespace kbrun::batch {
namespace {

const std::regex& ProblemFileName() {
  static const std::regex re(R"(^(\d+)_.+\.py$)");
  return re;
}

bool HasProblems(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && std::regex_match(entry.path().filename().string(), ProblemFileName())) return true;
  }
  return false;
}

}  // namespace

fs::path ResolveProblemsDir(const fs::path& dir, int level) {
  std::string sub = fmt::format("level{}", level > 0 ? level : 1);
  if (HasProblems(dir)) {
    // "a/level1/" names "level1" too: the last component that is not empty.
    fs::path named = dir.filename().empty() ? dir.parent_path() : dir;
    static const std::regex level_folder(R"(^level(\d+)$)");
    std::smatch m;
    std::string name = named.filename().string();
    if (level <= 0 || !std::regex_match(name, m, level_folder) || std::stoi(m[1].str()) == level) return dir;
    fs::path sibling = named.parent_path() / sub;
    if (HasProblems(sibling)) return sibling;
    throw std::invalid_argument(fmt::format("{} holds KernelBench level {} and no {} is beside it for level {}",
                                            dir.string(), m[1].str(), sub, level));
  }
  for (const fs::path& candidate : {dir / sub, dir / "KernelBench" / sub}) {
    if (HasProblems(candidate)) return candidate;
  }
  return dir;
}

std::vector<Problem> ListProblems(const fs::path& dir, int first, int last) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw std::runtime_error(fmt::format("no such problems folder: {}", dir.string()));
  std::vector<Problem> problems;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string file = entry.path().filename().string();
    std::smatch m;
    if (!entry.is_regular_file() || !std::regex_match(file, m, ProblemFileName())) continue;
    int number = std::stoi(m[1].str());
    if (number < first || number > last) continue;
    problems.push_back({number, entry.path().stem().string(), entry.path()});
  }
  std::sort(problems.begin(), problems.end(), [](const Problem& a, const Problem& b) {
    return a.number != b.number ? a.number < b.number : a.name < b.name;
  });
  return problems;
}

}  // namespace kbrun::batch
