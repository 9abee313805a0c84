// Over 400 lines on purpose: one step of four sandboxed processes under one deadline (the
// roofline, the profiler on the candidate, its CSV export, the digest) that share their plumbing;
// split, the plumbing would be passed around more than read.

#include "eval/profile.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include <fmt/format.h>

#include "eval/worker_protocol.h"
#include "util/env_options.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::eval {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Nsight Compute sections: speed of light, launch configuration, occupancy, warp stalls.
const char* const kNcuSections[] = {"SpeedOfLight", "LaunchStats", "Occupancy", "WarpStateStats"};
// rocprofv3 derived counters; the digest maps them onto the ncu figures (kbrun_profile_digest.py).
const char* const kRocprofCounters = "MemUnitBusy,VALUBusy,OccupancyPercent";

double Num(const json& j, const char* key, double fallback = -1) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
}

std::optional<fs::path> FindTool(const std::string& name, const std::map<std::string, std::string>& env,
                                 const char* override_var) {
  if (auto o = GetEnvOption(override_var)) return fs::path(*o);
  std::vector<fs::path> dirs;
  if (auto it = env.find("PATH"); it != env.end()) {
    std::string path = it->second;
    size_t start = 0;
    while (start <= path.size()) {
      size_t end = path.find(':', start);
      if (end == std::string::npos) end = path.size();
      if (end > start) dirs.emplace_back(path.substr(start, end - start));
      start = end + 1;
    }
  }
  for (const char* var : {"CUDA_HOME", "CUDA_PATH", "ROCM_PATH"}) {
    if (auto it = env.find(var); it != env.end() && !it->second.empty()) dirs.push_back(fs::path(it->second) / "bin");
  }
  dirs.emplace_back("/usr/local/cuda/bin");
  dirs.emplace_back("/opt/rocm/bin");
  for (const auto& d : dirs) {
    fs::path p = d / name;
    if (access(p.c_str(), X_OK) == 0 && fs::is_regular_file(p)) return p;
  }
  return std::nullopt;
}

double SecondsLeft(Clock::time_point deadline) {
  return std::chrono::duration<double>(deadline - Clock::now()).count();
}

ProcessSpec BaseSpec(const ProfileInputs& in, double timeout_s) {
  ProcessSpec spec;
  spec.env = in.env;
  spec.cwd = in.work_dir.string();
  spec.timeout_s = std::max(1.0, timeout_s);
  spec.hard_timeout_s = spec.timeout_s;
  spec.limits.max_file_bytes = 8ULL << 30;
  spec.isolate_network = true;
  return spec;
}

json Outcome(const std::string& status, const std::string& note) { return {{"status", status}, {"note", note}}; }

// The roofline process: the problem only, never the candidate; one nonce'd result line on fd 3.
json RunRoofline(const ProfileInputs& in, Clock::time_point deadline) {
  const EvalOptions& o = in.request->options;
  const std::string nonce = MakeNonce();
  json req = {{"mode", "roofline"},  {"problem", (in.work_dir / "problem.py").string()},
              {"device", in.device}, {"precision", o.precision},
              {"seed", in.seed},     {"peaks_dir", DefaultPeaksDir().string()},
              {"nonce", nonce}};
  fs::path req_path = in.work_dir / "profile" / "roofline_request.json";
  WriteFileAtomic(req_path, req.dump(2));
  ProcessSpec spec = BaseSpec(in, SecondsLeft(deadline));
  spec.argv = {in.python->interpreter, ProfileScriptPath("kbrun_profile.py"), "--request", req_path.string()};
  std::optional<json> result;
  int result_lines = 0;
  bool forged = false;  // the roofline process runs the problem only: nothing forges its line
  spec.on_progress = [&](const std::string& line) -> std::optional<double> {
    ReadResultLine(line, nonce, result_lines, forged, result);
    return std::nullopt;
  };
  ProcessResult p = RunProcess(spec);
  if (p.timed_out)
    return {{"error", fmt::format("the roofline step ran past the profile deadline ({:.0f} s)", p.wall_s)}};
  if (!result) return {{"error", "the roofline step gave no result\n" + KeepHeadTailLines(p.output, 15)}};
  if (result->contains("error")) return {{"error", (*result)["error"]}};
  return result->value("roofline", json::object());
}

