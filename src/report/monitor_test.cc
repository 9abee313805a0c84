// The monitor's snapshot, from summary.json alone.
#include "report/monitor.h"
#include "report/report.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include "util/fs.h"
#include "util/text.h"

namespace kbrun::report {
namespace {

using nlohmann::json;

json HandWrittenSummary() {
  return json::parse(*ReadFile(fs::path(KBRUN_TEST_DATA_DIR) / "batch/report_tree/summary.json"));
}

TEST(Monitor, SnapshotOfAnEndedBatch) {
  MonitorView v = RenderMonitor(HandWrittenSummary(), 2060.0, "this-host");
  EXPECT_TRUE(v.ended);
  EXPECT_TRUE(Contains(v.text, "kbrun batch: interrupted")) << v.text;
  EXPECT_TRUE(Contains(v.text, "elapsed 2 min 30 s")) << v.text;  // both sessions: 100 s + 50 s
  EXPECT_TRUE(Contains(v.text, "Problems  4 done (2 solved, 2 unsolved), 0 running, 1 queued, of 5")) << v.text;
  EXPECT_TRUE(Contains(v.text, "Samples   8 finished")) << v.text;
  EXPECT_TRUE(Contains(v.text, "4 correct")) << v.text;
  EXPECT_TRUE(Contains(v.text, "2.500x")) << v.text;  // best speedups table
  EXPECT_TRUE(Contains(v.text, "4_D #2 runtime_error: hand-written runtime_error")) << v.text;
}

TEST(Monitor, RunningBatchShowsStagesAndEta) {
  json s = HandWrittenSummary();
  s["state"] = "running";
  s["host"] = "another-host";  // cannot check its pid: trust the file
  s["started_at"] = 1000.0;
  s["problems"][4]["phase"] = "running";
  s["problems"][4]["attempt"] = 1;
  s["problems"][4]["running"] =
      json::array({{{"index", 1}, {"attempt", 1}, {"sample", 1}, {"stage", "compile"}, {"since", 1090.0}}});
  s["totals"]["running"] = 1;
  s["totals"]["queued"] = 0;
  s["totals"]["in_flight"] = {{"compile", 1}};
  MonitorView v = RenderMonitor(s, 1100.0, "this-host");
  EXPECT_FALSE(v.ended);
  EXPECT_TRUE(Contains(v.text, "#1 compile 10.0 s")) << v.text;
  EXPECT_TRUE(Contains(v.text, "In flight compile 1")) << v.text;
  // 4 problems finished (at 1040) in the 100 s since the session started: 1 left, ~25 s.
  EXPECT_TRUE(Contains(v.text, "ETA ~25.0 s")) << v.text;
}

TEST(Monitor, DeadProcessOnThisHostEndsTheWatch) {
  json s = HandWrittenSummary();
  s["state"] = "running";
  s["host"] = "this-host";
  s["pid"] = 999999999;  // no such process
  MonitorView v = RenderMonitor(s, 2060.0, "this-host");
  EXPECT_TRUE(v.ended);
  EXPECT_TRUE(Contains(v.text, "the batch process is gone")) << v.text;
  s["pid"] = static_cast<long long>(getpid());  // alive
  EXPECT_FALSE(RenderMonitor(s, 2060.0, "this-host").ended);
}

// A paused LLM stage and sessions whose times were lost are shown as such.
TEST(Monitor, OutageAndLostSessions) {
  json s = HandWrittenSummary();
  s["state"] = "running";
  s["host"] = "another-host";
  s["sessions"].push_back({{"started_at", nullptr}, {"ended_at", nullptr}, {"pid", nullptr}, {"lost", true}});
  s["llm_outage"] = {{"since", 2000.0},
                     {"consecutive_failures", 5},
                     {"next_try_at", 2070.0},
                     {"gives_up_at", 2600.0},
                     {"last_error", "no connection (connection)"}};
  MonitorView v = RenderMonitor(s, 2060.0, "this-host");
  EXPECT_TRUE(Contains(v.text, "LLM unreachable since")) << v.text;
  EXPECT_TRUE(Contains(v.text, "5 calls in a row could not connect")) << v.text;
  EXPECT_TRUE(Contains(v.text, "next try in 10.0 s")) << v.text;
  EXPECT_TRUE(Contains(v.text, "earlier sessions' times were lost")) << v.text;
}

// A retired lane is named with the probe's answer and the sample that led to it.
TEST(Monitor, RetiredLaneIsShown) {
  json s = HandWrittenSummary();
  s["lanes"] = json::array({{{"gpu", 0}, {"state", "active"}, {"samples", 3}},
                            {{"gpu", 1},
                             {"state", "retired"},
                             {"samples", 1},
                             {"retired_at", 2050.0},
                             {"reason", "4_Square #1 (attempt 1 sample 1): cuda_error: illegal memory access"},
                             {"probe", "probe exited with 1: no CUDA device visible"}}});
  MonitorView v = RenderMonitor(s, 2060.0, "this-host");
  EXPECT_TRUE(Contains(v.text, "GPU lane 1 retired at")) << v.text;
  EXPECT_TRUE(Contains(v.text, "no CUDA device visible")) << v.text;
  EXPECT_TRUE(Contains(v.text, "after 4_Square #1 (attempt 1 sample 1): cuda_error")) << v.text;
  EXPECT_TRUE(Contains(v.text, "1 lane(s) left")) << v.text;
  EXPECT_FALSE(Contains(v.text, "GPU lane 0 retired")) << v.text;
}

// Nothing to watch is an error, not a wait: summary.json is written atomically, so a missing or
// damaged one does not mend itself.
TEST(Monitor, MissingOrDamagedSummaryIsAnError) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-monitor-test-");
  auto kind_of = [](const fs::path& d) {
    try {
      MonitorSnapshot(d);
    } catch (const FolderError& e) {
      return e.kind();
    }
    ADD_FAILURE() << "no error for " << d;
    return FolderError::Kind::kMissing;
  };
  EXPECT_EQ(kind_of(dir / "nowhere"), FolderError::Kind::kMissing);
  EXPECT_EQ(kind_of(dir), FolderError::Kind::kMissing);
  WriteFileAtomic(dir / "summary.json", "{\"state\": ");
  EXPECT_EQ(kind_of(dir), FolderError::Kind::kDamaged);
  WriteFileAtomic(dir / "summary.json", "{\"state\": 5}");  // JSON, but not a kbrun summary
  EXPECT_EQ(kind_of(dir), FolderError::Kind::kDamaged);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kbrun::report
