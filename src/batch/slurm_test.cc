// The Slurm client's pure parts: option words, array specs, the job script, sbatch's and
// squeue's output. (The commands themselves: slurm_e2e_test.cc, against a real Slurm.)
#include "batch/slurm.h"

#include <gtest/gtest.h>

namespace kbrun::batch {
namespace {

using Words = std::vector<std::string>;

TEST(Slurm, SplitsOptionsLikeAShell) {
  EXPECT_EQ(SplitShellWords("  --partition=gpu   --gres=gpu:1\t-t 4:00:00 "),
            (Words{"--partition=gpu", "--gres=gpu:1", "-t", "4:00:00"}));
  EXPECT_EQ(SplitShellWords(R"(--comment='two words' --job-name="a \"b\" c" x\ y)"),
            (Words{"--comment=two words", R"(--job-name=a "b" c)", "x y"}));
  EXPECT_EQ(SplitShellWords(R"('$HOME' "\$HOME" "a\b")"), (Words{"$HOME", "$HOME", R"(a\b)"}));  // nothing expanded
  EXPECT_EQ(SplitShellWords("''"), Words{""});
  EXPECT_TRUE(SplitShellWords("   ").empty());
  EXPECT_THROW(SplitShellWords("--comment='open"), std::invalid_argument);
  EXPECT_THROW(SplitShellWords("--comment=\"open"), std::invalid_argument);
  EXPECT_THROW(SplitShellWords("trailing\\"), std::invalid_argument);
}

TEST(Slurm, QuotesForAShellSoThatItReadsBackTheSame) {
  for (std::string s : {"plain", "two words", "it's", "$(rm -rf /) `x` \"q\" \\ \n"}) {
    EXPECT_EQ(SplitShellWords(ShellQuote(s)), Words{s}) << s;
  }
}

TEST(Slurm, ArraySpecCollapsesRuns) {
  EXPECT_EQ(ArraySpec({0, 1, 2, 3}), "0-3");
  EXPECT_EQ(ArraySpec({5, 0, 2, 1, 7, 8, 2}), "0-2,5,7-8");
  EXPECT_EQ(ArraySpec({4}), "4");
  EXPECT_EQ(ArraySpec({}), "");
}

TEST(Slurm, SbatchArgvPutsTheUsersOptionsLast) {
  SbatchRequest r;
  r.script = "/r/slurm/job.sh";
  r.tasks = {1, 3};
  r.job_name = "kbrun-r";
  r.output = "/r/slurm/logs/%A_%a.out";
  r.workdir = "/home/u";
  r.user_opts = {"--partition=gpu", "--job-name=mine"};
  EXPECT_EQ(SbatchArgv(r), (Words{"--parsable", "--array=1,3", "--job-name=kbrun-r", "--output=/r/slurm/logs/%A_%a.out",
                                  "--chdir=/home/u", "--partition=gpu", "--job-name=mine", "/r/slurm/job.sh"}));
}

TEST(Slurm, JobScriptExecsKbrunOnItsShard) {
  JobScriptSpec spec;
  spec.kbrun = "/opt/kb run/kbrun";
  spec.args = {"batch", "1", "40", "--results", "it's here"};
  spec.compile_cache = "/shared/cache";
  EXPECT_EQ(
      JobScriptText(spec),
      "#!/bin/sh\n"
      "# Written by kbrun batch --slurm: one task of the array runs one shard, a resumable kbrun batch.\n"
      "KBRUN_COMPILE_CACHE='/shared/cache'\n"
      "export KBRUN_COMPILE_CACHE\n"
      "exec '/opt/kb run/kbrun' 'batch' '1' '40' '--results' 'it'\\''s here' --slurm-shard \"$SLURM_ARRAY_TASK_ID\"\n");
  spec.compile_cache.clear();  // --no-compile-cache: the tasks get none
  EXPECT_EQ(JobScriptText(spec).find("KBRUN_COMPILE_CACHE"), std::string::npos);
}

TEST(Slurm, JobIdFromParsableOutput) {
  EXPECT_EQ(ParseSbatchJobId("1234\n"), "1234");
  EXPECT_EQ(ParseSbatchJobId("sbatch: warning: can't honor --ntasks-per-node\n1234;cluster2\n"), "1234");
  EXPECT_THROW(ParseSbatchJobId("sbatch: error: Batch job submission failed\n"), SlurmError);
}

TEST(Slurm, SqueueLinesOfArrayTasks) {
  auto tasks = ParseSqueue(
      "77|0|RUNNING|None\n77|3|PENDING|ReqNodeNotAvail, UnavailableNodes:n[1-2]\n80|N/A|RUNNING|None\n"
      "squeue: warning: something\n\n77|4|PENDING\n");
  ASSERT_EQ(tasks.size(), 4u);
  EXPECT_EQ(tasks[0].job_id, "77");
  EXPECT_EQ(tasks[0].task, 0);
  EXPECT_EQ(tasks[0].state, "RUNNING");
  EXPECT_EQ(tasks[0].reason, "");
  EXPECT_EQ(tasks[1].task, 3);
  EXPECT_EQ(tasks[1].state, "PENDING");
  EXPECT_EQ(tasks[1].reason, "ReqNodeNotAvail, UnavailableNodes:n[1-2]");
  EXPECT_EQ(tasks[2].task, -1);          // not an array
  EXPECT_EQ(tasks[3].state, "PENDING");  // without the reason column
  EXPECT_EQ(tasks[3].reason, "");
}

TEST(Slurm, MissingCommandsAreNotInstalledErrors) {
  EXPECT_TRUE(FindOnPath("sbatch", "/nonexistent:/also/not").empty());
  EXPECT_EQ(FindOnPath("sh", "/nonexistent:/bin"), fs::path("/bin/sh"));
  SlurmClient client(std::map<std::string, std::string>{{"PATH", "/nonexistent"}});
  try {
    client.Queue({"1"});
    FAIL() << "squeue ran without a PATH that holds it";
  } catch (const SlurmError& e) {
    EXPECT_EQ(e.kind(), SlurmError::Kind::kNotInstalled);
    EXPECT_NE(std::string(e.what()).find("squeue is not on PATH"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(client.Queue({}).empty());  // nothing to ask about: no squeue call
}

}  // namespace
}  // namespace kbrun::batch
