// The supervisor: runs the Python worker for one candidate in a controlled child
// process and turns what it measured (or how it died) into a verdict.
#include <linux/magic.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <random>
#include <regex>
#include <thread>

#include <fmt/format.h>

#include "eval/evaluation.h"
#include "eval/backend.h"
#include "eval/profile.h"
#include "eval/python_env.h"
#include "eval/warm_worker.h"
#include "util/fs.h"
#include "util/pid_namespace.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::eval {
namespace {

using nlohmann::json;

// Variables the worker may see; anything else (API keys above all) stays behind.
const char* const kPassedEnv[] = {
    "PATH", "LANG", "LC_ALL", "LC_CTYPE", "CUDA_HOME", "CUDA_PATH", "CUDA_ROOT", "ROCM_PATH", "HIP_PATH",
    "LD_LIBRARY_PATH", "PYTHONPATH", "CC", "CXX", "CUDAHOSTCXX", "NVCC_CCBIN", "TORCH_CUDA_ARCH_LIST",
    "PYTORCH_ROCM_ARCH", "THUNDERKITTENS_ROOT", "HIPKITTENS_ROOT", "CCACHE_DIR",
    // Keep NVLink multicast off on shared multi-GPU hosts.
    "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST", "NVSHMEM_DISABLE_NVLS"};

bool LooksSecret(const std::string& name) {
  static const std::regex secret("KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL|AUTH", std::regex::icase);
  return std::regex_search(name, secret);
}

// Values of kbrun's secret variables (API keys): scrubbed from whatever a child prints.
// Short values are left alone: "1" or "true" would be replaced all over the output.
std::vector<std::string> SecretValues() {
  std::vector<std::string> values;
  for (const auto& [name, value] : CurrentEnvironment()) {
    if (LooksSecret(name) && value.size() >= 8) values.push_back(value);
  }
  return values;
}

unsigned long long MemoryLimit(const EvalOptions& o) {
  if (o.memory_limit_bytes) return *o.memory_limit_bytes;
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<unsigned long long>(pages) * static_cast<unsigned long long>(page) / 2
                               : 0;
}

// How long the compile phase may spend constructing ModelNew to catch lazy builds.
constexpr double kPrebuildTimeoutS = 120;

// The folder a worker and its checker both see as /dev/shm: torch's CUDA IPC reference
// counts live there. A fresh folder in the machine's /dev/shm where that is a writable tmpfs
// (kbrun-<pid>-*), removed with this object; else dir/shm, under the work dir. Not the work
// dir by default: bound from there (overlayfs on the H200 machine) torch could make no CUDA
// IPC handle. Folders a killed kbrun left (its pid gone) are removed once per process: they
// hold memory.
class SharedMemoryDir {
 public:
  explicit SharedMemoryDir(const fs::path& dir) : path_(dir / "shm") {
    struct statfs st {};
    if (statfs("/dev/shm", &st) != 0 || st.f_type != TMPFS_MAGIC || access("/dev/shm", W_OK | X_OK) != 0) return;
    static std::once_flag swept;
    std::call_once(swept, RemoveLeftovers);
    try {
      path_ = MakeUniqueDir("/dev/shm", fmt::format("kbrun-{}-", getpid()));
      owned_ = true;
    } catch (const std::exception&) {
    }
  }
  ~SharedMemoryDir() {
    std::error_code ec;
    if (owned_) fs::remove_all(path_, ec);
  }
  SharedMemoryDir(const SharedMemoryDir&) = delete;
  SharedMemoryDir& operator=(const SharedMemoryDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  static void RemoveLeftovers() {
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

  fs::path path_;
  bool owned_ = false;
};

// Seals a worker, checker or profiler process (util/subprocess.h, docs/EVALUATION.md
// "Isolation"): its own mount namespace, the filesystem read-only except `writable`, no
// network, the memory cap, secrets scrubbed from what it prints, and a PID namespace.
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
  spec.redact = SecretValues();
}

fs::path DefaultWorkRoot() {
  if (const char* w = std::getenv("KBRUN_WORK_DIR"); w && *w) return w;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "kbrun/work";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache/kbrun/work";
  return fs::temp_directory_path() / fmt::format("kbrun-{}", getuid());
}

std::string CompileCacheDir(const EvalOptions& o) {
  if (o.compile_mode != "fast" || !o.compile_cache) return "";
  return fs::absolute(o.compile_cache_dir.empty() ? DefaultCompileCacheDir() : o.compile_cache_dir).string();
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

std::string ResolveDevice(const EvalOptions& o, const PythonEnv& py) {
  if (o.device == "auto") return py.gpu_available ? "cuda" : "cpu";
  return o.device;
}

std::map<std::string, std::string> WorkerEnvironment(const EvalOptions& o, const PythonEnv& py,
                                                     const fs::path& dir, bool gpu_visible) {
  auto current = CurrentEnvironment();
  std::map<std::string, std::string> env;
  for (const char* name : kPassedEnv) {
    if (auto it = current.find(name); it != current.end()) env[name] = it->second;
  }
  // Extra variables the user asked to pass (KBRUN_PASS_ENV=A,B), never secrets.
  if (auto it = current.find("KBRUN_PASS_ENV"); it != current.end()) {
    for (const auto& name : SplitLines(std::regex_replace(it->second, std::regex(","), "\n"))) {
      auto v = current.find(Trim(name));
      if (v != current.end() && !LooksSecret(v->first)) env[v->first] = v->second;
    }
  }
  for (auto it = env.begin(); it != env.end();) {
    it = LooksSecret(it->first) ? env.erase(it) : std::next(it);
  }
  env["HOME"] = (dir / "home").string();
  env["TMPDIR"] = (dir / "tmp").string();
  env["TORCH_EXTENSIONS_DIR"] = (dir / "build").string();
  env["PYTHONDONTWRITEBYTECODE"] = "1";
  env["PYTHONUNBUFFERED"] = "1";
  unsigned jobs = o.compile_jobs > 0 ? static_cast<unsigned>(o.compile_jobs)
                                     : std::max(1u, std::thread::hardware_concurrency());
  env["MAX_JOBS"] = std::to_string(jobs);
  // The backend's arch lists and library roots (eval/backend.h).
  for (const auto& [name, value] : BackendFlagsFor(o, py).env) env[name] = value;
  // One GPU, or none: the compile phase never touches a GPU that another
  // candidate may be timing on.
  std::string visible = gpu_visible ? std::to_string(o.gpu_index) : "";
  env["CUDA_VISIBLE_DEVICES"] = visible;
  env["HIP_VISIBLE_DEVICES"] = visible;
  return env;
}

EvalResult Fail(Status status, const std::string& category, const std::string& message) {
  EvalResult r;
  r.status = status;
  r.error_category = category;
  r.error_message = message;
  return r;
}

struct WorkerRun {
  ProcessResult process;
  std::string last_stage;
  std::optional<json> result;
  int result_lines = 0;     // lines that claimed to be the result
  bool forged = false;      // a result line without the right nonce, or more than one
  // The run phase's checker (kbrun_checker.py): its own process, result and nonce.
  bool checked = false;
  bool gpu_visible = false;  // its processes saw a GPU
  bool shared_pid_namespace = false;  // the worker and the checker joined one of their own
  ProcessResult checker_process;
  std::optional<json> checker;
  // --baseline compile|cudagraph (worker/kbrun_baselines.py): one line each from the checker,
  // after its result; the stage it last said it was in ("baselines", "baseline compile").
  json baselines = json::object();
  std::string checker_stage;
};

// Accepts one line "result <nonce> <json>"; any other result line marks the run forged.
bool ReadResultLine(const std::string& line, const std::string& nonce, int& lines, bool& forged,
                    std::optional<json>& out) {
  if (!StartsWith(line, "result")) return false;
  ++lines;
  const std::string prefix = "result " + nonce + " ";
  if (!StartsWith(line, prefix) || lines > 1) {
    forged = true;
    return true;
  }
  auto j = json::parse(line.substr(prefix.size()), nullptr, false);
  if (!j.is_discarded() && j.is_object()) out = j;
  return true;
}

// Accepts "baseline <nonce> <name> <json>" (one per name, a name --baseline asked for); true
// when the line was one. The checker writes them after its result line.
bool ReadBaselineLine(const std::string& line, const std::string& nonce, const std::vector<std::string>& wanted,
                      json& out) {
  const std::string prefix = "baseline " + nonce + " ";
  if (!StartsWith(line, prefix)) return false;
  std::string rest = line.substr(prefix.size());
  size_t space = rest.find(' ');
  if (space == std::string::npos) return true;
  std::string name = rest.substr(0, space);
  if (std::find(wanted.begin(), wanted.end(), name) == wanted.end() || out.contains(name)) return true;
  auto j = json::parse(rest.substr(space + 1), nullptr, false);
  if (!j.is_discarded() && j.is_object()) out[name] = j;
  return true;
}

std::string MakeNonce() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}{:08x}{:08x}", rd(), rd(), rd(), rd());
}

WorkerRun RunWorker(const std::string& phase, const EvalRequest& req, const PythonEnv& py,
                    const std::string& device, uint64_t seed, const fs::path& dir) {
  const EvalOptions& o = req.options;
  json request = {
      {"phase", phase},
      {"problem", fs::absolute(dir / "problem.py").string()},
      {"code", fs::absolute(dir / "candidate.py").string()},
      {"device", device},
      {"precision", o.precision},
      {"seed", seed},
      {"correctness_trials", o.correctness_trials},
      {"timing_trials", o.timing_trials},
      {"warmup_runs", o.warmup_runs},
      {"atol", o.atol ? json(*o.atol) : json(nullptr)},
      {"rtol", o.rtol ? json(*o.rtol) : json(nullptr)},
      {"tolerance", o.tolerance},
      {"shapes", o.shapes},
      {"build",
       {{"mode", o.compile_mode},
        {"cache_dir", CompileCacheDir(o).empty() ? json(nullptr) : json(CompileCacheDir(o))},
        {"pch", o.precompiled_header},
        // kbrun's flags for the backend, added to every load_inline build (kbrun_build.py).
        {"backend", BackendFlagsFor(o, py).ToRequest()}}},
  };
  // The worker answers with one line "result <nonce> <json>" on fd 3 and deletes the
  // request before the candidate loads, so the candidate cannot forge the answer.
  const std::string nonce = MakeNonce();
  request["nonce"] = nonce;
  WriteFileAtomic(dir / "request.json", request.dump(2));

  WorkerRun run;
  run.gpu_visible = phase != "compile" && device == "cuda";
  ProcessSpec spec;
  spec.argv = {py.interpreter, WorkerScriptPath(), "--request", (dir / "request.json").string()};
  spec.env = WorkerEnvironment(o, py, dir, phase != "compile" && device == "cuda");
  spec.cwd = dir.string();
  spec.timeout_s = o.compile_timeout_s;
  spec.hard_timeout_s = o.compile_timeout_s + (phase == "compile" ? 30 : o.run_timeout_s + 30);
  double run_timeout = o.run_timeout_s;
  SharedMemoryDir shm(dir);
  // The run phase's worker and checker in one PID namespace; every process left in it dies
  // when this goes out of scope, after both have ended.
  std::unique_ptr<SharedPidNamespace> pid_namespace = phase == "run" ? SharedPidNamespace::Start() : nullptr;
  const std::string shared_pid_namespace = pid_namespace ? pid_namespace->path() : "";
  run.shared_pid_namespace = pid_namespace != nullptr;
  Seal(spec, o, CandidateWritablePaths(o, dir), shm.path(), shared_pid_namespace, run.gpu_visible);
  // A fork of the warm worker when one can start it, else a fresh interpreter.
  ChildStarter starter = o.warm_worker == "off" ? nullptr
                         : WarmWorkerStarter(py.interpreter, dir.parent_path(), o.warm_worker == "all");
  spec.starter = starter;
  spec.on_progress = [&run, run_timeout, &nonce](const std::string& line) -> std::optional<double> {
    if (ReadResultLine(line, nonce, run.result_lines, run.forged, run.result)) return std::nullopt;
    if (!StartsWith(line, "stage ")) return std::nullopt;
    run.last_stage = line.substr(6);
    // Compiling is over: the run clock starts.
    if (run.last_stage == "correctness") return run_timeout;
    // The compile phase's optional construction of ModelNew (kbrun_worker.prebuild) gets its own limit.
    if (run.last_stage == "prebuild") return kPrebuildTimeoutS;
    return std::nullopt;
  };
  // The run phase's verdict on correctness comes from the checker, a process the candidate
  // never runs in, fed by the worker over a socket (fd 4 on both sides).
  std::thread checker_thread;
  int checker_lines = 0;
  bool checker_forged = false;
  if (phase == "run") {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      throw std::runtime_error(fmt::format("socketpair: {}", strerror(errno)));
    }
    const std::string checker_nonce = MakeNonce();
    json creq = {{"problem", request["problem"]}, {"device", device},       {"precision", o.precision},
                 {"seed", seed},                  {"atol", request["atol"]}, {"rtol", request["rtol"]},
                 {"tolerance", o.tolerance},
                 {"shapes", o.shapes},
                 {"baselines", o.baselines},
                 {"nonce", checker_nonce}};
    fs::create_directories(dir / "checker/home");
    fs::create_directories(dir / "checker/tmp");
    WriteFileAtomic(dir / "checker_request.json", creq.dump(2));
    ProcessSpec cspec;
    cspec.argv = {py.interpreter, (fs::path(WorkerScriptPath()).parent_path() / "kbrun_checker.py").string(),
                  "--request", (dir / "checker_request.json").string()};
    cspec.env = WorkerEnvironment(o, py, dir / "checker", device == "cuda");
    cspec.cwd = (dir / "checker").string();
    // It ends when the worker's side closes; with baselines to time, it goes on after the worker
    // ended, for up to --run-timeout more (from its "stage baselines").
    const bool timed_baselines = o.baselines.size() > 1;
    cspec.hard_timeout_s = spec.hard_timeout_s + 30 + (timed_baselines ? o.run_timeout_s : 0.0);
    Seal(cspec, o, {fs::absolute(dir).string()}, shm.path(), shared_pid_namespace, device == "cuda");
    cspec.channel_fd = sv[1];
    cspec.starter = starter;
    cspec.on_progress = [&run, &o, checker_nonce, &checker_lines, &checker_forged](const std::string& line) {
      if (ReadResultLine(line, checker_nonce, checker_lines, checker_forged, run.checker)) return std::optional<double>();
      if (ReadBaselineLine(line, checker_nonce, o.baselines, run.baselines)) return std::optional<double>();
      if (!StartsWith(line, "stage ")) return std::optional<double>();
      run.checker_stage = line.substr(6);
      // The baselines' own deadline, from the end of the worker.
      if (run.checker_stage == "baselines") return std::optional<double>(o.run_timeout_s);
      return std::optional<double>();
    };
    spec.channel_fd = sv[0];
    request["checker"] = true;
    WriteFileAtomic(dir / "request.json", request.dump(2));
    run.checked = true;
    checker_thread = std::thread([&run, cspec = std::move(cspec)] { run.checker_process = RunProcess(cspec); });
  }
  run.process = RunProcess(spec);
  if (checker_thread.joinable()) checker_thread.join();
  if (checker_forged) run.checker.reset();
  if (run.forged) {
    run.result = json{{"failure",
                       {{"status", "rejected"},
                        {"category", "forged_result"},
                        {"message", fmt::format("the worker's channel carried {} result messages, not one with "
                                                "the run's nonce: the candidate wrote its own verdict",
                                                run.result_lines)}}}};
  }
  return run;
}

