// kbrun merge on hand-made shard trees: what lands in the run's folder, and that the report
// reads the merged tree as it would a single-host run's.
#include "report/merge.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "batch/results_store.h"
#include "report/monitor.h"
#include "report/report.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::report {
namespace {

using nlohmann::json;

json Result(const std::string& problem, int index, const std::string& status, double speedup, double t0) {
  bool correct = status == "correct";
  return {{"problem", problem},
          {"index", index},
          {"attempt", index},
          {"sample", 1},
          {"status", status},
          {"correct", correct},
          {"success", correct},
          {"speedup", correct ? json(speedup) : json(nullptr)},
          {"failure_kind", correct ? json(nullptr) : json("Incorrect")},
          {"stages", {{"llm", {{"start", t0}, {"end", t0 + 1}}}, {"gpu", {{"start", t0 + 2}, {"end", t0 + 3}}}}}};
}

json ProblemEntry(const std::string& name, int number, const std::string& phase) {
  return {{"name", name}, {"number", number}, {"phase", phase}, {"running", json::array()}};
}

class MergeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeUniqueDir(fs::temp_directory_path(), "kbrun-merge-test-");
    manifest_.problems_dir = "/problems";
    manifest_.first = 1;
    manifest_.last = 5;
    manifest_.shards = {{0, 1, 2, {"1_A", "2_B"}}, {1, 3, 4, {"3_C", "4_D"}}, {2, 5, 5, {"5_E"}}};
    manifest_.submissions = {{"100", {0, 1, 2}, 1.0}, {"101", {1}, 2.0}};
    batch::SaveManifest(dir_, manifest_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A shard's tree as its batch leaves it: summary.json, results, log, timeline.
  void WriteShard(int index, const std::string& state, json problems, std::vector<json> results, json sessions,
                  json config_extra = json::object()) {
    batch::ResultsStore store(batch::ShardResultsDir(dir_, index));
    fs::create_directories(store.root());
    json config = {{"samples", 1}, {"attempts", 2}, {"target_speedup", 1.0}, {"model", "m"}, {"gpu_lanes", {0}},
                   {"first", 0},   {"last", 0},     {"index_offset", 0}};
    config.update(config_extra);
    int solved = 0, unsolved = 0;
    for (const auto& p : problems) {
      solved += p["phase"] == "solved";
      unsolved += p["phase"] == "unsolved";
    }
    store.WriteSummary(
        {{"state", state},
         {"host", "node" + std::to_string(index)},
         {"pid", 4242},
         {"started_at", sessions[0]["started_at"]},
         {"updated_at", sessions.back()["ended_at"].is_number() ? sessions.back()["ended_at"] : json(500)},
         {"finished_at", state == "finished" ? json(sessions.back()["ended_at"]) : json(nullptr)},
         {"sessions", sessions},
         {"config", config},
         {"lanes", json::array({{{"gpu", 0}, {"state", "active"}}})},
         {"totals",
          {{"problems", problems.size()},
           {"solved", solved},
           {"unsolved", unsolved},
           {"samples", results.size()},
           {"by_status", {{"correct", 1}}}}},
         {"problems", problems},
         {"recent_errors", json::array({{{"time", 10.0 + index}, {"problem", "x"}}})}});
    for (const auto& r : results) {
      fs::create_directories(store.ProblemDir(r["problem"]));
      WriteFileAtomic(store.ResultPath(r["problem"], r["index"]), r.dump());
      WriteFileAtomic(store.ProblemDir(r["problem"]) / "best_code.py", "code of " + r["problem"].get<std::string>());
      store.AppendTimeline({{"problem", r["problem"]}, {"stage", "gpu"}, {"start", 1.0}, {"end", 2.0}, {"lane", 0}});
    }
    AppendLine(store.LogPath(), fmt::format("2026-01-01T00:00:0{}.000Z shard line {}", index, index));
  }

  fs::path dir_;
  batch::ShardManifest manifest_;
};

TEST_F(MergeTest, JoinsFinishedShardsIntoOneTreeTheReportReads) {
  WriteShard(0, "finished", {ProblemEntry("1_A", 1, "solved"), ProblemEntry("2_B", 2, "unsolved")},
             {Result("1_A", 1, "correct", 2.0, 100), Result("2_B", 1, "incorrect", 0, 100)},
             json::array({{{"started_at", 100.0}, {"ended_at", 110.0}}}));
  // Shard 1 ran twice (killed, resubmitted): two sessions, the second overlapping shard 2's.
  WriteShard(1, "finished", {ProblemEntry("3_C", 3, "solved"), ProblemEntry("4_D", 4, "solved")},
             {Result("3_C", 1, "correct", 0.5, 105), Result("4_D", 2, "correct", 1.5, 130)},
             json::array({{{"started_at", 105.0}, {"ended_at", 112.0}}, {{"started_at", 130.0}, {"ended_at", 140.0}}}));
  WriteShard(2, "finished", {ProblemEntry("5_E", 5, "solved")}, {Result("5_E", 1, "correct", 1.0, 135)},
             json::array({{{"started_at", 135.0}, {"ended_at", 145.0}}}));

  MergeOutcome out = MergeShards(dir_);
  EXPECT_EQ(out.state, "finished");
  EXPECT_EQ(out.problems, 5);
  EXPECT_TRUE(out.warnings.empty());
  ASSERT_EQ(out.shards.size(), 3u);

  // Problem folders are copies; the shards keep theirs.
  EXPECT_EQ(ReadFile(dir_ / "4_D/best_code.py"), "code of 4_D");
  EXPECT_TRUE(fs::exists(dir_ / "4_D/result_2.json"));
  EXPECT_TRUE(fs::exists(batch::ShardResultsDir(dir_, 1) / "4_D/result_2.json"));

  json s = json::parse(*ReadFile(dir_ / "summary.json"));
  EXPECT_EQ(s["state"], "finished");
  EXPECT_EQ(s["pid"], 0);  // no process of this host to look for
  EXPECT_EQ(s["host"], "node0,node1,node2");
  ASSERT_EQ(s["problems"].size(), 5u);
  EXPECT_EQ(s["problems"][2]["name"], "3_C");
  EXPECT_EQ(s["totals"]["problems"], 5);
  EXPECT_EQ(s["totals"]["solved"], 4);
  EXPECT_EQ(s["totals"]["by_status"]["correct"], 3);
  // Sessions: the union of the shards' spans: 100-112 and 130-145.
  EXPECT_EQ(s["sessions"], json::parse(R"([{"started_at": 100.0, "ended_at": 112.0, "pid": null},
                                           {"started_at": 130.0, "ended_at": 145.0, "pid": null}])"));
  EXPECT_EQ(s["config"]["first"], 1);
  EXPECT_EQ(s["config"]["last"], 5);
  EXPECT_EQ(s["config"]["gpu_lanes"], json::array({0, 0, 0}));
  EXPECT_FALSE(s["config"].contains("index_offset"));
  EXPECT_EQ(s["slurm"]["job_ids"], json::array({"100", "101"}));
  EXPECT_EQ(s["slurm"]["shards"][1]["state"], "finished");
  EXPECT_EQ(s["lanes"].size(), 3u);
  EXPECT_EQ(s["lanes"][2]["shard"], 2);

  // The log by time, each line marked; the timeline's lanes renumbered across shards.
  EXPECT_EQ(*ReadFile(dir_ / "batch_run.log"),
            "2026-01-01T00:00:00.000Z [shard 0] shard line 0\n2026-01-01T00:00:01.000Z [shard 1] shard line 1\n"
            "2026-01-01T00:00:02.000Z [shard 2] shard line 2\n");
  std::vector<int> lanes;
  for (const auto& line : SplitLines(*ReadFile(dir_ / "timeline.jsonl"))) {
    if (!line.empty()) lanes.push_back(json::parse(line)["lane"].get<int>());
  }
  EXPECT_EQ(lanes, (std::vector<int>{0, 0, 1, 1, 2}));

  // The report reads it like a single-host run: 5 problems, 4 correct, wall = the union (27 s).
  Report r = BuildReport(dir_);
  EXPECT_EQ(r.batch_state, "finished");
  ASSERT_EQ(r.problems.size(), 5u);
  EXPECT_EQ(r.correct, 4);
  EXPECT_EQ(r.solved, 3);  // 0.5x is correct but below the target
  EXPECT_EQ(r.problems[1].status, "failed");
  EXPECT_EQ(r.problems[3].best_speedup, 1.5);
  EXPECT_DOUBLE_EQ(r.wall_s, 27.0);
  EXPECT_EQ(r.gpu_lanes, 3);
  EXPECT_EQ(r.slurm_shards, 3);
  EXPECT_TRUE(Contains(ReportText(r), "Wall time      27.0 s while any of 3 Slurm shards ran (2 spans)"))
      << ReportText(r);
  EXPECT_EQ(ReportJson(r)["overall"]["slurm_shards"], 3);
}

TEST_F(MergeTest, UnfinishedShardsMakeAnIncompleteTree) {
  WriteShard(0, "finished", {ProblemEntry("1_A", 1, "solved"), ProblemEntry("2_B", 2, "solved")},
             {Result("1_A", 1, "correct", 2.0, 100), Result("2_B", 1, "correct", 1.1, 100)},
             json::array({{{"started_at", 100.0}, {"ended_at", 110.0}}}));
  // Shard 1 was killed with kill -9: its summary still says running, one problem in flight.
  json running = ProblemEntry("4_D", 4, "running");
  running["running"] = json::array({{{"index", 1}, {"stage", "gpu"}}});
  WriteShard(1, "running", {ProblemEntry("3_C", 3, "solved"), running}, {Result("3_C", 1, "correct", 1.2, 101)},
             json::array({{{"started_at", 101.0}, {"ended_at", nullptr}}}), {{"samples", 2}});
  // Shard 2 never started.

  // Taken at its word, shard 1 is running.
  MergeOutcome as_said = MergeShards(dir_);
  EXPECT_EQ(as_said.state, "running");

  // Slurm runs no task any more: shard 1 was killed, the tree is incomplete.
  MergeOptions options;
  options.active_tasks = std::set<int>{};
  MergeOutcome out = MergeShards(dir_, options);
  EXPECT_EQ(out.state, "incomplete");
  ASSERT_EQ(out.shards.size(), 3u);
  EXPECT_EQ(out.shards[1].state, "interrupted");
  EXPECT_EQ(out.shards[2].state, "not_started");
  std::string warnings;
  for (const auto& w : out.warnings) warnings += w + "\n";
  EXPECT_TRUE(Contains(warnings, "shard 2 (5..5) has not started")) << warnings;
  EXPECT_TRUE(Contains(warnings, "shard 1 says running but Slurm runs no task of it")) << warnings;
  EXPECT_TRUE(Contains(warnings, "shard 1 was run with other settings than shard 0: samples: 1 -> 2")) << warnings;

  json s = json::parse(*ReadFile(dir_ / "summary.json"));
  EXPECT_EQ(s["state"], "incomplete");
  EXPECT_TRUE(s["finished_at"].is_null());
  ASSERT_EQ(s["problems"].size(), 5u);
  EXPECT_EQ(s["problems"][3]["phase"], "queued");  // as an interrupted batch leaves it
  EXPECT_TRUE(s["problems"][3]["running"].empty());
  EXPECT_EQ(s["problems"][4]["name"], "5_E");
  EXPECT_EQ(s["problems"][4]["number"], 5);
  EXPECT_EQ(s["totals"]["queued"], 2);

  Report r = BuildReport(dir_);
  EXPECT_EQ(r.problems[3].status, "not_started");  // no sample finished
  EXPECT_EQ(r.problems[4].status, "not_started");
  EXPECT_EQ(r.correct, 3);

  // The shard is resubmitted and finishes: merging again replaces the earlier merge.
  WriteShard(1, "finished", {ProblemEntry("3_C", 3, "solved"), ProblemEntry("4_D", 4, "unsolved")},
             {Result("3_C", 1, "correct", 1.2, 101), Result("4_D", 1, "incorrect", 0, 120)},
             json::array({{{"started_at", 101.0}, {"ended_at", 105.0}}, {{"started_at", 120.0}, {"ended_at", 125.0}}}));
  WriteShard(2, "finished", {ProblemEntry("5_E", 5, "solved")}, {Result("5_E", 1, "correct", 1.0, 130)},
             json::array({{{"started_at", 130.0}, {"ended_at", 131.0}}}));
  EXPECT_EQ(MergeShards(dir_, options).state, "finished");
  EXPECT_EQ(BuildReport(dir_).problems[3].status, "failed");
  EXPECT_EQ(BuildReport(dir_).correct, 4);
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_FALSE(StartsWith(e.path().filename().string(), ".merge-")) << e.path();  // nothing left behind
  }
}

