// Running a child under supervision (util/subprocess.h). Over 400 lines for a reason: the
// sandbox's setup in the child (namespaces, mounts, capabilities), its memory cgroup and the
// supervising loop act on one child between fork and exec and share its plan and the rules of
// that window (async-signal-safe calls only); the sandbox's parts are the first to split out.
#include "util/subprocess.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "util/fs.h"
#include "util/pid_namespace.h"
#include "util/text.h"

#ifndef SYS_open_tree
#define SYS_open_tree 428  // the same number on every architecture (Linux 5.2)
#define SYS_move_mount 429
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#define MOVE_MOUNT_F_EMPTY_PATH 0x4
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442  // the same number on every architecture (Linux 5.12)
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif

extern char** environ;

namespace kbrun {
namespace {

std::atomic<bool> g_cancel{false};

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

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

// Unshares `flags`; where that needs privileges we lack, inside a user namespace that maps
// our own ids (the network namespace alone works so on most distributions).
bool UnshareNamespaces(int flags) {
  if (unshare(flags) == 0) return true;
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWUSER | flags) != 0) return false;
  char map[64];
  WriteProcFile("/proc/self/setgroups", "deny");
  snprintf(map, sizeof map, "%u %u 1\n", static_cast<unsigned>(uid), static_cast<unsigned>(uid));
  WriteProcFile("/proc/self/uid_map", map);
  snprintf(map, sizeof map, "%u %u 1\n", static_cast<unsigned>(gid), static_cast<unsigned>(gid));
  WriteProcFile("/proc/self/gid_map", map);
  return true;
}

// Everything the forked child needs, as C strings made before the fork (no allocation after).
struct ChildPlan {
  const char* cgroup_procs = nullptr;
  unsigned long long max_data_bytes = 0;
  bool sandbox = false;
  bool pid_namespace = true;
  const char* join_pid_namespace = nullptr;
  std::vector<const char*> writable;
  const char* shm_dir = nullptr;
  const char* private_tmp = nullptr;
  std::vector<std::string> node_source, node_staged;  // /dev/<x>, /dev/shm/<x>
  std::vector<char> node_is_dir;
};

struct MountAttr {  // struct mount_attr (linux/mount.h, not in every libc's headers)
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};

bool SetReadOnly(const char* path, bool read_only) {
  MountAttr attr{};
  (read_only ? attr.attr_set : attr.attr_clr) = MOUNT_ATTR_RDONLY;
  return syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof attr) == 0;
}

// "<dir>/<name>" into out (size PATH_MAX), without allocating; false when it does not fit.
bool JoinPath(char* out, const char* dir, const char* name) {
  size_t n = 0;
  for (const char* part : {dir, "/", name}) {
    for (; *part; ++part) {
      if (n + 1 >= PATH_MAX) return false;
      out[n++] = *part;
    }
  }
  out[n] = '\0';
  return true;
}