std::vector<std::string> NcuArgv(const fs::path& ncu, const fs::path& report, const std::string& python,
                                 const fs::path& request) {
  // --clock-control none: ncu's default locks the card's clocks at base for the run, a
  // setting change on a machine others share; kernels are profiled at the clocks they run at.
  std::vector<std::string> argv = {
      ncu.string(),     "--clock-control",  "none",           "--target-processes", "all", "--nvtx",
      "--nvtx-include", "kbrun_reference/", "--nvtx-include", "kbrun_candidate/"};
  for (const char* s : kNcuSections) argv.insert(argv.end(), {"--section", s});
  argv.insert(argv.end(), {"-f", "-o", report.string(), python, ProfileScriptPath("kbrun_profile.py"), "--request",
                           request.string()});
  return argv;
}

}  // namespace

// Runs the profiler on kbrun_profile.py (kernels mode) and digests its output.
json ProfileKernels(const ProfileInputs& in, double timeout_s) {
  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
  const EvalOptions& o = in.request->options;
  const bool amd = !in.python->hip_version.empty();
  const char* tool_name = amd ? "rocprofv3" : "ncu";
  auto tool = FindTool(tool_name, in.env, amd ? "KBRUN_ROCPROF" : "KBRUN_NCU");
  if (!tool) {
    return Outcome("unavailable", fmt::format("{} not found (PATH, CUDA_HOME/bin, ROCM_PATH/bin; or set {}): "
                                              "no kernel profile, the roofline figures are still given",
                                              tool_name, amd ? "KBRUN_ROCPROF" : "KBRUN_NCU"));
  }
  const fs::path dir = in.work_dir / "profile";
  json req = {{"mode", "kernels"},
              {"problem", (in.work_dir / "problem.py").string()},
              {"code", (in.work_dir / "candidate.py").string()},
              {"device", in.device},
              {"precision", o.precision},
              {"seed", in.seed},
              {"build", in.build}};
  fs::path req_path = dir / "kernels_request.json";
  WriteFileAtomic(req_path, req.dump(2));

  ProcessSpec spec = BaseSpec(in, SecondsLeft(deadline));
  if (in.seal) in.seal(spec);
  // Nsight Compute talks to its target process over 127.0.0.1: loopback up, nothing else.
  // Its lock file goes to $TMPDIR (the private dir's tmp/).
  spec.loopback_up = true;
  fs::path report = dir / "report";
  fs::path rocprof_dir = dir / "rocprof";
  if (amd) {
    spec.argv = {tool->string(),
                 "--kernel-trace",
                 "--marker-trace",
                 "--pmc",
                 kRocprofCounters,
                 "--output-format",
                 "csv",
                 "-d",
                 rocprof_dir.string(),
                 "-o",
                 "kbrun",
                 "--",
                 in.python->interpreter,
                 ProfileScriptPath("kbrun_profile.py"),
                 "--request",
                 req_path.string()};
  } else {
    spec.argv = NcuArgv(*tool, report, in.python->interpreter, req_path);
  }
  ProcessResult p = RunProcess(spec);
  std::string tail = KeepHeadTailLines(p.output, 15);
  if (p.cancelled) return Outcome("failed", "interrupted by the user");
  if (auto refusal = ProfilerRefusal(p.output)) return Outcome("unavailable", *refusal);
  if (p.timed_out) {
    return Outcome("timeout", fmt::format("{} ran past the profile deadline ({:.0f} s, --profile-timeout {:.0f})\n{}",
                                          tool_name, p.wall_s, o.profile_timeout_s, tail));
  }
  if (p.spawn_failed || p.term_signal || p.exit_code != 0 || !Contains(p.output, "kbrun_profile: ranges done")) {
    std::string how =
        p.term_signal ? "killed by " + SignalName(p.term_signal) : fmt::format("exit code {}", p.exit_code);
    return Outcome("failed", fmt::format("{} did not complete the profiled run ({})\n{}", tool_name, how, tail));
  }

  fs::path digest_input;
  std::string flag;
  if (amd) {
    digest_input = rocprof_dir;
    flag = "--rocprof-dir";
  } else {
    // The raw page as CSV, written by ncu itself into a file (it is larger than the output capture).
    digest_input = dir / "raw.csv";
    ProcessSpec exp = BaseSpec(in, SecondsLeft(deadline));
    exp.argv = {"/bin/sh",
                "-c",
                "exec \"$0\" -i \"$1\" --csv --page raw > \"$2\"",
                tool->string(),
                report.string() + ".ncu-rep",
                digest_input.string()};
    ProcessResult e = RunProcess(exp);
    if (e.timed_out) return Outcome("timeout", "exporting the ncu report ran past the profile deadline");
    if (e.exit_code != 0) {
      return Outcome("failed", "ncu could not export its report\n" + KeepHeadTailLines(e.output, 10));
    }
    flag = "--ncu-csv";
  }
  json digest = RunDigest(in.python->interpreter, flag, digest_input, dir / "digest.json", SecondsLeft(deadline));
  if (digest.contains("error"))
    return Outcome("failed", "cannot read the profiler's output: " + digest["error"].dump());
  digest["status"] = "ok";
  if (o.keep_work_dir) digest["report"] = amd ? rocprof_dir.string() : report.string() + ".ncu-rep";
  return digest;
}

