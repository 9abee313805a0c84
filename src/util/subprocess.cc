#include "util/subprocess.h"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

extern char** environ;

namespace kbrun {
namespace {

std::atomic<bool> g_cancel{false};

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Keeps the first `head` and last `tail` bytes of a stream of any size.
class CappedBuffer {
 public:
  CappedBuffer(size_t head, size_t tail) : head_cap_(head), tail_cap_(tail) {}
  void Append(const char* data, size_t n) {
    total_ += n;
    size_t to_head = std::min(n, head_cap_ - head_.size());
    head_.append(data, to_head);
    data += to_head;
    n -= to_head;
    if (n == 0 || tail_cap_ == 0) return;
    tail_.append(data, n);
    if (tail_.size() > 2 * tail_cap_) tail_.erase(0, tail_.size() - tail_cap_);
  }
  std::string Str(bool* truncated) const {
    std::string tail = tail_;
    if (tail.size() > tail_cap_) tail.erase(0, tail.size() - tail_cap_);
    size_t omitted = total_ - head_.size() - tail.size();
    *truncated = omitted > 0;
    if (omitted == 0) return head_ + tail;
    return head_ + fmt::format("\n[... {} bytes omitted ...]\n", omitted) + tail;
  }
  size_t total() const { return total_; }

 private:
  size_t head_cap_, tail_cap_, total_ = 0;
  std::string head_, tail_;
};

void SetLimit(int resource, unsigned long long value) {
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = static_cast<rlim_t>(value);
  setrlimit(resource, &rl);
}

// In the forked child, before exec: async-signal-safe calls only.
void WriteProcFile(const char* path, const char* text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t ignored = write(fd, text, strlen(text));
  (void)ignored;
  close(fd);
}

// Sets IFF_UP on "lo" in the current (new) network namespace: socket and ioctl only.
void LoopbackUp() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, "lo", 3);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  close(s);
}

void IsolateNetwork(bool loopback_up) {
  if (unshare(CLONE_NEWNET) == 0) {
    if (loopback_up) LoopbackUp();
    return;
  }
  // Not root: a user namespace that maps our own uid lets us create the network namespace.
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) return;
  char map[64];
  WriteProcFile("/proc/self/setgroups", "deny");
  snprintf(map, sizeof map, "%u %u 1\n", static_cast<unsigned>(uid), static_cast<unsigned>(uid));
  WriteProcFile("/proc/self/uid_map", map);
  snprintf(map, sizeof map, "%u %u 1\n", static_cast<unsigned>(gid), static_cast<unsigned>(gid));
  WriteProcFile("/proc/self/gid_map", map);
  if (loopback_up) LoopbackUp();
}

