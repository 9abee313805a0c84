// kbrun batch --slurm against a real Slurm: a single-node cluster on localhost
// (tests/slurm/cluster.sh: munged, slurmctld, slurmd from Debian), the CPU test problems and
// the fake LLM server. Submit, watch, kill a task mid-run with scancel, resubmit, merge, and
// compare the merged verdicts with a single-host run's.
//
// Skipped, with the reason, where the daemons cannot start (not root, Slurm not installed);
// with KBRUN_REQUIRE_SLURM=1 (CI: .ci/run) that is a failure instead.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstdlib>
#include <map>
#include <regex>

#include "batch/batch_test_util.h"
#include "batch/shards.h"
#include "batch/slurm.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun {
namespace {

using namespace batch_test;
using nlohmann::json;

const fs::path kClusterScript = kData / "slurm/cluster.sh";

// A test's folder (the cluster's state and logs, the runs, a compile cache of ~400 MB with its
// precompiled header): removed at the end, after the cluster stops, unless the test failed.
class ScratchDir {
 public:
  ScratchDir() : path_(MakeUniqueDir(fs::temp_directory_path(), "kbrun-slurm-e2e-")) {}
  ~ScratchDir() {
    if (::testing::Test::HasFailure()) {
      fmt::print(stderr, "kept for a post-mortem: {}\n", path_.string());
    } else {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The cluster for the lifetime of the object; stopped (jobs cancelled) however the test ends.
class LocalSlurm {
 public:
  explicit LocalSlurm(const fs::path& dir) : dir_(dir) {
    ProcessSpec spec;
    spec.argv = {"/bin/sh", kClusterScript.string(), "start", dir.string()};
    spec.env = CurrentEnvironment();
    spec.timeout_s = 90;
    ProcessResult r = RunProcess(spec);
    started_ = r.exit_code == 0;
    output_ = r.output;
  }
  ~LocalSlurm() {
    ProcessSpec spec;
    spec.argv = {"/bin/sh", kClusterScript.string(), "stop", dir_.string()};
    spec.env = CurrentEnvironment();
    spec.timeout_s = 90;
    RunProcess(spec);
  }
  bool started() const { return started_; }
  const std::string& output() const { return output_; }
  fs::path conf() const { return dir_ / "slurm.conf"; }

 private:
  fs::path dir_;
  bool started_ = false;
  std::string output_;
};

ProcessResult RunWithEnv(std::vector<std::string> argv, const std::map<std::string, std::string>& env,
                         double timeout_s = 60) {
  ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.env = env;
  spec.timeout_s = timeout_s;
  return RunProcess(spec);
}

// Every sample's status by problem and index: what "the same verdicts" means.
std::map<std::string, std::map<int, std::string>> Verdicts(const fs::path& results) {
  std::map<std::string, std::map<int, std::string>> out;
  static const std::regex result_file(R"(^result_(\d+)\.json$)");
  for (const auto& problem : fs::directory_iterator(results)) {
    if (!problem.is_directory() || !std::isdigit(static_cast<unsigned char>(problem.path().filename().string()[0]))) {
      continue;
    }
    for (const auto& f : fs::directory_iterator(problem.path())) {
      std::smatch m;
      std::string name = f.path().filename().string();
      if (!std::regex_match(name, m, result_file)) continue;
      out[problem.path().filename().string()][std::stoi(m[1].str())] = ReadJson(f.path())["status"];
    }
  }
  return out;
}

// Per problem: the report's status and the best sample's status.
std::map<std::string, std::string> ReportVerdicts(const fs::path& results) {
  std::map<std::string, std::string> out;
  json report = ReadJson(results / "detailed_report.json");
  for (const auto& p : report["problems"]) {
    out[p["name"]] = p["status"].dump() + " / " + p["best_status"].dump();
  }
  return out;
}

json Scenario(bool slow_square_once) {
  json rules = json::array({
      Rule("MARKER_ONE", Response("scale_shift_cpp")),
      Rule("max abs diff", Response("add_twice_fixed")),  // attempt 2 of problem 2: the reflection
      Rule("MARKER_TWO", Response("add_twice_wrong")),
      Rule("MARKER_THREE", "I am sorry, but I cannot help with that."),
  });
  // The first answer for problem 4 never comes in time: its task is in the middle of its shard
  // when it is cancelled. The resubmitted task gets the next rule's answer at once.
  if (slow_square_once) rules.push_back(Rule("MARKER_FOUR", Response("square"), {{"times", 1}, {"delay_s", 3600}}));
  rules.push_back(Rule("MARKER_FOUR", Response("square")));
  rules.push_back(Rule("MARKER_FIVE", Response("negate")));
  return rules;
}

TEST(SlurmE2E, KilledTaskIsResubmittedAndTheMergedReportMatchesASingleHostRun) {
  ScratchDir scratch;  // declared first: removed after the cluster below has stopped
  const fs::path& dir = scratch.path();
  const bool required = std::getenv("KBRUN_REQUIRE_SLURM") && std::string(std::getenv("KBRUN_REQUIRE_SLURM")) == "1";
  LocalSlurm slurm(dir / "cluster");
  if (!slurm.started()) {
    if (required) FAIL() << "KBRUN_REQUIRE_SLURM=1 but " << slurm.output();
    GTEST_SKIP() << Trim(slurm.output());
  }
  auto env = Environment();
  env["SLURM_CONF"] = slurm.conf().string();
  // The tasks' compile cache is then the default: kbrun-compile-cache beside the results folder.
  env.erase("KBRUN_COMPILE_CACHE");
  const fs::path cache = dir / "kbrun-compile-cache";
  const std::vector<std::string> plan = {"--samples", "1", "--attempts", "2"};

  // The single-host run, which also fills the cache the tasks will find.
  FakeLlmServer reference_server(Scenario(false).dump(), 400);
  std::vector<std::string> single_flags = plan;
  single_flags.insert(single_flags.end(), {"--compile-cache", cache.string()});
  ProcessResult single = RunKbrun(BatchArgv(dir / "single", reference_server.base_url(), 1, 5, single_flags), env);
  ASSERT_EQ(single.exit_code, 0) << single.output;

  // Submit: 5 problems in 3 shards (1-2, 3-4, 5); the job id comes on stdout.
  FakeLlmServer server(Scenario(true).dump(), 400);
  const fs::path run = dir / "run";
  std::vector<std::string> slurm_flags = plan;
  slurm_flags.insert(slurm_flags.end(), {"--slurm", "--slurm-tasks", "3", "--slurm-poll", "0.5"});
  const auto argv = BatchArgv(run, server.base_url(), 1, 5, slurm_flags);
  ProcessResult submit = RunKbrun(argv, env);
  ASSERT_EQ(submit.exit_code, 0) << submit.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(submit.output, m, std::regex(R"((^|\n)(\d+)\n)"))) << submit.output;
  const std::string job = m[2].str();
  EXPECT_TRUE(Contains(submit.output, "submitted job " + job + " (array 0-2: 3 of 3 shards")) << submit.output;
  EXPECT_TRUE(Contains(submit.output, "squeue --me --array --jobs " + job)) << submit.output;
  auto manifest = batch::LoadManifest(run);
  ASSERT_TRUE(manifest.has_value());
  ASSERT_EQ(manifest->shards.size(), 3u);
  EXPECT_EQ(manifest->shards[1].problems, (std::vector<std::string>{"3_Hopeless", "4_Square"}));
  EXPECT_EQ(manifest->compile_cache, cache);

  // Watch: Slurm knows the job's tasks.
  batch::SlurmClient client(env);
  EXPECT_FALSE(client.Queue({job}).empty());

  // Shard 1 mid-run: problem 3 finished (both attempts), problem 4 waiting for its answer. Cancel it.
  const fs::path shard1 = batch::ShardResultsDir(run, 1);
  ASSERT_TRUE(WaitFor(
      [&] {
        json s = ReadJson(shard1 / "summary.json");
        return s.is_object() && s["state"] == "running" && s["problems"][0]["phase"] == "unsolved" &&
               s["problems"][1]["phase"] == "running";
      },
      120))
      << ReadFile(shard1 / "summary.json").value_or("(no summary)") << "\n"
      << ReadFile(run / "slurm/logs" / (job + "_1.out")).value_or("(no log)");
  ProcessResult cancel = RunWithEnv({"scancel", job + "_1"}, env);
  ASSERT_EQ(cancel.exit_code, 0) << cancel.output;
  // The other tasks go on; wait until Slurm runs none of the job.
  ASSERT_TRUE(WaitFor([&] { return client.Queue({job}).empty(); }, 120));
  EXPECT_EQ(batch::ReadShardStatus(run, manifest->shards[0]).state, "finished");
  EXPECT_EQ(batch::ReadShardStatus(run, manifest->shards[1]).state, "interrupted");  // SIGTERM: state saved
  EXPECT_EQ(batch::ReadShardStatus(run, manifest->shards[2]).state, "finished");
  EXPECT_TRUE(Contains(ReadFile(run / "slurm/logs" / (job + "_1.out")).value_or(""), "CANCELLED"));

  // Merged now: incomplete, problem 4 unfinished.
  ProcessResult merge = RunWithEnv({KBRUN_BINARY, "merge", run.string()}, env);
  ASSERT_EQ(merge.exit_code, 0) << merge.output;
  EXPECT_TRUE(Contains(merge.output, "5 problems from 3 shards (2 finished)")) << merge.output;
  EXPECT_EQ(ReadJson(run / "summary.json")["state"], "incomplete");

  // Resubmit and wait: only shard 1 goes to Slurm again; it resumes, and everything is merged.
  std::vector<std::string> wait_argv = argv;
  wait_argv.push_back("--slurm-wait");
  ProcessResult resubmit = RunKbrun(wait_argv, env);
  ASSERT_EQ(resubmit.exit_code, 0) << resubmit.output;
  EXPECT_TRUE(Contains(resubmit.output, "finished, not resubmitted: shards 0,2")) << resubmit.output;
  EXPECT_TRUE(Contains(resubmit.output, "(array 1: 1 of 3 shards")) << resubmit.output;
  EXPECT_TRUE(Contains(resubmit.output, "shards finished 3/3 | problems done 5/5")) << resubmit.output;
  EXPECT_TRUE(Contains(resubmit.output, "every shard finished")) << resubmit.output;
  manifest = batch::LoadManifest(run);
  ASSERT_EQ(manifest->submissions.size(), 2u);
  EXPECT_EQ(manifest->submissions[1].tasks, std::vector<int>{1});

  // Nothing was generated twice: one answer per sample, but for the one the cancel cut off.
  EXPECT_EQ(RequestsFor(server, "MARKER_ONE").size(), 1u);
  EXPECT_EQ(RequestsFor(server, "MARKER_TWO").size(), 2u);
  EXPECT_EQ(RequestsFor(server, "MARKER_THREE").size(), 2u);
  EXPECT_EQ(RequestsFor(server, "MARKER_FOUR").size(), 2u);
  EXPECT_EQ(RequestsFor(server, "MARKER_FIVE").size(), 1u);

  // The merged tree: the single-host run's verdicts, sample by sample and problem by problem.
  json summary = ReadJson(run / "summary.json");
  EXPECT_EQ(summary["state"], "finished");
  EXPECT_EQ(summary["slurm"]["job_ids"].size(), 2u);
  auto expected = Verdicts(dir / "single");
  EXPECT_EQ(expected.size(), 5u);
  EXPECT_EQ(expected["2_AddTwice"], (std::map<int, std::string>{{1, "incorrect"}, {2, "correct"}}));
  EXPECT_EQ(Verdicts(run), expected);
  EXPECT_EQ(ReportVerdicts(run), ReportVerdicts(dir / "single"));
  json report = ReadJson(run / "detailed_report.json");
  EXPECT_EQ(report["overall"]["slurm_shards"], 3);
  EXPECT_EQ(report["overall"]["correct"], ReadJson(dir / "single/detailed_report.json")["overall"]["correct"]);
  // The tasks found the single-host run's build in the shared cache.
  EXPECT_EQ(ReadJson(run / "1_ScaleShiftCpp/result_1.json")["eval"]["build"]["extensions"][0]["cache"], "hit");

  // Once more: every shard finished, nothing is submitted.
  ProcessResult again = RunKbrun(argv, env);
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_TRUE(Contains(again.output, "nothing to submit: every shard finished")) << again.output;
  EXPECT_EQ(batch::LoadManifest(run)->submissions.size(), 2u);
}

// Tasks that cannot run their batch (no Python with torch on the node): --slurm-wait ends with
// exit 75, every shard unfinished, and the error line of each task's log.
TEST(SlurmE2E, ShardsThatCannotRunEndTheWaitWithExit75) {
  ScratchDir scratch;
  const fs::path& dir = scratch.path();
  const bool required = std::getenv("KBRUN_REQUIRE_SLURM") && std::string(std::getenv("KBRUN_REQUIRE_SLURM")) == "1";
  LocalSlurm slurm(dir / "cluster");
  if (!slurm.started()) {
    if (required) FAIL() << "KBRUN_REQUIRE_SLURM=1 but " << slurm.output();
    GTEST_SKIP() << Trim(slurm.output());
  }
  auto env = Environment();
  env["SLURM_CONF"] = slurm.conf().string();
  auto argv = BatchArgv(dir / "run", "http://127.0.0.1:9/v1", 1, 5,
                        {"--slurm", "--slurm-tasks", "2", "--slurm-wait", "--slurm-poll", "0.5"});
  *std::find(argv.begin(), argv.end(), "/usr/bin/python3") = (dir / "no-python3").string();
  ProcessResult p = RunKbrun(argv, env);
  EXPECT_EQ(p.exit_code, 75) << p.output;
  EXPECT_TRUE(Contains(p.output, "5 problems from 2 shards (0 finished)")) << p.output;
  for (const char* shard : {"shard 0: not_started (0 of 3 problems done); ", "shard 1: not_started (0 of 2"}) {
    EXPECT_TRUE(Contains(p.output, shard)) << p.output;
  }
  EXPECT_TRUE(Contains(p.output, "_1.out: kbrun: no Python interpreter with torch found")) << p.output;
  EXPECT_TRUE(Contains(p.output, "Run the same command again to resubmit them")) << p.output;
  EXPECT_EQ(ReadJson(dir / "run/summary.json")["state"], "incomplete");
}

// Without Slurm's commands: a clear message, exit 69, nothing written.
TEST(SlurmE2E, NoSbatchOnPathIsUnavailable) {
  ScratchDir scratch;
  const fs::path& dir = scratch.path();
  auto env = Environment();
  env["PATH"] = "/nonexistent";
  ProcessResult p = RunKbrun(BatchArgv(dir / "run", "http://127.0.0.1:9/v1", 1, 5, {"--slurm"}), env);
  EXPECT_EQ(p.exit_code, 69) << p.output;
  EXPECT_TRUE(Contains(p.output, "sbatch is not on PATH")) << p.output;
  EXPECT_FALSE(fs::exists(dir / "run"));
}

// The job script through a real shell: every argument arrives as it was given to kbrun batch.
TEST(SlurmE2E, JobScriptPassesTheFlagsThroughAShell) {
  ScratchDir scratch;
  const fs::path& dir = scratch.path();
  fs::path fake = dir / "kbrun";
  WriteFileAtomic(fake, "#!/bin/sh\necho \"cache=$KBRUN_COMPILE_CACHE\"\nfor a in \"$@\"; do echo \"[$a]\"; done\n");
  fs::permissions(fake, fs::perms::owner_all);
  batch::JobScriptSpec spec;
  spec.kbrun = fake;
  spec.args = {"batch", "1", "40", "--results", "it's here", "--header", "X-Note: $HOME `id`"};
  spec.compile_cache = "/shared/cache dir";
  WriteFileAtomic(dir / "job.sh", batch::JobScriptText(spec));
  ProcessResult r =
      RunWithEnv({"/bin/sh", (dir / "job.sh").string()}, {{"SLURM_ARRAY_TASK_ID", "3"}, {"PATH", "/usr/bin:/bin"}});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output,
            "cache=/shared/cache dir\n[batch]\n[1]\n[40]\n[--results]\n[it's here]\n[--header]\n[X-Note: $HOME `id`]\n"
            "[--slurm-shard]\n[3]\n");
}

}  // namespace
}  // namespace kbrun
