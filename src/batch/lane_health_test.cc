// The lane health check (lane_health.h): which results make a lane probe its device, the real
// probe on this machine's CPU, and the probe-script seam. Integration: it runs python.
#include "batch/lane_health.h"

#include <cstdlib>

#include <gtest/gtest.h>

#include "eval/python_env.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::batch {
namespace {

const fs::path kData = KBRUN_TEST_DATA_DIR;

eval::EvalResult Failed(const std::string& category) {
  eval::EvalResult r;
  r.status = eval::Status::kRuntimeError;
  r.error_category = category;
  return r;
}

eval::EvalOptions Cpu(int gpu = 0) {
  eval::EvalOptions o;
  o.device = "cpu";
  o.gpu_index = gpu;
  o.python = "/usr/bin/python3";
  return o;
}

TEST(LaneHealth, OnlyDeviceSuspectResultsCallForAProbe) {
  for (const char* c : {"cuda_error", "crash", "worker_failed", "run_timeout"})
    EXPECT_TRUE(IsDeviceSuspect(Failed(c))) << c;
  // The candidate's own failures: a Python exception, a wrong answer, its build, its memory.
  for (const char* c : {"exception", "value_mismatch", "shape_mismatch", "import_error", "build_failed",
                        "compile_timeout", "out_of_memory", "timing_failed", "uses_library_only", ""}) {
    EXPECT_FALSE(IsDeviceSuspect(Failed(c))) << c;
  }
  eval::EvalResult correct;
  correct.status = eval::Status::kCorrect;
  correct.correct = true;
  EXPECT_FALSE(IsDeviceSuspect(correct));
}

// The real probe, in a fresh python: allocate, add, check on a healthy CPU.
TEST(LaneHealth, RealProbePassesOnAHealthyCpu) {
  ProbeResult r = ProbeDevice(Cpu(1), 120);
  EXPECT_TRUE(r.healthy) << r.detail;
  EXPECT_TRUE(Contains(r.detail, "cpu")) << r.detail;
  EXPECT_GT(r.seconds, 0);
}

// The same probe asked for a CUDA device where torch sees none fails, and says why.
TEST(LaneHealth, RealProbeFailsWithoutTheDevice) {
  if (eval::DiscoverPython("/usr/bin/python3").gpu_available) GTEST_SKIP() << "this machine has a GPU";
  eval::EvalOptions o = Cpu(0);
  o.device = "cuda";
  ProbeResult r = ProbeDevice(o, 120);
  EXPECT_FALSE(r.healthy) << r.detail;
  EXPECT_TRUE(Contains(r.detail, "no CUDA device visible")) << r.detail;
}

TEST(LaneHealth, ProbeScriptDecidesAndATimeoutFails) {
  fs::path script = kData / "batch/lane_probe.sh";
  setenv("KBRUN_TEST_PROBE_FAIL", "1", 1);
  ProbeResult ok = ProbeWithScript(script.string(), Cpu(0));
  EXPECT_TRUE(ok.healthy) << ok.detail;
  EXPECT_EQ(ok.detail, "simulated healthy GPU 0");
  ProbeResult dead = ProbeWithScript(script.string(), Cpu(1));
  EXPECT_FALSE(dead.healthy);
  EXPECT_EQ(dead.detail, "probe exited with 1: simulated dead GPU 1");

  // KBRUN_LANE_PROBE is what the default probe runs.
  setenv("KBRUN_LANE_PROBE", script.c_str(), 1);
  EXPECT_FALSE(DefaultLaneProbe()(Cpu(1)).healthy);
  EXPECT_TRUE(DefaultLaneProbe()(Cpu(0)).healthy);
  unsetenv("KBRUN_LANE_PROBE");
  unsetenv("KBRUN_TEST_PROBE_FAIL");

  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-lane-probe-");
  fs::path slow = dir / "slow.sh";
  WriteFileAtomic(slow, "#!/bin/sh\nsleep 30\n");
  fs::permissions(slow, fs::perms::owner_all);
  ProbeResult hung = ProbeWithScript(slow.string(), Cpu(0), 1);
  EXPECT_FALSE(hung.healthy);
  EXPECT_EQ(hung.detail, "no answer within 1 s");
  EXPECT_LT(hung.seconds, 10);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kbrun::batch
