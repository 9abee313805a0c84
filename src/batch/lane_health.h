// The health of a GPU lane (docs/RESULTS.md "Lane failures"): which sample results can mean
// that the lane's device itself is unusable, and the probe that tells a broken device from a
// candidate that only broke its own process.
//
// A probe is a fresh process of the evaluating Python that allocates, adds and synchronizes on
// the lane's device (on the CPU: the same on the CPU), under a short timeout. It replaces the
// verdict of nothing: the scheduler keeps a suspect sample's verdict when the probe passes, and
// retires the lane (the sample is rerun on another lane, not charged) when it fails.
#pragma once

#include <functional>
#include <string>

#include "eval/evaluation.h"

namespace kbrun::batch {

// Error categories of a finished run that can mean a broken device: the CUDA runtime reported an
// error (illegal address, device-side assert, "CUDA error", launch failure: `cuda_error`), the
// worker was killed by a signal (`crash`), died or could not start without a result
// (`worker_failed`), or was killed at the run deadline (`run_timeout`). Anything else (a wrong
// answer, a Python exception in the candidate, a compile error, out of memory, a rejection) is
// the candidate's and never triggers a probe.
bool IsDeviceSuspect(const eval::EvalResult& result);

struct ProbeResult {
  bool healthy = false;
  std::string detail;  // one line: what the probe saw ("cuda:0 ok in 2.1 s", the error...)
  double seconds = 0;
};

// Probes the device that `options` evaluate on (options.device, resolved like the evaluator
// resolves "auto"; options.gpu_index; options.python). Exposed as a seam: BatchOptions::lane_probe.
using LaneProbe = std::function<ProbeResult(const eval::EvalOptions& options)>;

inline constexpr double kDefaultProbeTimeoutS = 60;

// The real probe: `python -c <allocate, add, synchronize>` with CUDA_VISIBLE_DEVICES (and
// HIP_VISIBLE_DEVICES) set to the lane's physical GPU as the worker gets it, so that it checks
// exactly the device the lane's samples run on (there it is `cuda:0`), or the CPU.
ProbeResult ProbeDevice(const eval::EvalOptions& options, double timeout_s = kDefaultProbeTimeoutS);

// A probe command instead of the Python one: `<script> <device> <gpu_index> <python>`, healthy
// when it exits 0; its output's first line is the detail. For tests, and for sites with a
// health check of their own.
ProbeResult ProbeWithScript(const std::string& script, const eval::EvalOptions& options,
                            double timeout_s = kDefaultProbeTimeoutS);

// The probe a batch uses when BatchOptions::lane_probe is not set: KBRUN_LANE_PROBE (the path
// of a probe script, see ProbeWithScript) when that is set, else ProbeDevice. The only place
// that reads KBRUN_LANE_PROBE.
LaneProbe DefaultLaneProbe(double timeout_s = kDefaultProbeTimeoutS);

}  // namespace kbrun::batch
