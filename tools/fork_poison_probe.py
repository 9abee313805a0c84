"""Which import spoils a fork for CUDA? Imports what kbrun's warm worker (kbrun_zygote.py)
imports, one step at a time, in the server's environment (no GPU visible, NVML-based
availability check), and after each step forks a child that makes the GPU visible again and
tries to use it. Prints one line per step: torch's bad-fork flag in the child, whether the
parent has initialised CUDA, and what the child's first CUDA op did.
Usage (GPU machine): python3 tools/fork_poison_probe.py [worker dir, default build/]
"""
import importlib
import json
import os
import sys
import time

worker_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "build")
sys.path.insert(0, os.path.abspath(worker_dir))
gpu_env = os.environ.get("CUDA_VISIBLE_DEVICES", "0") or "0"
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"


def probe_child(torch):
    """In a fork: GPU visible again, then one CUDA op. Returns a dict through a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        out = {}
        try:
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu_env
            os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
            if torch is not None:
                bad = getattr(torch._C, "_cuda_isInBadFork", lambda: None)()
                out["bad_fork"] = bad
                out["cached_count"] = getattr(torch.cuda, "_cached_device_count", "n/a")
                try:
                    t0 = time.perf_counter()
                    x = torch.ones(1024, device="cuda")
                    out["cuda_op"] = "ok %.0f, %.2f s" % (float(x.sum()), time.perf_counter() - t0)
                except Exception as e:  # the probe reports whatever fails
                    out["cuda_op"] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:160])
                    if bad:
                        # Is it only torch's flag, or is the driver state really spoilt?
                        torch.cuda._is_in_bad_fork = lambda: False
                        try:
                            x = torch.ones(1024, device="cuda")
                            out["flag_bypassed"] = "ok %.0f" % float(x.sum())
                        except Exception as e2:
                            out["flag_bypassed"] = "%s: %s" % (type(e2).__name__, str(e2).splitlines()[0][:160])
        except Exception as e:
            out["error"] = repr(e)
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data or b"{}")


def parent_state(torch):
    if torch is None:
        return {}
    return {"parent_initialized": bool(torch.cuda.is_initialized())}


torch = None
steps = [("nothing", None), ("torch", "torch"), ("torch.utils.cpp_extension", "torch.utils.cpp_extension"),
         ("numpy", "numpy"), ("kbrun_eval.build", "kbrun_eval.build"), ("kbrun_eval.channel", "kbrun_eval.channel"),
         ("kbrun_eval.worker", "kbrun_eval.worker")]
for label, module in steps:
    t0 = time.perf_counter()
    if module:
        try:
            importlib.import_module(module)
        except ImportError as e:
            print("%-28s import failed: %s" % (label, e), flush=True)
            continue
        if module == "torch":
            import torch
    took = time.perf_counter() - t0
    result = probe_child(torch)
    result.update(parent_state(torch))
    print("%-28s +%.2f s  %s" % (label, took, json.dumps(result)), flush=True)

if torch is not None:
    print("torch %s, cuda %s, nvml count %s"
          % (torch.__version__, torch.version.cuda, getattr(torch.cuda, "_device_count_nvml", lambda: "n/a")()))
