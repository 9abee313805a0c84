"""The run phase: the candidate on the GPU (or CPU) beside the checker: correctness checks, then
timing call by call against the reference, then the share of time in library code.
"""
import time
import traceback

from . import busy_check
from . import problem as kp
from . import protocol
from . import timing
from .guards import check_stream_order, poison_free_memory, stream_snapshot
from .protocol import Failure, clip, failure_from_exception


def check_trial(torch, guard, device, new_model, checker, kind, label, laps):
    """One correctness check: the checker's inputs, the candidate's call, the checker's verdict
    (it runs the reference on its own copy of the inputs, in its own process). `laps`: where
    the seconds went."""
    t = time.perf_counter()
    inputs = checker.check(kind, label)
    t = laps.lap("inputs_s", t)
    poison_free_memory(torch, device)
    t = laps.lap("poison_s", t)
    with torch.no_grad():
        try:
            new_out = new_model(*inputs)
            snapshot = stream_snapshot(torch, new_out) if device.type == "cuda" else None
            if device.type == "cuda":
                torch.cuda.synchronize()
        except Failure:
            raise
        except Exception as exc:
            raise failure_from_exception(exc, "run")
        t = laps.lap("candidate_calls_s", t)
        guard.check_after_call(inputs, None, new_out)
        if snapshot is not None:
            check_stream_order(torch, new_out, snapshot)
        t = laps.lap("guards_s", t)
        checker.outputs(inputs, new_out)
        laps.lap("checker_turns_s", t)


def run_phase(req, result, stage_times, torch, module_candidate, guard, checker):
    """The candidate's model, its correctness checks, its timed calls and the library share, into
    `result` (stage times into `stage_times`); a Failure ends it."""
    device = torch.device("cuda:0" if req["device"] == "cuda" else "cpu")
    result["env"]["device_name"] = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"

    t = time.perf_counter()
    new_model = load_candidate_model(req, torch, module_candidate, device)
    guard.check_harness()
    stage_times["load_models_s"] = time.perf_counter() - t

    protocol.progress("stage correctness")
    t = time.perf_counter()
    laps = stage_times["correctness_detail"] = protocol.Laps()
    try:
        correctness(req, result, torch, guard, device, new_model, checker, laps)
    finally:
        stage_times["correctness_s"] = time.perf_counter() - t

    stage_times["waited_for_quiet_s"] = protocol.wait_until_timing_may_start()
    protocol.progress("stage timing")
    t = time.perf_counter()
    laps = protocol.Laps()
    stage_times["timing_detail"] = laps
    timer, methods, samples, inputs = time_candidate(req, torch, guard, device, new_model, checker, laps)
    guard.check_harness()
    checker.done()
    t_busy = time.perf_counter()
    primary = samples.get(methods[0]) if methods else None
    busy = None
    try:
        busy = busy_check.busy_check(torch, timer, new_model, inputs,
                                     timing.stats(primary)["median_ms"] if primary else None)
    except Failure:
        raise
    except Exception as exc:  # a check of the figure, not a verdict: the figure stands, and says so
        busy = {"error": "%s: %s" % (type(exc).__name__, exc), "added_ms": 0.0}
    if busy and busy["added_ms"] > 0:
        primary[:] = [ms + busy["added_ms"] for ms in primary]
    t_share = laps.lap("busy_check_s", t_busy)
    guard.check_harness()
    try:
        from . import library_share as kbrun_library_share  # the zygote has it loaded
        result["fallback"] = kbrun_library_share.library_share(
            torch, new_model, inputs, device, req["code"], timer,
            timing.stats(primary)["median_ms"] if primary else None)
    except Exception as exc:  # the profiler is a check, not a verdict: note it and go on
        result["fallback"] = {"error": "%s: %s" % (type(exc).__name__, exc), "uses_library_only": None,
                              "traceback": clip(traceback.format_exc(), 3000)}
    laps.lap("library_share_s", t_share)
    guard.check_harness()
    result["timing"] = timing_result(req, device, timer, methods, samples)
    result["timing"]["busy_check"] = busy
    stage_times["timing_s"] = time.perf_counter() - t


def load_candidate_model(req, torch, module_candidate, device):
    """ModelNew(*get_init_inputs()) from the run's seed, on the device, in the run's precision.
    The reference Model is built (from the same seed, by the same problem.build_model) and run
    only in the checker, a process that never loads the candidate: nothing the candidate does
    here can reach it."""
    try:
        problem = kp.load_module(req["problem"], "kbrun_problem")
        problem.get_init_inputs  # a problem without it is broken too (AttributeError)
    except Exception as exc:  # the problem itself is broken: not the candidate's fault
        raise Failure("runtime_error", "problem_error", "cannot load problem: %s: %s" % (type(exc).__name__, exc),
                      clip(traceback.format_exc(), 8000))
    ModelNew = getattr(module_candidate, "ModelNew", None)
    if ModelNew is None:
        raise Failure("compile_error", "no_model_new", "the candidate defines no ModelNew")
    seed = int(req["seed"])
    init_inputs = kp.init_inputs(torch, problem, seed)
    try:
        return kp.build_model(torch, ModelNew, init_inputs, seed, device, kp.precision_dtype(torch, req["precision"]))
    except Exception as exc:
        raise failure_from_exception(exc, "run")


