#include "batch/capacity.h"

#include <stdexcept>

#include <gtest/gtest.h>

namespace kbrun::batch {
namespace {

TEST(Capacity, GpuListParsesIndicesAndRejectsNames) {
  EXPECT_EQ(ParseGpuList("0,1, 3", "--gpus"), (std::vector<int>{0, 1, 3}));
  EXPECT_EQ(ParseGpuList("", "--gpus"), std::vector<int>{});
  try {
    ParseGpuList("GPU-1234", "CUDA_VISIBLE_DEVICES");
    FAIL() << "no throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "CUDA_VISIBLE_DEVICES: not a GPU index list: 'GPU-1234' (expected e.g. 0,1)");
  }
}

TEST(Capacity, LanesFollowFlagsThenVisibleDevicesThenTorch) {
  // --gpus wins over everything, --gpu over the environment.
  EXPECT_EQ(ResolveLanes({"2,3", 1, true, "0,1", 8}), (std::vector<int>{2, 3}));
  EXPECT_EQ(ResolveLanes({"", 1, true, "0,1", 8}), std::vector<int>{1});
  EXPECT_THROW(ResolveLanes({"a", std::nullopt, true, "", 8}), std::invalid_argument);
  // Off the GPU: one lane.
  EXPECT_EQ(ResolveLanes({"", std::nullopt, false, "4,5", 8}), std::vector<int>{0});
  // CUDA_VISIBLE_DEVICES names physical indices; UUIDs fall back to torch's count.
  EXPECT_EQ(ResolveLanes({"", std::nullopt, true, "4,5", 2}), (std::vector<int>{4, 5}));
  EXPECT_EQ(ResolveLanes({"", std::nullopt, true, "GPU-ab,GPU-cd", 2}), (std::vector<int>{0, 1}));
  EXPECT_EQ(ResolveLanes({"", std::nullopt, true, "", 3}), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(ResolveLanes({"", std::nullopt, true, "", 0}), std::vector<int>{0});
}

TEST(Capacity, ServeLanesAreTheGpusOrTheOneGpu) {
  EXPECT_EQ(ResolveServeLanes({0, 2}, 5, false), (std::vector<int>{0, 2}));
  EXPECT_EQ(ResolveServeLanes({}, 5, false), std::vector<int>{5});
  EXPECT_EQ(ResolveServeLanes({0, 2}, 5, true), std::vector<int>{5});
}

TEST(Capacity, CompilePoolSharesTheCores) {
  CompilePool p = ResolveCompilePool(0, 16);
  EXPECT_EQ(p.compiles, 16);
  EXPECT_EQ(p.jobs_per_build, 1);
  p = ResolveCompilePool(4, 16);
  EXPECT_EQ(p.compiles, 4);
  EXPECT_EQ(p.jobs_per_build, 4);
  p = ResolveCompilePool(32, 16);
  EXPECT_EQ(p.jobs_per_build, 1);
  EXPECT_EQ(PoolSizeOrCores(3), 3);
  EXPECT_EQ(PoolSizeOrCores(0), CoreCount());
  EXPECT_GE(CoreCount(), 1);
}

}  // namespace
}  // namespace kbrun::batch
