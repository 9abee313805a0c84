// A run started ahead of its turn on a GPU lane (eval::StartRunAhead, eval/run_gate.h): its
// processes wait, running nothing, until Run() lets them go; their deadlines and the lane time
// start there; dropped unused, they end and the candidate runs later as usual. On the CPU
// (Debian's torch), where the wait is the same and only the CUDA start is missing.
#include "eval/run_gate.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "eval/eval_test_util.h"
#include "eval/evaluation.h"
#include "util/fs.h"

namespace kbrun::eval {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

TEST(RunAhead, WaitsForItsTurnWithoutDeadlinesAndTheLaneTimeStartsThere) {
  fs::path root = MakeUniqueDir(fs::temp_directory_path(), "kbrun-run-gate-test-");
  EvalRequest req = QuickCpuRequest("honest_torch_add", root);
  CompiledCandidate compiled = Compile(req);
  ASSERT_TRUE(compiled.ok) << compiled.failure.error_message;
  // The run's deadlines shorter than its wait: they must not run while the processes wait for the lane.
  req.options.compile_timeout_s = 4;
  req.options.run_timeout_s = 4;
  std::shared_ptr<RunAhead> ahead = StartRunAhead(req, compiled);
  ASSERT_NE(ahead, nullptr);
  EXPECT_TRUE(fs::exists(compiled.work_dir / "go"));
  std::this_thread::sleep_for(std::chrono::milliseconds(6000));
  const auto turn = Clock::now();
  EvalResult r = eval::Run(req, compiled, ahead);
  const double lane_s = SecondsSince(turn);
  ASSERT_EQ(r.json["status"], "correct") << r.error_message << "\n" << r.json.dump(1);
  const auto& st = r.json["stages"];
  EXPECT_GT(st["run_waited_for_lane_s"].get<double>(), 4.5) << st.dump();
  EXPECT_LE(st["run_phase_s"].get<double>(), lane_s + 0.01) << st.dump();
  EXPECT_LT(st["run_worker_total_s"].get<double>(), lane_s + 0.01) << st.dump();
  EXPECT_EQ(r.json["correctness"]["checker"]["checks"]["trial"]["passed"], 2) << r.json["correctness"].dump();
  fs::remove_all(root);
}

// As a lane runs them: each sample's run started ahead while the previous one runs; the first's
// timing waits for the second's processes to be ready.
TEST(RunAhead, TwoSamplesInTurnOnOneLane) {
  fs::path root = MakeUniqueDir(fs::temp_directory_path(), "kbrun-run-gate-test-");
  EvalRequest req = QuickCpuRequest("honest_torch_add", root);
  CompiledCandidate first = Compile(req), second = Compile(req);
  ASSERT_TRUE(first.ok && second.ok);
  std::shared_ptr<RunAhead> first_ahead = StartRunAhead(req, first);
  std::shared_ptr<RunAhead> second_ahead = StartRunAhead(req, second);
  EvalResult a = eval::Run(req, first, first_ahead, second_ahead);
  ASSERT_EQ(a.json["status"], "correct") << a.error_message;
  EXPECT_GE(a.json["stages"]["run_waited_for_quiet_s"].get<double>(), 0.0) << a.json["stages"].dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EvalResult b = eval::Run(req, second, second_ahead);
  ASSERT_EQ(b.json["status"], "correct") << b.error_message;
  EXPECT_GT(b.json["stages"]["run_waited_for_lane_s"].get<double>(), 0.4) << b.json["stages"].dump();
  EXPECT_NE(a.json["seed"], b.json["seed"]);
  fs::remove_all(root);
}

// The FIFO's protocol: two bytes at Open (the worker's and the checker's), a third for the
// worker's timing, EOF when abandoned; a process that opens late still finds its byte.
TEST(RunGate, BytesInOrderAndEofWhenAbandoned) {
  fs::path root = MakeUniqueDir(fs::temp_directory_path(), "kbrun-run-gate-test-");
  auto read_all = [](const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK);
    std::string got;
    char c;
    while (read(fd, &c, 1) == 1) got += c;
    close(fd);
    return got;
  };
  {
    RunGate gate(root);
    EXPECT_TRUE(gate.waiting());
    EXPECT_FALSE(gate.Ready());
    gate.LetTimingStart();  // before Open: nothing (the go bytes must come first)
    gate.Open();
    EXPECT_FALSE(gate.waiting());
    EXPECT_TRUE(gate.opened_at().has_value());
    gate.LetTimingStart();
    gate.LetTimingStart();  // once only
    EXPECT_EQ(read_all(gate.path()), "ggq");
    gate.MarkReady(1);
    gate.MarkReady(1);
    EXPECT_FALSE(gate.Ready());
    gate.MarkReady(0);
    EXPECT_TRUE(gate.Ready());
  }
  EXPECT_FALSE(fs::exists(root / "go"));
  RunGate abandoned(root);
  abandoned.Abandon();
  EXPECT_FALSE(abandoned.waiting());
  EXPECT_EQ(read_all(abandoned.path()), "");
  fs::remove_all(root);
}

TEST(RunAhead, DroppedUnusedItsProcessesEndAndTheCandidateRunsLater) {
  fs::path root = MakeUniqueDir(fs::temp_directory_path(), "kbrun-run-gate-test-");
  EvalRequest req = QuickCpuRequest("honest_torch_add", root);
  CompiledCandidate compiled = Compile(req);
  ASSERT_TRUE(compiled.ok) << compiled.failure.error_message;
  {
    std::shared_ptr<RunAhead> ahead = StartRunAhead(req, compiled);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    const auto dropped = Clock::now();
    ahead.reset();  // the lane retired, or the batch stops
    EXPECT_LT(SecondsSince(dropped), 10.0) << "its processes should end at the gate's EOF";
  }
  EXPECT_FALSE(fs::exists(compiled.work_dir / "go"));
  EvalResult r = eval::Run(req, compiled);
  ASSERT_EQ(r.json["status"], "correct") << r.error_message << "\n" << r.json.dump(1);
  EXPECT_TRUE(r.json["stages"]["run_waited_for_lane_s"].is_null());
  fs::remove_all(root);
}

}  // namespace
}  // namespace kbrun::eval
