#include "batch/capacity.h"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "util/text.h"

namespace kbrun::batch {

int CoreCount() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

std::vector<int> ParseGpuList(const std::string& text, const std::string& what) {
  std::vector<int> out;
  std::string list = text;
  for (char& c : list) {
    if (c == ',') c = '\n';
  }
  for (const auto& item : SplitLines(list)) {
    std::string t = Trim(item);
    if (t.empty()) continue;
    if (t.find_first_not_of("0123456789") != std::string::npos) {
      throw std::invalid_argument(fmt::format("{}: not a GPU index list: '{}' (expected e.g. 0,1)", what, text));
    }
    out.push_back(std::stoi(t));
  }
  return out;
}

std::vector<int> ResolveLanes(const LaneRequest& r) {
  if (!r.gpus.empty()) return ParseGpuList(r.gpus, "--gpus");
  if (r.gpu) return {*r.gpu};
  if (!r.on_gpu) return {0};
  if (!r.cuda_visible_devices.empty()) {
    try {
      auto lanes = ParseGpuList(r.cuda_visible_devices, "CUDA_VISIBLE_DEVICES");
      if (!lanes.empty()) return lanes;
    } catch (const std::invalid_argument&) {
      // UUIDs or MIG names: fall back to torch's count.
    }
  }
  std::vector<int> lanes;
  for (size_t i = 0; i < r.torch_gpus; ++i) lanes.push_back(static_cast<int>(i));
  return lanes.empty() ? std::vector<int>{0} : lanes;
}

std::vector<int> ResolveServeLanes(const std::vector<int>& gpus, int gpu, bool on_cpu) {
  return gpus.empty() || on_cpu ? std::vector<int>{gpu} : gpus;
}

CompilePool ResolveCompilePool(int compile_jobs_flag, int cores) {
  CompilePool p;
  p.compiles = compile_jobs_flag > 0 ? compile_jobs_flag : cores;
  p.jobs_per_build = std::max(1, cores / p.compiles);
  return p;
}

int PoolSizeOrCores(int requested) { return requested > 0 ? requested : CoreCount(); }

}  // namespace kbrun::batch
