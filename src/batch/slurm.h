// Slurm through its own commands: sbatch submits a job array, squeue says which of its
// tasks are still pending or running. kbrun schedules nothing itself. sacct is not used:
// it needs the accounting database (slurmdbd), which many clusters and every single-node
// test set-up lack; what a task achieved is read from its results tree instead.
#pragma once

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kbrun::batch {

namespace fs = std::filesystem;

class SlurmError : public std::runtime_error {
 public:
  enum class Kind {
    kNotInstalled,  // sbatch/squeue not on PATH
    kUnreachable,   // the controller (slurmctld) did not answer
    kRefused,       // sbatch refused the job (its options, the partition, limits...)
    kFailed,        // any other failure of the command
  };
  SlurmError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// `--slurm-opts '...'` as words, the way a POSIX shell splits them (blanks, '...', "...",
// backslash escapes), without expansion of any kind. Throws std::invalid_argument on an
// unterminated quote or a trailing backslash.
std::vector<std::string> SplitShellWords(std::string_view text);
// `text` as one word for a POSIX shell: '...' with every ' written '\''.
std::string ShellQuote(std::string_view text);

// Array task ids as sbatch's --array value: "0-2,5,7-8" (sorted, runs collapsed).
std::string ArraySpec(std::vector<int> tasks);

// The job script of a shard array: each task execs `kbrun ARGS --slurm-shard $SLURM_ARRAY_TASK_ID`.
struct JobScriptSpec {
  fs::path kbrun;                 // absolute path of the binary (all nodes must see it)
  std::vector<std::string> args;  // after the binary: "batch", the user's flags...
  fs::path compile_cache;         // exported as KBRUN_COMPILE_CACHE; empty: not set
  std::string comment;            // a line for the reader (which results folder)
};
std::string JobScriptText(const JobScriptSpec& spec);

struct SbatchRequest {
  fs::path script;
  std::vector<int> tasks;  // array task ids
  std::string job_name;
  fs::path output;                     // --output pattern (%A job, %a task)
  fs::path workdir;                    // --chdir
  std::vector<std::string> user_opts;  // --slurm-opts, after kbrun's own (so they win)
};
std::vector<std::string> SbatchArgv(const SbatchRequest& request);

// The job id from `sbatch --parsable` output ("1234" or "1234;cluster", possibly after
// warning lines). Throws SlurmError(kFailed) when there is none.
std::string ParseSbatchJobId(const std::string& output);

// One line of `squeue --array --format=%F|%K|%T|%r`: an array job's task, its state and why.
struct QueuedTask {
  std::string job_id;  // the array's job id (%F)
  int task = -1;       // the array task id (%K); -1 for a job that is not an array
  std::string state;   // PENDING, RUNNING, COMPLETING, ...
  std::string reason;  // why it is pending (%r: Resources, Priority, ReqNodeNotAvail...); empty for "None"
};
std::vector<QueuedTask> ParseSqueue(const std::string& output);

// The first `name` found in the PATH directories; empty when none.
fs::path FindOnPath(const std::string& name, const std::string& path_variable);

// Runs sbatch / squeue with the given environment (the submitter's: SLURM_CONF and the
// like pass through, and sbatch hands it on to the tasks).
class SlurmClient {
 public:
  explicit SlurmClient(std::map<std::string, std::string> env) : env_(std::move(env)) {}
  // Submits; returns the job id. Throws SlurmError.
  std::string Submit(const SbatchRequest& request) const;
  // This user's tasks of the given array jobs still known to squeue (pending, running,
  // completing...). Throws SlurmError.
  std::vector<QueuedTask> Queue(const std::vector<std::string>& job_ids) const;

 private:
  std::string Run(const std::string& command, const std::vector<std::string>& args) const;
  std::map<std::string, std::string> env_;
};

}  // namespace kbrun::batch
