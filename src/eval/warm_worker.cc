#include "eval/warm_worker.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "eval/python_env.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::eval {
namespace {

using nlohmann::json;

// Variables that differ from run to run; the rest of the environment picks the server.
const char* const kPerRunEnv[] = {"HOME",
                                  "TMPDIR",
                                  "TORCH_EXTENSIONS_DIR",
                                  "TRITON_HOME",
                                  "TRITON_CACHE_DIR",
                                  "CUDA_VISIBLE_DEVICES",
                                  "HIP_VISIBLE_DEVICES"};
// `import torch` on a busy 2-core machine can take half a minute.
constexpr double kReadyTimeoutS = 180;
constexpr double kPidTimeoutS = 30;
// Servers that die before "ready" this often in a row are not started again.
constexpr int kMaxFailedStarts = 3;

std::mutex g_stats_mu;
WarmWorkerStats g_stats;

void Count(int WarmWorkerStats::*field) {
  std::lock_guard lock(g_stats_mu);
  ++(g_stats.*field);
}

bool NeedsGpu(const std::map<std::string, std::string>& env) {
  for (const char* name : {"CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"}) {
    if (auto it = env.find(name); it != env.end() && !it->second.empty()) return true;
  }
  return false;
}

std::map<std::string, std::string> ServerEnv(const std::map<std::string, std::string>& run_env) {
  auto env = run_env;
  for (const char* name : kPerRunEnv) env.erase(name);
  return env;
}

class Server : public std::enable_shared_from_this<Server> {
 public:
  Server(std::string interpreter, std::map<std::string, std::string> env, fs::path work_root)
      : interpreter_(std::move(interpreter)), env_(std::move(env)), work_root_(std::move(work_root)) {}
  ~Server() {
    if (ctrl_ >= 0) close(ctrl_);
  }