// A worker that died or was killed: classify from how it ended.
EvalResult FromDeadWorker(const WorkerRun& run, const EvalOptions& o) {
  const ProcessResult& p = run.process;
  std::string tail = KeepHeadTailLines(p.output, 60);
  if (p.cancelled) return Fail(Status::kRuntimeError, "cancelled", "interrupted by the user");
  if (p.timed_out) {
    bool compiling = run.last_stage.empty() || run.last_stage == "compile";
    double limit = compiling ? o.compile_timeout_s : o.run_timeout_s;
    return Fail(Status::kTimeout, compiling ? "compile_timeout" : "run_timeout",
                fmt::format("killed after {:.0f} s in stage '{}' (limit {:.0f} s)\n{}", p.wall_s,
                            run.last_stage.empty() ? "start" : run.last_stage, limit,
                            KeepHeadTailLines(p.output, 20)));
  }
  if (p.spawn_failed) return Fail(Status::kRuntimeError, "worker_failed", "cannot start the worker: " + tail);
  if (p.out_of_memory) {
    return Fail(Status::kRuntimeError, "out_of_memory",
                fmt::format("killed at the memory limit of {} (--memory-limit) in stage '{}'\n{}",
                            FormatBytes(MemoryLimit(o)), run.last_stage.empty() ? "start" : run.last_stage, tail));
  }
  if (p.term_signal) {
    return Fail(Status::kRuntimeError, "crash",
                fmt::format("worker killed by {} in stage '{}'\n{}", SignalName(p.term_signal),
                            run.last_stage.empty() ? "start" : run.last_stage, tail));
  }
  if (p.exit_status_lost) {
    return Fail(Status::kRuntimeError, "worker_failed",
                fmt::format("worker ended without a result in stage '{}'; its exit status is unknown (the warm "
                            "worker that forked it died)\n{}",
                            run.last_stage.empty() ? "start" : run.last_stage, tail));
  }
  return Fail(Status::kRuntimeError, "worker_failed",
              fmt::format("worker exited with code {} without a result in stage '{}'\n{}", p.exit_code,
                          run.last_stage.empty() ? "start" : run.last_stage, tail));
}