namespace {

std::string Pct(const json& k, const char* key) {
  double v = Num(k, key);
  return v < 0 ? "?" : fmt::format("{:.0f}%", v);
}

std::string Micro(double us) { return us >= 1000 ? fmt::format("{:.3f} ms", us / 1000) : fmt::format("{:.1f} us", us); }

std::string Bytes(double b) {
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.1f} MB", b / 1e6);
  if (b >= 1e3) return fmt::format("{:.1f} KB", b / 1e3);
  return fmt::format("{:.0f} B", b);
}

std::string Dims(const json& d) {
  if (!d.is_array() || d.empty()) return "?";
  std::string s;
  size_t n = d.size();
  while (n > 1 && d[n - 1] == 1) --n;  // (256, 1, 1) reads as 256
  for (size_t i = 0; i < n; ++i) {
    if (i) s += 'x';
    s += d[i].dump();
  }
  return s;
}

std::string KernelLine(const json& k, double total_us) {
  double us = Num(k, "duration_us", 0);
  std::string line = fmt::format("{}: {}", k.value("name", "?"), Micro(us));
  if (total_us > 0) line += fmt::format(" ({:.0f}% of its kernel time)", 100 * us / total_us);
  if (k.contains("bound") && k["bound"].is_string()) line += ", " + k["bound"].get<std::string>();
  line += fmt::format(" (memory {}, DRAM {}, SM {} of peak)", Pct(k, "memory_throughput_pct"),
                      Pct(k, "dram_throughput_pct"), Pct(k, "compute_throughput_pct"));
  line += fmt::format("; occupancy {} achieved", Pct(k, "achieved_occupancy_pct"));
  if (Num(k, "theoretical_occupancy_pct") >= 0)
    line += fmt::format(" of {} possible", Pct(k, "theoretical_occupancy_pct"));
  if (Num(k, "registers_per_thread") >= 0)
    line += fmt::format(", {:.0f} registers/thread", Num(k, "registers_per_thread"));
  if (Num(k, "shared_mem_per_block_bytes") > 0)
    line += ", " + Bytes(Num(k, "shared_mem_per_block_bytes")) + " shared/block";
  line += fmt::format(", grid {}, block {}", Dims(k.value("grid", json())), Dims(k.value("block", json())));
  const json stalls = k.value("top_stalls", json::array());
  if (stalls.is_array() && !stalls.empty()) {
    line += "; top stalls (cycles per issued instruction)";
    for (size_t i = 0; i < stalls.size(); ++i) {
      line += fmt::format("{} {} {:.2f}", i ? "," : "", stalls[i].value("reason", "?"), Num(stalls[i], "ratio", 0));
    }
  }
  return line;
}

}  // namespace

fs::path DefaultPeaksDir() {
  if (auto p = GetEnvOption("KBRUN_PEAKS_DIR")) return *p;
  return DefaultCompileCacheDir().parent_path() / "peaks";
}

std::string ProfileScriptPath(const std::string& file_name) {
  return (fs::path(WorkerScriptPath()).parent_path() / file_name).string();
}