[[noreturn]] void ExecChild(const ProcessSpec& spec, int out_fd, int progress_fd,
                            const std::vector<char*>& argv, const std::vector<char*>& envp) {
  setsid();  // own process group: a timeout kills the whole tree
  // Out of the way of the dup2 calls below, whatever number it has now.
  int channel = spec.channel_fd >= 0 ? fcntl(spec.channel_fd, F_DUPFD, 512) : -1;
  int devnull = open("/dev/null", O_RDONLY);
  dup2(devnull, 0);
  dup2(out_fd, 1);
  dup2(out_fd, 2);
  if (progress_fd >= 0) {
    dup2(progress_fd, 3);
  }
  int first_closed = 4;
  if (channel >= 0) {
    dup2(channel, 4);
    first_closed = 5;
  }
  // Close every other inherited descriptor.
  for (int fd = first_closed; fd < 1024; ++fd) close(fd);
  if (progress_fd < 0) close(3);
  const ResourceLimits& l = spec.limits;
  if (l.no_core_dumps) SetLimit(RLIMIT_CORE, 0);
  if (l.max_file_bytes) SetLimit(RLIMIT_FSIZE, l.max_file_bytes);
  if (l.max_processes) SetLimit(RLIMIT_NPROC, l.max_processes);
  if (l.max_address_space) SetLimit(RLIMIT_AS, l.max_address_space);
  if (l.max_cpu_seconds) SetLimit(RLIMIT_CPU, l.max_cpu_seconds);
  if (spec.isolate_network) IsolateNetwork(spec.loopback_up);
  signal(SIGPIPE, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  if (!spec.cwd.empty() && chdir(spec.cwd.c_str()) != 0) _exit(126);
  // execvpe resolves argv[0] with the child's PATH.
  execvpe(argv[0], argv.data(), envp.data());
  dprintf(2, "kbrun: cannot execute %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

}  // namespace

void RequestCancel() { g_cancel.store(true); }
bool CancelRequested() { return g_cancel.load(); }

std::map<std::string, std::string> CurrentEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", sig);
}

ProcessResult RunProcess(const ProcessSpec& spec) {
  ProcessResult result;
  if (spec.argv.empty()) {
    result.spawn_failed = true;
    result.output = "empty command";
    if (spec.channel_fd >= 0) close(spec.channel_fd);
    return result;
  }
  int out_pipe[2], prog_pipe[2] = {-1, -1};
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    result.spawn_failed = true;
    result.output = fmt::format("pipe: {}", strerror(errno));
    if (spec.channel_fd >= 0) close(spec.channel_fd);
    return result;
  }
  bool want_progress = static_cast<bool>(spec.on_progress);
  if (want_progress && pipe2(prog_pipe, O_CLOEXEC) != 0) want_progress = false;

  // Build argv/envp before fork: no allocation in the child.
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  auto start = Clock::now();
  std::optional<StartedChild> started;
  if (spec.starter) started = spec.starter(spec, out_pipe[1], want_progress ? prog_pipe[1] : -1);
  pid_t pid = started ? started->pid : fork();
  if (pid < 0) {
    result.spawn_failed = true;
    result.output = fmt::format("fork: {}", strerror(errno));
    close(out_pipe[0]);
    close(out_pipe[1]);
    if (spec.channel_fd >= 0) close(spec.channel_fd);
    return result;
  }
  if (pid == 0) {
    // The pipes were made O_CLOEXEC; dup2 clears that flag on the copies.
    ExecChild(spec, out_pipe[1], want_progress ? prog_pipe[1] : -1, argv, envp);
  }
  close(out_pipe[1]);
  if (want_progress) close(prog_pipe[1]);
  if (spec.channel_fd >= 0) close(spec.channel_fd);
  int status_fd = started ? started->status_fd : -1;
  std::string status_text;
  if (status_fd >= 0) fcntl(status_fd, F_SETFL, O_NONBLOCK);
  result.started_by_starter = started.has_value();
  if (started) result.starter_setup_s = started->setup_s;
  fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
  if (want_progress) fcntl(prog_pipe[0], F_SETFL, O_NONBLOCK);

  CappedBuffer output(spec.output_head_bytes, spec.output_tail_bytes);
  std::string progress_partial;
  double deadline = spec.timeout_s > 0 ? spec.timeout_s : -1;  // seconds since start
  bool out_open = true, prog_open = want_progress;
  bool child_done = false;
  Clock::time_point child_done_at;
  int status = 0;
  char buf[65536];

  auto kill_group = [&] {
    kill(-pid, SIGKILL);
    // A started child may not have called setsid() yet; before its end is known its pid is its own.
    if (started && !child_done) kill(pid, SIGKILL);
  };
  // A started child's end comes from its starter: "exit <wait status> <cpu seconds>".
  auto read_status = [&] {
    char sbuf[256];
    while (true) {
      ssize_t n = read(status_fd, sbuf, sizeof sbuf);
      if (n > 0) { status_text.append(sbuf, static_cast<size_t>(n)); continue; }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
      // EOF: the report is complete, or the starter died without one.
      close(status_fd);
      status_fd = -1;
      break;
    }
    int st = 0;
    double cpu = 0;
    if (auto p = status_text.find("exit "); p != std::string::npos &&
        status_text.find('\n', p) != std::string::npos &&
        sscanf(status_text.c_str() + p, "exit %d %lf", &st, &cpu) == 2) {
      status = st;
      result.cpu_s = cpu;
      return true;
    }
    if (status_fd < 0) result.exit_status_lost = true;
    return false;
  };

  while (true) {
    if (!child_done && started) {
      if (status_fd >= 0 && read_status()) {
        child_done = true;
        child_done_at = Clock::now();
        kill_group();
      } else if (result.exit_status_lost && !out_open && !prog_open) {
        // The starter is gone; the closed pipes say the child is too.
        child_done = true;
        child_done_at = Clock::now();
        kill_group();
      }
    } else if (!child_done) {
      struct rusage usage {};
      pid_t w = wait4(pid, &status, WNOHANG, &usage);
      if (w == pid) {
        result.cpu_s = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                       static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
        child_done = true;
        child_done_at = Clock::now();
        // Whatever the child left behind in its group dies with it.
        kill_group();
      }
    }
    if (child_done && !out_open && !prog_open) break;
    double elapsed = SecondsSince(start);
    bool over_deadline = deadline > 0 && elapsed > deadline;
    bool over_hard = spec.hard_timeout_s > 0 && elapsed > spec.hard_timeout_s;
    if (!child_done && (over_deadline || over_hard)) {
      result.timed_out = true;
      kill_group();
    }
    if (!child_done && CancelRequested() && !result.cancelled) {
      result.cancelled = true;
      kill_group();
    }
    struct pollfd fds[2];
    int nfds = 0;
    int out_idx = -1, prog_idx = -1;
    if (out_open) { fds[nfds] = {out_pipe[0], POLLIN, 0}; out_idx = nfds++; }
    if (prog_open) { fds[nfds] = {prog_pipe[0], POLLIN, 0}; prog_idx = nfds++; }
    if (nfds == 0) {
      // Only waiting for the exit now.
      if (!child_done) usleep(10000);
      continue;
    }
    int pr = poll(fds, nfds, 50);
    if (pr < 0 && errno != EINTR) break;
    if (out_idx >= 0 && (fds[out_idx].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(out_pipe[0], buf, sizeof buf);
      if (n > 0) output.Append(buf, static_cast<size_t>(n));
      else if (n == 0 || (errno != EAGAIN && errno != EINTR)) out_open = false;
    }
    if (prog_idx >= 0 && (fds[prog_idx].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(prog_pipe[0], buf, sizeof buf);
      if (n > 0) {
        progress_partial.append(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = progress_partial.find('\n')) != std::string::npos) {
          std::string line = progress_partial.substr(0, nl);
          progress_partial.erase(0, nl + 1);
          if (auto next = spec.on_progress(line)) {
            deadline = *next > 0 ? SecondsSince(start) + *next : -1;
          }
        }
        if (progress_partial.size() > (4u << 20)) progress_partial.clear();  // no line that long is ours
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        prog_open = false;
      }
    }
    // After the child exited and its group was killed, pipes close promptly;
    // a descendant that escaped the group could hold them: stop waiting after 2 s.
    if (child_done && SecondsSince(child_done_at) > 2.0) out_open = prog_open = false;
  }
  close(out_pipe[0]);
  if (want_progress) close(prog_pipe[0]);
  if (status_fd >= 0) close(status_fd);

  result.wall_s = SecondsSince(start);
  if (result.exit_status_lost) {
    result.exit_code = -1;
  } else if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
    if (result.exit_code == 127 && output.total() < 512) result.spawn_failed = true;
  } else if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
  }
  result.output = output.Str(&result.output_truncated);
  result.output_total_bytes = output.total();
  return result;
}

}  // namespace kbrun