EvalResult FromWorkerFailure(const json& failure, const std::string& output) {
  auto status = ParseStatus(failure.value("status", ""));
  // The worker may only report failures; a "correct" here would be a forged verdict.
  if (!status || *status == Status::kCorrect) status = Status::kRejected;
  std::string category = failure.value("category", "unknown");
  std::string message = failure.value("message", "");
  if (category == "build_failed") {
    message = "build failed:\n" + ExtractCompilerErrors(message, 40);
  } else if (*status == Status::kRuntimeError) {
    std::string detail = failure.value("detail", "");
    if (!detail.empty()) message += "\n" + KeepHeadTailLines(detail, 30);
    if (category == "cuda_error" && !output.empty()) message += "\n" + KeepHeadTailLines(output, 10);
  }
  return Fail(*status, category, message);
}

// What sealed the worker and checker (util/subprocess.h ProbeSandbox, docs/EVALUATION.md).
json SandboxDoc(const EvalOptions& o, const json& env, const WorkerRun* run) {
  const SandboxReport sandbox = ProbeSandbox();
  const unsigned long long limit = MemoryLimit(o);
  json doc = {
      {"network_interfaces", env.value("network_interfaces", json(nullptr))},
      {"network_isolated", env.contains("network_interfaces") && env["network_interfaces"] == json::array({"lo"})},
      {"secrets_removed", true},
      {"private_dir", true},
      // A run phase shares one with its checker; where none could be made, a GPU run has none
      // (Seal) and leftovers die by its init's hand instead.
      {"pid_namespace", run && run->shared_pid_namespace ? sandbox.shared_pid_namespace
                                                         : sandbox.pid_namespace && !(run && run->gpu_visible)},
      {"pid_namespace_shared_with_checker", run && run->shared_pid_namespace && sandbox.shared_pid_namespace},
      {"filesystem_read_only", sandbox.read_only_root},
      {"minimal_dev", sandbox.minimal_dev},
      {"private_shm", sandbox.private_shm},
      {"memory_limit_bytes", limit ? json(limit) : json(nullptr)},
      {"memory_limit_method", limit ? json(MemoryCapMethod()) : json("none")},
      {"memory_peak_bytes", run && run->process.memory_peak_bytes ? json(run->process.memory_peak_bytes)
                                                                  : json(nullptr)},
  };
  if (!sandbox.note.empty()) doc["note"] = sandbox.note;
  return doc;
}