json RunDigest(const std::string& python, const std::string& flag, const fs::path& input, const fs::path& out_json,
               double timeout_s) {
  ProcessSpec spec;
  spec.argv = {python,           ProfileScriptPath("kbrun_profile_digest.py"), flag, input.string(), "--output",
               out_json.string()};
  auto current = CurrentEnvironment();
  spec.env = {{"PATH", current.count("PATH") ? current["PATH"] : "/usr/bin:/bin"}, {"PYTHONDONTWRITEBYTECODE", "1"}};
  spec.timeout_s = std::max(1.0, timeout_s);
  spec.isolate_network = true;
  fs::remove(out_json);
  ProcessResult p = RunProcess(spec);
  if (p.timed_out) return {{"error", "the digest ran past the profile deadline"}};
  auto text = ReadFile(out_json);
  auto j = text ? json::parse(*text, nullptr, false) : json();
  if (!j.is_object()) return {{"error", "no digest\n" + KeepHeadTailLines(p.output, 10)}};
  return j;
}

std::optional<std::string> ProfilerRefusal(const std::string& output) {
  if (Contains(output, "ERR_NVGPUCTRPERM")) {
    return "ncu has no permission to the GPU performance counters (ERR_NVGPUCTRPERM): run kbrun as root, or "
           "load the driver with NVreg_RestrictProfilingToAdminUsers=0; the roofline figures are still given";
  }
  if (Contains(output, "ERR_NVGPUCTRBUSY") || Contains(output, "profiling is not supported")) {
    return "the GPU's performance counters are busy or not supported here: " + KeepHeadTailLines(output, 4);
  }
  return std::nullopt;
}

json RooflineFigures(const json& fig, const std::string& precision, double candidate_ms) {
  json r = {{"min_bytes", fig.value("min_bytes", json(nullptr))},
            {"min_flops", fig.value("min_flops", json(nullptr))},
            {"inputs_bytes", fig.value("inputs_bytes", json(nullptr))},
            {"params_bytes", fig.value("params_bytes", json(nullptr))},
            {"outputs_bytes", fig.value("outputs_bytes", json(nullptr))},
            {"counted_flops", fig.value("counted_flops", json(nullptr))},
            {"peak_bandwidth_gbs", nullptr},
            {"peak_tflops", nullptr},
            {"peak_precision", precision},
            {"peaks_source", nullptr},
            {"memory_ms", nullptr},
            {"compute_ms", nullptr},
            {"roofline_ms", nullptr},
            {"fraction_of_roofline", nullptr}};
  if (fig.contains("error")) r["note"] = fig["error"];
  const json peaks = fig.value("peaks", json(nullptr));
  if (!peaks.is_object()) {
    if (!r.contains("note")) r["note"] = "no GPU peaks (CPU run): bytes and FLOPs only";
    return r;
  }
  double bw = Num(peaks, "copy_gbs");
  double tf = Num(peaks.value("tflops", json::object()), precision.c_str());
  r["peak_bandwidth_gbs"] = bw > 0 ? json(bw) : json(nullptr);
  r["peak_tflops"] = tf > 0 ? json(tf) : json(nullptr);
  r["peaks_source"] = peaks.value("source", json(nullptr));
  double bytes = Num(fig, "min_bytes"), flops = Num(fig, "min_flops");
  double best = -1;
  if (bytes >= 0 && bw > 0) {
    r["memory_ms"] = bytes / (bw * 1e9) * 1e3;
    best = r["memory_ms"].get<double>();
  }
  if (flops >= 0 && tf > 0) {
    r["compute_ms"] = flops / (tf * 1e12) * 1e3;
    best = std::max(best, r["compute_ms"].get<double>());
  }
  if (best > 0) {
    r["roofline_ms"] = best;
    if (candidate_ms > 0) r["fraction_of_roofline"] = best / candidate_ms;
  }
  return r;
}

