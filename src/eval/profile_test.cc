// The profile step: the digest of real Nsight Compute output recorded on an H100
// (testdata/ncu_raw_h100*.csv), the rocprofv3 digest, the text a reflection prompt
// carries, the roofline figures, and `kbrun eval --profile` on the CPU.
#include "eval/profile.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "eval/eval_test_util.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::eval {
namespace {

using nlohmann::json;

const fs::path kTestData = fs::path(KBRUN_SOURCE_DIR) / "src/eval/testdata";

// The digest script needs only the standard library: any python3 runs it. The output file is
// this process's own: ctest -j runs each test in its own process, at the same time.
json Digest(const std::string& flag, const fs::path& input) {
  fs::path out = fs::temp_directory_path() /
                 ("kbrun-digest-test-" + std::to_string(getpid()) + "-" + input.filename().string() + ".json");
  json d = RunDigest("python3", flag, input, out, 60);
  fs::remove(out);
  return d;
}

const json& H100Digest() {
  static const json d = Digest("--ncu-csv", kTestData / "ncu_raw_h100.csv");
  return d;
}

json KernelNamed(const json& kernels, const std::string& part) {
  for (const auto& k : kernels) {
    if (Contains(k["name"].get<std::string>(), part)) return k;
  }
  return nullptr;
}

TEST(NcuDigest, SplitsTheRecordedH100KernelsByNvtxRange) {
  const json& d = H100Digest();
  ASSERT_FALSE(d.contains("error")) << d.dump();
  EXPECT_EQ(d["tool"], "ncu");
  EXPECT_EQ(d["device"], "NVIDIA H100 80GB HBM3");
  // Three RNG kernels drew the inputs before any range: counted, not attributed.
  EXPECT_EQ(d["kernels_outside_ranges"], 3);
  EXPECT_EQ(d["candidate"]["kernel_count"], 2);
  EXPECT_EQ(d["reference"]["kernel_count"], 2);
  EXPECT_NEAR(d["candidate"]["total_us"].get<double>(), 423.104 + 43.2, 1e-6);
  EXPECT_NEAR(d["reference"]["total_us"].get<double>(), 413.568 + 42.944, 1e-6);
  // Slowest first: the cutlass SGEMM, named by its generic name and first template argument.
  const json& sgemm = d["candidate"]["kernels"][0];
  EXPECT_EQ(sgemm["name"], "Kernel2<cutlass_80_simt_sgemm_256x128_8x4_nn_align1>");
  EXPECT_DOUBLE_EQ(sgemm["duration_us"].get<double>(), 423.104);
  EXPECT_EQ(sgemm["registers_per_thread"], 202);
  EXPECT_EQ(sgemm["shared_mem_per_block_bytes"], 49152);  // 0 static + 49.152 Kbyte dynamic
  EXPECT_EQ(sgemm["grid"], json::array({128, 1, 1}));
  EXPECT_EQ(sgemm["block"], json::array({256, 1, 1}));
  EXPECT_NEAR(sgemm["compute_throughput_pct"].get<double>(), 85.01, 0.01);
  EXPECT_NEAR(sgemm["achieved_occupancy_pct"].get<double>(), 12.5, 0.01);
  EXPECT_EQ(sgemm["bound"], "compute-bound");
  // The clamp (ReLU) kernel streams memory: 78% of DRAM bandwidth, stalled on loads.
  json relu = KernelNamed(d["candidate"]["kernels"], "vectorized_elementwise_kernel");
  ASSERT_FALSE(relu.is_null());
  EXPECT_DOUBLE_EQ(relu["duration_us"].get<double>(), 43.2);
  EXPECT_NEAR(relu["dram_throughput_pct"].get<double>(), 78.49, 0.01);
  EXPECT_EQ(relu["bound"], "memory-bound");
  EXPECT_EQ(relu["registers_per_thread"], 28);
  EXPECT_EQ(relu["grid"], json::array({16384, 1, 1}));
  ASSERT_EQ(relu["top_stalls"].size(), 3u);
  EXPECT_EQ(relu["top_stalls"][0]["reason"], "long_scoreboard");
  EXPECT_NEAR(relu["top_stalls"][0]["ratio"].get<double>(), 96.395, 0.001);
  EXPECT_EQ(relu["top_stalls"][1]["reason"], "drain");
  EXPECT_EQ(relu["top_stalls"][2]["reason"], "short_scoreboard");
  // "selected" (the issuing warp) and "not_selected" are never reported as stalls.
  for (const auto& k : d["reference"]["kernels"]) {
    for (const auto& s : k["top_stalls"]) {
      EXPECT_NE(s["reason"], "selected");
      EXPECT_NE(s["reason"], "not_selected");
    }
  }
  EXPECT_DOUBLE_EQ(d["reference"]["kernels"][0]["duration_us"].get<double>(), 413.568);
}

TEST(NcuDigest, ReportFilteredToTheCandidateRange) {
  json d = Digest("--ncu-csv", kTestData / "ncu_raw_h100_candidate_only.csv");
  ASSERT_FALSE(d.contains("error")) << d.dump();
  EXPECT_EQ(d["candidate"]["kernel_count"], 2);
  EXPECT_EQ(d["reference"]["kernel_count"], 0);
  EXPECT_EQ(d["kernels_outside_ranges"], 0);
  EXPECT_DOUBLE_EQ(d["candidate"]["kernels"][0]["duration_us"].get<double>(), 423.104);
}

TEST(NcuDigest, GarbageIsAnErrorNotACrash) {
  fs::path bad = fs::temp_directory_path() / "kbrun-digest-bad.csv";
  WriteFileAtomic(bad, "==PROF== nothing profiled\n");
  json d = Digest("--ncu-csv", bad);
  ASSERT_TRUE(d.contains("error"));
  EXPECT_TRUE(Contains(d["error"].get<std::string>(), "no ncu raw table")) << d.dump();
}

TEST(RocprofDigest, HandWrittenRocprofv3CsvSplitByRoctxRanges) {
  json d = Digest("--rocprof-dir", kTestData / "rocprofv3");
  ASSERT_FALSE(d.contains("error")) << d.dump();
  EXPECT_EQ(d["tool"], "rocprofv3");
  EXPECT_EQ(d["kernels_outside_ranges"], 1);
  EXPECT_EQ(d["reference"]["kernel_count"], 1);
  EXPECT_DOUBLE_EQ(d["reference"]["total_us"].get<double>(), 45.0);
  ASSERT_EQ(d["candidate"]["kernel_count"], 2);
  const json& k = d["candidate"]["kernels"][0];
  EXPECT_EQ(k["name"], "relu_scale_kernel");
  EXPECT_DOUBLE_EQ(k["duration_us"].get<double>(), 30.5);  // (3030500 - 3000000) ns
  EXPECT_DOUBLE_EQ(k["memory_throughput_pct"].get<double>(), 64.0);
  EXPECT_DOUBLE_EQ(k["achieved_occupancy_pct"].get<double>(), 55.5);
  EXPECT_EQ(k["registers_per_thread"], 24);
  EXPECT_EQ(k["grid"], json::array({16384, 1, 1}));  // 4194304 work-items / 256
  EXPECT_EQ(k["bound"], "memory-bound");
  const json& copy = d["candidate"]["kernels"][1];
  EXPECT_EQ(copy["shared_mem_per_block_bytes"], 4096);
  EXPECT_EQ(copy["block"], json::array({128, 2, 1}));
  EXPECT_EQ(copy["grid"], json::array({32, 1, 1}));
  EXPECT_EQ(copy["bound"], "latency-bound");
}

json H100Roofline() {
  // The recorded pair's work: relu of 4096^2 floats and a 2048^3 SGEMM.
  double in = (4096.0 * 4096 + 2 * 2048.0 * 2048) * 4, out = (4096.0 * 4096 + 2048.0 * 2048) * 4;
  json fig = {
      {"inputs_bytes", in},
      {"params_bytes", 0},
      {"outputs_bytes", out},
      {"min_bytes", in + out},
      {"counted_flops", 2.0 * 2048 * 2048 * 2048},
      {"min_flops", 2.0 * 2048 * 2048 * 2048},
      {"peaks", {{"copy_gbs", 2985}, {"tflops", {{"fp32", 51}, {"bf16", 785}, {"fp16", 761}}}, {"source", "cache"}}}};
  return RooflineFigures(fig, "fp32", 0.5);
}

TEST(Roofline, BoundIsTheSlowerOfBytesAndFlops) {
  json r = H100Roofline();
  double bytes = r["min_bytes"].get<double>();
  EXPECT_DOUBLE_EQ(r["memory_ms"].get<double>(), bytes / 2985e9 * 1e3);
  EXPECT_DOUBLE_EQ(r["compute_ms"].get<double>(), 2.0 * 2048 * 2048 * 2048 / 51e12 * 1e3);
  // 17.2 GFLOP at 51 TFLOP/s (0.337 ms) outweighs 184.5 MB at 2985 GB/s (0.062 ms).
  EXPECT_DOUBLE_EQ(r["roofline_ms"].get<double>(), r["compute_ms"].get<double>());
  EXPECT_NEAR(r["fraction_of_roofline"].get<double>(), r["roofline_ms"].get<double>() / 0.5, 1e-12);
  EXPECT_EQ(r["peak_tflops"], 51);
  EXPECT_EQ(r["peaks_source"], "cache");
  // bf16 uses the bf16 rate.
  json fig = {{"min_bytes", 1e6}, {"min_flops", 1e12}, {"peaks", {{"copy_gbs", 2985}, {"tflops", {{"bf16", 785}}}}}};
  EXPECT_NEAR(RooflineFigures(fig, "bf16", 0)["roofline_ms"].get<double>(), 1e12 / 785e12 * 1e3, 1e-12);
  EXPECT_TRUE(RooflineFigures(fig, "bf16", 0)["fraction_of_roofline"].is_null());  // not timed
}

TEST(Roofline, CpuHasBytesButNoPeaks) {
  json r = RooflineFigures({{"min_bytes", 3145728}, {"min_flops", nullptr}, {"peaks", nullptr}}, "fp32", 0.25);
  EXPECT_EQ(r["min_bytes"], 3145728);
  EXPECT_TRUE(r["roofline_ms"].is_null());
  EXPECT_TRUE(r["fraction_of_roofline"].is_null());
  EXPECT_TRUE(Contains(r["note"].get<std::string>(), "no GPU peaks"));
}

TEST(ProfileText, ShortDigestAModelCanActOn) {
  json profile = H100Digest();
  profile["status"] = "ok";
  std::string text = ProfileSummaryText(profile, H100Roofline());
  EXPECT_TRUE(Contains(text,
                       "your ModelNew ran 2 kernels in 466.3 us of kernel time; the PyTorch reference ran 2 "
                       "kernels in 456.5 us"))
      << text;
  EXPECT_TRUE(Contains(text,
                       "Slowest kernel of yours, Kernel2<cutlass_80_simt_sgemm_256x128_8x4_nn_align1>: 423.1 us "
                       "(91% of its kernel time), compute-bound (memory 46%, DRAM 3%, SM 85% of peak)"))
      << text;
  EXPECT_TRUE(Contains(text,
                       "occupancy 12% achieved of 12% possible, 202 registers/thread, 49.2 KB shared/block, "
                       "grid 128, block 256"))
      << text;
  EXPECT_TRUE(Contains(text, "Next, vectorized_elementwise_kernel: 43.2 us")) << text;
  EXPECT_TRUE(Contains(text, "memory-bound (memory 78%, DRAM 78%, SM 19% of peak)")) << text;
  EXPECT_TRUE(Contains(text, "top stalls (cycles per issued instruction) long_scoreboard 96.39, drain 15.88")) << text;
  EXPECT_TRUE(Contains(text,
                       "Reference's slowest kernel Kernel2<cutlass_80_simt_sgemm_256x128_8x4_nn_align1>: "
                       "413.6 us, compute-bound"))
      << text;
  EXPECT_TRUE(Contains(text,
                       "Roofline: at least 184.5 MB moved and 17.2 GFLOP, so no kernel can beat 0.3369 ms on "
                       "this GPU (2985 GB/s, 51 TFLOP/s fp32 measured); yours reaches 67% of that bound."))
      << text;
  EXPECT_LE(SplitLines(text).size(), 6u);
  // More kernels than the reference: said outright.
  profile["candidate"]["kernel_count"] = 4;
  EXPECT_TRUE(Contains(ProfileSummaryText(profile, nullptr), "You launch 4 kernels where the reference launches 2"));
  // No profile, no roofline: nothing to say.
  EXPECT_EQ(ProfileSummaryText({{"status", "unavailable"}}, nullptr), "");
}

TEST(ProfilerRefusal, CounterPermissionIsANote) {
  auto note = ProfilerRefusal(
      "==PROF== Connected to process 461\n==ERROR== ERR_NVGPUCTRPERM - The user does not have permission to access "
      "NVIDIA GPU Performance Counters on the target device 0.\n");
  ASSERT_TRUE(note.has_value());
  EXPECT_TRUE(Contains(*note, "no permission to the GPU performance counters")) << *note;
  EXPECT_FALSE(ProfilerRefusal("==PROF== Report: /tmp/rep.ncu-rep\n").has_value());
}

TEST(ProfileIntegration, CpuEvalWithProfileIsCorrectWithAnUnavailableNote) {
  // The candidate's own C++ kernel; the shared test compile cache makes the build a hit.
  auto r = RunEvalIn("candidates", "correct_cpp", {"--profile"});
  ASSERT_FALSE(r.result.is_null()) << r.output;
  EXPECT_EQ(r.result["status"], "correct") << r.output;
  EXPECT_EQ(r.exit_code, r.result["speedup"].get<double>() >= 1.0 ? 0 : 1);  // the profile never changes it
  const json& p = r.result["profile"];
  EXPECT_EQ(p["status"], "unavailable") << p.dump();
  EXPECT_TRUE(Contains(p["note"].get<std::string>(), "no GPU")) << p.dump();
  // The roofline's bytes: two 512x512 fp32 inputs and one output, no parameters.
  const json& roof = r.result["roofline"];
  EXPECT_EQ(roof["inputs_bytes"], 2 * 512 * 512 * 4) << roof.dump();
  EXPECT_EQ(roof["outputs_bytes"], 512 * 512 * 4);
  EXPECT_EQ(roof["min_bytes"], 3 * 512 * 512 * 4);
  EXPECT_TRUE(roof["roofline_ms"].is_null());  // no GPU peaks on the CPU
}

TEST(ProfileIntegration, WithoutProfileBothAreNull) {
  auto r = RunEvalIn("candidates", "correct_cpp", {});
  ASSERT_FALSE(r.result.is_null()) << r.output;
  EXPECT_TRUE(r.result["profile"].is_null());
  EXPECT_TRUE(r.result["roofline"].is_null());
}

}  // namespace
}  // namespace kbrun::eval