json StatsOrNull(const json& timing, const char* key) {
  return timing.is_object() && timing.contains(key) ? timing[key] : json(nullptr);
}

// What happened to the candidate's own kernels when none of them ran ("fallback_reason",
// kbrun_library_share.py), as a clause for the verdict's message and the reflection prompt.
std::string FallbackExplanation(const json& fallback) {
  const std::string reason = fallback.is_object() && fallback["fallback_reason"].is_string()
                                 ? fallback["fallback_reason"].get<std::string>()
                                 : "";
  auto names = [&](bool ok) {
    std::string out;
    for (const auto& b : fallback.value("builds", json::array())) {
      if (b.is_object() && b.value("ok", false) == ok) out += (out.empty() ? "" : ", ") + b.value("name", "?");
    }
    return out;
  };
  if (reason == "build_failed") {
    std::string error;
    for (const auto& b : fallback.value("builds", json::array())) {
      if (b.is_object() && !b.value("ok", true)) {
        error = b.value("error", "");
        break;
      }
    }
    return fmt::format("; its own extension {} failed to build and the forward ran only torch code:\n{}",
                       names(false), KeepHeadTailLines(error, 12));
  }
  if (reason == "never_launched") {
    std::string built = names(true);
    return fmt::format("; its own extension{} built, but the forward never called into it",
                       built.empty() ? "" : " " + built);
  }
  if (reason == "library_only") return "; it builds no kernel of its own";
  return "";
}

// The tolerance block of result.json: the rule asked for and, where the checker judged the
// run, its own account of the rule (k, floor, whether the float64 reference ran and why not).
// atol/rtol as the checker applied them (kbrun_judge.py owns the defaults); before a run
// phase, only what the options say.
json ToleranceDoc(const EvalOptions& o, const WorkerRun* run) {
  auto given = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  json t = {{"rule", o.tolerance}, {"atol", given(o.atol)}, {"rtol", given(o.rtol)}};
  const json judge = run && run->checker ? run->checker->value("judge", json::object()) : json::object();
  for (const char* k : {"atol", "rtol", "k", "floor_ulps", "unit_roundoff", "fp64_reference", "fp64_note",
                        "worst_relative_reference_error", "skipped_extra_draws"}) {
    if (judge.is_object() && judge.contains(k)) t[k] = judge[k];
  }
  return t;
}

