// Test helper: run the real `kbrun eval` on a fixture and read its result document.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/fs.h"
#include "util/subprocess.h"

namespace kbrun {

struct EvalRun {
  int exit_code;
  std::string output;
  nlohmann::json result;
  double wall_s;
};

// Runs `kbrun eval` on tests/<dir>/<candidate>.py against tests/problems/1_ScaleAdd.py.
inline EvalRun RunEvalIn(const std::string& dir, const std::string& candidate, std::vector<std::string> extra) {
  fs::path out = fs::temp_directory_path() / ("kbrun-eval-test-" + candidate + ".json");
  fs::remove(out);
  ProcessSpec spec;
  spec.argv = {KBRUN_BINARY, "eval", "--code", std::string(KBRUN_TEST_DATA_DIR) + "/" + dir + "/" + candidate + ".py",
               "--problem", std::string(KBRUN_TEST_DATA_DIR) + "/problems/1_ScaleAdd.py", "--device", "cpu",
               "--perf-trials", "10", "--output", out.string()};
  spec.argv.insert(spec.argv.end(), extra.begin(), extra.end());
  spec.env = CurrentEnvironment();
  spec.env["LLM_GATEWAY_KEY"] = "secret-that-must-not-leak";
  spec.timeout_s = 600;
  ProcessResult p = RunProcess(spec);
  EvalRun run{p.exit_code, p.output, nullptr, p.wall_s};
  if (auto text = ReadFile(out)) run.result = nlohmann::json::parse(*text);
  return run;
}


}  // namespace kbrun
