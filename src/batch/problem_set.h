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

// The folder holding the problems of KernelBench level `level` (0: not given; 1 where a level is
// needed): `dir` itself when it has N_Name.py files, else dir/level<L> or dir/KernelBench/level<L>
// (the KernelBench repository layout). A `dir` named level<M> is a KernelBench level folder: with
// another level given, its sibling level<L> is taken (KERNELBENCH_DIR=.../level1 and --level 2 run
// level 2), and std::invalid_argument is thrown where that sibling has no problems.
fs::path ResolveProblemsDir(const fs::path& dir, int level);

// Problems numbered first..last, in number order. Throws std::runtime_error when the
// folder is missing; an empty result is the caller's to report.
std::vector<Problem> ListProblems(const fs::path& dir, int first, int last);

}  // namespace kbrun::batch