// The baselines block of result.json (docs/RESULT_SCHEMA.md): for each --baseline, its figures
// and the candidate's speedup over it (baseline median / candidate median, when correct), or
// why it was not measured. eager comes from the main timing (timing.reference), the others
// from the checker's baseline lines.
json BaselinesDoc(const EvalOptions& o, const EvalResult& r, const json& timing, const WorkerRun* run) {
  auto median = [&](const char* who) {
    return timing.is_object() && timing.contains(who) && timing[who].is_object()
               ? timing[who].value("median_ms", 0.0) : 0.0;
  };
  const double eager = median("reference"), candidate = median("candidate");
  const bool timed = eager > 0 && candidate > 0;
  const std::string verdict = StatusName(r.status) + (r.error_category.empty() ? "" : "/" + r.error_category);
  // Why a baseline has no line from the checker.
  auto missing = [&]() -> json {
    if (!run) return {{"status", "skipped"}, {"reason", "no run phase (" + verdict + ")"}};
    if (run->checker_stage.empty() && !timed) {
      return {{"status", "skipped"}, {"reason", "the candidate's timing did not complete (" + verdict + ")"}};
    }
    const ProcessResult& p = run->checker_process;
    std::string how = p.timed_out && StartsWith(run->checker_stage, "baseline")
                          ? fmt::format("it was stopped at the baselines' deadline (--run-timeout, {:.0f} s)",
                                        o.run_timeout_s)
                      : p.timed_out    ? fmt::format("it was stopped at its deadline after {:.0f} s", p.wall_s)
                      : p.out_of_memory ? std::string("it was killed at the memory limit")
                      : p.term_signal   ? "it was killed by " + SignalName(p.term_signal)
                      : p.cancelled     ? std::string("it was interrupted")
                                        : fmt::format("it exited with code {}", p.exit_code);
    std::string where = run->checker_stage.empty() ? "before the baselines" : "in stage '" + run->checker_stage + "'";
    return {{"status", "unavailable"}, {"reason", fmt::format("the checker ended {}: {}", where, how)}};
  };
  json doc = json::object();
  for (const auto& name : o.baselines) {
    json b;
    if (name == "eager") {
      b = timed ? json{{"status", "measured"}, {"how", "the reference as written (timing.reference)"},
                       {"median_ms", eager}}
                : json{{"status", "skipped"}, {"reason", "the reference was not timed (" + verdict + ")"}};
      if (timed) b["speedup"] = r.correct && r.speedup > 0 ? json(r.speedup) : json(nullptr);
    } else if (run && run->baselines.contains(name)) {
      b = run->baselines[name];
      double ms = b.value("median_ms", 0.0);
      if (b.value("status", "") == "measured" && ms > 0) {
        b["speedup"] = r.correct && candidate > 0 ? json(ms / candidate) : json(nullptr);
        b["speedup_over_eager"] = eager > 0 ? json(eager / ms) : json(nullptr);
      }
    } else {
      b = missing();
    }
    doc[name] = std::move(b);
  }
  return doc;
}

// Assembles the result document (docs/RESULT_SCHEMA.md).
void FillDocument(EvalResult& r, const EvalRequest& req, const PythonEnv& py, const std::string& device,
                  uint64_t seed, const json& worker, const CompiledCandidate& compiled, const WorkerRun* run) {
  const EvalOptions& o = req.options;
  json env = worker.value("env", json::object());
  json stages = worker.value("stage_times", json::object());
  json timing = worker.value("timing", json(nullptr));
  // `run` is the last worker (its output goes in output_tail); after a failed compile it is
  // the compile worker, and there was no run phase.
  const WorkerRun* run_phase = compiled.ok ? run : nullptr;
  json doc = {
      {"kbrun_version", KBRUN_VERSION},
      {"problem", req.problem.stem().string()},
      {"problem_path", fs::absolute(req.problem).string()},
      {"code_path", fs::absolute(req.code).string()},
      {"status", StatusName(r.status)},
      {"compiled", r.compiled},
      {"correct", r.correct},
      {"speedup", r.speedup > 0 ? json(r.speedup) : json(nullptr)},
      {"error", r.error_category.empty() ? json(nullptr)
                                         : json{{"category", r.error_category}, {"message", r.error_message}}},
      {"correctness", worker.value("correctness", json{{"trials_run", 0}, {"trials_passed", 0}})},
      {"tolerance", ToleranceDoc(o, run_phase)},
      {"timing",
       {{"method", timing.is_object() ? timing.value("method", "") : ""},
        {"warmup_runs", o.warmup_runs},
        {"reference", StatsOrNull(timing, "reference")},
        {"candidate", StatsOrNull(timing, "candidate")},
        {"checked_timed_calls", StatsOrNull(timing, "checked_timed_calls")},
        {"spin_ms", {{"candidate", StatsOrNull(timing, "spin_ms")}, {"reference", StatsOrNull(timing, "reference_spin_ms")}}},
        {"spin_cycles_per_ms", StatsOrNull(timing, "spin_cycles_per_ms")},
        {"sm_clock_mhz", {{"candidate", StatsOrNull(timing, "clock_mhz")}, {"reference", StatsOrNull(timing, "reference_clock_mhz")}}},
        {"spin", {{"candidate", StatsOrNull(timing, "spin")}, {"reference", StatsOrNull(timing, "reference_spin")}}},
        {"kernelbench", StatsOrNull(timing, "kernelbench")}}},
      {"device",
       {{"kind", device},
        {"name", env.value("device_name", device == "cpu" ? "cpu" : (py.gpu_names.empty() ? "" : py.gpu_names[0]))},
        {"gpu_index", device == "cpu" ? json(nullptr) : json(o.gpu_index)}}},
      {"env",
       {{"python", py.interpreter},
        {"python_version", py.python_version},
        {"torch_version", py.torch_version},
        {"cuda_version", py.cuda_version.empty() ? json(nullptr) : json(py.cuda_version)},
        {"hip_version", py.hip_version.empty() ? json(nullptr) : json(py.hip_version)}}},
      {"precision", o.precision},
      {"backend", o.backend},
      {"seed", seed},
      {"stages",
       {{"worker_start_s", compiled.worker_start_s},
        {"compile_s", compiled.compile_s},
        {"compile_cpu_s", compiled.compile_cpu_s},
        {"correctness_s", stages.value("correctness_s", 0.0)},
        {"timing_s", stages.value("timing_s", 0.0)},
        {"compile_worker_total_s", compiled.compile_worker_s},
        {"run_worker_total_s", run_phase ? run_phase->process.wall_s : 0.0},
        // Of the run worker's wall time, besides correctness and timing: setting up the GPU,
        // importing the candidate (its build comes from the compile phase), building the models.
        {"run_cuda_init_s", run_phase ? stages.value("cuda_init_s", 0.0) : 0.0},
        {"run_load_candidate_s", run_phase ? stages.value("compile_s", 0.0) : 0.0},
        {"run_load_models_s", run_phase ? stages.value("load_models_s", 0.0) : 0.0},
        // Of those, the time inside the candidate's load_inline/load calls (builds on the GPU lane).
        {"run_build_s", run_phase ? stages.value("build_s", 0.0) : 0.0},
        // How the workers started: "warm" (forks of the warm worker) or "cold" (fresh interpreters).
        {"compile_worker_start", compiled.warm_start ? "warm" : "cold"},
        {"run_worker_start",
         run_phase ? json(run_phase->process.started_by_starter ? "warm" : "cold") : json(nullptr)},
        // Of the two workers' wall times: starting the warm worker itself (once per kbrun process).
        {"warm_worker_setup_s",
         compiled.warm_worker_setup_s + (run_phase ? run_phase->process.starter_setup_s : 0.0)}}},
      {"build",
       {{"mode", o.compile_mode},
        {"cache_dir", CompileCacheDir(o).empty() ? json(nullptr) : json(CompileCacheDir(o))},
        {"extensions", compiled.builds},
        {"prebuild", compiled.prebuild},
        // What kbrun added to every build for the backend (eval/backend.h), for reproducing it.
        {"backend_flags", BackendFlagsFor(o, py).ToRequest()}}},
      {"baselines", BaselinesDoc(o, r, timing, run_phase)},
      {"profile", nullptr},  // set by the profile step (--profile, eval/profile.h)
      {"roofline", nullptr},
      {"fallback", worker.value("fallback", json(nullptr))},
      {"sandbox", SandboxDoc(o, env, run)},
  };
  if (run && r.status != Status::kCorrect && r.status != Status::kIncorrect) {
    doc["output_tail"] = KeepHeadTailLines(run->process.output, 40);
    doc["output_bytes"] = run->process.output_total_bytes;
  }
  r.json = std::move(doc);
}