// ProcessSpec::private_tmp: `dir` is bound on /tmp, then each entry of the machine's /tmp (a
// clone of it, attached for the moment at /tmp/.kbrun-host-tmp) is bound back over a stand-in of
// its kind; a symlink is copied. The clone keeps each mount's flags: the machine's entries stay
// read-only, writable paths under /tmp stay writable. Async-signal-safe calls only.
void CoverTmp(const char* dir) {
  static const char kHost[] = "/tmp/.kbrun-host-tmp";
  int host = static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, "/tmp", OPEN_TREE_CLONE | AT_RECURSIVE | O_CLOEXEC));
  if (host < 0) return;
  if (mount(dir, "/tmp", nullptr, MS_BIND, nullptr) != 0) {
    close(host);
    return;
  }
  SetReadOnly("/tmp", false);
  mkdir(kHost, 0700);
  int entries = -1;
  if (syscall(SYS_move_mount, host, "", AT_FDCWD, kHost, MOVE_MOUNT_F_EMPTY_PATH) == 0) {
    entries = open(kHost, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  close(host);
  alignas(8) char buf[8192];
  char src[PATH_MAX], dst[PATH_MAX], target[PATH_MAX];
  long n = 0;
  while (entries >= 0 && (n = syscall(SYS_getdents64, entries, buf, sizeof buf)) > 0) {
    for (long off = 0; off < n;) {
      struct Dirent64 {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[1];
      };
      const auto* d = reinterpret_cast<const Dirent64*>(buf + off);
      off += d->reclen;
      const char* name = d->name;
      if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, kHost + 5)) continue;
      if (!JoinPath(src, kHost, name) || !JoinPath(dst, "/tmp", name)) continue;
      struct stat st {};
      if (fstatat(entries, name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (S_ISLNK(st.st_mode)) {
        ssize_t len = readlinkat(entries, name, target, sizeof target - 1);
        if (len >= 0) {
          target[len] = '\0';
          int ignored = symlink(target, dst);
          (void)ignored;
        }
        continue;
      }
      if (S_ISDIR(st.st_mode)) {
        mkdir(dst, 0755);
      } else {
        int fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        if (fd >= 0) close(fd);
      }
      mount(src, dst, nullptr, MS_BIND | MS_REC, nullptr);
    }
  }
  if (entries >= 0) close(entries);
  umount2(kHost, MNT_DETACH);
  rmdir(kHost);
}

// In the sandbox's init (pid 1 of the new PID namespace, in the new mount namespace):
// a /dev of its own, the filesystem read-only but for the writable paths, a fresh /proc
// and /dev/shm. Async-signal-safe calls only. A part that fails is left out.
void SealFilesystem(const ChildPlan& plan) {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return;
  // The shared /dev/shm folder, taken (as a detached bind) before the new /dev hides the
  // machine's /dev/shm and before the view turns read-only.
  int shm_tree =
      plan.shm_dir
          ? static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, plan.shm_dir, OPEN_TREE_CLONE | AT_RECURSIVE | O_CLOEXEC))
          : -1;
  // The new /dev is built in a tmpfs on /dev/shm (a directory that exists and that we
  // may cover), then moved over /dev.
  if (!plan.node_source.empty() &&
      mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=1m") == 0) {
    for (size_t i = 0; i < plan.node_source.size(); ++i) {
      const char* staged = plan.node_staged[i].c_str();
      if (plan.node_is_dir[i]) {
        mkdir(staged, 0755);
      } else {
        int fd = open(staged, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        if (fd >= 0) close(fd);
      }
      mount(plan.node_source[i].c_str(), staged, nullptr, MS_BIND | MS_REC, nullptr);
    }
    int ignored = symlink("/proc/self/fd", "/dev/shm/fd");
    ignored |= symlink("/proc/self/fd/0", "/dev/shm/stdin");
    ignored |= symlink("/proc/self/fd/1", "/dev/shm/stdout");
    ignored |= symlink("/proc/self/fd/2", "/dev/shm/stderr");
    (void)ignored;
    mkdir("/dev/shm/shm", 01777);
    if (mount("/dev/shm", "/dev", nullptr, MS_MOVE, nullptr) != 0) umount2("/dev/shm", MNT_DETACH);
  }
  for (const char* path : plan.writable) mount(path, path, nullptr, MS_BIND | MS_REC, nullptr);
  if (SetReadOnly("/", true)) {
    bool all_writable = true;
    for (const char* path : plan.writable) all_writable = SetReadOnly(path, false) && all_writable;
    // A private directory the run cannot write would fail every run: rather no read-only view.
    if (!all_writable) SetReadOnly("/", false);
  }
  if (plan.private_tmp) CoverTmp(plan.private_tmp);
  // /proc stays writable where a process writes its own entries: NVIDIA's driver fails
  // cuInit (304) under a read-only /proc (seen on an H200). Its system-wide files are not.
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) SetReadOnly("/proc", false);
  for (const char* path : {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"}) {
    if (access(path, F_OK) == 0 && mount(path, path, nullptr, MS_BIND | MS_REC, nullptr) == 0) SetReadOnly(path, true);
  }
  if (shm_tree >= 0) {
    syscall(SYS_move_mount, shm_tree, "", AT_FDCWD, "/dev/shm", MOVE_MOUNT_F_EMPTY_PATH);
    close(shm_tree);
  } else {
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  }
}