def correctness(req, result, torch, guard, device, new_model, checker, laps):
    """Fresh inputs for every trial, drawn by the checker from seeds this process never sees;
    the checker's figures are the ones the supervisor reports (these are the worker's view)."""
    corr = {"trials_run": 0, "trials_passed": 0, "seed": int(req["seed"]), "extra_trials_run": 0,
            "extra_trials_passed": 0}
    result["correctness"] = corr
    # The trials; extra draws (other scales and means than get_inputs() gives); with --shapes
    # varied, other batch sizes (the checker skips and records those the problem cannot take).
    checks = [("trial", "trials", "trial %d" % i) for i in range(int(req["correctness_trials"]))]
    checks += [("extra", "extra_trials", label) for label, _, _ in kp.EXTRA_DRAWS]
    if req.get("shapes") == "varied":
        corr["shape_trials_run"] = corr["shape_trials_passed"] = 0
        checks += [("shape", "shape_trials", label) for label, _ in kp.SHAPE_DRAWS]
    for kind, counter, label in checks:
        corr[counter + "_run"] += 1
        try:
            check_trial(torch, guard, device, new_model, checker, kind, label, laps)
        except Failure:
            if kind == "trial":
                corr["failed_trial"] = corr["trials_run"] - 1
            raise
        corr[counter + "_passed"] += 1


def time_candidate(req, torch, guard, device, new_model, checker, laps):
    """The candidate here, the reference in the checker, alternating call by call so that drift
    (clocks, temperature, other tenants) hits both alike. Every call gets new values in the same
    buffers and every output is checked: a candidate that remembers its last answer (by pointer,
    shape, sampled values or a checksum) returns a wrong one. Returns (timer, methods, samples by
    method, the last inputs). `laps`: where the seconds went (calls, guards, the checker's turns)."""
    t = time.perf_counter()
    timer = timing.Timer(torch, device)
    warmup = int(req["warmup_runs"])
    methods = timing.timing_methods(device, int(req["timing_trials"]))
    samples = {}
    snapshot = (lambda out: stream_snapshot(torch, out)) if device.type == "cuda" else None
    t = laps.lap("timer_setup_s", t)
    inputs = checker.start_timing(warmup, methods)
    t = laps.lap("first_inputs_s", t)
    with torch.no_grad():
        for method in [None] * warmup + methods:
            try:
                if method is None:
                    out, snap = timer.warm_up(new_model, inputs), None
                else:
                    ms, out, snap = timer.time_once(new_model, inputs, method, snapshot)
                    samples.setdefault(method, []).append(ms)
            except Failure:
                raise
            except Exception as exc:
                raise failure_from_exception(exc, "run")
            t = laps.lap("candidate_calls_s", t)
            guard.check_after_call(inputs, None, out)
            if snap is not None:
                check_stream_order(torch, out, snap)
            t = laps.lap("guards_s", t)
            # The checker's turn: it maps the outputs, times the reference and judges.
            verdict = checker.outputs(inputs, out)
            del out, snap
            t = laps.lap("checker_turns_s", t)
            if verdict.get("next"):
                inputs = checker.receive_inputs(inputs)
                t = laps.lap("next_inputs_s", t)
    laps["rounds"] = warmup + len(methods)
    return timer, methods, samples, inputs


def timing_result(req, device, timer, methods, samples):
    """result.json's timing (the candidate's side; the checker sends the reference's)."""
    cuda = device.type == "cuda"
    primary = methods[0] if methods else (timing.GPU_METHOD if cuda else timing.CPU_METHOD)
    out = {
        "method": primary,
        "warmup_runs": int(req["warmup_runs"]),
        "checked_timed_calls": len(methods),
        "spin_ms": timer.spin_ms,
        "spin_cycles_per_ms": getattr(timer, "cycles_per_ms", None),
        "clock_mhz": timer.clock_summary() if cuda else None,
        "spin": timer.spin_summary() if cuda else None,
        "candidate": timing.stats(samples[primary]) if samples.get(primary) else None,
    }
    if samples.get(timing.KERNELBENCH_METHOD):
        out["candidate_kernelbench"] = timing.stats(samples[timing.KERNELBENCH_METHOD])
    return out