  // Starts the server process; true once it said "ready".
  bool Launch() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return false;
    ctrl_ = sv[0];
    fs::path dir = MakeUniqueDir(work_root_, "zygote-");
    for (const char* sub : {"home", "tmp", "build"}) fs::create_directories(dir / sub);
    ProcessSpec spec;
    spec.argv = {interpreter_, (fs::path(WorkerScriptPath()).parent_path() / "kbrun_zygote.py").string(),
                 "--private-dir", dir.string()};
    spec.env = env_;
    spec.env["HOME"] = (dir / "home").string();
    spec.env["TMPDIR"] = (dir / "tmp").string();
    spec.env["TORCH_EXTENSIONS_DIR"] = (dir / "build").string();
    spec.env["TRITON_HOME"] = (dir / "home").string();
    // No GPU for the server: only its children, after the fork, initialise one.
    spec.env["CUDA_VISIBLE_DEVICES"] = "";
    spec.env["HIP_VISIBLE_DEVICES"] = "";
    spec.cwd = dir.string();
    spec.isolate_network = true;
    spec.channel_fd = sv[1];
    std::weak_ptr<Server> weak = weak_from_this();
    spec.on_progress = [weak](const std::string& line) -> std::optional<double> {
      int pid = 0, gpu = 1;
      double seconds = 0;
      if (auto self = weak.lock(); self && sscanf(line.c_str(), "ready %d %lf gpu=%d", &pid, &seconds, &gpu) >= 1) {
        std::lock_guard lock(self->mu_);
        self->pid_ = pid;
        self->serves_gpu_ = gpu != 0;
        if (!self->serves_gpu_) {
          auto why = line.find(' ', line.find("gpu="));
          self->no_gpu_reason_ = why == std::string::npos ? "" : line.substr(why + 1);
        }
        self->ready_ = true;
        self->cv_.notify_all();
      }
      return std::nullopt;
    };
    // The server lives as long as kbrun: its supervising thread is detached, and kbrun's
    // exit closes the control socket, on which the server kills its children and ends.
    std::thread([self = shared_from_this(), spec = std::move(spec), dir] {
      RunProcess(spec);
      std::error_code ec;
      fs::remove_all(dir, ec);
      std::lock_guard lock(self->mu_);
      self->dead_ = true;
      shutdown(self->ctrl_, SHUT_RDWR);  // senders fail at once instead of waiting
      self->cv_.notify_all();
    }).detach();
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::duration<double>(kReadyTimeoutS), [this] { return ready_ || dead_; });
    return ready_ && !dead_;
  }

  bool Alive() {
    std::lock_guard lock(mu_);
    return ready_ && !dead_;
  }
  int pid() {
    std::lock_guard lock(mu_);
    return dead_ ? -1 : pid_;
  }
  const std::string& interpreter() const { return interpreter_; }
  // False when torch initialised CUDA in the server: its forks could not use a GPU.
  bool ServesGpu() {
    std::lock_guard lock(mu_);
    return serves_gpu_;
  }
  std::string NoGpuReason() {
    std::lock_guard lock(mu_);
    return no_gpu_reason_;
  }
  void Kill() {
    std::lock_guard lock(mu_);
    if (!dead_ && pid_ > 0) kill(pid_, SIGKILL);
  }

  // One run as a fork: nullopt when the server could not start it.
  std::optional<StartedChild> Fork(const ProcessSpec& spec, const ChildSetup& setup, int out_fd, int progress_fd) {
    int st[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, st) != 0) return std::nullopt;
    json dev_nodes = json::array();
    for (const auto& node : setup.dev_nodes) dev_nodes.push_back({node.name, node.dir});
    json req = {{"argv", spec.argv},
                {"env", spec.env},
                {"cwd", spec.cwd},
                {"limits",
                 {{"max_file_bytes", spec.limits.max_file_bytes},
                  {"max_processes", spec.limits.max_processes},
                  {"max_address_space", spec.limits.max_address_space},
                  {"max_cpu_seconds", spec.limits.max_cpu_seconds},
                  {"max_data_bytes", setup.max_data_bytes}}},
                {"cgroup_procs", setup.cgroup_procs},
                {"sandbox", spec.sandbox},
                {"pid_namespace", spec.pid_namespace && spec.join_pid_namespace.empty()},
                {"join_pid_namespace", spec.join_pid_namespace},
                {"writable_paths", spec.writable_paths},
                {"shm_dir", spec.shm_dir},
                {"private_tmp", spec.private_tmp},
                {"dev_nodes", dev_nodes},
                {"isolate_network", spec.isolate_network},
                {"loopback_up", spec.loopback_up},
                {"progress", progress_fd >= 0},
                {"channel", spec.channel_fd >= 0}};
    // Invalid UTF-8 in an inherited variable must not stop the run.
    std::string body = req.dump(-1, ' ', false, json::error_handler_t::replace);
    std::vector<int> fds = {st[1], out_fd};
    if (progress_fd >= 0) fds.push_back(progress_fd);
    if (spec.channel_fd >= 0) fds.push_back(spec.channel_fd);

    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()), 0);
    struct iovec iov = {body.data(), body.size()};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
    ssize_t sent = sendmsg(ctrl_, &msg, MSG_NOSIGNAL);
    close(st[1]);
    if (sent != static_cast<ssize_t>(body.size())) {
      close(st[0]);
      return std::nullopt;
    }
    // "pid N" (or "error ..."), read a byte at a time: what follows belongs to RunProcess.
    std::string line;
    auto start = std::chrono::steady_clock::now();
    while (line.empty() || line.back() != '\n') {
      double left = kPidTimeoutS - std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      struct pollfd p = {st[0], POLLIN, 0};
      if (left <= 0 || poll(&p, 1, static_cast<int>(left * 1000) + 1) <= 0) break;
      char c;
      ssize_t n = read(st[0], &c, 1);
      if (n == 1) {
        line.push_back(c);
      } else if (n == 0 || errno != EINTR) {
        break;
      }
    }
    int pid = 0;
    if (sscanf(line.c_str(), "pid %d", &pid) != 1 || pid <= 0) {
      close(st[0]);
      // No answer at all: a hung server must not fork this run later, beside its cold start.
      if (!StartsWith(line, "error ")) Kill();
      return std::nullopt;
    }
    // The child waits for this before it runs anything: a fork whose pid never reached us
    // (the server died after forking) sees EOF instead and exits, so a run is never doubled
    // by the cold start that replaces it.
    if (send(st[0], "go\n", 3, MSG_NOSIGNAL) != 3) {
      close(st[0]);
      return std::nullopt;
    }
    return StartedChild{pid, st[0]};
  }

 private:
  std::string interpreter_;
  std::map<std::string, std::string> env_;
  fs::path work_root_;
  int ctrl_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false, dead_ = false, serves_gpu_ = true;
  std::string no_gpu_reason_;
  int pid_ = -1;
};