// Root in the sandbox keeps uid 0 but no capabilities: it cannot remount, mount, leave its
// cgroup or load modules, and the read-only view holds. (Non-root: nothing to drop.)
void DropCapabilities() {
  for (int cap = 0; cap <= 63; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL) break;
  }
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  syscall(SYS_capset, &header, data);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

// The outer process (outside the namespace, the pid the supervisor knows) ends as its
// worker ended: the same exit code, or the same signal.
[[noreturn]] void EndAs(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, nullptr);
    kill(getpid(), sig);
  }
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0));
}

// The sandbox's init without a PID namespace: kills and reaps every child it has (what the
// worker left behind was reparented to it, a subreaper) until it has none. An orphan can be
// reparented here after a look at the list, so nothing waits for a child it has not killed.
void KillChildren() {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/self/task/%d/children", static_cast<int>(getpid()));
  for (int round = 0; round < 20000; ++round) {  // 20 s at most
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    buf[n > 0 ? n : 0] = 0;
    for (char* p = buf; *p;) {
      long pid = strtol(p, &p, 10);
      if (pid > 0) kill(static_cast<pid_t>(pid), SIGKILL);
      while (*p == ' ' || *p == '\n') ++p;
    }
    pid_t reaped;
    while ((reaped = waitpid(-1, nullptr, WNOHANG)) > 0) {}
    if (reaped < 0 && errno == ECHILD) return;  // no child left, living or dead
    usleep(1000);
  }
}

// After unshare(CLONE_NEWPID): forks the namespace's init, which seals the filesystem and
// forks the worker (pid 2) and returns in it. The init reaps whatever is reparented to it
// and exits when the worker does, which kills every process left in the namespace; the
// outer process waits for the init and ends as the worker ended. Returns only in the worker.
void BecomeSandboxedWorker(const ChildPlan& plan) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return;
  // Above 0-4, which the outer process and the init close (with fds 3 or 4 unused the pipe
  // would get those numbers).
  int report[2] = {fcntl(pipe_fds[0], F_DUPFD_CLOEXEC, 64), fcntl(pipe_fds[1], F_DUPFD_CLOEXEC, 64)};
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  if (report[0] < 0 || report[1] < 0) return;
  pid_t init = fork();
  if (init < 0) return;  // no sandbox: the caller runs the worker itself
  if (init > 0) {
    close(report[1]);
    for (int fd = 0; fd <= 4; ++fd) close(fd);  // the worker's ends are the worker's alone
    int status = 0;
    while (waitpid(init, &status, 0) < 0 && errno == EINTR) {}
    int worker_status = 0;
    if (read(report[0], &worker_status, sizeof worker_status) == sizeof worker_status) status = worker_status;
    EndAs(status);
  }
  close(report[0]);
  prctl(PR_SET_NAME, "kbrun-sandbox", 0, 0, 0);  // /proc/1/comm: how the worker knows its init
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  // Without a PID namespace, orphans (a double-forked daemon) are reparented here, not to
  // the machine's init, and are killed below when the worker ends.
  if (!plan.pid_namespace) prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  SealFilesystem(plan);
  pid_t worker = fork();
  if (worker < 0) _exit(126);
  if (worker == 0) {
    close(report[1]);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    setsid();
    DropCapabilities();
    return;
  }
  for (int fd = 0; fd <= 4; ++fd) close(fd);
  int status = 0;
  while (true) {
    pid_t ended = waitpid(-1, &status, 0);
    if (ended == worker) break;
    if (ended < 0 && errno != EINTR) _exit(126);
  }
  ssize_t ignored = write(report[1], &status, sizeof status);
  (void)ignored;
  if (!plan.pid_namespace) KillChildren();
  _exit(0);
}