namespace kbrun::eval {
namespace {

// A profiler that refuses: a script named ncu on the worker's PATH that prints Nsight
// Compute's permission error. The step reports it as a note; no GPU is needed for that.
TEST(ProfileKernels, FakeNcuWithoutCounterPermissionGivesANote) {
  fs::path dir = fs::temp_directory_path() / "kbrun-fake-ncu";
  fs::remove_all(dir);
  fs::create_directories(dir / "bin");
  fs::create_directories(dir / "work/profile");
  WriteFileAtomic(dir / "bin/ncu",
                  "#!/bin/sh\necho '==PROF== Connected to process 461'\n"
                  "echo '==ERROR== ERR_NVGPUCTRPERM - The user does not have permission to access NVIDIA GPU "
                  "Performance Counters on the target device 0.'\nexit 1\n");
  fs::permissions(dir / "bin/ncu", fs::perms::owner_all);
  EvalRequest req;
  PythonEnv py;
  py.interpreter = "python3";
  ProfileInputs in;
  in.request = &req;
  in.python = &py;
  in.device = "cuda";
  in.work_dir = dir / "work";
  in.env = {{"PATH", (dir / "bin").string() + ":/usr/bin:/bin"}};
  json p = ProfileKernels(in, 60);
  EXPECT_EQ(p["status"], "unavailable") << p.dump();
  EXPECT_TRUE(Contains(p["note"].get<std::string>(), "ERR_NVGPUCTRPERM")) << p.dump();
  // A profiler that dies without a known refusal: failed, with its output.
  WriteFileAtomic(dir / "bin/ncu", "#!/bin/sh\necho '==ERROR== something broke'\nexit 9\n");
  fs::permissions(dir / "bin/ncu", fs::perms::owner_all);
  p = ProfileKernels(in, 60);
  EXPECT_EQ(p["status"], "failed") << p.dump();
  EXPECT_TRUE(Contains(p["note"].get<std::string>(), "exit code 9")) << p.dump();
  EXPECT_TRUE(Contains(p["note"].get<std::string>(), "something broke")) << p.dump();
}

}  // namespace
}  // namespace kbrun::eval