// The timing block of result.json: the candidate's figures from the worker, the reference's
// from the checker, which never loads candidate code (the worker's word on the reference
// would be the candidate's).
json MergedTiming(const json& worker_timing, const std::optional<json>& checker) {
  json t = worker_timing;
  const std::string method = t.value("method", "");
  json ref = checker && (*checker).contains("timing") ? (*checker)["timing"] : json::object();
  t["reference"] = ref.contains(method) ? ref[method] : json(nullptr);
  t["reference_spin_ms"] = ref.value("spin_ms", 0.0);
  t["reference_clock_mhz"] = ref.value("clock_mhz", json(nullptr));
  t["reference_spin"] = ref.value("spin", json(nullptr));
  int all = 0;
  for (auto& [name, stats] : ref.items()) {
    if (stats.is_object()) all += stats.value("trials", 0);
  }
  t["reference_trials_all_methods"] = all;
  // KernelBench's cuda_event method on the same run, for comparison with its published figures.
  constexpr const char* kKernelBenchMethod = "kernelbench_cuda_event_l2_flush";  // kbrun_worker.py's name
  if (t.contains("candidate_kernelbench") && ref.contains(kKernelBenchMethod)) {
    json kb = {{"method", kKernelBenchMethod},
               {"reference", ref[kKernelBenchMethod]},
               {"candidate", t["candidate_kernelbench"]}};
    double r = kb["reference"].value("median_ms", 0.0), c = kb["candidate"].value("median_ms", 0.0);
    kb["speedup"] = r > 0 && c > 0 ? json(r / c) : json(nullptr);
    t["kernelbench"] = kb;
  }
  t.erase("candidate_kernelbench");
  return t;
}

