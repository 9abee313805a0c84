// A PID namespace that several sandboxed processes join (ProcessSpec::join_pid_namespace):
// kbrun's worker and checker share one so that CUDA IPC works between them (the driver
// does not open a handle made in another PID namespace) while neither sees a process
// outside it: not kbrun, not the shell that holds the API key.
#pragma once

#include <memory>
#include <string>

namespace kbrun {

class SharedPidNamespace {
 public:
  // A new namespace whose init ("kbrun-pidns", pid 1) only reaps. nullptr where one cannot
  // be made (not root: joining a namespace needs CAP_SYS_ADMIN over it).
  static std::unique_ptr<SharedPidNamespace> Start();
  // Ends every process left in the namespace and waits until they are gone.
  ~SharedPidNamespace();
  // Ends every process in the namespace (its init first, which takes the rest with it) without
  // waiting: each is reaped by its parent, and the init, last, by the process that made it.
  void KillAll() const;
  SharedPidNamespace(const SharedPidNamespace&) = delete;
  SharedPidNamespace& operator=(const SharedPidNamespace&) = delete;

  // /proc/<init>/ns/pid: what a joining process opens for setns.
  const std::string& path() const { return path_; }
  int init_pid() const { return init_; }

 private:
  SharedPidNamespace(int outer, int init);
  int outer_;  // the process that made the namespace (outside it); the init's parent
  int init_;   // the init's pid as this process sees it
  std::string path_;
};

}  // namespace kbrun
