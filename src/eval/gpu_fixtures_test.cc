// The GPU fixtures (honest kernels, GPU-only cheats) run only on the device machine; here
// their CUDA part must at least compile with nvcc and no torch header (split layout), and
// the worker must count their kernels as the candidate's own, whatever the kernel names.
#include <gtest/gtest.h>

#include <regex>

#include <nlohmann/json.hpp>

#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun {
namespace {

const fs::path kData = KBRUN_TEST_DATA_DIR;

fs::path Nvcc() {
  if (const char* home = std::getenv("CUDA_HOME"); home && *home) return fs::path(home) / "bin/nvcc";
  return "/usr/local/cuda/bin/nvcc";
}

TEST(GpuFixtures, CudaPartsCompileWithoutTorchHeaders) {
  if (!fs::exists(Nvcc())) GTEST_SKIP() << "no nvcc";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(kData / "gpu/honest")) files.push_back(e.path());
  files.push_back(kData / "cheats/14_other_stream.py");
  files.push_back(kData / "cheats/15_tf32_matmul.py");
  ASSERT_GE(files.size(), 7u);
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-gpu-fixtures-");
  for (const auto& f : files) {
    std::string text = ReadFile(f).value();
    const std::string open = "cuda_source = r\"\"\"\n";
    size_t a = text.find(open);
    ASSERT_NE(a, std::string::npos) << f;
    size_t b = text.find("\"\"\"", a + open.size());
    std::string cuda = text.substr(a + open.size(), b - a - open.size());
    EXPECT_FALSE(std::regex_search(cuda, std::regex("torch|ATen|c10|at::"))) << f << ": not split";
    WriteFileAtomic(dir / "k.cu", cuda);
    ProcessSpec spec;
    spec.argv = {Nvcc().string(),
                 "-std=c++17",
                 "-gencode=arch=compute_90a,code=sm_90a",
                 "-c",
                 (dir / "k.cu").string(),
                 "-o",
                 (dir / "k.o").string()};
    spec.env = CurrentEnvironment();
    spec.timeout_s = 300;
    ProcessResult p = RunProcess(spec);
    EXPECT_EQ(p.exit_code, 0) << f << ": " << p.output;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kbrun