std::string ProfileSummaryText(const json& profile, const json& roofline) {
  std::vector<std::string> lines;
  if (profile.is_object() && profile.value("status", "") == "ok") {
    const json cand = profile.value("candidate", json::object()), ref = profile.value("reference", json::object());
    int nc = static_cast<int>(Num(cand, "kernel_count", 0)), nr = static_cast<int>(Num(ref, "kernel_count", 0));
    double tc = Num(cand, "total_us", 0), tr = Num(ref, "total_us", 0);
    std::string tool = profile.value("tool", "profiler");
    lines.push_back(
        fmt::format("Profile ({}, one call each): your ModelNew ran {} kernel{} in {} of kernel time; the "
                    "PyTorch reference ran {} kernel{} in {}.",
                    tool, nc, nc == 1 ? "" : "s", Micro(tc), nr, nr == 1 ? "" : "s", Micro(tr)));
    if (nc > nr && nr > 0) {
      lines.back() += fmt::format(" You launch {} kernels where the reference launches {}: fuse them.", nc, nr);
    }
    const json kernels = cand.value("kernels", json::array());
    for (size_t i = 0; i < kernels.size() && i < 3; ++i) {
      lines.push_back(std::string(i == 0 ? "Slowest kernel of yours, " : "Next, ") + KernelLine(kernels[i], tc));
    }
    const json rk = ref.value("kernels", json::array());
    if (!rk.empty()) {
      lines.push_back(fmt::format("Reference's slowest kernel {}: {}, {} (memory {}, SM {} of peak).",
                                  rk[0].value("name", "?"), Micro(Num(rk[0], "duration_us", 0)),
                                  rk[0].value("bound", json("?")).is_string() ? rk[0].value("bound", "?") : "?",
                                  Pct(rk[0], "memory_throughput_pct"), Pct(rk[0], "compute_throughput_pct")));
    }
  }
  if (roofline.is_object() && Num(roofline, "roofline_ms") > 0) {
    std::string work = "Roofline: at least " + Bytes(Num(roofline, "min_bytes", 0)) + " moved";
    if (Num(roofline, "min_flops") >= 0) work += fmt::format(" and {:.3g} GFLOP", Num(roofline, "min_flops") / 1e9);
    work += fmt::format(", so no kernel can beat {:.4f} ms on this GPU ({:.0f} GB/s", Num(roofline, "roofline_ms"),
                        Num(roofline, "peak_bandwidth_gbs", 0));
    if (Num(roofline, "peak_tflops") > 0) {
      work += fmt::format(", {:.0f} TFLOP/s {}", Num(roofline, "peak_tflops"), roofline.value("peak_precision", ""));
    }
    work += " measured)";
    if (Num(roofline, "fraction_of_roofline") > 0) {
      work += fmt::format("; yours reaches {:.0f}% of that bound", 100 * Num(roofline, "fraction_of_roofline"));
    }
    lines.push_back(work + ".");
  }
  std::string text;
  for (const auto& l : lines) {
    if (!text.empty()) text += '\n';
    text += l;
  }
  return text;
}

void AddProfile(EvalResult& r, const ProfileInputs& in) {
  const EvalOptions& o = in.request->options;
  auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.profile_timeout_s));
  auto t0 = Clock::now();
  json profile;
  json figures;
  try {
    fs::create_directories(in.work_dir / "profile");
    // The roofline comes from the problem alone: computed whatever the candidate's status.
    figures = RunRoofline(in, deadline);
    if (r.status != Status::kCorrect) {
      profile = Outcome("skipped",
                        "kernels are profiled only for correct candidates (this one is " + StatusName(r.status) + ")");
    } else if (in.device != "cuda") {
      profile = Outcome("unavailable", "no GPU (device " + in.device +
                                           "): kernel profiles need ncu (NVIDIA) or rocprofv3 (AMD); the roofline "
                                           "bytes and FLOPs are still given");
    } else if (SecondsLeft(deadline) <= 1) {
      profile = Outcome("timeout", "no time left for the profiler after the roofline step (--profile-timeout)");
    } else {
      profile = ProfileKernels(in, SecondsLeft(deadline));
    }
  } catch (const std::exception& e) {  // a profile problem is a note, never a failed eval
    profile = Outcome("failed", e.what());
  }
  const json timing = r.json.value("timing", json::object());
  double cand_ms = r.status == Status::kCorrect ? Num(timing.value("candidate", json::object()), "median_ms", 0) : 0;
  json roofline =
      figures.is_object() && !figures.empty() ? RooflineFigures(figures, o.precision, cand_ms) : json(nullptr);
  profile["seconds"] = std::chrono::duration<double>(Clock::now() - t0).count();
  std::string summary = ProfileSummaryText(profile, roofline);
  profile["summary"] = summary.empty() ? json(nullptr) : json(summary);
  r.json["profile"] = profile;
  r.json["roofline"] = roofline;
}

}  // namespace kbrun::eval
