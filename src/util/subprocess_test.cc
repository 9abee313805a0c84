#include "util/subprocess.h"

#include <signal.h>

#include <cerrno>
#include <chrono>

#include <gtest/gtest.h>

namespace kbrun {
namespace {

ProcessSpec Shell(const std::string& script) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.env = {{"PATH", "/usr/bin:/bin"}};
  return spec;
}

TEST(RunProcess, CapturesOutputAndExitCode) {
  auto r = RunProcess(Shell("echo hello; echo oops >&2; exit 3"));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.output.find("hello"), std::string::npos);
  EXPECT_NE(r.output.find("oops"), std::string::npos);
}

TEST(RunProcess, CountsCpuSecondsOfWaitedForDescendants) {
  // The burner is a grandchild that sh waits for (compilers under ninja are the case that matters);
  // it spins on its own CPU clock, so a loaded machine makes it slower but not shorter.
  auto burn =
      RunProcess(Shell("python3 -c 'import time\nwhile time.process_time() < 0.5: pass' || "
                       "{ e=$(( $(date +%s) + 1 )); while [ $(date +%s) -lt $e ]; do :; done; }; true"));
  EXPECT_EQ(burn.exit_code, 0);
  EXPECT_GE(burn.cpu_s, 0.3);
  EXPECT_LE(burn.cpu_s, burn.wall_s * 1.5);  // one single-threaded burner: not more than its wall time

  auto idle = RunProcess(Shell("sleep 0.5"));
  EXPECT_GE(idle.wall_s, 0.45);
  EXPECT_LT(idle.cpu_s, 0.2);
}

TEST(RunProcess, KillsTheWholeGroupAtTheDeadline) {
  auto spec = Shell("sleep 100 & sleep 100; echo never");
  spec.timeout_s = 0.5;
  auto r = RunProcess(spec);
  EXPECT_TRUE(r.timed_out);
  EXPECT_LT(r.wall_s, 5.0);
}

TEST(RunProcess, KeepsHeadAndTailOfHugeOutput) {
  auto spec = Shell("echo FIRST; head -c 5000000 /dev/zero | tr '\\0' x; echo; echo LAST");
  spec.output_head_bytes = 1000;
  spec.output_tail_bytes = 1000;
  auto r = RunProcess(spec);
  EXPECT_TRUE(r.output_truncated);
  EXPECT_GT(r.output_total_bytes, 5000000u);
  EXPECT_LT(r.output.size(), 2200u);
  EXPECT_NE(r.output.find("FIRST"), std::string::npos);
  EXPECT_NE(r.output.find("LAST"), std::string::npos);
}

TEST(RunProcess, ProgressLinesMoveTheDeadline) {
  // Without the progress line the 1 s deadline would kill it.
  auto spec = Shell("echo 'stage run' >&3; sleep 1.5; echo finished");
  spec.timeout_s = 1.0;
  spec.on_progress = [](const std::string& line) -> std::optional<double> {
    return line == "stage run" ? std::optional<double>(10.0) : std::nullopt;
  };
  auto r = RunProcess(spec);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("finished"), std::string::npos);
}

TEST(RunProcess, PausedClocksDoNotCountTowardsDeadlinesOrWallTime) {
  // 1.5 s of sleep against 1 s deadlines; the first 1.0 s waits on the caller (paused).
  auto spec = Shell("sleep 1.5; echo finished");
  spec.timeout_s = 1.0;
  spec.hard_timeout_s = 1.0;
  const auto started = std::chrono::steady_clock::now();
  spec.clocks_paused = [started] { return std::chrono::steady_clock::now() - started < std::chrono::seconds(1); };
  auto r = RunProcess(spec);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NEAR(r.paused_s, 1.0, 0.15);
  EXPECT_NEAR(r.wall_s, 0.5, 0.25);
  // The same child with clocks that run: killed at 1 s.
  spec.clocks_paused = nullptr;
  EXPECT_TRUE(RunProcess(spec).timed_out);
}

TEST(RunProcess, EndsEarlyOnceTheCallerHasItsAnswerAndStillEndsTheChild) {
  // The child answers, then would take 30 s to end (as a GPU context's teardown takes time).
  auto spec = Shell("echo \"result $$\" >&3; exec sleep 30");
  int child = 0;
  spec.on_progress = [&child](const std::string& line) -> std::optional<double> {
    if (line.rfind("result ", 0) == 0) child = std::stoi(line.substr(7));
    return std::nullopt;
  };
  spec.ended_early_when = [&child] { return child > 0; };
  spec.limits.max_memory_bytes = 1ull << 30;  // a cgroup where one can be made: removed in the background
  auto r = RunProcess(spec);
  EXPECT_TRUE(r.ended_early);
  EXPECT_FALSE(r.timed_out);
  EXPECT_LT(r.wall_s, 5.0);
  ASSERT_GT(child, 0);
  WaitForEarlyEndedChildren(10);
  EXPECT_NE(kill(child, 0), 0) << "the child " << child << " is still there";
  EXPECT_EQ(errno, ESRCH);
}

TEST(RunProcess, ReportsTheKillingSignal) {
  auto r = RunProcess(Shell("kill -SEGV $$"));
  EXPECT_EQ(r.term_signal, 11);
  EXPECT_EQ(SignalName(11), "SIGSEGV");
}

TEST(RunProcess, EnvironmentIsExactlyWhatWasGiven) {
  auto spec = Shell("env");
  spec.env["ONLY_THIS"] = "1";
  auto r = RunProcess(spec);
  EXPECT_NE(r.output.find("ONLY_THIS=1"), std::string::npos);
  EXPECT_EQ(r.output.find("HOME="), std::string::npos);
}

}  // namespace
}  // namespace kbrun
