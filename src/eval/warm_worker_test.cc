// The warm worker (eval/warm_worker.h): workers and checkers are forks of one server that
// imported torch, set up as cold starts are, and a server that dies is replaced.
#include "eval/warm_worker.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "eval/eval_test_util.h"
#include "eval/evaluation.h"
#include "eval/python_env.h"
#include "util/process_list_test_util.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace kbrun::eval {
namespace {

fs::path FreshDir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("kbrun-warm-test-" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// The same candidate, forked and cold: the probe fails unless the fork has its own session,
// private HOME/TMPDIR, no inherited sockets or pipes, and no secrets.
TEST(WarmWorker, ForkedRunsAreSetUpLikeColdStarts) {
  auto warm = RunEvalIn("candidates", "fork_probe", {"--allow-library-kernels"});
  ASSERT_EQ(warm.result["status"], "correct") << warm.output;
  EXPECT_EQ(warm.result["stages"]["compile_worker_start"], "warm");
  EXPECT_EQ(warm.result["stages"]["run_worker_start"], "warm");
  EXPECT_EQ(warm.result["sandbox"]["network_isolated"], true);
  EXPECT_EQ(warm.result["correctness"]["checker"]["checks"]["trial"]["passed"], 5);

  auto cold = RunEvalIn("candidates", "fork_probe", {"--allow-library-kernels", "--warm-worker", "off"});
  ASSERT_EQ(cold.result["status"], "correct") << cold.output;
  EXPECT_EQ(cold.result["stages"]["compile_worker_start"], "cold");
  EXPECT_EQ(cold.result["stages"]["run_worker_start"], "cold");
  EXPECT_EQ(cold.result["sandbox"]["network_isolated"], true);
}

TEST(WarmWorker, OneServerForksEveryRunAndADeadOneIsReplaced) {
  fs::path root = FreshDir("replace");
  EvalRequest req = QuickCpuRequest("fork_probe", root);
  const std::string python = DiscoverPython("").interpreter;
  WarmWorkerStats before = GetWarmWorkerStats();

  EvalResult first = Evaluate(req);
  ASSERT_EQ(first.json["status"], "correct") << first.error_message;
  int pid = WarmWorkerPid(python);
  ASSERT_GT(pid, 0);
  EvalResult second = Evaluate(req);
  ASSERT_EQ(second.json["status"], "correct") << second.error_message;
  EXPECT_EQ(WarmWorkerPid(python), pid) << "the second evaluation should reuse the server";
  WarmWorkerStats after = GetWarmWorkerStats();
  EXPECT_EQ(after.servers_started - before.servers_started, 1);
  // Compile worker, run worker and checker of both evaluations.
  EXPECT_EQ(after.forks - before.forks, 6);
  EXPECT_EQ(after.cold_fallbacks, before.cold_fallbacks);

  ASSERT_EQ(kill(pid, SIGKILL), 0);
  for (int i = 0; i < 100 && WarmWorkerPid(python) == pid; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EvalResult third = Evaluate(req);
  ASSERT_EQ(third.json["status"], "correct") << third.error_message;
  EXPECT_EQ(third.json["stages"]["compile_worker_start"], "warm");
  EXPECT_EQ(third.json["stages"]["run_worker_start"], "warm");
  int replacement = WarmWorkerPid(python);
  EXPECT_GT(replacement, 0);
  EXPECT_NE(replacement, pid);
  EXPECT_EQ(GetWarmWorkerStats().servers_started - before.servers_started, 2);
  fs::remove_all(root);
}

// A candidate that kills its parent (the server, or a fork of it) in both phases: the server
// keeps serving, and the next run gets a working one.
TEST(WarmWorker, ACandidateThatKillsTheServerStillGetsItsVerdict) {
  fs::path root = FreshDir("kills-parent");
  const std::string python = DiscoverPython("").interpreter;
  WarmWorkerStats before = GetWarmWorkerStats();
  EvalResult r = Evaluate(QuickCpuRequest("kills_parent", root));
  if (ProbeSandbox().shared_pid_namespace) {
    // The run phase's worker shares a namespace with its checker, whose init is not the
    // worker's parent: the kill lands on the worker's own sandbox init, and the worker dies
    // with it. The candidate ended its own run.
    EXPECT_EQ(r.json["status"], "runtime_error") << r.error_message;
  } else {
    EXPECT_EQ(r.json["status"], "correct") << r.error_message;
  }
  EvalResult next = Evaluate(QuickCpuRequest("fork_probe", root));
  EXPECT_EQ(next.json["status"], "correct") << next.error_message;
  EXPECT_EQ(next.json["stages"]["run_worker_start"], "warm");
  // Where the sandbox has a PID namespace, the candidate's parent is the namespace's init (a
  // fork of the server, with its command line), which ignores a SIGKILL sent from inside: the
  // server lives and serves every run. Without one, the server is killed in the compile and
  // run phases and replaced each time: three servers in all.
  EXPECT_EQ(GetWarmWorkerStats().servers_started - before.servers_started, ProbeSandbox().pid_namespace ? 1 : 3);
  fs::remove_all(root);
}

// RunProcess with the starter: exit status, output and CPU time come back as from fork/exec;
// runs that would see a GPU are forks only when GPU runs are allowed.
TEST(WarmWorker, StarterRunsScriptsAndKeepsGpuRunsColdUnlessAllowed) {
  fs::path root = FreshDir("starter");
  fs::path script = root / "script.py";
  WriteFileAtomic(script,
                  "import sys, time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
                  "print('hello from', sys.argv[1])\nsys.exit(3)\n");
  const std::string python = DiscoverPython("").interpreter;
  auto run = [&](const std::string& visible, bool gpu_runs) {
    ProcessSpec spec;
    spec.argv = {python, script.string(), "the fork"};
    spec.env = {{"PATH", "/usr/bin:/bin"}, {"CUDA_VISIBLE_DEVICES", visible}, {"HOME", root.string()}};
    spec.cwd = root.string();
    spec.timeout_s = 120;
    spec.starter = WarmWorkerStarter(python, root, gpu_runs);
    return RunProcess(spec);
  };
  ProcessResult cpu = run("", false);
  EXPECT_TRUE(cpu.started_by_starter);
  EXPECT_EQ(cpu.exit_code, 3);
  EXPECT_NE(cpu.output.find("hello from the fork"), std::string::npos) << cpu.output;
  EXPECT_GE(cpu.cpu_s, 0.25);  // the server's wait4 rusage of the fork
  ProcessResult gpu_cold = run("0", false);
  EXPECT_FALSE(gpu_cold.started_by_starter);
  EXPECT_EQ(gpu_cold.exit_code, 3);
  ProcessResult gpu_warm = run("0", true);
  EXPECT_TRUE(gpu_warm.started_by_starter);  // a CPU torch: the server's probe finds no CUDA to spoil
  EXPECT_EQ(gpu_warm.exit_code, 3);
  fs::remove_all(root);
}

// The warm worker's fork in a GPU run's sandbox (no PID namespace): a double-forked daemon
// is killed by the sandbox's init when the script ends.
TEST(WarmWorker, ForkWithoutPidNamespaceLeavesNoDaemon) {
  fs::path root = FreshDir("nopid");
  fs::path script = root / "script.py";
  WriteFileAtomic(script,
                  "import os, sys, time\n"
                  "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                  "        sys.argv[0] = 'kbrun-nopid-daemon'\n"
                  "        open(sys.argv[1], 'w').write(str(os.getpid()))\n        time.sleep(300)\n"
                  "    os._exit(0)\n"
                  "time.sleep(0.5)\nprint('parent', open('/proc/%d/comm' % os.getppid()).read().strip())\n");
  const std::string python = DiscoverPython("").interpreter;
  fs::path pid_file = root / "daemon.pid";
  ProcessSpec spec;
  spec.argv = {python, script.string(), pid_file.string()};
  spec.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", root.string()}};
  spec.cwd = root.string();
  spec.timeout_s = 120;
  spec.sandbox = true;
  spec.pid_namespace = false;
  spec.writable_paths = {root.string()};
  spec.starter = WarmWorkerStarter(python, root, false);
  ProcessResult r = RunProcess(spec);
  EXPECT_TRUE(r.started_by_starter);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("parent kbrun-sandbox"), std::string::npos) << r.output;
  auto pid_text = ReadFile(pid_file);
  ASSERT_TRUE(pid_text.has_value()) << r.output;
  int daemon = std::stoi(*pid_text);
  usleep(200000);
  bool alive = kill(daemon, 0) == 0 &&
               ReadFile(fmt::format("/proc/{}/stat", daemon)).value_or("").find(") Z") == std::string::npos;
  EXPECT_FALSE(alive) << "daemon " << daemon << " outlived the run";
  if (alive) kill(daemon, SIGKILL);
  fs::remove_all(root);
}

// As Subprocess.SandboxSharesItsShmFolderWritably, in a fork of the warm worker.
TEST(WarmWorker, ForkSharesItsShmFolderWritably) {
  fs::path root = FreshDir("shm");
  fs::path shm = root / "shm", priv = root / "private";
  fs::create_directories(shm);
  fs::create_directories(priv);
  WriteFileAtomic(shm / "from_host", "x");
  fs::path script = root / "script.py";
  WriteFileAtomic(script,
                  "import os\nprint(sorted(os.listdir('/dev/shm')))\n"
                  "open('/dev/shm/from_child', 'w').write('y')\nprint('wrote_shm')\n");
  const std::string python = DiscoverPython("").interpreter;
  ProcessSpec spec;
  spec.argv = {python, script.string()};
  spec.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", priv.string()}};
  spec.cwd = priv.string();
  spec.timeout_s = 120;
  spec.sandbox = true;
  spec.pid_namespace = false;
  spec.writable_paths = {priv.string()};
  spec.shm_dir = shm.string();
  spec.starter = WarmWorkerStarter(python, root, false);
  ProcessResult r = RunProcess(spec);
  EXPECT_TRUE(r.started_by_starter);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("from_host"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("wrote_shm"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(shm / "from_child"));
  fs::remove_all(root);
}

// --- The sandbox against hostile candidates (tests/candidates), warm and cold -------------

// `kbrun eval` of tests/candidates/<candidate>.py with `env_set` added to this environment.
EvalRun HostileEval(const std::string& candidate, const std::vector<std::string>& extra,
                    const std::map<std::string, std::string>& env_set = {}) {
  return RunEvalCall(
      {.code = TestFixture("candidates", candidate), .flags = kQuickEvalFlags, .extra = extra, .env_set = env_set});
}

std::string Category(const EvalRun& run) {
  return run.result.is_object() && run.result["error"].is_object() ? run.result["error"].value("category", "") : "";
}

const std::vector<std::string> kWarmAndCold[] = {{"--warm-worker", "all"}, {"--warm-worker", "off"}};

TEST(Sandbox, OutputThatIsNotUtf8StillGivesAClassifiedResult) {
  auto run = HostileEval("non_utf8_output", {});
  EXPECT_EQ(run.exit_code, 2) << run.output;
  ASSERT_TRUE(run.result.is_object()) << run.output;
  EXPECT_EQ(run.result["status"], "runtime_error");
  EXPECT_NE(run.result.value("output_tail", "").find("bad bytes: \xEF\xBF\xBD\xEF\xBF\xBD"), std::string::npos)
      << run.result.dump(2);
}

TEST(Sandbox, ACandidateCannotFindTheApiKeyAndItLeaksNowhere) {
  const std::string secret = fmt::format("sk-test-{:x}{:x}", getpid(), std::random_device()());
  for (const auto& mode : kWarmAndCold) {
    auto run = HostileEval("secret_hunter", mode, {{"LLM_GATEWAY_KEY", secret}});
    ASSERT_TRUE(run.result.is_object()) << run.output;
    // The hunter raises with whatever it finds: correct means it found no key at all.
    EXPECT_EQ(run.result["status"], "correct") << mode[1] << "\n" << run.result.dump(2);
    EXPECT_EQ(run.result.dump().find(secret), std::string::npos) << mode[1];
    EXPECT_EQ(run.output.find(secret), std::string::npos) << mode[1];
    EXPECT_EQ(run.result["sandbox"]["pid_namespace"], true);
  }
}

TEST(Sandbox, TheCheckerInSightIsOutOfReach) {
  for (const auto& mode : kWarmAndCold) {
    auto run = HostileEval("checker_prober", mode);
    ASSERT_TRUE(run.result.is_object()) << run.output;
    const std::string message = run.result["error"].is_object() ? run.result["error"].value("message", "") : "";
    EXPECT_EQ(message.find("reached:"), std::string::npos) << mode[1] << "\n" << message;
    if (ProbeSandbox().shared_pid_namespace) {
      // Correct: it saw the checker (the namespace both joined), and reached nothing.
      EXPECT_EQ(run.result["status"], "correct") << mode[1] << "\n" << run.result.dump(2);
      EXPECT_EQ(run.result["sandbox"]["pid_namespace_shared_with_checker"], true) << mode[1];
    }
  }
}

TEST(Sandbox, ADoubleForkedDaemonDiesWithTheEvaluation) {
  for (int pid : ProcessesWith("kbrun-daemon-marker")) kill(pid, SIGKILL);
  for (const auto& mode : kWarmAndCold) {
    auto run = HostileEval("double_fork_daemon", mode);
    ASSERT_TRUE(run.result.is_object()) << run.output;
    auto left = ProcessesWith("kbrun-daemon-marker");
    for (int pid : left) kill(pid, SIGKILL);
    EXPECT_TRUE(left.empty()) << mode[1] << ": the daemon outlived the evaluation";
    EXPECT_EQ(run.result["status"], "rejected") << mode[1] << "\n" << run.result.dump(2);
    EXPECT_EQ(Category(run), "spawned_process") << mode[1];
  }
}

TEST(Sandbox, AMemoryHogEndsAsOutOfMemoryUnderTheCap) {
  auto run = HostileEval("memory_hog", {"--memory-limit", "2G"});
  ASSERT_TRUE(run.result.is_object()) << run.output;
  EXPECT_EQ(run.result["status"], "runtime_error") << run.result.dump(2);
  EXPECT_EQ(Category(run), "out_of_memory") << run.result.dump(2);
  EXPECT_EQ(run.result["sandbox"]["memory_limit_bytes"], 2ULL << 30);
  EXPECT_EQ(run.result["sandbox"]["memory_limit_method"], MemoryCapMethod());
  EXPECT_LT(run.wall_s, 300);
}

TEST(Sandbox, WritesOutsideThePrivateDirectoryFail) {
  // A new name under /tmp goes to the sandbox's private layer; the machine's /tmp, its folders
  // and the user's home stay untouched.
  const fs::path in_tmp = "/tmp/kbrun-fs-escape-probe";
  const fs::path existing = "/tmp/kbrun-fs-escape-existing";
  const fs::path in_existing = existing / "kbrun-fs-escape-probe";
  const fs::path in_home = fs::path(getpwuid(getuid())->pw_dir) / "kbrun-fs-escape-probe";
  fs::create_directories(existing);
  fs::permissions(existing, fs::perms::all);
  for (const auto& mode : kWarmAndCold) {
    fs::remove(in_tmp);
    fs::remove(in_existing);
    fs::remove(in_home);
    auto run = HostileEval("fs_escape", mode);
    ASSERT_TRUE(run.result.is_object()) << run.output;
    // The candidate raises if a write outside works or one inside fails.
    EXPECT_EQ(run.result["status"], "correct") << mode[1] << "\n" << run.result.dump(2);
    EXPECT_FALSE(fs::exists(in_tmp)) << mode[1];
    EXPECT_FALSE(fs::exists(in_existing)) << mode[1];
    EXPECT_FALSE(fs::exists(in_home)) << mode[1];
    EXPECT_EQ(run.result["sandbox"]["filesystem_read_only"], true);
  }
  fs::remove(in_tmp);
  fs::remove_all(existing);
  fs::remove(in_home);
}

}  // namespace
}  // namespace kbrun::eval
