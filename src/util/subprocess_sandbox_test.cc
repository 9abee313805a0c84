// The sandbox, memory cap, byte-safe capture and secret scrubbing of RunProcess
// (util/subprocess.h): real children, checked from inside and after they end.
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/fs.h"
#include "util/process_list_test_util.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun {
namespace {

ProcessSpec Shell(const std::string& script) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.env = {{"PATH", "/usr/bin:/bin"}};
  spec.timeout_s = 60;
  return spec;
}

TEST(Subprocess, OutputThatIsNotUtf8IsReplacedNotFatal) {
  auto spec = Shell("printf 'before \\377\\376 after\\n'; printf 'stage \\377x\\n' >&3");
  std::string progress;
  spec.on_progress = [&](const std::string& line) {
    progress = line;
    return std::optional<double>();
  };
  auto r = RunProcess(spec);
  EXPECT_EQ(r.output, "before \xEF\xBF\xBD\xEF\xBF\xBD after\n");
  EXPECT_EQ(progress, "stage \xEF\xBF\xBDx");
  EXPECT_NO_THROW(nlohmann::json({{"output", r.output}, {"progress", progress}}).dump());
}

TEST(Subprocess, SecretValuesAreScrubbedFromOutputAndProgress) {
  auto spec = Shell("echo \"key=$K\"; echo \"result $K\" >&3");
  spec.env["K"] = "sk-test-0123456789";
  spec.redact = {"sk-test-0123456789"};
  std::string progress;
  spec.on_progress = [&](const std::string& line) {
    progress = line;
    return std::optional<double>();
  };
  auto r = RunProcess(spec);
  EXPECT_EQ(r.output, "key=[redacted]\n");
  EXPECT_EQ(progress, "result [redacted]");
}

