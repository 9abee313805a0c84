// SharedPidNamespace (util/pid_namespace.h) with real sandboxed children joining it
// (ProcessSpec::join_pid_namespace): what they see, and that the namespace's end kills
// what is left in it.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "util/fs.h"
#include "util/pid_namespace.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun {
namespace {

ProcessSpec Joining(const SharedPidNamespace& ns, const std::string& script) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.env = {{"PATH", "/usr/bin:/bin"}};
  spec.timeout_s = 60;
  spec.sandbox = true;
  spec.isolate_network = true;
  spec.pid_namespace = false;
  spec.join_pid_namespace = ns.path();
  return spec;
}

// Where namespaces cannot be joined (not root) there is nothing to test: ProbeSandbox says so.
#define REQUIRE_SHARED_NAMESPACE(ns)     \
  auto ns = SharedPidNamespace::Start(); \
  if (!ns || !ProbeSandbox().shared_pid_namespace) GTEST_SKIP() << ProbeSandbox().note;

TEST(SharedPidNamespace, JoinedChildrenSeeEachOtherAndNothingOutside) {
  REQUIRE_SHARED_NAMESPACE(ns);
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-pidns-test-");
  // The first child says its pid (as the namespace sees it) and waits; the second looks for it.
  auto first =
      Joining(*ns, fmt::format("echo $$ > {0}/first.tmp && mv {0}/first.tmp {0}/first; exec sleep 20", dir.string()));
  first.writable_paths = {dir.string()};
  std::thread t([&] { RunProcess(first); });
  for (int i = 0; i < 200 && !fs::exists(dir / "first"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const std::string first_pid = Trim(ReadFile(dir / "first").value_or(""));
  ASSERT_FALSE(first_pid.empty());
  auto second = Joining(
      *ns,
      fmt::format(
          "echo init=$(cat /proc/1/comm); echo first=$(cat /proc/{}/comm); echo procs=$(ls /proc | grep -c '^[0-9]'); "
          "test -e /proc/{}/environ && echo sees_kbrun",
          first_pid, getpid()));
  auto r = RunProcess(second);
  EXPECT_NE(r.output.find("init=kbrun-pidns\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("first=sleep\n"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("sees_kbrun"), std::string::npos) << r.output;
  ns.reset();  // ends the first child too
  t.join();
  fs::remove_all(dir);
}

TEST(SharedPidNamespace, ItsEndKillsWhatIsLeftInIt) {
  REQUIRE_SHARED_NAMESPACE(ns);
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-pidns-test-");
  auto spec = Joining(*ns, fmt::format("touch {}/started; exec sleep 60", dir.string()));
  spec.writable_paths = {dir.string()};
  ProcessResult r;
  std::thread t([&] { r = RunProcess(spec); });
  for (int i = 0; i < 200 && !fs::exists(dir / "started"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(dir / "started"));
  ns.reset();
  t.join();
  EXPECT_EQ(r.term_signal, SIGKILL) << r.output;
  EXPECT_LT(r.wall_s, 30);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kbrun