namespace kbrun::eval {
namespace {

// The whole profiler pipeline without a GPU: a fake ncu that runs its target command (the
// real kbrun_profile.py on Debian's CPU torch, loading problem and candidate) and, for
// `ncu -i`, prints the recorded H100 CSV; the digest then reads that.
void WriteFakeNcu(const fs::path& dir) {
  WriteFileAtomic(dir / "bin/ncu",
                  "#!/bin/sh\n"
                  "if [ \"$1\" = -i ]; then cat '" +
                      (kTestData / "ncu_raw_h100.csv").string() +
                      "'; exit 0; fi\n"
                      "echo \"$*\" > '" +
                      (dir / "ncu_args.txt").string() +
                      "'\n"
                      "while [ $# -gt 0 ]; do case \"$1\" in\n"
                      "  -o) out=$2; shift 2;;\n"
                      "  --section|--nvtx-include|--target-processes|--clock-control) shift 2;;\n"
                      "  -f|--nvtx) shift;;\n"
                      "  *) break;;\n"
                      "esac; done\n"
                      "\"$@\" || exit $?\n"
                      "touch \"$out.ncu-rep\"\n");
  fs::permissions(dir / "bin/ncu", fs::perms::owner_all);
}

// A private dir as the supervisor lays it out, with the fake ncu beside it.
ProfileInputs FakeNcuRun(const fs::path& dir, const EvalRequest& req, const std::string& forward_line) {
  fs::remove_all(dir);
  for (const char* sub : {"bin", "work/profile", "work/home", "work/tmp", "work/build"})
    fs::create_directories(dir / sub);
  WriteFakeNcu(dir);
  fs::copy_file(fs::path(KBRUN_TEST_DATA_DIR) / "problems/1_ScaleAdd.py", dir / "work/problem.py");
  WriteFileAtomic(dir / "work/candidate.py",
                  "import torch.nn as nn\n\nclass ModelNew(nn.Module):\n    def __init__(self, alpha):\n"
                  "        super().__init__()\n        self.alpha = alpha\n\n    def forward(self, x, y):\n"
                  "        " +
                      forward_line + "\n        return x * self.alpha + y\n");
  ProfileInputs in;
  in.request = &req;
  in.python = &DiscoverPython("");
  in.device = "cpu";  // what kbrun_profile.py is told; the step itself chose ncu
  in.seed = 7;
  in.work_dir = dir / "work";
  in.env = {{"PATH", (dir / "bin").string() + ":/usr/bin:/bin"},
            {"HOME", (dir / "work/home").string()},
            {"TMPDIR", (dir / "work/tmp").string()},
            {"TORCH_EXTENSIONS_DIR", (dir / "work/build").string()}};
  in.build = {{"mode", "plain"}};
  return in;
}

TEST(ProfileKernels, PipelineWithAFakeNcuThatRunsTheTarget) {
  fs::path dir = fs::temp_directory_path() / "kbrun-fake-ncu-pipeline";
  EvalRequest req;
  ProfileInputs in = FakeNcuRun(dir, req, "print('candidate forward', tuple(x.shape))");
  json p = ProfileKernels(in, 300);
  ASSERT_EQ(p["status"], "ok") << p.dump();
  EXPECT_EQ(p["candidate"]["kernel_count"], 2);
  EXPECT_DOUBLE_EQ(p["candidate"]["kernels"][0]["duration_us"].get<double>(), 423.104);
  EXPECT_FALSE(p.contains("report"));  // only with --keep-work-dir
  // The profiled command was kbrun_profile.py in kernels mode, with the ranges and sections asked for.
  json req_file = json::parse(*ReadFile(dir / "work/profile/kernels_request.json"));
  EXPECT_EQ(req_file["mode"], "kernels");
  EXPECT_EQ(req_file["seed"], 7);
  std::string args = ReadFile(dir / "ncu_args.txt").value_or("");
  EXPECT_TRUE(
      Contains(args,
               "--clock-control none --target-processes all --nvtx --nvtx-include kbrun_reference/ --nvtx-include "
               "kbrun_candidate/ --section SpeedOfLight --section LaunchStats --section Occupancy "
               "--section WarpStateStats -f -o " +
                   (dir / "work/profile/report").string()))
      << args;
  EXPECT_TRUE(Contains(args, "kbrun_profile.py --request " + (dir / "work/profile/kernels_request.json").string()))
      << args;
  EXPECT_TRUE(fs::exists(dir / "work/profile/report.ncu-rep"));
  EXPECT_TRUE(fs::exists(dir / "work/profile/raw.csv"));
  EXPECT_TRUE(fs::exists(dir / "work/profile/digest.json"));
}

// The profiled process runs candidate code: sealed (here as the supervisor seals it on the
// CPU), the profile still comes out, and the candidate's write outside its dir fails.
TEST(ProfileKernels, TheProfiledRunIsSealed) {
  fs::path dir = fs::temp_directory_path() / "kbrun-fake-ncu-sealed";
  fs::path outside = fs::temp_directory_path() / ("kbrun-profile-outside-" + std::to_string(getpid()));
  fs::remove(outside);
  EvalRequest req;
  ProfileInputs in =
      FakeNcuRun(dir, req,
                 "exec('try:\\n    open(\\'" + outside.string() +
                     "\\', \\'w\\').close()\\nexcept OSError as e:\\n    print(\\'write refused\\', e)')");
  int sealed = 0;
  in.seal = [&](ProcessSpec& spec) {
    ++sealed;
    spec.sandbox = true;
    spec.writable_paths = {(dir / "work").string()};
  };
  json p = ProfileKernels(in, 300);
  EXPECT_EQ(sealed, 1);                      // the profiled run only (the export reads ncu's own report)
  EXPECT_EQ(p["status"], "ok") << p.dump();  // the candidate ran (ncu saw its ranges end)
  EXPECT_FALSE(fs::exists(outside)) << "the profiled candidate wrote outside its private dir";
  fs::remove(outside);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kbrun::eval
