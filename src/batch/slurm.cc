#include "batch/slurm.h"

#include <unistd.h>

#include <algorithm>
#include <regex>

#include <fmt/format.h>

#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::batch {

std::vector<std::string> SplitShellWords(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\'') {
      size_t end = text.find('\'', i + 1);
      if (end == std::string_view::npos) throw std::invalid_argument("unterminated ' quote");
      word.append(text.substr(i + 1, end - i - 1));
      i = end;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        // Inside "...", a backslash escapes only these (POSIX).
        if (text[j] == '\\' && j + 1 < text.size() &&
            std::string_view("\"\\$`\n").find(text[j + 1]) != std::string_view::npos) {
          ++j;
        }
        word += text[j];
      }
      if (j >= text.size()) throw std::invalid_argument("unterminated \" quote");
      i = j;
    } else if (c == '\\') {
      if (i + 1 >= text.size()) throw std::invalid_argument("a backslash at the end");
      word += text[++i];
    } else {
      word += c;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

std::string ShellQuote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string ArraySpec(std::vector<int> tasks) {
  std::sort(tasks.begin(), tasks.end());
  tasks.erase(std::unique(tasks.begin(), tasks.end()), tasks.end());
  std::string out;
  for (size_t i = 0; i < tasks.size();) {
    size_t j = i;
    while (j + 1 < tasks.size() && tasks[j + 1] == tasks[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? std::to_string(tasks[i]) : fmt::format("{}-{}", tasks[i], tasks[j]);
    i = j + 1;
  }
  return out;
}

std::string JobScriptText(const JobScriptSpec& spec) {
  std::string args;
  for (const auto& a : spec.args) args += " " + ShellQuote(a);
  std::string text = "#!/bin/sh\n";
  text += "# Written by kbrun batch --slurm: one task of the array runs one shard, a resumable kbrun batch.\n";
  if (!spec.comment.empty()) text += "# " + spec.comment + "\n";
  if (!spec.compile_cache.empty()) {
    text += "KBRUN_COMPILE_CACHE=" + ShellQuote(spec.compile_cache.string()) + "\n";
    text += "export KBRUN_COMPILE_CACHE\n";
  }
  text += "exec " + ShellQuote(spec.kbrun.string()) + args + " --slurm-shard \"$SLURM_ARRAY_TASK_ID\"\n";
  return text;
}

std::vector<std::string> SbatchArgv(const SbatchRequest& r) {
  std::vector<std::string> argv = {"--parsable", "--array=" + ArraySpec(r.tasks), "--job-name=" + r.job_name,
                                   "--output=" + r.output.string(), "--chdir=" + r.workdir.string()};
  argv.insert(argv.end(), r.user_opts.begin(), r.user_opts.end());
  argv.push_back(r.script.string());
  return argv;
}

std::string ParseSbatchJobId(const std::string& output) {
  static const std::regex job_line(R"(^\s*(\d+)(;\S+)?\s*$)");
  auto lines = SplitLines(output);
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    std::smatch m;
    if (std::regex_match(*it, m, job_line)) return m[1].str();
  }
  throw SlurmError(SlurmError::Kind::kFailed,
                   fmt::format("sbatch printed no job id: {}", Trim(KeepHeadTailLines(output, 10))));
}

std::vector<QueuedTask> ParseSqueue(const std::string& output) {
  std::vector<QueuedTask> out;
  for (const auto& raw : SplitLines(output)) {
    std::string line = Trim(raw);
    size_t a = line.find('|');
    size_t b = a == std::string::npos ? std::string::npos : line.find('|', a + 1);
    if (b == std::string::npos) continue;
    QueuedTask t;
    t.job_id = Trim(line.substr(0, a));
    std::string task = Trim(line.substr(a + 1, b - a - 1));
    size_t c = line.find('|', b + 1);
    t.state = Trim(line.substr(b + 1, c == std::string::npos ? std::string::npos : c - b - 1));
    if (c != std::string::npos) t.reason = Trim(line.substr(c + 1));
    if (t.reason == "None") t.reason.clear();
    if (t.job_id.empty() || t.job_id.find_first_not_of("0123456789") != std::string::npos) continue;
    if (!task.empty() && task.find_first_not_of("0123456789") == std::string::npos) t.task = std::stoi(task);
    out.push_back(std::move(t));
  }
  return out;
}

fs::path FindOnPath(const std::string& name, const std::string& path_variable) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? fs::path(name) : fs::path();
  std::string dirs = path_variable;
  std::replace(dirs.begin(), dirs.end(), ':', '\n');
  for (const auto& dir : SplitLines(dirs)) {
    if (dir.empty()) continue;
    fs::path candidate = fs::path(dir) / name;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec) && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

namespace {

bool ControllerUnreachable(const std::string& output) {
  std::string o = ToLower(output);
  for (const char* sign : {"unable to contact slurm controller", "connect failure", "connection refused",
                           "socket timed out", "communication connection failure", "munge"}) {
    if (Contains(o, sign)) return true;
  }
  return false;
}

}  // namespace

std::string SlurmClient::Run(const std::string& command, const std::vector<std::string>& args) const {
  auto path_it = env_.find("PATH");
  fs::path exe = FindOnPath(command, path_it == env_.end() ? "/usr/bin:/bin" : path_it->second);
  if (exe.empty()) {
    throw SlurmError(SlurmError::Kind::kNotInstalled,
                     fmt::format("{} is not on PATH: --slurm needs Slurm's client commands (sbatch, squeue; Debian "
                                 "package slurm-client) on this host, configured for the cluster",
                                 command));
  }
  ProcessSpec spec;
  spec.argv = {exe.string()};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = env_;
  spec.timeout_s = 120;
  ProcessResult r = RunProcess(spec);
  std::string shown = Trim(KeepHeadTailLines(r.output, 20));
  if (r.spawn_failed) {
    throw SlurmError(SlurmError::Kind::kNotInstalled, fmt::format("cannot run {}: {}", exe.string(), shown));
  }
  if (r.timed_out || r.cancelled || r.term_signal != 0 || r.exit_code != 0) {
    std::string how = r.timed_out     ? "did not answer within 120 s"
                      : r.cancelled   ? "was interrupted"
                      : r.term_signal ? "was killed by " + SignalName(r.term_signal)
                                      : fmt::format("failed (exit {})", r.exit_code);
    std::string message = fmt::format("{} {}: {}", command, how, shown.empty() ? "(no output)" : shown);
    if (r.timed_out || ControllerUnreachable(r.output)) throw SlurmError(SlurmError::Kind::kUnreachable, message);
    throw SlurmError(command == "sbatch" ? SlurmError::Kind::kRefused : SlurmError::Kind::kFailed, message);
  }
  return r.output;
}

std::string SlurmClient::Submit(const SbatchRequest& request) const {
  return ParseSbatchJobId(Run("sbatch", SbatchArgv(request)));
}

std::vector<QueuedTask> SlurmClient::Queue(const std::vector<std::string>& job_ids) const {
  if (job_ids.empty()) return {};
  // --me rather than --jobs: squeue fails on a list of ids that are all purged already.
  std::string output = Run("squeue", {"--me", "--noheader", "--array", "--format=%F|%K|%T|%r"});
  std::vector<QueuedTask> mine;
  for (auto& t : ParseSqueue(output)) {
    if (std::find(job_ids.begin(), job_ids.end(), t.job_id) != job_ids.end()) mine.push_back(std::move(t));
  }
  return mine;
}

}  // namespace kbrun::batch
