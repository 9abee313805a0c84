// The build warm-up on the CPU: the real kbrun binary and evaluator (Debian's torch), the fake LLM
// server answering late, so that the warm-up's compiles start first.
#include "batch/build_warmup.h"

#include <gtest/gtest.h>

#include "batch/batch_test_util.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun {
namespace {

using namespace batch_test;
using nlohmann::json;
using test_util::FakeLlmServer;

TEST(BuildWarmup, CudaCandidatesCoverTheSplitHostHeadersWithAndWithoutO3) {
  auto cuda = batch::BuildWarmupCandidates(batch::BuildWarmup::kCuda);
  ASSERT_EQ(cuda.size(), 5u);
  int with_o3 = 0, modules = 0;
  for (const auto& [name, code] : cuda) {
    EXPECT_TRUE(Contains(code, "load_inline(name=\"kbrun_warmup_" + name + "\"")) << code;
    EXPECT_TRUE(Contains(code, "cuda_sources=")) << name;
    EXPECT_TRUE(Contains(code, "class ModelNew(torch.nn.Module)")) << name;
    with_o3 += Contains(code, "extra_cuda_cflags=[\"-O3\",\"--use_fast_math\"]");
    modules += Contains(code, "PYBIND11_MODULE");
  }
  EXPECT_EQ(with_o3, 2);
  EXPECT_EQ(modules, 2);
  auto cpp = batch::BuildWarmupCandidates(batch::BuildWarmup::kCpp);
  ASSERT_EQ(cpp.size(), 2u);
  for (const auto& [name, code] : cpp) EXPECT_FALSE(Contains(code, "cuda_sources")) << name;
  EXPECT_TRUE(batch::BuildWarmupCandidates(batch::BuildWarmup::kOff).empty());
}

// The candidate's build finds the binding file's precompiled header built by the warm-up (or waits
// for it), rather than building it; a second batch on the same cache builds no header again.
TEST(BuildWarmup, BatchBuildsTheSharedHeadersBeforeTheFirstCandidate) {
  json scenario = json::array({Rule("MARKER_ONE", Response("scale_shift_cpp"), {{"delay_s", 15}})});
  FakeLlmServer server(scenario.dump(), 400);
  fs::path cache = server.dir() / "cache";
  auto run = [&](const fs::path& results) {
    return RunKbrun(
        BatchArgv(results, server.base_url(), 1, 1,
                  {"--samples", "1", "--attempts", "1", "--compile-cache", cache.string(), "--build-warmup", "on"}),
        Environment());
  };
  fs::path first = server.dir() / "first";
  ProcessResult p = run(first);
  ASSERT_EQ(p.exit_code, 0) << p.output;
  json warmup = ReadJson(first / "build_warmup.json");
  EXPECT_EQ(warmup["compiles"], 2) << warmup.dump(2);
  EXPECT_EQ(warmup["failed"], 0) << warmup.dump(2);
  EXPECT_GE(warmup["headers_built"].get<int>(), 2) << warmup.dump(2);  // the light binding's and the frontend's
  std::string log = ReadFile(first / "batch_run.log").value_or("");
  EXPECT_TRUE(Contains(log, "build warm-up: 2 compiles in")) << log;
  json r1 = ReadJson(first / "1_ScaleShiftCpp/result_1.json");
  EXPECT_EQ(r1["status"], "correct") << r1.dump(2);
  json build = r1["eval"]["build"]["extensions"];
  ASSERT_EQ(build.size(), 1u) << r1.dump(2);
  EXPECT_EQ(build[0]["cache"], "miss");
  EXPECT_EQ(build[0]["pch"], "used") << build.dump(2);

  // The same batch again: every problem is done, so there is nothing to warm up for.
  p = run(first);
  ASSERT_EQ(p.exit_code, 0) << p.output;
  log = ReadFile(first / "batch_run.log").value_or("");
  EXPECT_EQ(log.find("build warm-up: building"), log.rfind("build warm-up: building")) << log;

  // Without a shared cache there is nothing to warm: no warm-up, no file, and a warning when asked for.
  fs::path off = server.dir() / "off";
  p = RunKbrun(BatchArgv(off, server.base_url(), 1, 1,
                         {"--samples", "1", "--attempts", "1", "--no-compile-cache", "--build-warmup", "on"}),
               Environment());
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_TRUE(Contains(p.output, "--build-warmup on does nothing here")) << p.output;
  EXPECT_FALSE(fs::exists(off / "build_warmup.json"));
  EXPECT_FALSE(Contains(ReadFile(off / "batch_run.log").value_or(""), "build warm-up"));

  // Again on the same cache: the warm-up's builds are cached; nothing is built.
  fs::path second = server.dir() / "second";
  p = run(second);
  ASSERT_EQ(p.exit_code, 0) << p.output;
  warmup = ReadJson(second / "build_warmup.json");
  EXPECT_EQ(warmup["headers_built"], 0) << warmup.dump(2);
  EXPECT_EQ(warmup["builds_cached"], 2) << warmup.dump(2);
}

}  // namespace
}  // namespace kbrun
