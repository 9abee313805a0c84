// Running a child process under supervision: its own process group, a clean
// environment, resource limits, deadlines, and capped output capture.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kbrun {

struct ResourceLimits {
  // 0 leaves a limit as inherited.
  unsigned long long max_file_bytes = 0;     // RLIMIT_FSIZE
  unsigned long long max_processes = 0;      // RLIMIT_NPROC
  unsigned long long max_address_space = 0;  // RLIMIT_AS (never for CUDA workers)
  unsigned long long max_cpu_seconds = 0;    // RLIMIT_CPU
  // Resident memory of the child and everything it starts: a cgroup of its own
  // (memory.max on cgroup v2, memory.limit_in_bytes on v1) where one can be made, else
  // RLIMIT_DATA (not RLIMIT_AS: CUDA reserves far more address space than it uses, and
  // RLIMIT_DATA does not count PROT_NONE reservations). See MemoryCapMethod().
  unsigned long long max_memory_bytes = 0;
  bool no_core_dumps = true;
};

// What a sandboxed child gets (ProcessSpec::sandbox). Decided once per kbrun process by
// ProbeSandbox(), which starts a child set up exactly so and checks from inside it.
struct SandboxReport {
  bool pid_namespace = false;  // its own PID namespace and a fresh /proc: sees no other process
  // Two children joining one SharedPidNamespace (ProcessSpec::join_pid_namespace) see each
  // other and that namespace's init, nothing else.
  bool shared_pid_namespace = false;
  bool read_only_root = false;  // the filesystem is read-only except the writable paths
  bool minimal_dev = false;     // /dev holds only null, zero, (u)random, tty and GPU nodes
  bool private_shm = false;     // /dev/shm is its own tmpfs
  std::string note;             // why a part is missing, where one is
};
SandboxReport ProbeSandbox();

// "cgroup_v2", "cgroup_v1" or "rlimit_data": how ResourceLimits::max_memory_bytes is held here.
std::string MemoryCapMethod();

struct ProcessSpec;

// What RunProcess prepared for one child, for a starter that sets the child up itself.
struct ChildSetup {
  std::string cgroup_procs;               // join: write "0" here
  unsigned long long max_data_bytes = 0;  // RLIMIT_DATA fallback
  struct Node {
    std::string name;
    bool dir;
  };
  std::vector<Node> dev_nodes;  // /dev entries the sandbox's /dev gets
};
// /dev entries a sandbox keeps: null, zero, full, random, urandom, tty, and the GPU's
// (nvidia*, nvidia-caps/, kfd, dri/) where they exist.
std::vector<ChildSetup::Node> SandboxDevNodes();

// A child started by someone else instead of fork + exec: a fork server such as kbrun's
// warm worker (eval/warm_worker.h), which forks it already set up as ExecChild would.
struct StartedChild {
  int pid = -1;
  // The starter's report of the end, one line "exit <wait status> <cpu seconds>"; EOF
  // without it means the starter died and the exit status is lost. RunProcess owns it.
  int status_fd = -1;
  // Seconds the starter spent on one-time set-up for this start (a fork server starting).
  double setup_s = 0;
};
// Given the spec, what RunProcess prepared, and the parent's ends for the child's fds 1-2
// (output) and 3 (progress, or -1) — spec.channel_fd is its fd 4 — starts the child. nullopt: nothing was started
// and RunProcess forks and execs the child itself.
using ChildStarter =
    std::function<std::optional<StartedChild>(const ProcessSpec&, const ChildSetup&, int out_fd, int progress_fd)>;

