#include "cli/slurm_batch.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "batch/clock.h"
#include "batch/shards.h"
#include "batch/slurm.h"
#include "cli/commands.h"
#include "report/report.h"
#include "util/env_options.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::cli {
namespace {

// One submitter at a time per results folder (an flock, released when the process ends).
class SubmitLock {
 public:
  explicit SubmitLock(const fs::path& path) {
    fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw CommandError{kExitIoError, "cannot open " + path.string()};
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      close(fd_);
      throw CommandError{kExitConfig, fmt::format("another kbrun batch --slurm is submitting to {}: wait for it",
                                                  path.parent_path().parent_path().string())};
    }
  }
  ~SubmitLock() { close(fd_); }
  SubmitLock(const SubmitLock&) = delete;
  SubmitLock& operator=(const SubmitLock&) = delete;

 private:
  int fd_ = -1;
};

CommandError FromSlurm(const batch::SlurmError& e) {
  using Kind = batch::SlurmError::Kind;
  switch (e.kind()) {
    case Kind::kNotInstalled:
    case Kind::kUnreachable:
      return {kExitUnavailable, e.what()};
    case Kind::kRefused:
      return {kExitConfig, std::string(e.what()) + "\n(check --slurm-opts and the cluster's partitions and limits)"};
    case Kind::kFailed:
      break;
  }
  return {kExitInternal, e.what()};
}

std::string ProblemNames(const std::vector<std::string>& names) {
  if (names.empty()) return "none";
  return names.size() == 1 ? names[0] : fmt::format("{} .. {}", names.front(), names.back());
}

// Where the tasks cache builds: --compile-cache, else KBRUN_COMPILE_CACHE, else beside the
// results folder (its parent), which a cluster's shared filesystem holds with it.
fs::path CompileCacheFor(const SlurmSubmitOptions& o, const fs::path& results) {
  if (o.no_compile_cache) return {};
  if (!o.compile_cache.empty()) return fs::absolute(o.compile_cache).lexically_normal();
  if (auto env = GetEnvOption("KBRUN_COMPILE_CACHE")) return fs::absolute(*env).lexically_normal();
  return results.parent_path() / "kbrun-compile-cache";
}

bool SleepUnlessCancelled(double seconds) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (CancelRequested()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return !CancelRequested();
}

std::set<int> ActiveTasks(const std::vector<batch::QueuedTask>& queued) {
  std::set<int> active;
  for (const auto& t : queued) {
    if (t.task >= 0) active.insert(t.task);
  }
  return active;
}

// "job 1234: 1 pending, 2 running | shards finished 1/4 | problems done 12/40"
std::string ProgressLine(const std::vector<std::string>& job_ids, const std::vector<batch::QueuedTask>& queued,
                         const std::vector<batch::ShardStatus>& statuses) {
  std::map<std::string, int> states;
  for (const auto& t : queued) ++states[ToLower(t.state) + (t.reason.empty() ? "" : " (" + t.reason + ")")];
  std::string tasks;
  for (const auto& [state, n] : states) tasks += fmt::format("{}{} {}", tasks.empty() ? "" : ", ", n, state);
  int finished = 0, done = 0, problems = 0;
  for (const auto& s : statuses) {
    finished += s.finished() ? 1 : 0;
    done += s.problems_done;
    problems += s.problems;
  }
  std::string jobs;
  for (const auto& id : job_ids) jobs += (jobs.empty() ? "" : ",") + id;
  return fmt::format("kbrun batch: {}{} | shards finished {}/{} | problems done {}/{}",
                     jobs.empty() ? "" : "job " + jobs + ": ", tasks.empty() ? "no task queued or running" : tasks,
                     finished, statuses.size(), done, problems);
}

