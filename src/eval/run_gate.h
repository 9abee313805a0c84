// A run phase started before its turn on a GPU lane: its worker and checker start, initialise
// CUDA and then wait on a FIFO in the run's private dir, before any candidate or reference code
// loads and before any work on the GPU, until the lane is theirs. A fresh process's CUDA
// initialisation (0.3-0.5 s on an H200) then happens while the previous sample holds the lane.
// The FIFO, not a file that appears: the processes wake at once, and the lane is not polled.
// So that no process's CUDA start overlaps a timed call, a started worker waits once more before
// its timing stage, until LetTimingStart(): the lane calls it when the next sample's processes
// are ready (their CUDA start done) or there is no next sample.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace kbrun::eval {

namespace fs = std::filesystem;

class RunGate {
 public:
  // Makes `dir`/go (a FIFO) and holds it open for reading and writing, so that neither side's
  // open blocks and what Open() writes stays in the pipe until the processes read it.
  explicit RunGate(const fs::path& dir);
  // Closes it (a process still waiting reads EOF and ends without running anything) and removes it.
  ~RunGate();
  RunGate(const RunGate&) = delete;
  RunGate& operator=(const RunGate&) = delete;

  const std::string& path() const { return path_; }
  // Lets the waiting processes go: one byte each (the worker and the checker).
  void Open();
  // After Open(): lets the worker's timing stage start (a third byte).
  void LetTimingStart();
  // Process `which` (0: the worker, 1: the checker) said "stage ready" (CUDA set up, waiting) or
  // ended; Ready() once both have, or the run is over.
  void MarkReady(int which) { ready_ |= 1 << which; }
  void MarkEnded() { ended_ = true; }
  bool Ready() const { return ready_ == 3 || ended_; }
  // The processes will not be let go: they read EOF and end.
  void Abandon();
  // True until Open() or Abandon(): the processes' deadlines do not run meanwhile (ProcessSpec::clocks_paused).
  bool waiting() const { return !opened_ && !abandoned_; }
  std::optional<std::chrono::steady_clock::time_point> opened_at() const;

 private:
  std::string path_;
  int fd_ = -1;
  std::atomic<bool> opened_{false}, abandoned_{false}, timing_let_{false}, ended_{false};
  std::atomic<int> ready_{0};
  std::chrono::steady_clock::time_point opened_at_;
};

}  // namespace kbrun::eval
