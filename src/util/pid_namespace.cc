#include "util/pid_namespace.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

namespace kbrun {
namespace {

// pid 1 of the namespace: reaps what is reparented to it until it is killed. Not dumpable
// and keeping its capabilities, so no process in the namespace can trace it. Runs in a
// fork of a multi-threaded process: system calls only.
[[noreturn]] void RunInit() {
  prctl(PR_SET_NAME, "kbrun-pidns", 0, 0, 0);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  for (int fd = 0; fd < 1024; ++fd) close(fd);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, nullptr);
  while (true) {
    while (waitpid(-1, nullptr, WNOHANG) > 0) {}
    siginfo_t info;
    sigwaitinfo(&chld, &info);
  }
}

}  // namespace

std::unique_ptr<SharedPidNamespace> SharedPidNamespace::Start() {
  if (geteuid() != 0) return nullptr;
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return nullptr;
  pid_t outer = fork();
  if (outer < 0) {
    close(report[0]);
    close(report[1]);
    return nullptr;
  }
  if (outer == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    pid_t init = unshare(CLONE_NEWPID) == 0 ? fork() : -1;
    if (init == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      RunInit();
    }
    ssize_t ignored = write(report[1], &init, sizeof init);
    (void)ignored;
    if (init < 0) _exit(1);
    for (int fd = 0; fd < 1024; ++fd) close(fd);
    while (waitpid(init, nullptr, 0) < 0 && errno == EINTR) {}
    _exit(0);
  }
  close(report[1]);
  pid_t init = -1;
  ssize_t n;
  do {
    n = read(report[0], &init, sizeof init);
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n != sizeof init || init <= 0) {
    kill(outer, SIGKILL);
    waitpid(outer, nullptr, 0);
    return nullptr;
  }
  return std::unique_ptr<SharedPidNamespace>(new SharedPidNamespace(outer, init));
}

SharedPidNamespace::SharedPidNamespace(int outer, int init)
    : outer_(outer), init_(init), path_(fmt::format("/proc/{}/ns/pid", init)) {}

void SharedPidNamespace::KillAll() const {
  // Its pid cannot be reused while the outer process has not reaped it. When a namespace's
  // init dies, the kernel kills every process in the namespace.
  kill(init_, SIGKILL);
}

SharedPidNamespace::~SharedPidNamespace() {
  KillAll();
  // The outer process reaps the init, which ends once every process of the namespace has
  // been reaped, and then exits: so nothing is left for the host's pid 1 to reap. After 5 s
  // (a process that cannot die), it is killed and the init left to pid 1.
  for (int waited_ms = 0; waitpid(outer_, nullptr, WNOHANG) == 0; waited_ms += 10) {
    if (waited_ms == 5000) {
      kill(outer_, SIGKILL);
      while (waitpid(outer_, nullptr, 0) < 0 && errno == EINTR) {}
      break;
    }
    usleep(10000);
  }
}

}  // namespace kbrun
