// The sandbox of the processes that run candidate or reference code (util/subprocess.h,
// docs/EVALUATION.md "Isolation"): the memory cap, the shared /dev/shm folder of a worker and
// its checker, what they may write, and Seal, which puts it all on a ProcessSpec.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "eval/evaluation.h"
#include "util/subprocess.h"

namespace kbrun::eval {

// The memory cap of each sealed process: --memory-limit, else half of physical memory; 0: none.
unsigned long long MemoryLimit(const EvalOptions& o);

// The folder a worker and its checker both see as /dev/shm: torch's CUDA IPC reference
// counts live there. A fresh folder in the machine's /dev/shm where that is a writable tmpfs
// (kbrun-<pid>-*), removed with this object; else dir/shm, under the work dir. Not the work
// dir by default: bound from there (overlayfs on the H200 machine) torch could make no CUDA
// IPC handle. Folders a killed kbrun left (its pid gone) are removed once per process: they
// hold memory.
class SharedMemoryDir {
 public:
  explicit SharedMemoryDir(const fs::path& dir);
  ~SharedMemoryDir();
  SharedMemoryDir(const SharedMemoryDir&) = delete;
  SharedMemoryDir& operator=(const SharedMemoryDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  static void RemoveLeftovers();

  fs::path path_;
  bool owned_ = false;
};

// Seals a worker, checker or profiler process: its own mount namespace, the filesystem
// read-only except `writable`, no network, the memory cap, secrets scrubbed from what it
// prints, and a PID namespace (worker_sandbox.cc says when it is shared and when there is none).
void Seal(ProcessSpec& spec, const EvalOptions& o, std::vector<std::string> writable, const fs::path& shm,
          const std::string& shared_pid_namespace, bool cuda_ipc);

// What a process that runs candidate code may write: its private dir and, since the build
// step writes it, the shared compile cache (created here).
std::vector<std::string> CandidateWritablePaths(const EvalOptions& o, const fs::path& dir);

}  // namespace kbrun::eval
