// Status names, the baselines' names and the exit code of `kbrun eval` (eval/evaluation.h).
#include <algorithm>

#include "eval/evaluation.h"

namespace kbrun::eval {

const std::vector<std::string>& BaselineNames() {
  static const std::vector<std::string> names = {"eager", "compile", "cudagraph"};
  return names;
}

bool IsBaselineName(const std::string& name) {
  const auto& all = BaselineNames();
  return std::find(all.begin(), all.end(), name) != all.end();
}

std::vector<std::string> NormalizeBaselines(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const auto& b : BaselineNames()) {
    if (b == "eager" || std::find(names.begin(), names.end(), b) != names.end()) out.push_back(b);
  }
  return out;
}

std::string StatusName(Status s) {
  switch (s) {
    case Status::kCorrect:
      return "correct";
    case Status::kIncorrect:
      return "incorrect";
    case Status::kCompileError:
      return "compile_error";
    case Status::kRuntimeError:
      return "runtime_error";
    case Status::kTimeout:
      return "timeout";
    case Status::kRejected:
      return "rejected";
  }
  return "runtime_error";
}

std::optional<Status> ParseStatus(const std::string& name) {
  for (Status s : {Status::kCorrect, Status::kIncorrect, Status::kCompileError, Status::kRuntimeError, Status::kTimeout,
                   Status::kRejected}) {
    if (StatusName(s) == name) return s;
  }
  return std::nullopt;
}

int ExitCodeFor(const EvalResult& r, double target_speedup) {
  if (r.status != Status::kCorrect) return 2;
  return r.speedup >= target_speedup ? 0 : 1;
}

}  // namespace kbrun::eval
