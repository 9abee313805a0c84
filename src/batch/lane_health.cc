#include "batch/lane_health.h"

#include <cstdlib>
#include <set>

#include <fmt/format.h>

#include "eval/python_env.h"
#include "util/env_options.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::batch {
namespace {

// Allocates, adds and synchronizes on the device, then checks the sum: a context that the
// driver declared lost, an ECC or Xid failure, a device that vanished, all fail one of these.
constexpr const char* kProbe = R"PY(
import sys
import time
t0 = time.time()
import torch
kind = sys.argv[1]
if kind == "cuda":
    if not torch.cuda.is_available() or torch.cuda.device_count() < 1:
        print("KBRUN_LANE_PROBE fail: no CUDA device visible")
        sys.exit(1)
    device = torch.device("cuda:0")
else:
    device = torch.device("cpu")
a = torch.arange(1024, dtype=torch.float32, device=device)
b = a + a
if kind == "cuda":
    torch.cuda.synchronize(device)
total = float(b.sum().item())
if total != 1047552.0:
    print("KBRUN_LANE_PROBE fail: %s computed %r for 1047552" % (device, total))
    sys.exit(1)
print("KBRUN_LANE_PROBE ok: %s in %.1f s" % (device, time.time() - t0))
)PY";

std::string ResolvedDevice(const eval::EvalOptions& o) {
  if (o.device != "auto") return o.device;
  return eval::DiscoverPython(o.python).gpu_available ? "cuda" : "cpu";
}

ProbeResult FromProcess(const ProcessResult& p, double timeout_s) {
  ProbeResult r;
  r.seconds = p.wall_s;
  // The probe's own line when it printed one, else the last line of its output (a
  // traceback's names the error).
  std::string last;
  for (const auto& line : SplitLines(Trim(p.output))) {
    std::string t = Trim(line);
    if (t.rfind("KBRUN_LANE_PROBE ", 0) == 0) {
      last = t.substr(17);
      break;
    }
    if (!t.empty()) last = t;
  }
  if (p.timed_out) {
    r.detail = fmt::format("no answer within {:.0f} s", timeout_s);
  } else if (p.spawn_failed) {
    r.detail = "cannot start the probe: " + last;
  } else if (p.term_signal) {
    r.detail = fmt::format("probe killed by {}{}", SignalName(p.term_signal), last.empty() ? "" : ": " + last);
  } else if (p.exit_code != 0) {
    r.detail = fmt::format("probe exited with {}{}", p.exit_code, last.empty() ? "" : ": " + last);
  } else {
    r.healthy = true;
    r.detail = last.empty() ? "ok" : last;
  }
  return r;
}

ProcessSpec ProbeSpec(const eval::EvalOptions& o, const std::string& device, double timeout_s) {
  ProcessSpec spec;
  spec.env = CurrentEnvironment();
  // The lane's GPU exactly as its worker sees it (eval/supervisor.cc), or none on the CPU.
  std::string visible = device == "cuda" ? std::to_string(o.gpu_index) : "";
  spec.env["CUDA_VISIBLE_DEVICES"] = visible;
  spec.env["HIP_VISIBLE_DEVICES"] = visible;
  spec.timeout_s = timeout_s;
  spec.hard_timeout_s = timeout_s;
  spec.output_head_bytes = 4096;
  spec.output_tail_bytes = 4096;
  return spec;
}

}  // namespace

bool IsDeviceSuspect(const eval::EvalResult& result) {
  static const std::set<std::string> kSuspect = {"cuda_error", "crash", "worker_failed", "run_timeout"};
  return !result.correct && kSuspect.count(result.error_category) > 0;
}

ProbeResult ProbeDevice(const eval::EvalOptions& o, double timeout_s) {
  std::string device = ResolvedDevice(o);
  ProcessSpec spec = ProbeSpec(o, device, timeout_s);
  std::string python = o.python.empty() ? eval::DiscoverPython("").interpreter : o.python;
  spec.argv = {python, "-c", kProbe, device};
  return FromProcess(RunProcess(spec), timeout_s);
}

ProbeResult ProbeWithScript(const std::string& script, const eval::EvalOptions& o, double timeout_s) {
  std::string device = ResolvedDevice(o);
  ProcessSpec spec = ProbeSpec(o, device, timeout_s);
  spec.argv = {script, device, std::to_string(o.gpu_index), o.python};
  return FromProcess(RunProcess(spec), timeout_s);
}

LaneProbe DefaultLaneProbe(double timeout_s) {
  if (auto script = GetEnvOption("KBRUN_LANE_PROBE")) {
    std::string path = *script;
    return [path, timeout_s](const eval::EvalOptions& o) { return ProbeWithScript(path, o, timeout_s); };
  }
  return [timeout_s](const eval::EvalOptions& o) { return ProbeDevice(o, timeout_s); };
}

}  // namespace kbrun::batch
