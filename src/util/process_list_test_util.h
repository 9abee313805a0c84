// Test helper: the host's processes whose command line contains a marker (to see whether a
// daemon a test candidate started outlived its sandbox).
#pragma once

#include <unistd.h>

#include <string>
#include <vector>

#include "util/fs.h"

namespace kbrun {

inline std::vector<int> ProcessesWith(const std::string& marker) {
  std::vector<int> pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto cmdline = ReadFile(entry.path() / "cmdline");
    if (cmdline && cmdline->find(marker) != std::string::npos && std::stoi(name) != getpid()) {
      pids.push_back(std::stoi(name));
    }
  }
  return pids;
}

}  // namespace kbrun