TEST_F(MergeTest, ReportAndMonitorOnAnUnmergedRunSayWhatToDo) {
  try {
    BuildReport(dir_);
    FAIL() << "a report of a Slurm run that was never merged";
  } catch (const FolderError& e) {
    EXPECT_EQ(e.kind(), FolderError::Kind::kMissing);
    EXPECT_TRUE(Contains(e.what(), "kbrun merge")) << e.what();
  }
  try {
    MonitorSnapshot(dir_);
    FAIL() << "a monitor view of a Slurm run that was never merged";
  } catch (const FolderError& e) {
    EXPECT_EQ(e.kind(), FolderError::Kind::kMissing);
    EXPECT_TRUE(Contains(e.what(), "/shards/N watches shard N")) << e.what();
  }
}

TEST_F(MergeTest, LeftoversOfAnInterruptedMergeAreRemoved) {
  WriteShard(0, "finished", {ProblemEntry("1_A", 1, "solved"), ProblemEntry("2_B", 2, "unsolved")},
             {Result("1_A", 1, "correct", 2.0, 100), Result("2_B", 1, "incorrect", 0, 100)},
             json::array({{{"started_at", 100.0}, {"ended_at", 110.0}}}));
  // A merge killed between its copy and its rename, of a problem it no longer visits.
  fs::create_directories(dir_ / ".merge-9_Z.new");
  WriteFileAtomic(dir_ / ".merge-9_Z.new/result_1.json", Result("9_Z", 1, "correct", 1.0, 1).dump());
  MergeShards(dir_);
  EXPECT_FALSE(fs::exists(dir_ / ".merge-9_Z.new"));
  EXPECT_EQ(BuildReport(dir_).problems.size(), 5u);
}

TEST_F(MergeTest, FolderErrorsAreClassified) {
  fs::path plain = MakeUniqueDir(fs::temp_directory_path(), "kbrun-merge-test-plain-");
  try {
    MergeShards(plain);
    FAIL() << "merged a folder without a manifest";
  } catch (const FolderError& e) {
    EXPECT_EQ(e.kind(), FolderError::Kind::kMissing);
  }
  fs::remove_all(plain);

  fs::create_directories(batch::ShardResultsDir(dir_, 1));
  WriteFileAtomic(batch::ShardResultsDir(dir_, 1) / "summary.json", "{ cut off");
  try {
    MergeShards(dir_);
    FAIL() << "merged a damaged shard";
  } catch (const FolderError& e) {
    EXPECT_EQ(e.kind(), FolderError::Kind::kDamaged);
    EXPECT_TRUE(Contains(e.what(), "shard 1")) << e.what();
  }
  WriteFileAtomic(batch::ManifestPath(dir_), "not json");
  try {
    MergeShards(dir_);
    FAIL() << "merged with a damaged manifest";
  } catch (const FolderError& e) {
    EXPECT_EQ(e.kind(), FolderError::Kind::kDamaged);
  }
}

}  // namespace
}  // namespace kbrun::report
