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
    spec.argv = {Nvcc().string(), "-std=c++17", "-gencode=arch=compute_90a,code=sm_90a", "-c",
                 (dir / "k.cu").string(), "-o", (dir / "k.o").string()};
    spec.env = CurrentEnvironment();
    spec.timeout_s = 300;
    ProcessResult p = RunProcess(spec);
    EXPECT_EQ(p.exit_code, 0) << f << ": " << p.output;
  }
  fs::remove_all(dir);
}

// A kernel named like a library's ("sgemm_tiled") is the candidate's own when its source
// declares it; cuBLAS, ATen and CUTLASS kernels stay library kernels whatever it declares.
TEST(GpuFixtures, OwnKernelsWithLibraryLikeNamesCountAsOwn) {
  ProcessSpec spec;
  spec.argv = {"python3", "-c",
               "import sys, json; sys.path.insert(0, sys.argv[1]); import kbrun_worker as k\n"
               "own = k.own_kernel_names(open(sys.argv[2]).read() + "
               "'\\n__global__ void ampere_sgemm_128x64_nn(float* x) {}')\n"
               "names = ['sgemm_tiled(float const*, float const*, float*, int, int, int)',"
               " 'ampere_sgemm_128x64_nn', 'void at::native::elementwise_kernel<128, 2>(int)',"
               " 'sm90_xmma_gemm_f32f32_tf32', 'void cutlass::Kernel<Gemm>(Params)', 'gemv2T_kernel_val<int>()']\n"
               "print(json.dumps([k.is_library_kernel(n, own) for n in names]))\n",
               std::string(KBRUN_SOURCE_DIR) + "/src/eval/worker",
               (kData / "gpu/honest/1_Square_matrix_multiplication_.py").string()};
  spec.env = CurrentEnvironment();
  ProcessResult p = RunProcess(spec);
  ASSERT_EQ(p.exit_code, 0) << p.output;
  auto got = nlohmann::json::parse(SplitLines(p.output).back());
  // Declaring a cuBLAS kernel's name does not make cuBLAS's kernel one's own: only generic
  // words ("gemm" in sgemm_tiled) are excused, never architecture-prefixed library names.
  EXPECT_EQ(got, nlohmann::json::parse("[false, true, true, true, true, true]")) << p.output;
}

}  // namespace
}  // namespace kbrun