// The checker's counts must show every check the worker claims to have passed; anything
// less (no result, a failure, fewer checks) and the run is not correct.
std::optional<EvalResult> CheckerDisagrees(const WorkerRun& run, const EvalOptions& o, const json& worker) {
  if (!run.checked) return std::nullopt;
  if (!run.checker) {
    return Fail(Status::kRuntimeError, "checker_failed",
                "the checker gave no result\n" + KeepHeadTailLines(run.checker_process.output, 30));
  }
  const json& c = *run.checker;
  if (c.contains("failure") && c["failure"].is_object()) return FromWorkerFailure(c["failure"], "");
  auto passed = [&](const char* kind) { return c["checks"][kind].value("passed", -1); };
  // Extra draws whose reference is not finite left the problem's domain: skipped, not failed.
  int extra_judged = passed("extra") + c["checks"]["extra"].value("skipped", 0);
  const json timing = worker.value("timing", json::object());
  int timed = timing.value("checked_timed_calls", -2);
  // Every timed call, of either method, was checked, and the checker timed the reference as
  // often as the worker timed the candidate.
  int reference_trials = timing.value("reference_trials_all_methods", -3);
  int candidate_trials = timing.contains("candidate") && timing["candidate"].is_object()
                             ? timing["candidate"].value("trials", -4) : -4;
  int reference_primary = timing.contains("reference") && timing["reference"].is_object()
                              ? timing["reference"].value("trials", -5) : -5;
  const json corr = worker.value("correctness", json::object());
  if (passed("trial") != o.correctness_trials || extra_judged != corr.value("extra_trials_run", -1) ||
      extra_judged < 2 || passed("timed") != timed || timed != reference_trials ||
      candidate_trials != o.timing_trials || reference_primary != o.timing_trials) {
    return Fail(Status::kIncorrect, "incomplete_checks",
                fmt::format("the checker saw {} of {} trials, {} extra and {} of {} timed checks pass, and timed the "
                            "reference {} times for {} timed candidate calls",
                            passed("trial"), o.correctness_trials, passed("extra"), passed("timed"), timed,
                            reference_trials, candidate_trials));
  }
  // --shapes varied: both other batch sizes checked, or skipped by the checker with its reason.
  if (o.shapes == "varied") {
    const json shape = c["checks"].value("shape", json::object());
    int shape_judged = shape.value("passed", -1) + shape.value("skipped", 0);
    if (shape_judged != 2 || corr.value("shape_trials_run", -1) != 2) {
      return Fail(Status::kIncorrect, "incomplete_checks",
                  fmt::format("the checker saw {} of 2 varied-shape checks pass or skip", shape_judged));
    }
  }
  return std::nullopt;
}

uint64_t ChooseSeed(const EvalOptions& o) {
  if (o.seed) return *o.seed;
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 16 ^ rd()) % 1000000007ULL;
}

}  // namespace

const std::vector<std::string>& BaselineNames() {
  static const std::vector<std::string> names = {"eager", "compile", "cudagraph"};
  return names;
}

bool IsBaselineName(const std::string& name) {
  const auto& all = BaselineNames();
  return std::find(all.begin(), all.end(), name) != all.end();
}

std::vector<std::string> NormalizeBaselines(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const auto& b : BaselineNames()) {
    if (b == "eager" || std::find(names.begin(), names.end(), b) != names.end()) out.push_back(b);
  }
  return out;
}

std::string StatusName(Status s) {
  switch (s) {
    case Status::kCorrect: return "correct";
    case Status::kIncorrect: return "incorrect";
    case Status::kCompileError: return "compile_error";
    case Status::kRuntimeError: return "runtime_error";
    case Status::kTimeout: return "timeout";
    case Status::kRejected: return "rejected";
  }
  return "runtime_error";
}

std::optional<Status> ParseStatus(const std::string& name) {
  for (Status s : {Status::kCorrect, Status::kIncorrect, Status::kCompileError, Status::kRuntimeError,
                   Status::kTimeout, Status::kRejected}) {
    if (StatusName(s) == name) return s;
  }
  return std::nullopt;
}

CompiledCandidate Compile(const EvalRequest& req) {
  CompiledCandidate c;
  const EvalOptions& o = req.options;
  const PythonEnv& py = DiscoverPython(o.python);
  std::string device = ResolveDevice(o, py);
  fs::path root = o.work_root.empty() ? DefaultWorkRoot() : o.work_root;
  c.work_dir = MakeUniqueDir(root, "eval-");
  for (const char* sub : {"home", "tmp", "build"}) fs::create_directories(c.work_dir / sub);
  fs::copy_file(req.problem, c.work_dir / "problem.py");
  fs::copy_file(req.code, c.work_dir / "candidate.py");

  // A backend whose library is not configured fails here, before a compiler starts.
  BackendFacts facts = DiscoverBackendFacts(o, py, CurrentEnvironment());
  if (auto why = NotConfiguredError(MakeBackendFlags(facts), facts, ReadFile(req.code).value_or(""))) {
    c.failure = Fail(Status::kCompileError, "backend_not_configured", *why);
    FillDocument(c.failure, req, py, device, 0, json::object(), c, nullptr);
    if (!o.keep_work_dir) fs::remove_all(c.work_dir);
    return c;
  }
  WorkerRun run = RunWorker("compile", req, py, device, 0, c.work_dir);
  if (!run.result && run.last_stage == "prebuild" && !run.process.cancelled) {
    // The import and its builds are done; only the optional construction died or hung: the
    // run phase, where the GPU is visible, judges the candidate.
    c.ok = true;
    std::string how = run.process.timed_out    ? fmt::format("stopped after {:.0f} s", kPrebuildTimeoutS)
                      : run.process.term_signal ? "killed by " + SignalName(run.process.term_signal)
                                                : fmt::format("exit code {}", run.process.exit_code);
    c.prebuild = {{"constructed", false},
                  {"note", "the compile worker ended while constructing ModelNew (" + how + "); judged in the run phase"}};
  } else if (!run.result) {
    c.failure = FromDeadWorker(run, o);
  } else if (run.result->contains("failure")) {
    c.failure = FromWorkerFailure((*run.result)["failure"], run.process.output);
  } else {
    c.ok = true;
  }
  json stages = run.result ? run.result->value("stage_times", json::object()) : json::object();
  c.compile_s = stages.value("compile_s", run.process.wall_s);
  c.worker_start_s = stages.value("import_torch_s", 0.0);
  c.compile_cpu_s = run.process.cpu_s;
  c.compile_worker_s = run.process.wall_s;
  c.warm_start = run.process.started_by_starter;
  c.warm_worker_setup_s = run.process.starter_setup_s;
  if (run.result && run.result->contains("builds")) c.builds = (*run.result)["builds"];
  if (run.result && run.result->contains("prebuild")) c.prebuild = (*run.result)["prebuild"];
  if (!c.ok) {
    c.failure.compiled = false;
    FillDocument(c.failure, req, py, device, 0, run.result.value_or(json::object()), c, &run);
    if (!o.keep_work_dir) fs::remove_all(c.work_dir);
  }
  return c;
}