[[noreturn]] void ExecChild(const ProcessSpec& spec, const ChildPlan& plan, int out_fd, int progress_fd,
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
  if (plan.max_data_bytes) SetLimit(RLIMIT_DATA, plan.max_data_bytes);
  if (plan.cgroup_procs) WriteProcFile(plan.cgroup_procs, "0");  // it and all it starts
  signal(SIGPIPE, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  // Joined before the init is forked: the init, the child and all they start are in it.
  if (plan.sandbox && plan.join_pid_namespace) {
    int ns = open(plan.join_pid_namespace, O_RDONLY | O_CLOEXEC);
    if (ns >= 0) {
      if (setns(ns, CLONE_NEWPID) != 0) {
        static const char kMessage[] = "kbrun: cannot join the run's PID namespace\n";
        ssize_t ignored = write(2, kMessage, sizeof kMessage - 1);
        (void)ignored;
      }
      close(ns);
    }
  }
  if (plan.sandbox && UnshareNamespaces((plan.pid_namespace ? CLONE_NEWPID : 0) | CLONE_NEWNS |
                                        (spec.isolate_network ? CLONE_NEWNET : 0))) {
    if (spec.isolate_network && spec.loopback_up) LoopbackUp();
    BecomeSandboxedWorker(plan);
  } else if (spec.isolate_network) {
    IsolateNetwork(spec.loopback_up);
  }
  if (!spec.cwd.empty() && chdir(spec.cwd.c_str()) != 0) _exit(126);
  // execvpe resolves argv[0] with the child's PATH.
  execvpe(argv[0], argv.data(), envp.data());
  dprintf(2, "kbrun: cannot execute %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

// --- Memory cap: a cgroup per child -------------------------------------------------

// Writes `text` into a cgroup (or any kernel) file; false on failure.
bool WriteKernelFile(const fs::path& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

// The value after `key` in a "key value" file (memory.events, memory.oom_control).
unsigned long long KeyedValue(const fs::path& file, const std::string& key) {
  for (const auto& line : SplitLines(ReadFile(file).value_or(""))) {
    if (StartsWith(line, key + " ")) return std::strtoull(line.c_str() + key.size() + 1, nullptr, 10);
  }
  return 0;
}

// The folder kbrun makes its children's memory cgroups in: <hierarchy>/kbrun-<pid>, made
// once per process. Version 0: no cgroup can be made (not root, no delegation).
struct CgroupRoot {
  int version = 0;
  fs::path dir;
};

const CgroupRoot& MemoryCgroupRoot() {
  static const CgroupRoot root = [] {
    // Where each hierarchy is mounted (mountinfo: ... mountpoint ... - fstype source options).
    std::string v2_mount, v1_mount;
    for (const auto& line : SplitLines(ReadFile("/proc/self/mountinfo").value_or(""))) {
      std::vector<std::string> fields;
      std::istringstream words(line);
      for (std::string w; words >> w;) fields.push_back(w);
      auto dash = std::find(fields.begin(), fields.end(), "-");
      if (fields.size() < 5 || dash == fields.end() || dash + 3 > fields.end()) continue;
      const std::string& type = *(dash + 1);
      if (type == "cgroup2" && v2_mount.empty()) v2_mount = fields[4];
      if (type == "cgroup" && ("," + *(dash + 3) + ",").find(",memory,") != std::string::npos) v1_mount = fields[4];
    }
    std::string v2_own, v1_own;
    for (const auto& line : SplitLines(ReadFile("/proc/self/cgroup").value_or(""))) {
      if (StartsWith(line, "0::")) v2_own = line.substr(3);
      auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
      if (c1 != std::string::npos && c2 != std::string::npos &&
          ("," + line.substr(c1 + 1, c2 - c1 - 1) + ",").find(",memory,") != std::string::npos) {
        v1_own = line.substr(c2 + 1);
      }
    }
    const std::string name = fmt::format("kbrun-{}", getpid());
    std::error_code ec;
    if (!v2_mount.empty()) {
      for (const fs::path& parent : {fs::path(v2_mount), fs::path(v2_mount + v2_own)}) {
        fs::path dir = parent / name;
        WriteKernelFile(parent / "cgroup.subtree_control", "+memory");
        if (!fs::create_directory(dir, ec) && !fs::is_directory(dir)) continue;
        // Our folder has no processes, so it may hand the memory controller to its children.
        if (WriteKernelFile(dir / "cgroup.subtree_control", "+memory")) return CgroupRoot{2, dir};
        fs::remove(dir, ec);
      }
    }
    if (!v1_mount.empty()) {
      for (const fs::path& parent : {fs::path(v1_mount + v1_own), fs::path(v1_mount)}) {
        fs::path dir = parent / name;
        if (!fs::create_directory(dir, ec) && !fs::is_directory(dir)) continue;
        if (fs::exists(dir / "memory.limit_in_bytes")) return CgroupRoot{1, dir};
        fs::remove(dir, ec);
      }
    }
    return CgroupRoot{};
  }();
  static std::once_flag cleanup;
  if (root.version) std::call_once(cleanup, [] { std::atexit([] { rmdir(MemoryCgroupRoot().dir.c_str()); }); });
  return root;
}

// One child's memory cgroup, removed (after killing whatever is left in it) on destruction.
class MemoryCgroup {
 public:
  // nullopt where no cgroup can be made.
  static std::unique_ptr<MemoryCgroup> Make(unsigned long long limit) {
    const CgroupRoot& root = MemoryCgroupRoot();
    if (!root.version) return nullptr;
    static std::atomic<int> serial{0};
    auto cg = std::unique_ptr<MemoryCgroup>(new MemoryCgroup);
    cg->version_ = root.version;
    cg->dir_ = root.dir / fmt::format("run-{}", ++serial);
    std::error_code ec;
    if (!fs::create_directory(cg->dir_, ec)) return nullptr;
    bool ok;
    if (root.version == 2) {
      ok = WriteKernelFile(cg->dir_ / "memory.max", std::to_string(limit));
      WriteKernelFile(cg->dir_ / "memory.swap.max", "0");
      WriteKernelFile(cg->dir_ / "memory.oom.group", "1");  // an OOM kill takes the whole run
    } else {
      ok = WriteKernelFile(cg->dir_ / "memory.limit_in_bytes", std::to_string(limit));
      WriteKernelFile(cg->dir_ / "memory.memsw.limit_in_bytes", std::to_string(limit));  // no swap either
    }
    if (!ok) {
      fs::remove(cg->dir_, ec);
      return nullptr;
    }
    return cg;
  }
  ~MemoryCgroup() {
    // With the PID-namespace sandbox nothing is left; without it, whatever escaped the
    // process group still dies here.
    for (int attempt = 0; attempt < 200; ++attempt) {
      auto pids = SplitLines(ReadFile(dir_ / "cgroup.procs").value_or(""));
      if (pids.empty() && rmdir(dir_.c_str()) == 0) return;
      for (const auto& pid : pids) {
        if (int p = std::atoi(pid.c_str()); p > 0) kill(p, SIGKILL);
      }
      usleep(10000);
    }
  }
  std::string procs() const { return (dir_ / "cgroup.procs").string(); }
  std::string method() const { return version_ == 2 ? "cgroup_v2" : "cgroup_v1"; }
  bool OomKilled() const {
    return version_ == 2 ? KeyedValue(dir_ / "memory.events", "oom_kill") > 0
                         : KeyedValue(dir_ / "memory.oom_control", "oom_kill") > 0;
  }
  unsigned long long Peak() const {
    auto text = ReadFile(dir_ / (version_ == 2 ? "memory.peak" : "memory.max_usage_in_bytes"));
    return text ? std::strtoull(text->c_str(), nullptr, 10) : 0;
  }

 private:
  MemoryCgroup() = default;
  int version_ = 0;
  fs::path dir_;
};

// The ends of children that RunProcess stopped waiting for: each is reaped (or its starter's
// report read to EOF) and its cgroup removed in a thread of its own. The static instance waits
// for them at exit, so that no cgroup is left behind.
class EarlyEndedChildren {
 public:
  static EarlyEndedChildren& Get() {
    static EarlyEndedChildren instance;
    return instance;
  }
  ~EarlyEndedChildren() { Wait(30); }
  void Adopt(pid_t pid, int status_fd, std::unique_ptr<MemoryCgroup> cgroup, std::shared_ptr<void> keep) {
    std::lock_guard<std::mutex> lock(mu_);
    ++pending_;
    std::thread([this, pid, status_fd, cg = std::move(cgroup), keep = std::move(keep)]() mutable {
      if (status_fd >= 0) {  // a starter's child: the starter reaps it and reports, then closes
        fcntl(status_fd, F_SETFL, 0);
        char buf[256];
        struct pollfd p = {status_fd, POLLIN, 0};
        while (poll(&p, 1, 60000) > 0 && read(status_fd, buf, sizeof buf) > 0) {}
        close(status_fd);
      } else {
        while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {}
      }
      cg.reset();  // kills what is left in it and removes it
      keep.reset();
      std::lock_guard<std::mutex> ended(mu_);
      if (--pending_ == 0) done_.notify_all();
    }).detach();
  }
  void Wait(double timeout_s) {
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait_for(lock, std::chrono::duration<double>(timeout_s), [this] { return pending_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable done_;
  int pending_ = 0;
};

}  // namespace

void WaitForEarlyEndedChildren(double timeout_s) { EarlyEndedChildren::Get().Wait(timeout_s); }

std::string MemoryCapMethod() {
  int version = MemoryCgroupRoot().version;
  return version == 2 ? "cgroup_v2" : version == 1 ? "cgroup_v1" : "rlimit_data";
}

std::vector<ChildSetup::Node> SandboxDevNodes() {
  static const std::vector<ChildSetup::Node> nodes = [] {
    std::vector<ChildSetup::Node> found;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/dev", ec)) {
      std::string name = entry.path().filename().string();
      bool gpu = StartsWith(name, "nvidia") || name == "kfd" || name == "dri";
      bool basic =
          name == "null" || name == "zero" || name == "full" || name == "random" || name == "urandom" || name == "tty";
      if (!gpu && !basic) continue;
      std::error_code e2;
      auto st = fs::symlink_status(entry.path(), e2);
      if (fs::is_directory(st))
        found.push_back({name, true});
      else if (fs::is_character_file(st))
        found.push_back({name, false});
    }
    return found;
  }();
  return nodes;
}

SandboxReport ProbeSandbox() {
  static const SandboxReport report = [] {
    SandboxReport r;
    std::error_code ec;
    fs::path writable = MakeUniqueDir(fs::temp_directory_path(), "kbrun-sandbox-probe-");
    fs::path outside = writable.string() + "-outside";
    std::string shm_marker = fmt::format("/dev/shm/kbrun-sandbox-probe-{}", getpid());
    {
      int fd = open(shm_marker.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
      if (fd >= 0) close(fd);
    }
    ProcessSpec spec;
    spec.argv = {"/bin/sh",
                 "-c",
                 "echo pid=$$; echo init=$(cat /proc/1/comm); echo procs=$(ls /proc | grep -c '^[0-9]'); "
                 "touch \"$1\" 2>/dev/null && echo outside_written; touch \"$2/x\" && echo inside_written; "
                 "test -e \"$3\" && echo host_shm; echo dev=$(ls /dev | tr '\\n' ' ')",
                 "probe",
                 outside.string(),
                 writable.string(),
                 shm_marker};
    spec.env = {{"PATH", "/usr/bin:/bin"}};
    spec.timeout_s = 30;
    spec.sandbox = true;
    spec.isolate_network = true;
    spec.writable_paths = {writable.string()};
    ProcessResult p = RunProcess(spec);
    std::string out = p.output;
    bool outside_written = Contains(out, "outside_written");
    bool inside_written = Contains(out, "inside_written");
    r.pid_namespace = Contains(out, "pid=2\n") && Contains(out, "init=kbrun-sandbox") && Contains(out, "procs=");
    r.read_only_root = !outside_written && inside_written;
    r.private_shm = !Contains(out, "host_shm") && p.exit_code == 0;
    r.minimal_dev = Contains(out, "dev=") && !Contains(out, " sda") && !Contains(out, " mem ") &&
                    Contains(out, "null") && !Contains(out, " loop0");
    // Joining a shared namespace: the child finds that namespace's init as pid 1.
    if (auto shared = SharedPidNamespace::Start()) {
      spec.pid_namespace = false;
      spec.join_pid_namespace = shared->path();
      std::string joined = RunProcess(spec).output;
      r.shared_pid_namespace = Contains(joined, "init=kbrun-pidns") && !Contains(joined, "pid=2\n");
      if (!r.shared_pid_namespace) out += "\nshared PID namespace: " + joined;
    }
    if (!(r.pid_namespace && r.read_only_root && r.private_shm && r.shared_pid_namespace)) {
      r.note = Trim(out).substr(0, 600);
    }
    fs::remove(outside, ec);
    fs::remove_all(writable, ec);
    fs::remove(shm_marker, ec);
    return r;
  }();
  return report;
}

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

  // The memory cap and the sandbox's parts, prepared before the fork.
  ChildSetup setup;
  std::unique_ptr<MemoryCgroup> cgroup;
  if (spec.limits.max_memory_bytes) {
    cgroup = MemoryCgroup::Make(spec.limits.max_memory_bytes);
    if (cgroup)
      setup.cgroup_procs = cgroup->procs();
    else
      setup.max_data_bytes = spec.limits.max_memory_bytes;
    result.memory_cap_method = cgroup ? cgroup->method() : "rlimit_data";
  } else {
    result.memory_cap_method = "none";
  }
  ChildPlan plan;
  plan.max_data_bytes = setup.max_data_bytes;
  plan.cgroup_procs = cgroup ? setup.cgroup_procs.c_str() : nullptr;
  plan.sandbox = spec.sandbox;
  plan.pid_namespace = spec.pid_namespace && spec.join_pid_namespace.empty();
  if (spec.sandbox) {
    if (!spec.join_pid_namespace.empty()) plan.join_pid_namespace = spec.join_pid_namespace.c_str();
    for (const auto& path : spec.writable_paths) plan.writable.push_back(path.c_str());
    if (!spec.shm_dir.empty()) plan.shm_dir = spec.shm_dir.c_str();
    if (!spec.private_tmp.empty()) plan.private_tmp = spec.private_tmp.c_str();
    struct stat shm;
    if (lstat("/dev/shm", &shm) == 0 && S_ISDIR(shm.st_mode)) setup.dev_nodes = SandboxDevNodes();
    for (const auto& node : setup.dev_nodes) {
      plan.node_source.push_back("/dev/" + node.name);
      plan.node_staged.push_back("/dev/shm/" + node.name);
      plan.node_is_dir.push_back(node.dir);
    }
  }

  auto start = Clock::now();
  std::optional<StartedChild> started;
  if (spec.starter) started = spec.starter(spec, setup, out_pipe[1], want_progress ? prog_pipe[1] : -1);
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
    ExecChild(spec, plan, out_pipe[1], want_progress ? prog_pipe[1] : -1, argv, envp);
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
      if (n > 0) {
        status_text.append(sbuf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
      // EOF: the report is complete, or the starter died without one.
      close(status_fd);
      status_fd = -1;
      break;
    }
    int st = 0;
    double cpu = 0;
    if (auto p = status_text.find("exit "); p != std::string::npos && status_text.find('\n', p) != std::string::npos &&
                                            sscanf(status_text.c_str() + p, "exit %d %lf", &st, &cpu) == 2) {
      status = st;
      result.cpu_s = cpu;
      return true;
    }
    if (status_fd < 0) result.exit_status_lost = true;
    return false;
  };

  // Seconds of spec.clocks_paused, measured between turns of the loop (at most 50 ms apart).
  Clock::time_point last_turn = start;
  auto clock_s = [&] { return SecondsSince(start) - result.paused_s; };
  while (true) {
    {
      Clock::time_point now = Clock::now();
      if (spec.clocks_paused && spec.clocks_paused())
        result.paused_s += std::chrono::duration<double>(now - last_turn).count();
      last_turn = now;
    }
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
    double elapsed = clock_s();
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
    if (out_open) {
      fds[nfds] = {out_pipe[0], POLLIN, 0};
      out_idx = nfds++;
    }
    if (prog_open) {
      fds[nfds] = {prog_pipe[0], POLLIN, 0};
      prog_idx = nfds++;
    }
    if (nfds == 0) {
      // Only waiting for the exit now.
      if (!child_done) usleep(10000);
      continue;
    }
    int pr = poll(fds, nfds, 50);
    if (pr < 0 && errno != EINTR) break;
    if (out_idx >= 0 && (fds[out_idx].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(out_pipe[0], buf, sizeof buf);
      if (n > 0)
        output.Append(buf, static_cast<size_t>(n));
      else if (n == 0 || (errno != EAGAIN && errno != EINTR))
        out_open = false;
    }
    if (prog_idx >= 0 && (fds[prog_idx].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(prog_pipe[0], buf, sizeof buf);
      if (n > 0) {
        progress_partial.append(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = progress_partial.find('\n')) != std::string::npos) {
          // What reaches JSON and logs: valid UTF-8, secrets removed.
          std::string line = RedactValues(ValidUtf8(progress_partial.substr(0, nl)), spec.redact);
          progress_partial.erase(0, nl + 1);
          if (auto next = spec.on_progress(line)) {
            deadline = *next > 0 ? clock_s() + *next : -1;
          }
        }
        if (progress_partial.size() > (4u << 20)) progress_partial.clear();  // no line that long is ours
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        prog_open = false;
      }
    }
    if (!child_done && spec.ended_early_when && spec.ended_early_when()) {
      result.ended_early = true;
      break;
    }
    // After the child exited and its group was killed, pipes close promptly;
    // a descendant that escaped the group could hold them: stop waiting after 2 s.
    if (child_done && SecondsSince(child_done_at) > 2.0) out_open = prog_open = false;
  }
  if (result.ended_early) kill_group();
  close(out_pipe[0]);
  if (want_progress) close(prog_pipe[0]);
  // After an early end the status pipe goes to the background wait.
  if (status_fd >= 0 && !result.ended_early) close(status_fd);

  result.wall_s = clock_s();
  if (result.exit_status_lost || result.ended_early) {  // ended early: its end is not awaited
    result.exit_code = -1;
  } else if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
    if (result.exit_code == 127 && output.total() < 512) result.spawn_failed = true;
  } else if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
  }
  result.output = RedactValues(ValidUtf8(output.Str(&result.output_truncated)), spec.redact);
  result.output_total_bytes = output.total();
  if (cgroup) {
    result.out_of_memory = cgroup->OomKilled();
    result.memory_peak_bytes = cgroup->Peak();
  }
  if (result.ended_early) {
    // Started by a starter: it reaps the child and reports on status_fd; else it is ours to reap.
    EarlyEndedChildren::Get().Adopt(pid, started ? status_fd : -1, std::move(cgroup), spec.keep_until_ended);
  } else {
    cgroup.reset();  // kills what is left in it and removes it
  }
  return result;
}

}  // namespace kbrun
