// The KernelBench problems a batch works on: files named N_Name.py in a folder.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace kbrun::batch {

namespace fs = std::filesystem;

struct Problem {
  int number = 0;    // N
  std::string name;  // "19_ReLU": the file's stem, also the results folder's name
  fs::path path;
};

// The folder holding the problems: `dir` itself when it has N_Name.py files,
// else dir/level<L> or dir/KernelBench/level<L> (the KernelBench repository layout).
fs::path ResolveProblemsDir(const fs::path& dir, int level);

// Problems numbered first..last, in number order. Throws std::runtime_error when the
// folder is missing; an empty result is the caller's to report.
std::vector<Problem> ListProblems(const fs::path& dir, int first, int last);

}  // namespace kbrun::batch
