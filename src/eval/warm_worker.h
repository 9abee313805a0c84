// The warm worker: a Python fork server (worker/kbrun_zygote.py) that imports torch once
// per kbrun process, so that each worker or checker run is a fork (milliseconds) instead
// of a fresh interpreter importing torch (seconds).
//
// The fork is set up exactly as a cold start (util/subprocess.cc, ExecChild): its own
// session, only fds 0-4, resource limits, a new network namespace, the run's working
// directory and scrubbed environment; RunProcess supervises it the same way (deadlines,
// process-group kills, capped output) and the server reports its exit status and CPU time.
// The server itself never touches a GPU (children initialise CUDA after the fork) and
// holds no secret. One server per interpreter and environment; a server that dies is
// replaced on the next run, and a run it cannot start is started cold.
#pragma once

#include <filesystem>
#include <string>

#include "util/subprocess.h"

namespace kbrun::eval {

// A starter for ProcessSpec::starter: runs `interpreter script.py ...` as a fork of the warm
// worker for that interpreter and the spec's environment (all but the per-run variables:
// HOME, TMPDIR, TORCH_EXTENSIONS_DIR and the visible GPUs), starting one if needed. Its
// private folder goes under work_root.
// With !gpu_runs, runs that see a GPU (CUDA_VISIBLE_DEVICES or HIP_VISIBLE_DEVICES not
// empty) start cold; with gpu_runs they are forks too, unless the server reported that
// torch initialised CUDA while it imported (its forks could not use a GPU).
ChildStarter WarmWorkerStarter(const std::string& interpreter, const std::filesystem::path& work_root, bool gpu_runs);

struct WarmWorkerStats {
  int servers_started = 0;  // fork servers that reached "ready"
  int forks = 0;            // runs started as forks
  int cold_fallbacks = 0;   // runs a server could not start (then started cold)
};
WarmWorkerStats GetWarmWorkerStats();

// The pid of a ready warm worker for this interpreter (any environment), or -1: for tests.
int WarmWorkerPid(const std::string& interpreter);

}  // namespace kbrun::eval