struct ProcessSpec {
  std::vector<std::string> argv;           // argv[0] is resolved through PATH
  std::map<std::string, std::string> env;  // the whole environment: nothing is inherited
  std::string cwd;                         // empty: inherit
  double timeout_s = 0;                    // initial deadline from start; 0 = none
  double hard_timeout_s = 0;               // absolute cap, whatever progress says; 0 = none
  size_t output_head_bytes = 32 * 1024;    // merged stdout+stderr: first bytes kept
  size_t output_tail_bytes = 32 * 1024;    // ... and last bytes kept
  ResourceLimits limits;
  // Run the child in a new network namespace (loopback only, down): no network.
  // Needs root, or unprivileged user namespaces; skipped silently where neither works.
  bool isolate_network = false;
  // With isolate_network: bring the new namespace's loopback up (still no route outside),
  // for tools whose parts talk over 127.0.0.1 (Nsight Compute and its target process).
  bool loopback_up = false;
  // Seal the child (Linux namespaces, needs root or unprivileged user namespaces): its own
  // PID namespace whose init ends every process it started when the child exits (and is
  // not the child: the child is a session leader with pid 2), a mount namespace with a
  // fresh /proc, the filesystem read-only except `writable_paths`, a /dev of its own with
  // only the nodes a GPU needs, a private /dev/shm. Parts that cannot be set up are skipped
  // (ProbeSandbox() says which).
  bool sandbox = false;
  // With sandbox: the PID namespace too. Off, the sandbox's init is a subreaper that kills
  // whatever the child left behind (double-forked daemons are reparented to it), and the
  // child sees the host's processes, unless it joins a namespace (below).
  bool pid_namespace = true;
  // With sandbox and pid_namespace off: the PID namespace (a SharedPidNamespace's path) that
  // the sandbox's init and the child join, so that processes which must share one (CUDA IPC
  // between kbrun's worker and checker) see each other and nothing outside it. Where the
  // join fails the child runs as with pid_namespace off.
  std::string join_pid_namespace;
  std::vector<std::string> writable_paths;  // existing directories, absolute
  // A directory bound on the sandbox's /dev/shm (writable there, even outside
  // writable_paths), so that processes that exchange shared-memory files (torch's CUDA IPC
  // reference counts) see the same one; empty: a tmpfs of its own.
  std::string shm_dir;
  // With sandbox: a directory (the process's own, e.g. its TMPDIR) that takes what the child
  // writes under /tmp. /tmp still shows the machine's entries, read-only as the rest of the
  // view, but a name that is not there is created here: code that writes /tmp/<name> works, and
  // nothing it writes reaches the machine's /tmp. Empty: /tmp is read-only as the rest.
  std::string private_tmp;
  // Values (secrets) replaced by "[redacted]" in the captured output and in progress lines.
  std::vector<std::string> redact;
  // Lines the child writes to fd 3. The callback may return a new deadline,
  // in seconds from now (e.g. a worker that finished compiling starts the run clock).
  std::function<std::optional<double>(const std::string&)> on_progress;
  // Asked after each batch of progress lines: true once the caller has all it needs from the
  // child (its result line). RunProcess then kills the child's process group and returns at
  // once (ProcessResult::ended_early); waiting for the child's end, and removing its memory
  // cgroup, go on in a background thread. A process's end can take longer than its work:
  // a GPU context's teardown, 0.06-0.41 s per run worker on an H200.
  std::function<bool()> ended_early_when;
  // Asked on each turn of the wait: true while the child waits on the caller (a run started
  // ahead of its turn on a GPU lane: eval/run_ahead.h). That time does not count towards
  // timeout_s or hard_timeout_s, nor towards ProcessResult::wall_s (it is paused_s).
  std::function<bool()> clocks_paused;
  // Held until the child has ended, after an early end by the background wait: what must
  // outlive the child (the PID namespace it joined, whose init reaps what it leaves).
  std::shared_ptr<void> keep_until_ended;
  // A descriptor the child gets as fd 4 (e.g. a socket to a peer process). RunProcess
  // closes the parent's copy once the child is started, so the peer sees EOF when the
  // child dies. -1: none.
  int channel_fd = -1;
  // Who starts the child: empty, or nullopt from it, and RunProcess forks and execs it.
  ChildStarter starter;
};

struct ProcessResult {
  int exit_code = -1;         // valid when term_signal == 0 and !timed_out
  int term_signal = 0;        // signal that ended the child, if any
  bool timed_out = false;     // we killed it at a deadline
  bool cancelled = false;     // we killed it because the user interrupted kbrun
  bool spawn_failed = false;  // exec failed (bad interpreter path...)
  double wall_s = 0;
  // CPU seconds (user + system) of the child and the descendants it waited for (ninja,
  // nvcc, g++...), from wait4()'s rusage. Descendants killed with the group are not counted.
  double cpu_s = 0;
  std::string output;  // head + "[... N bytes omitted ...]" + tail
  size_t output_total_bytes = 0;
  bool output_truncated = false;
  bool started_by_starter = false;  // spec.starter started it (a warm worker's fork)
  bool exit_status_lost = false;    // ... and died before reporting how the child ended
  // spec.ended_early_when said so: the child was killed after its answer, its end not awaited
  // (exit_code stays -1, cpu_s 0).
  bool ended_early = false;
  double starter_setup_s = 0;  // StartedChild::setup_s: part of wall_s
  double paused_s = 0;         // spec.clocks_paused said so for this long: not part of wall_s
  // limits.max_memory_bytes: the kernel's OOM killer ended a process of the child's cgroup
  // (cgroup methods only; under RLIMIT_DATA an allocation fails inside the child instead).
  bool out_of_memory = false;
  unsigned long long memory_peak_bytes = 0;  // the cgroup's peak, where the kernel keeps one
  std::string memory_cap_method;             // how the cap was held: MemoryCapMethod() or "none"
};

ProcessResult RunProcess(const ProcessSpec& spec);
// Waits (at most timeout_s) until the children that RunProcess stopped waiting for
// (ended_early) have ended and their cgroups are gone. Also done at exit.
void WaitForEarlyEndedChildren(double timeout_s = 30);

// Set by SIGINT/SIGTERM handlers: running children are killed and callers wind down.
void RequestCancel();
bool CancelRequested();

// The current environment as a map (for building a child's environment from it).
std::map<std::string, std::string> CurrentEnvironment();

// Name of a signal for messages ("SIGSEGV").
std::string SignalName(int sig);

}  // namespace kbrun
