#include "eval/run_gate.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace kbrun::eval {

RunGate::RunGate(const fs::path& dir) : path_((dir / "go").string()) {
  ::unlink(path_.c_str());
  if (mkfifo(path_.c_str(), 0600) != 0) throw std::runtime_error(fmt::format("mkfifo {}: {}", path_, strerror(errno)));
  // O_RDWR on a FIFO never blocks (Linux), and keeps one writer, so a reader that opens later
  // still finds the bytes; nonblocking: Open() never waits.
  fd_ = open(path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error(fmt::format("open {}: {}", path_, strerror(errno)));
}

RunGate::~RunGate() {
  if (fd_ >= 0) close(fd_);
  ::unlink(path_.c_str());
}

void RunGate::Open() {
  if (!waiting()) return;
  opened_at_ = std::chrono::steady_clock::now();
  opened_ = true;
  const char go[2] = {'g', 'g'};  // the worker's and the checker's
  if (write(fd_, go, sizeof go) != static_cast<ssize_t>(sizeof go)) {
    // A full pipe of 64 KiB cannot happen with two bytes; should it, EOF lets them end.
    Abandon();
  }
}

void RunGate::LetTimingStart() {
  if (!opened_ || abandoned_ || timing_let_.exchange(true)) return;
  const char quiet = 'q';
  (void)!write(fd_, &quiet, 1);  // should it fail, the worker waits out its run deadline: a kbrun bug, not hidden
}

void RunGate::Abandon() {
  abandoned_ = true;
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

std::optional<std::chrono::steady_clock::time_point> RunGate::opened_at() const {
  if (!opened_) return std::nullopt;
  return opened_at_;
}

}  // namespace kbrun::eval