// Servers by interpreter and environment. Never destroyed: detached threads use them
// until kbrun exits.
class Pool {
 public:
  static Pool& Get() {
    static Pool* pool = new Pool;
    return *pool;
  }

  // *setup_s: seconds spent starting a server, or waiting for another thread's start.
  std::shared_ptr<Server> Running(const std::string& interpreter, const std::map<std::string, std::string>& env,
                                  const fs::path& work_root, double* setup_s) {
    auto t0 = std::chrono::steady_clock::now();
    auto since = [t0] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    std::string key = json({interpreter, env}).dump();
    std::unique_lock lock(mu_);
    // One start at a time per key; others wait for it rather than start their own.
    bool waited = false;
    while (starting_.count(key)) {
      waited = true;
      cv_.wait(lock);
    }
    if (waited) *setup_s += since();
    auto it = servers_.find(key);
    if (it != servers_.end() && it->second->Alive()) return it->second;
    if (failed_starts_[key] >= kMaxFailedStarts) return nullptr;
    starting_.insert(key);
    lock.unlock();
    auto server = std::make_shared<Server>(interpreter, env, work_root);
    bool ok = false;
    try {
      ok = server->Launch();
    } catch (const std::exception&) {
      ok = false;
    }
    lock.lock();
    *setup_s += since();
    starting_.erase(key);
    cv_.notify_all();
    if (!ok) {
      ++failed_starts_[key];
      servers_.erase(key);
      return nullptr;
    }
    failed_starts_[key] = 0;
    servers_[key] = server;
    Count(&WarmWorkerStats::servers_started);
    return server;
  }

  int Pid(const std::string& interpreter) {
    std::lock_guard lock(mu_);
    for (auto& [key, server] : servers_) {
      if (server->interpreter() != interpreter) continue;
      if (int pid = server->pid(); pid > 0) return pid;
    }
    return -1;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Server>> servers_;
  std::set<std::string> starting_;
  std::map<std::string, int> failed_starts_;
};

}  // namespace

ChildStarter WarmWorkerStarter(const std::string& interpreter, const fs::path& work_root, bool gpu_runs) {
  return [interpreter, work_root, gpu_runs](const ProcessSpec& spec, const ChildSetup& setup, int out_fd,
                                            int progress_fd) -> std::optional<StartedChild> {
    if (spec.argv.size() < 2 || spec.argv[0] != interpreter || !spec.argv[1].ends_with(".py")) {
      return std::nullopt;
    }
    const bool needs_gpu = NeedsGpu(spec.env);
    if (!gpu_runs && needs_gpu) return std::nullopt;
    auto env = ServerEnv(spec.env);
    // A server that died since its last run is replaced here; one that dies between the
    // check and the fork costs this run a cold start, not a failure.
    double setup_s = 0;
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto server = Pool::Get().Running(interpreter, env, work_root, &setup_s);
      if (!server) break;
      if (needs_gpu && !server->ServesGpu()) {
        static std::once_flag warned;
        std::call_once(warned, [&] {
          fmt::print(stderr, "kbrun: GPU runs start cold: torch initialised CUDA in the warm worker ({})\n",
                     server->NoGpuReason());
        });
        break;
      }
      if (auto child = server->Fork(spec, setup, out_fd, progress_fd)) {
        Count(&WarmWorkerStats::forks);
        child->setup_s = setup_s;
        return child;
      }
      // Give its supervising thread a moment to notice a dead server before retrying.
      for (int i = 0; i < 20 && server->Alive(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    Count(&WarmWorkerStats::cold_fallbacks);
    return std::nullopt;
  };
}

WarmWorkerStats GetWarmWorkerStats() {
  std::lock_guard lock(g_stats_mu);
  return g_stats;
}

int WarmWorkerPid(const std::string& interpreter) { return Pool::Get().Pid(interpreter); }

}  // namespace kbrun::eval
