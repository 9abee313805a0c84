"""kbrun's checker: decides correctness in a process the candidate never runs in.

The supervisor starts it beside the worker for the run phase, connected to the worker by
a socket (fd 4; kbrun_channel.py). For every checked call the worker sends the inputs
before calling the candidate (the checker keeps its own copies) and the outputs after
it; the checker runs the reference on its copies, checks that the inputs were not
modified, compares, and answers with a verdict. It counts the checks by kind (trial,
extra, timed) and writes them, with its nonce, on fd 3; the supervisor accepts a
correct result only when these counts are complete. Nothing the worker sends is
unpickled or executed here.
"""

import argparse
import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbrun_channel  # noqa: E402
import kbrun_worker as kw  # noqa: E402  (trusted helpers: compare, seeding, loading the problem)


def build_reference(torch, req, device):
    problem = kw.load_module(req["problem"], "kbrun_problem")
    seed = int(req["seed"])
    kw.seed_all(torch, seed)
    init_inputs = problem.get_init_inputs()
    kw.seed_all(torch, seed)
    model = problem.Model(*init_inputs).to(device)
    precision = req["precision"]
    if precision != "fp32":
        model = model.to(getattr(torch, kw.PRECISIONS[precision]))
    return model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--request", required=True)
    args = parser.parse_args()
    with open(args.request) as f:
        req = json.load(f)
    os.unlink(args.request)
    nonce = req.pop("nonce")
    result = {"checks": {k: {"run": 0, "passed": 0} for k in ("trial", "extra", "timed")},
              "max_abs_diff": None, "mean_abs_diff": None, "failure": None}
    try:
        import torch
        device = kw.use_device(torch, req["device"])
        precision = req["precision"]
        atol = req.get("atol") if req.get("atol") is not None else kw.DEFAULT_TOLERANCE[precision]
        rtol = req.get("rtol") if req.get("rtol") is not None else kw.DEFAULT_TOLERANCE[precision]
        model = build_reference(torch, req, device)
        chan = kbrun_channel.Channel(4)
        problem = sys.modules["kbrun_problem"]
        dtype = getattr(torch, kw.PRECISIONS[precision]) if precision != "fp32" else None
        extra_draws = list(kw.EXTRA_DRAWS)
        saved = live = None
        label, kind, seeds = "", "trial", []
        diffs = []
        while True:
            try:
                header, payloads = chan.recv()
            except EOFError:
                break
            t = header.get("type")
            if t == "done":
                break
            if t == "draw":
                # Fresh inputs from a seed the candidate's process never sees.
                label = str(header.get("label", ""))[:200]
                kind = header.get("kind") if header.get("kind") in result["checks"] else "trial"
                seed = int.from_bytes(os.urandom(4), "little")
                seeds.append(seed)
                kw.seed_all(torch, seed)
                live = kw.make_inputs(torch, problem.get_inputs, device, dtype)
                if kind == "extra":
                    _, scale, shift = extra_draws[min(result["checks"]["extra"]["run"], len(extra_draws) - 1)]
                    live = kw.transformed_inputs(torch, live, scale, shift)
                saved = [x.clone() if isinstance(x, torch.Tensor) else x for x in live]
                if device.type == "cuda":
                    torch.cuda.synchronize()
                descs, out_payloads = kbrun_channel.describe(torch, live, cuda_by_value=bool(header.get("by_value")))
                chan.send({"type": "inputs", "inputs": descs}, out_payloads)
                continue
            if t == "redraw":  # the worker could not map CUDA IPC handles: it asks again by value
                result["transport_note"] = "CUDA IPC could not be mapped in the worker (%s); tensors sent by value" % (
                    str(header.get("error", ""))[:300])
                continue
            if t != "outputs" or saved is None:
                raise RuntimeError("unexpected message %r" % t)
            outputs = kbrun_channel.rebuild(torch, header["outputs"], payloads, device)
            after = live if "inputs_after" not in header else kbrun_channel.rebuild(
                torch, header["inputs_after"], payloads, device)
            counts = result["checks"][kind]
            counts["run"] += 1
            verdict = {"type": "verdict", "ok": True, "status": "correct", "category": "", "message": ""}
            out = expected = None
            modified = [i for i, (now, before) in enumerate(zip(after, saved))
                        if isinstance(before, torch.Tensor) and not (isinstance(now, torch.Tensor) and torch.equal(now, before))]
            if modified:
                verdict.update(ok=False, status="rejected", category="modified_inputs",
                               message="%s: forward modified input %d in place" % (label, modified[0]))
            else:
                with torch.no_grad():
                    expected = model(*saved)
                out = outputs[0] if len(outputs) == 1 and isinstance(expected, torch.Tensor) else tuple(outputs)
                ok, category, message, md, mean = kw.compare(torch, expected, out, atol, rtol)
                if md is not None:
                    result["max_abs_diff"] = max(result["max_abs_diff"] or 0.0, md)
                    diffs.append(mean)
                    result["mean_abs_diff"] = sum(diffs) / len(diffs)
                if not ok:
                    if kind == "extra":
                        category, message = "failed_extra_inputs", "%s (%s)" % (message, category)
                    elif kind == "timed":
                        category = "timed_output_mismatch"
                    verdict.update(ok=False, status="incorrect", category=category,
                                   message="%s: %s" % (label, message))
            if verdict["ok"]:
                counts["passed"] += 1
            elif result["failure"] is None:
                result["failure"] = {k: verdict[k] for k in ("status", "category", "message")}
            del outputs, after, out, expected
            saved = live = None
            if device.type == "cuda":
                torch.cuda.synchronize()
            chan.send(verdict)
        result["input_seeds"] = seeds
    except BaseException as exc:
        result["failure"] = {"status": "runtime_error", "category": "checker_failed",
                             "message": kw.clip("%s: %s" % (type(exc).__name__, exc), 4000),
                             "detail": kw.clip(traceback.format_exc(), 8000)}
    kw.progress("result %s %s" % (nonce, json.dumps(result, allow_nan=True)))
    os._exit(0)


if __name__ == "__main__":
    main()
