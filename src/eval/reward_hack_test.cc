// The cheating candidates of tests/cheats (one file per trick of issue 5) must each be
// caught for the right reason; honest candidates must still pass.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <regex>

#include "eval/eval_test_util.h"

namespace kbrun {
namespace {

struct Expectation {
  const char* cheat;
  const char* status;
  const char* category;
};
// Names the case in ctest's listing instead of dumping the struct's bytes.
void PrintTo(const Expectation& e, std::ostream* os) { *os << e.cheat << " -> " << e.status << "/" << e.category; }

class RewardHack : public ::testing::TestWithParam<Expectation> {};

std::vector<std::string> ListTmp(const std::string& prefix) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator("/tmp")) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST_P(RewardHack, IsCaughtForTheRightReason) {
  const Expectation& e = GetParam();
  auto r = RunEvalIn("cheats", e.cheat, {});
  ASSERT_FALSE(r.result.is_null()) << r.output;
  EXPECT_EQ(r.result["status"], e.status) << r.result.dump(2).substr(0, 3000);
  ASSERT_TRUE(r.result["error"].is_object()) << r.result.dump(2).substr(0, 3000);
  if (std::string(e.category) != "*") {
    EXPECT_EQ(r.result["error"]["category"], e.category) << r.result["error"].dump();
  }
  if (std::string(e.category) == "library_share_unmeasured") {  // where the check failed, for a fix
    EXPECT_NE(r.result["fallback"].value("traceback", "").find("not while profiled"), std::string::npos)
        << r.result["fallback"].dump();
  }
  EXPECT_EQ(r.exit_code, 2);
}

INSTANTIATE_TEST_SUITE_P(Cheats, RewardHack,
                         ::testing::Values(Expectation{"01_calls_torch", "rejected", "uses_library_only"},
                                           Expectation{"02_stale_memory", "incorrect", "value_mismatch"},
                                           Expectation{"03_cache_by_pointer", "incorrect", "*"},
                                           Expectation{"04_background_thread", "rejected", "background_thread"},
                                           Expectation{"05_view_of_input", "rejected", "output_aliases_input"},
                                           Expectation{"05_tensor_subclass", "rejected", "bad_output_type"},
                                           Expectation{"06_modifies_inputs", "rejected", "modified_inputs"},
                                           Expectation{"07_patches_allclose", "rejected", "patched_harness"},
                                           Expectation{"07_patches_timer", "rejected", "patched_harness"},
                                           Expectation{"08_forges_result", "rejected", "forged_result"},
                                           Expectation{"09_only_benchmark_range", "incorrect", "failed_extra_inputs"},
                                           Expectation{"10_lower_precision", "incorrect", "precision_downgrade"},
                                           Expectation{"11_detects_timing", "incorrect", "timed_output_mismatch"},
                                           Expectation{"12_fallback_on_error", "rejected", "uses_library_only"},
                                           Expectation{"13_spawns_process", "rejected", "spawned_process"},
                                           Expectation{"16_patches_worker", "incorrect", "incomplete_checks"},
                                           Expectation{"19_breaks_profiler", "rejected", "library_share_unmeasured"}),
                         [](const auto& param_info) {
                           return std::regex_replace(param_info.param.cheat, std::regex("[^A-Za-z0-9]"), "_");
                         });

// torch.compile leaves a tqdm progress bar open, and tqdm's monitor thread would outlive the call.
// kbrun turns that monitor off before the candidate loads, so such a candidate is judged on its
// outputs; one that turns it back on leaves a thread running and is rejected as before.
TEST(RewardHackThreads, LibraryMonitorThreadIsKeptOffNotExempted) {
  auto off = RunEvalIn("candidates", "tqdm_progress_bar", {"--allow-library-kernels"});
  ASSERT_FALSE(off.result.is_null()) << off.output;
  EXPECT_EQ(off.result["status"], "correct") << off.result.dump(2).substr(0, 3000);
  auto on = RunEvalIn("candidates", "tqdm_monitor_on", {"--allow-library-kernels"});
  ASSERT_FALSE(on.result.is_null()) << on.output;
  EXPECT_EQ(on.result["status"], "rejected") << on.result.dump(2).substr(0, 3000);
  EXPECT_EQ(on.result["error"]["category"], "background_thread") << on.result["error"].dump();
}

// A candidate that writes /tmp/<its folder> (as real ones that build there do) works: new names
// under /tmp are kept in the run's own TMPDIR, and nothing reaches the machine's /tmp.
TEST(Sandbox, CandidateWritesItsOwnFolderUnderTmp) {
  auto before = ListTmp("kbrun-candidate-");
  auto r = RunEvalIn("candidates", "writes_tmp", {"--allow-library-kernels"});
  ASSERT_FALSE(r.result.is_null()) << r.output;
  EXPECT_EQ(r.result["status"], "correct") << r.result.dump(2).substr(0, 3000);
  EXPECT_EQ(ListTmp("kbrun-candidate-"), before);
}

// A candidate that needs the network: a TCP server listens on loopback here; inside the
// worker's network namespace the connection fails, so the cheat cannot produce its answer.
TEST(RewardHackNetwork, NoNetworkInsideTheWorker) {
  int server = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(server, 4), 0);
  socklen_t len = sizeof addr;
  getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string port = std::to_string(ntohs(addr.sin_port));
  std::string src = ReadFile(std::string(KBRUN_TEST_DATA_DIR) + "/cheats/13_network.py").value();
  fs::path dir = fs::temp_directory_path() / "kbrun-net-test";
  fs::create_directories(dir);
  { std::ofstream(dir / "net_cheat.py") << std::regex_replace(src, std::regex("@PORT@"), port); }
  ProcessSpec spec;
  spec.argv = {KBRUN_BINARY,
               "eval",
               "--code",
               (dir / "net_cheat.py").string(),
               "--problem",
               std::string(KBRUN_TEST_DATA_DIR) + "/problems/1_ScaleAdd.py",
               "--device",
               "cpu",
               "--perf-trials",
               "5",
               "--allow-library-kernels",
               "--json"};
  spec.env = CurrentEnvironment();
  spec.timeout_s = 300;
  auto p = RunProcess(spec);
  close(server);
  auto pos = p.output.find('{');
  ASSERT_NE(pos, std::string::npos) << p.output;
  auto result = nlohmann::json::parse(p.output.substr(pos), nullptr, false);
  ASSERT_FALSE(result.is_discarded()) << p.output;
  EXPECT_NE(result["status"], "correct") << p.output.substr(0, 3000);
  EXPECT_TRUE(result["sandbox"]["network_isolated"].get<bool>()) << result["sandbox"].dump();
}

}  // namespace
}  // namespace kbrun
