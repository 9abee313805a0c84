#include "eval/worker_sandbox.h"

#include <linux/magic.h>
#include <signal.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <mutex>
#include <regex>

#include <fmt/format.h>

#include "eval/worker_env.h"
#include "eval/worker_request.h"
#include "util/fs.h"

namespace kbrun::eval {

unsigned long long MemoryLimit(const EvalOptions& o) {
  if (o.memory_limit_bytes) return *o.memory_limit_bytes;
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<unsigned long long>(pages) * static_cast<unsigned long long>(page) / 2 : 0;
}

SharedMemoryDir::SharedMemoryDir(const fs::path& dir) : path_(dir / "shm") {
  struct statfs st {};
  if (statfs("/dev/shm", &st) != 0 || st.f_type != TMPFS_MAGIC || access("/dev/shm", W_OK | X_OK) != 0) return;
  static std::once_flag swept;
  std::call_once(swept, RemoveLeftovers);
  try {
    path_ = MakeUniqueDir("/dev/shm", fmt::format("kbrun-{}-", getpid()));
    owned_ = true;
  } catch (const std::exception&) {}
}

SharedMemoryDir::~SharedMemoryDir() {
  std::error_code ec;
  if (owned_) fs::remove_all(path_, ec);
}

void SharedMemoryDir::RemoveLeftovers() {
  static const std::regex name("kbrun-([0-9]+)-.*");
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/dev/shm", ec)) {
    std::smatch m;
    std::string base = entry.path().filename().string();
    if (!std::regex_match(base, m, name)) continue;
    pid_t pid = static_cast<pid_t>(std::stol(m[1].str()));
    if (kill(pid, 0) != 0 && errno == ESRCH) fs::remove_all(entry.path(), ec);
  }
}

// Seals a worker, checker or profiler process (util/subprocess.h, docs/EVALUATION.md
// "Isolation"): its own mount namespace, the filesystem read-only except `writable` and new
// names under /tmp (kept in its TMPDIR), no network, the memory cap, secrets scrubbed from
// what it prints, and a PID namespace.
// The worker and its checker share `shm` (a SharedMemoryDir) and, in the run phase, one PID
// namespace (`shared_pid_namespace`): they share GPU memory by CUDA IPC, and the driver does
// not open a handle made in another PID namespace (H200). Where no shared namespace could be
// made, a process that shares GPU memory (`cuda_ipc`) gets none.
void Seal(ProcessSpec& spec, const EvalOptions& o, std::vector<std::string> writable, const fs::path& shm,
          const std::string& shared_pid_namespace, bool cuda_ipc) {
  spec.join_pid_namespace = shared_pid_namespace;
  spec.pid_namespace = shared_pid_namespace.empty() && !cuda_ipc;
  spec.limits.max_file_bytes = 8ULL << 30;
  spec.limits.max_memory_bytes = MemoryLimit(o);
  spec.isolate_network = true;
  spec.sandbox = true;
  spec.writable_paths = std::move(writable);
  fs::create_directories(shm);
  spec.shm_dir = fs::absolute(shm).string();
  // What the process writes under /tmp goes to its own TMPDIR (candidates that build in
  // /tmp/<name>, as real ones do); the machine's /tmp stays as it was.
  if (auto tmp = spec.env.find("TMPDIR"); tmp != spec.env.end() && fs::is_directory(tmp->second)) {
    spec.private_tmp = fs::absolute(tmp->second).string();
  }
  spec.redact = SecretValues();
}

// What a process that runs candidate code may write: its private dir and, since the build
// step writes it, the shared compile cache (created here).
std::vector<std::string> CandidateWritablePaths(const EvalOptions& o, const fs::path& dir) {
  std::vector<std::string> writable = {fs::absolute(dir).string()};
  if (std::string cache = CompileCacheDir(o); !cache.empty()) {
    fs::create_directories(cache);
    writable.push_back(cache);
  }
  return writable;
}

}  // namespace kbrun::eval
