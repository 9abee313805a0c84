"""kbrun's evaluation worker: runs in a child process that the C++ supervisor controls.

It measures; it does not decide. The supervisor (src/eval/supervisor.cc) reads the
measurements this worker writes and decides the verdict. Phases:
  compile  import the candidate (its load_inline builds run here); no GPU work
  run      reload the candidate (the build is cached in the same private dir), call it on
           the inputs the checker (checker.py) draws, and time it; the checker judges
           the outputs and runs and times the reference in its own process

Progress lines go to fd 3 ("stage <name>") so the supervisor can start the run
clock when compiling ends. Only torch (and the standard library) is used. The supervisor runs
kbrun_worker.py beside this package, which calls main() (by hand, `python -m kbrun_eval.worker`
from the folder above runs it too).
"""
import argparse
import json
import os
import sys
import time
import traceback

from . import compile_phase
from . import problem as kp
from . import protocol
from . import run_phase as rp
from .checker_link import CheckerLink
from .guards import Guard, keep_library_monitors_off, network_interfaces
from .protocol import Deferred, Failure, classify_exception, clip, failure_from_exception


def main(t0):
    """The worker's process from its request file to its one result line; never returns. `t0`: when
    the entry script started (perf_counter), for the stage times."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--request", required=True)
    args = parser.parse_args()
    with open(args.request) as f:
        req = json.load(f)
    # The candidate must not read the seed or the result nonce: the file goes before it loads.
    os.unlink(args.request)
    nonce = req.pop("nonce")

    result = {"phase": req["phase"], "ok": False, "env": {}, "stage_times": {}}
    stage_times = result["stage_times"]

    try:
        import torch
        stage_times["import_torch_s"] = time.perf_counter() - t0
        result["env"].update({
            "python": sys.version.split()[0],
            "torch_version": torch.__version__,
            "cuda_version": torch.version.cuda,
            "hip_version": getattr(torch.version, "hip", None),
            "network_interfaces": network_interfaces(),
        })
        t = time.perf_counter()
        device = kp.use_device(torch, req["device"] if req["phase"] != "compile" else "cpu")
        if device.type == "cuda":
            torch.cuda.init()
        stage_times["cuda_init_s"] = time.perf_counter() - t
        if req.get("go_fifo"):  # started ahead of its turn on the GPU lane: nothing else yet
            t = time.perf_counter()
            if not protocol.wait_for_lane(req["go_fifo"], keep=True):
                os._exit(0)
            stage_times["waited_for_lane_s"] = time.perf_counter() - t
        keep_library_monitors_off()
        guard = Guard(torch, device)
        protocol.progress("stage compile")
        t = time.perf_counter()
        builds = compile_phase.prepare_build(req.get("build") or {}, reuse_earlier_builds=req["phase"] == "run")
        if builds is not None:
            result["builds"] = builds
        checker = CheckerLink(torch, device) if req["phase"] == "run" else None
        try:
            candidate = kp.load_module(req["code"], "kbrun_candidate")
        except Exception as exc:
            failure = failure_from_exception(exc, "compile")
            if req["phase"] == "compile" and failure.status != "compile_error":
                # The compile phase runs without a GPU; an import that needs one is
                # judged again in the run phase, where the GPU is visible.
                stage_times["compile_s"] = time.perf_counter() - t
                result["import_deferred"] = failure.message
                result["ok"] = True
                raise Deferred()
            raise failure
        stage_times["compile_s"] = time.perf_counter() - t
        if getattr(candidate, "ModelNew", None) is None:
            raise Failure("compile_error", "no_model_new", "the candidate defines no ModelNew")
        result["compiled"] = True
        if req["phase"] == "compile":
            protocol.progress("stage prebuild")
            result["prebuild"] = compile_phase.prebuild(req, torch, candidate)
            stage_times["prebuild_s"] = result["prebuild"]["seconds"]
        if req["phase"] == "run":
            guard.check_harness()
            rp.run_phase(req, result, stage_times, torch, candidate, guard, checker)
        result["ok"] = True
    except Deferred:
        pass
    except Failure as f:
        result["failure"] = {"status": f.status, "category": f.category, "message": f.message, "detail": f.detail}
    except BaseException as exc:  # SystemExit from the candidate included
        status, category = classify_exception(exc, "run")
        result["failure"] = {"status": status, "category": category,
                             "message": clip("%s: %s" % (type(exc).__name__, exc), 8000),
                             "detail": clip(traceback.format_exc(), 8000)}
    # Of this worker's time, what load_inline/load calls took (in the run phase: builds on the GPU lane).
    kbrun_build = sys.modules.get("kbrun_eval.build")
    if kbrun_build is not None:
        stage_times["build_s"] = round(sum(a.get("seconds", 0.0) for a in kbrun_build.build_attempts), 3)
    stage_times["worker_total_s"] = time.perf_counter() - t0
    sys.stdout.flush()
    sys.stderr.flush()
    # One result line on fd 3, with the nonce: the supervisor rejects a run that sent
    # none, several, or one without it.
    protocol.progress("result %s %s" % (nonce, json.dumps(result, allow_nan=True)))
    # Skip interpreter teardown: a broken CUDA context can hang or crash in it.
    os._exit(0)


if __name__ == "__main__":
    main(time.perf_counter())