TEST(Subprocess, SandboxSealsPidsFilesystemAndDev) {
  fs::path writable = MakeUniqueDir(fs::temp_directory_path(), "kbrun-sandbox-test-");
  fs::path outside = fs::temp_directory_path() / ("kbrun-sandbox-test-outside-" + std::to_string(getpid()));
  auto spec = Shell(
      "echo pid=$$; echo init=$(cat /proc/1/comm); echo procs=$(ls /proc | grep -c '^[0-9]'); "
      "touch " +
      outside.string() +
      " 2>/dev/null && echo wrote_outside; "
      "touch " +
      (writable / "inside").string() +
      " && echo wrote_inside; "
      "echo dev=$(ls /dev | tr '\\n' ' '); "
      "(setsid sh -c 'sleep 300; echo kbrun-sandbox-test-daemon' &); echo done");
  spec.sandbox = true;
  spec.isolate_network = true;
  spec.writable_paths = {writable.string()};
  auto r = RunProcess(spec);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("pid=2\n"), std::string::npos) << r.output;  // pid 1 is the sandbox's init
  EXPECT_NE(r.output.find("init=kbrun-sandbox"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("wrote_outside"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(outside));
  EXPECT_NE(r.output.find("wrote_inside"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(writable / "inside"));
  EXPECT_NE(r.output.find("null"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(" sda"), std::string::npos) << r.output;  // no disks
  // The daemon (its own session, not in the child's process group) died with the sandbox.
  usleep(200000);
  EXPECT_TRUE(ProcessesWith("kbrun-sandbox-test-daemon").empty());
  for (int pid : ProcessesWith("kbrun-sandbox-test-daemon")) kill(pid, SIGKILL);
  fs::remove(outside);
  fs::remove_all(writable);

  SandboxReport probe = ProbeSandbox();
  EXPECT_TRUE(probe.pid_namespace) << probe.note;
  EXPECT_TRUE(probe.read_only_root) << probe.note;
  EXPECT_TRUE(probe.private_shm) << probe.note;
  EXPECT_TRUE(probe.minimal_dev) << probe.note;
}

// The worker and its checker share one folder as /dev/shm (torch's CUDA IPC files). It lies
// under the read-only view and outside the writable paths, and the child can still write it;
// with and without a PID namespace.
TEST(Subprocess, SandboxSharesItsShmFolderWritably) {
  for (bool pid_namespace : {true, false}) {
    fs::path shm = MakeUniqueDir(fs::temp_directory_path(), "kbrun-sandbox-shm-");
    fs::path writable = MakeUniqueDir(fs::temp_directory_path(), "kbrun-sandbox-shm-private-");
    WriteFileAtomic(shm / "from_host", "x");
    auto spec = Shell(
        "ls /dev/shm; echo y > /dev/shm/from_child && echo wrote_shm; "
        "touch " +
        (shm / "by_path").string() + " 2>/dev/null && echo wrote_by_path; echo done");
    spec.sandbox = true;
    spec.pid_namespace = pid_namespace;
    spec.writable_paths = {writable.string()};
    spec.shm_dir = shm.string();
    auto r = RunProcess(spec);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("from_host"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("wrote_shm"), std::string::npos) << r.output;
    EXPECT_TRUE(fs::exists(shm / "from_child")) << pid_namespace;
    // Only as /dev/shm: the folder's own path stays behind the read-only view.
    EXPECT_EQ(r.output.find("wrote_by_path"), std::string::npos) << r.output;
    fs::remove_all(shm);
    fs::remove_all(writable);
  }
}

// ProcessSpec::private_tmp: /tmp still shows the machine's entries (a symlink too), read-only,
// and a writable path under /tmp stays writable; a new name under /tmp is made in the private
// folder, never on the machine.
TEST(Subprocess, SandboxTmpTakesNewNamesPrivately) {
  fs::path writable = MakeUniqueDir("/tmp", "kbrun-sandbox-tmp-");
  fs::path private_tmp = writable / "tmp";
  fs::create_directories(private_tmp);
  const std::string tag = std::to_string(getpid());
  const fs::path host_file = "/tmp/kbrun-sandbox-tmp-host-" + tag, host_link = "/tmp/kbrun-sandbox-tmp-link-" + tag;
  const fs::path fresh = "/tmp/kbrun-sandbox-tmp-new-" + tag;
  WriteFileAtomic(host_file, "from-host\n");
  fs::create_symlink(host_file, host_link);
  auto spec = Shell(
      fmt::format("cat {0}; cat {1}; echo x > {0} 2>/dev/null && echo wrote_host; mkdir {2} && echo made > {2}/f && "
                  "echo wrote_new; cat {2}/f; touch {3}/inside && echo wrote_inside; test -e /tmp/.kbrun-host-tmp && "
                  "echo host_dir_left; echo done",
                  host_file.string(), host_link.string(), fresh.string(), writable.string()));
  spec.sandbox = true;
  spec.writable_paths = {writable.string()};
  spec.private_tmp = private_tmp.string();
  auto r = RunProcess(spec);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("from-host\nfrom-host\n"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("wrote_host"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("wrote_new\nmade\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("wrote_inside"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("host_dir_left"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(fresh));
  EXPECT_EQ(ReadFile(private_tmp / fresh.filename() / "f").value_or(""), "made\n");
  EXPECT_EQ(ReadFile(host_file).value_or(""), "from-host\n");
  EXPECT_TRUE(fs::exists(writable / "inside"));
  fs::remove(host_link);
  fs::remove(host_file);
  fs::remove_all(writable);
}

// A GPU run's sandbox has no PID namespace (the checker cannot open the worker's CUDA IPC
// handles across two): its init is a subreaper that kills what the child left behind, and
// the filesystem is still sealed.
TEST(Subprocess, SandboxWithoutPidNamespaceStillKillsLeftovers) {
  fs::path writable = MakeUniqueDir(fs::temp_directory_path(), "kbrun-sandbox-nopid-");
  fs::path outside = fs::temp_directory_path() / fmt::format("kbrun-sandbox-nopid-outside-{}", getpid());
  auto spec = Shell("echo pid=$$; echo parent=$(cat /proc/$PPID/comm); touch " + outside.string() +
                    " 2>/dev/null && echo wrote_outside; "
                    "(setsid sh -c 'sleep 300; echo kbrun-sandbox-nopid-daemon' &); echo done");
  spec.sandbox = true;
  spec.pid_namespace = false;
  spec.isolate_network = true;
  spec.writable_paths = {writable.string()};
  auto r = RunProcess(spec);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("pid=2\n"), std::string::npos) << r.output;  // the host's PID namespace
  EXPECT_NE(r.output.find("parent=kbrun-sandbox"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("wrote_outside"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(outside));
  usleep(200000);
  EXPECT_TRUE(ProcessesWith("kbrun-sandbox-nopid-daemon").empty()) << "the daemon outlived the sandbox";
  for (int pid : ProcessesWith("kbrun-sandbox-nopid-daemon")) kill(pid, SIGKILL);
  fs::remove(outside);
  fs::remove_all(writable);
}

TEST(Subprocess, SandboxedChildEndsAsItsWorkerEnded) {
  auto spec = Shell("exit 7");
  spec.sandbox = true;
  EXPECT_EQ(RunProcess(spec).exit_code, 7);
  auto killed = Shell("kill -SEGV $$");
  killed.sandbox = true;
  EXPECT_EQ(RunProcess(killed).term_signal, SIGSEGV);
}

TEST(Subprocess, MemoryCapEndsAHogAsOutOfMemory) {
  auto spec = Shell("python3 -c 'held = [bytearray(b\"x\") * (256 << 20) for _ in range(16)]'; echo survived");
  spec.limits.max_memory_bytes = 512ULL << 20;
  spec.sandbox = true;
  auto r = RunProcess(spec);
  if (MemoryCapMethod() == "rlimit_data") {
    EXPECT_NE(r.output.find("MemoryError"), std::string::npos) << r.output;
  } else {
    EXPECT_TRUE(r.out_of_memory) << r.output;
    EXPECT_EQ(r.memory_cap_method, MemoryCapMethod());
    EXPECT_LE(r.memory_peak_bytes, (512ULL << 20) + (1 << 20));
  }
  EXPECT_LT(r.wall_s, 30);
}

TEST(Text, ParsesByteSizes) {
  EXPECT_EQ(ParseByteSize("2G"), 2ULL << 30);
  EXPECT_EQ(ParseByteSize("512MiB"), 512ULL << 20);
  EXPECT_EQ(ParseByteSize("1.5g"), 3ULL << 29);
  EXPECT_EQ(ParseByteSize("4096"), 4096ULL);
  EXPECT_FALSE(ParseByteSize("lots"));
  EXPECT_FALSE(ParseByteSize("2X"));
}

}  // namespace
}  // namespace kbrun