// The last line of the log of the shard's latest task: why it stopped, most of the time.
std::string LastLogLine(const fs::path& results, const batch::ShardManifest& m, int shard) {
  for (auto it = m.submissions.rbegin(); it != m.submissions.rend(); ++it) {
    if (std::find(it->tasks.begin(), it->tasks.end(), shard) == it->tasks.end()) continue;
    fs::path log = batch::SlurmDir(results) / "logs" / fmt::format("{}_{}.out", it->job_id, shard);
    auto text = ReadFile(log);
    if (!text) return fmt::format("{} (no log)", log.string());
    // kbrun's own error line when there is one (its message may go on over more lines).
    auto lines = SplitLines(*text);
    while (!lines.empty() && Trim(lines.back()).empty()) lines.pop_back();
    std::string line = lines.empty() ? "(empty)" : Trim(lines.back());
    for (auto l = lines.rbegin(); l != lines.rend(); ++l) {
      if (StartsWith(*l, "kbrun: ")) {
        line = Trim(*l);
        break;
      }
    }
    return fmt::format("{}: {}", log.string(), line);
  }
  return "never submitted";
}

std::vector<batch::ShardStatus> Statuses(const fs::path& results, const batch::ShardManifest& m) {
  std::vector<batch::ShardStatus> out;
  for (const auto& s : m.shards) out.push_back(batch::ReadShardStatus(results, s));
  return out;
}

}  // namespace

std::vector<std::string> TaskArguments(const std::vector<std::string>& argv) {
  static const std::set<std::string> flags = {"--slurm", "--slurm-wait"};
  static const std::set<std::string> with_value = {"--slurm-opts", "--slurm-tasks", "--slurm-poll"};
  std::vector<std::string> out;
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (flags.count(a)) continue;
    if (with_value.count(a)) {
      ++i;  // and its value
      continue;
    }
    size_t eq = a.find('=');
    if (eq != std::string::npos && (with_value.count(a.substr(0, eq)) || flags.count(a.substr(0, eq)))) continue;
    out.push_back(a);
  }
  return out;
}