EvalResult Run(const EvalRequest& req, CompiledCandidate& compiled) {
  if (!compiled.ok) return compiled.failure;
  const EvalOptions& o = req.options;
  const PythonEnv& py = DiscoverPython(o.python);
  std::string device = ResolveDevice(o, py);
  uint64_t seed = ChooseSeed(o);
  WorkerRun run = RunWorker("run", req, py, device, seed, compiled.work_dir);
  EvalResult r;
  json worker = run.result.value_or(json::object());
  if (worker.contains("timing")) worker["timing"] = MergedTiming(worker["timing"], run.checker);
  if (!run.result) {
    r = FromDeadWorker(run, o);
    r.compiled = true;
  } else if (worker.contains("failure")) {
    r = FromWorkerFailure(worker["failure"], run.process.output);
    r.compiled = worker.value("compiled", false);
  } else {
    // The verdict is ours: every requested trial ran and passed, and both were timed.
    const json corr = worker.value("correctness", json::object());
    const json timing = worker.value("timing", json::object());
    int run_n = corr.value("trials_run", 0), passed = corr.value("trials_passed", 0);
    double ref_ms = timing.contains("reference") ? timing["reference"].value("median_ms", 0.0) : 0.0;
    double new_ms = timing.contains("candidate") ? timing["candidate"].value("median_ms", 0.0) : 0.0;
    r.compiled = true;
    if (run_n != o.correctness_trials || passed != run_n) {
      r = Fail(Status::kIncorrect, "incomplete_checks",
               fmt::format("{} of {} correctness trials passed", passed, o.correctness_trials));
      r.compiled = true;
    } else if (!(ref_ms > 0) || !(new_ms > 0) || !std::isfinite(ref_ms) || !std::isfinite(new_ms)) {
      r = Fail(Status::kRuntimeError, "timing_failed", "no valid timing measurements");
      r.compiled = true;
    } else if (auto disagreement = CheckerDisagrees(run, o, worker)) {
      r = *disagreement;
      r.compiled = true;
    } else if (worker.contains("fallback") && worker["fallback"].value("uses_library_only", false) &&
               !o.allow_library_kernels) {
      r = Fail(Status::kRejected, "uses_library_only",
               fmt::format("{:.0f}% of the forward's time is in torch/library kernels, not the candidate's own "
                           "(allowed only with --allow-library-kernels, e.g. for cuBLAS prompts){}",
                           100 * worker["fallback"].value("library_time_fraction", 1.0),
                           FallbackExplanation(worker["fallback"])));
      r.compiled = true;
    } else {
      r.status = Status::kCorrect;
      r.correct = true;
      r.speedup = ref_ms / new_ms;
    }
  }
  FillDocument(r, req, py, device, seed, worker, compiled, &run);
  if (run.checker) {
    // The checker's figures are the authoritative ones (the worker's may be missing: it
    // stops at the checker's first failing verdict).
    json& corr = r.json["correctness"];
    corr["checker"] = *run.checker;
    for (const char* k : {"max_abs_diff", "mean_abs_diff"}) {
      if (run.checker->contains(k) && !(*run.checker)[k].is_null()) corr[k] = (*run.checker)[k];
    }
    // The evidence rule's figures (worker/kbrun_judge.py): the check closest to failing.
    const json judge = run.checker->value("judge", json::object());
    for (const char* k : {"err_candidate", "err_reference", "error_ratio", "mean_err_candidate",
                          "mean_err_reference", "mean_error_ratio"}) {
      if (judge.is_object() && judge.contains(k)) corr[k] = judge[k];
    }
    corr["extra_trials_skipped"] = run.checker->value("checks", json::object()).value("extra", json::object()).value("skipped", 0);
    corr["shapes"] = o.shapes;
    if (run.checker->contains("shape_skipped")) corr["shape_skipped"] = (*run.checker)["shape_skipped"];
  }
  // After the verdict, in the same private dir and build: never changes status, timing or exit code.
  if (o.profile && !run.process.cancelled) {
    json build = {{"mode", o.compile_mode},
                  {"cache_dir", CompileCacheDir(o).empty() ? json(nullptr) : json(CompileCacheDir(o))},
                  {"pch", o.precompiled_header},
                  {"backend", BackendFlagsFor(o, py).ToRequest()}};
    // The profiled run executes the candidate: sealed as the run worker is.
    SharedMemoryDir shm(compiled.work_dir / "profile");
    std::vector<std::string> writable = CandidateWritablePaths(o, compiled.work_dir);
    auto seal = [&](ProcessSpec& spec) { Seal(spec, o, writable, shm.path(), "", false); };
    AddProfile(r, {&req, &py, device, seed, compiled.work_dir,
                   WorkerEnvironment(o, py, compiled.work_dir, device == "cuda"), build, seal});
  }
  if (!o.keep_work_dir) fs::remove_all(compiled.work_dir);
  return r;
}

EvalResult Evaluate(const EvalRequest& req) {
  CompiledCandidate compiled = Compile(req);
  return Run(req, compiled);
}

fs::path DefaultCompileCacheDir() {
  if (const char* c = std::getenv("KBRUN_COMPILE_CACHE"); c && *c) return c;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "kbrun/compile";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache/kbrun/compile";
  return fs::temp_directory_path() / fmt::format("kbrun-{}/compile", getuid());
}

int ExitCodeFor(const EvalResult& r, double target_speedup) {
  if (r.status != Status::kCorrect) return 2;
  return r.speedup >= target_speedup ? 0 : 1;
}

}  // namespace kbrun::eval