int SubmitSlurmBatch(const SlurmSubmitOptions& o, const std::vector<batch::Problem>& problems) {
  fs::path results = fs::absolute(o.results).lexically_normal();
  if (!results.has_filename()) results = results.parent_path();  // "results/"
  std::vector<std::string> user_opts;
  try {
    user_opts = batch::SplitShellWords(o.opts);
  } catch (const std::invalid_argument& e) {
    throw CommandError{kExitUsage, fmt::format("--slurm-opts: {}: {}", e.what(), o.opts)};
  }
  batch::SlurmClient slurm(CurrentEnvironment());
  // No Slurm here: say so before anything is written.
  const char* path = std::getenv("PATH");
  for (const char* command : {"sbatch", "squeue"}) {
    if (batch::FindOnPath(command, path ? path : "").empty()) {
      throw CommandError{kExitUnavailable,
                         fmt::format("--slurm: {} is not on PATH; run kbrun batch --slurm where Slurm's client "
                                     "commands (sbatch, squeue; Debian package slurm-client) reach the cluster",
                                     command)};
    }
  }
  if (fs::exists(results / "summary.json") && !fs::exists(batch::ManifestPath(results))) {
    throw CommandError{kExitUsage, fmt::format("{} holds a single-host batch (summary.json and no {}): use another "
                                               "--results folder for a Slurm run",
                                               results.string(), batch::ManifestPath(results).string())};
  }
  // A first submission that fails leaves no folder behind (a later one finds nothing half-made).
  std::optional<fs::path> made_here;
  if (!fs::exists(results)) made_here = results;
  fs::create_directories(batch::SlurmDir(results) / "logs");
  SubmitLock lock(batch::SlurmDir(results) / ".submit.lock");
  auto remove_if_made_here = [&] {
    std::error_code ec;
    if (made_here) fs::remove_all(*made_here, ec);
  };

  // The shards: the folder's own, or a new plan.
  std::optional<batch::ShardManifest> manifest;
  try {
    manifest = batch::LoadManifest(results);
  } catch (const std::exception& e) {
    throw CommandError{kExitDataError, e.what()};
  }
  std::vector<std::string> names;
  for (const auto& p : problems) names.push_back(p.name);
  // A plan that was never submitted (sbatch refused it) binds nothing: plan afresh.
  if (manifest && manifest->submissions.empty()) manifest.reset();
  if (manifest) {
    std::vector<std::string> before;
    for (const auto& s : manifest->shards) before.insert(before.end(), s.problems.begin(), s.problems.end());
    if (before != names) {
      throw CommandError{
          kExitUsage,
          fmt::format("{} was submitted for other problems ({}, {} in all; now {}, {}): resubmit it with "
                      "the same problem range, or use another --results folder",
                      results.string(), ProblemNames(before), before.size(), ProblemNames(names), names.size())};
    }
    if (o.tasks > 0) {
      auto planned = batch::PlanShards(problems, o.tasks);
      if (planned.size() != manifest->shards.size()) {
        throw CommandError{
            kExitUsage,
            fmt::format("{} is split into {} shards; --slurm-tasks {} would split it into {}: leave "
                        "--slurm-tasks out (or give {}) to resume it, or use another --results folder",
                        results.string(), manifest->shards.size(), o.tasks, planned.size(), manifest->shards.size())};
      }
    }
  } else {
    manifest.emplace();
    manifest->problems_dir = fs::absolute(o.problems_dir).lexically_normal();
    manifest->first = o.first;
    manifest->last = o.last;
    manifest->shards = batch::PlanShards(problems, o.tasks > 0 ? o.tasks : kDefaultSlurmTasks);
  }
  manifest->compile_cache = CompileCacheFor(o, results);

  std::vector<batch::QueuedTask> queued;
  try {
    queued = slurm.Queue(manifest->JobIds());
  } catch (const batch::SlurmError& e) {
    remove_if_made_here();
    throw FromSlurm(e);
  }
  std::set<int> active = ActiveTasks(queued);
  auto statuses = Statuses(results, *manifest);
  std::vector<int> to_submit;
  std::string finished_list, active_list;
  for (const auto& s : statuses) {
    if (s.finished()) {
      finished_list += (finished_list.empty() ? "" : ",") + std::to_string(s.index);
    } else if (active.count(s.index)) {
      active_list += (active_list.empty() ? "" : ",") + std::to_string(s.index);
    } else {
      to_submit.push_back(s.index);
    }
  }
  if (!o.quiet) {
    fmt::print(stderr, "kbrun batch --slurm: {} problems in {} shards, results in {}\n", problems.size(),
               manifest->shards.size(), results.string());
    if (!finished_list.empty()) fmt::print(stderr, "  finished, not resubmitted: shards {}\n", finished_list);
    if (!active_list.empty()) fmt::print(stderr, "  still queued or running in Slurm: shards {}\n", active_list);
  }

  std::vector<std::string> job_ids;
  for (const auto& t : queued) {
    if (std::find(job_ids.begin(), job_ids.end(), t.job_id) == job_ids.end()) job_ids.push_back(t.job_id);
  }
  if (!to_submit.empty()) {
    batch::JobScriptSpec script;
    script.kbrun = fs::read_symlink("/proc/self/exe");
    script.args = TaskArguments(CommandLine());
    script.compile_cache = manifest->compile_cache;
    script.comment = "results: " + results.string();
    // The tasks read their shard from the manifest: it is on disk before any of them can start.
    batch::SaveManifest(results, *manifest);
    fs::path script_path = batch::SlurmDir(results) / "job.sh";
    WriteFileAtomic(script_path, batch::JobScriptText(script));
    fs::permissions(script_path, fs::perms::owner_all, fs::perm_options::replace);
    batch::SbatchRequest request;
    request.script = script_path;
    request.tasks = to_submit;
    request.job_name = "kbrun-" + results.filename().string();
    request.output = batch::SlurmDir(results) / "logs" / "%A_%a.out";
    request.workdir = fs::current_path();
    request.user_opts = user_opts;
    std::string job_id;
    try {
      job_id = slurm.Submit(request);
    } catch (const batch::SlurmError& e) {
      remove_if_made_here();
      throw FromSlurm(e);
    }
    manifest->submissions.push_back({job_id, to_submit, batch::NowUnix()});
    job_ids.push_back(job_id);
    std::string spec = batch::ArraySpec(to_submit);
    // The id goes to stdout alone, for scripts; the rest is for the reader.
    fmt::print("{}\n", job_id);
    std::fflush(stdout);
    if (!o.quiet) {
      fmt::print(stderr,
                 "kbrun batch --slurm: submitted job {} (array {}: {} of {} shards; compile cache {})\n"
                 "  watch:    squeue --me --array --jobs {}\n"
                 "  logs:     {}/logs/{}_<shard>.out; a shard's progress: kbrun monitor {}/shards/<shard>\n"
                 "  then:     kbrun merge {} && kbrun report {}\n"
                 "  resubmit: this same command resumes only the shards not finished\n",
                 job_id, spec, to_submit.size(), manifest->shards.size(),
                 manifest->compile_cache.empty() ? "off" : manifest->compile_cache.string(), job_id,
                 batch::SlurmDir(results).string(), job_id, results.string(), results.string(), results.string());
    }
  } else if (!o.quiet) {
    fmt::print(stderr, "kbrun batch --slurm: nothing to submit{}\n",
               active_list.empty() ? ": every shard finished; kbrun merge " + results.string() + " joins them" : "");
  }
  batch::SaveManifest(results, *manifest);
  if (!o.wait) return 0;

  // Follow the job until Slurm has no task of it left.
  std::string last_line;
  int squeue_failures = 0;
  for (;;) {
    try {
      queued = slurm.Queue(manifest->JobIds());
      squeue_failures = 0;
    } catch (const batch::SlurmError& e) {
      if (CancelRequested()) break;
      // The controller may be restarting: a few misses in a row are tolerated.
      if (++squeue_failures >= 5) throw FromSlurm(e);
      fmt::print(stderr, "kbrun batch: warning: {}\n", e.what());
    }
    statuses = Statuses(results, *manifest);
    std::string line = ProgressLine(job_ids, queued, statuses);
    if (line != last_line && !o.quiet) fmt::print(stderr, "{}\n", line);
    last_line = line;
    if (squeue_failures == 0 && ActiveTasks(queued).empty()) break;
    if (!SleepUnlessCancelled(o.poll_s)) break;
  }
  if (CancelRequested()) {
    std::string jobs;
    for (const auto& id : job_ids) jobs += " " + id;
    fmt::print(stderr, "kbrun batch: stopped waiting; the job goes on (scancel{} stops it)\n", jobs);
    return kExitInterrupted;
  }

  report::MergeOptions merge_options;
  merge_options.active_tasks = std::set<int>{};
  report::MergeOutcome merged = MergeAndSay(results, merge_options);
  try {
    report::WriteOptions options;
    options.html_path = results / "detailed_report.html";
    report::Report r = report::WriteReport(results, nullptr, options);
    if (!o.quiet) fmt::print("{}", report::ReportText(r));
  } catch (const std::exception& e) {
    fmt::print(stderr, "kbrun: warning: cannot write the report: {}\n", e.what());
  }
  std::string unfinished;
  for (const auto& s : merged.shards) {
    if (s.finished()) continue;
    unfinished += fmt::format("\n  shard {}: {} ({} of {} problems done); {}", s.index, s.state, s.problems_done,
                              s.problems, LastLogLine(results, *manifest, s.index));
  }
  if (unfinished.empty()) {
    fmt::print(stderr, "kbrun batch --slurm: every shard finished; report in {}/detailed_report.txt\n",
               results.string());
    return 0;
  }
  fmt::print(stderr,
             "kbrun batch --slurm: shards left unfinished (each with the last line of its log):{}\n"
             "Run the same command again to resubmit them; finished shards are kept.\n",
             unfinished);
  return kExitTempFail;
}

}  // namespace kbrun::cli
