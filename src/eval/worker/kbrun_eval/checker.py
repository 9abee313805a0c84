"""kbrun's checker: the clean reference. It decides correctness and times the reference in a
process the candidate never runs in.

The supervisor starts it beside the worker for the run phase, connected to the worker by a
socket (fd 4; channel.py). The checker never imports candidate code, so nothing the
candidate does to torch in its own process (patches, dispatcher overrides, global flags,
allocator settings) reaches the reference's outputs or its timings.

For every checked call the checker draws the inputs from seeds the worker never sees and
keeps them private. It writes their values into buffers the worker allocated (CUDA IPC: the
worker gets no handle to the checker's memory) or sends them by value; it runs the reference on
its own copy (in a correctness check while the candidate's call runs: nothing there is timed),
then checks that the worker's buffers still hold those values, compares, and answers with a
verdict.

Timing alternates: the worker times candidate call i, then the checker times reference call
i on the same values, so drift hits both. Every timed call gets new values in the same
buffers, either a fresh draw or a few swapped elements (a change that a sampled-values memo
or a sum checksum cannot see), and every timed output is compared.

It counts the checks by kind (trial, extra, timed, warmup) and writes them, its reference
timings and its nonce, on fd 3; the supervisor accepts a correct result only when these counts
are complete and takes the reference's timing from here. Nothing the worker sends is
unpickled or executed here.
"""
# About 500 lines: the checker's protocol (inputs, judging, timing) is one class that the
# candidate's process never sees; its input swaps are timed_inputs.py.

import argparse
import json
import os
import random
import sys
import time
import traceback

from . import channel as kbrun_channel
from . import judge as kbrun_judge  # the tolerance rules: evidence, kernelbench, fixed
from . import problem as kp
from . import protocol
from . import timing
from .timed_inputs import swap_elements, swap_plan

PR_SET_DUMPABLE = 4


def build_reference(torch, req, device):
    """The reference Model, built as the worker builds ModelNew (problem.build_model)."""
    problem = kp.load_module(req["problem"], "kbrun_problem")
    seed = int(req["seed"])
    return kp.build_model(torch, problem.Model, kp.init_inputs(torch, problem, seed), seed, device,
                          kp.precision_dtype(torch, req["precision"]))


def dense_strides(x):
    """The strides of a tensor whose elements fill its storage exactly once in some order (a
    transposed input, say), for a buffer laid out the same way; None: a contiguous buffer."""
    if x.is_contiguous():
        return None
    try:
        dense = x.storage_offset() == 0 and all(s > 0 for s in x.stride()) and \
            x.untyped_storage().nbytes() == x.numel() * x.element_size()
    except (AttributeError, RuntimeError):
        dense = False
    return list(x.stride()) if dense else None


def snapshot_state(torch, model):
    """What a call of `model` may change and a second call would start from: every module's buffers
    and the tensors and plain numbers it holds as attributes (a recurrent model's hidden state, a
    step counter), as (holder, name, copy). Parameters are left out: a forward that changes its
    weights still fails the determinism check."""
    saved = []
    for module in model.modules():
        for name, value in module._buffers.items():
            if isinstance(value, torch.Tensor):
                saved.append((module._buffers, name, value.clone()))
        for name, value in vars(module).items():
            if isinstance(value, torch.Tensor):
                saved.append((vars(module), name, value.clone()))
            elif isinstance(value, (bool, int, float)):
                saved.append((vars(module), name, value))
    return saved


def restore_state(saved):
    for holder, name, value in saved:
        holder[name] = value


class Checker:
    def __init__(self, torch, req, device, chan, result):
        self.torch = torch
        self.device = device
        self.chan = chan
        self.result = result
        self.model = build_reference(torch, req, device)
        self.problem = sys.modules["kbrun_problem"]
        precision = req["precision"]
        self.dtype = kp.precision_dtype(torch, precision)
        self.judger = kbrun_judge.Judge(torch, kbrun_judge.rule_from_request(req), precision, self.model, device,
                                        req.get("atol"), req.get("rtol"))
        result["checks"]["extra"]["skipped"] = 0
        result["checks"]["shape"]["skipped"] = 0
        self.shape_skip = None  # why the current shape draw could not change the batch size
        self.cuda = device.type == "cuda"
        self.by_value = not self.cuda  # CUDA: values go into the worker's buffers by IPC
        self.seeds = []
        self.rng = random.Random(int.from_bytes(os.urandom(8), "little"))
        self.timer = None
        self.ref_ms = {}  # method -> reference timings
        self.swap_plan = None
        # The timing rounds ((kind, method) each) and how each round's inputs were made: ("draw",
        # seed) or ("swap", the rng's state before the swap), so that the baselines
        # (baselines.py) replay the same values call by call. timed_ok: every round passed.
        self.timing_rounds = []
        self.input_recipes = []
        self.timed_ok = False
        self.done = False  # the worker said "done": it sends nothing more
        self.determinism_checked = False
        self.laps = protocol.Laps()  # where the timing rounds' seconds go (result stage_times)
        self.check_laps = protocol.Laps()  # the same for the correctness checks

    # Inputs ---------------------------------------------------------------------------
    def draw(self, kind):
        """Fresh inputs from a seed the candidate's process never sees (private to the checker)."""
        torch = self.torch
        seed = int.from_bytes(os.urandom(4), "little")
        self.seeds.append(seed)
        kp.seed_all(torch, seed)
        if kind == "shape":
            return self.shape_draw()
        live = kp.make_inputs(torch, self.problem.get_inputs, self.device, self.dtype)
        if kind == "extra":
            _, scale, shift = kp.EXTRA_DRAWS[min(self.result["checks"]["extra"]["run"], len(kp.EXTRA_DRAWS) - 1)]
            live = kp.transformed_inputs(torch, live, scale, shift)
        return live

    def shape_draw(self):
        """--shapes varied: inputs at another leading batch size, through the problem's module-level
        batch_size (KernelBench's get_inputs() reads it), restored afterwards. Where the problem has
        no such global or the inputs do not fit, the problem's own inputs, and the check is skipped."""
        torch = self.torch
        label, factor = kp.SHAPE_DRAWS[min(self.result["checks"]["shape"]["run"], len(kp.SHAPE_DRAWS) - 1)]
        old = getattr(self.problem, "batch_size", None)
        self.shape_skip = None
        if not isinstance(old, int) or isinstance(old, bool) or old < 2:
            self.shape_skip = "%s: the problem has no module-level batch_size" % label
        else:
            self.problem.batch_size = max(1, int(old * factor))
            try:
                live = kp.make_inputs(torch, self.problem.get_inputs, self.device, self.dtype)
                if any(isinstance(x, torch.Tensor) and x.dim() and x.shape[0] == self.problem.batch_size
                       for x in live):
                    return live
                self.shape_skip = "%s: get_inputs() does not size its inputs by batch_size" % label
            except (RuntimeError, MemoryError) as exc:  # e.g. out of memory at twice the batch
                self.shape_skip = "%s: %s: %s" % (label, type(exc).__name__, str(exc)[:200])
                if self.cuda:
                    torch.cuda.empty_cache()
            finally:
                self.problem.batch_size = old
        return kp.make_inputs(torch, self.problem.get_inputs, self.device, self.dtype)

    def hand_over(self, live, buffers=None):
        """Gives the worker the values of `live`: written into its buffers (mapped once, reused
        for every timed call), or by value. Returns the worker's buffers as mapped here."""
        torch = self.torch
        if self.by_value:
            descs, payloads = kbrun_channel.describe(torch, live, cuda_by_value=True)
            self.chan.send({"type": "inputs", "inputs": descs}, payloads)
            return None
        if buffers is None:
            specs = [{"kind": "tensor", "dtype": str(x.dtype).replace("torch.", ""), "shape": list(x.shape),
                      "stride": dense_strides(x)}
                     if isinstance(x, torch.Tensor) else {"kind": "value", "v": x if x is None or isinstance(
                         x, (bool, int, float)) else None} for x in live]
            header, payloads = self.chan.request({"type": "specs", "inputs": specs})
            if header.get("type") != "buffers":
                raise RuntimeError("expected the worker's buffers, got %r" % header.get("type"))
            if header.get("refused"):
                return self.by_value_from_now(live, "the worker could not share CUDA memory (%s)" % (
                    str(header["refused"])[:300]))
            try:
                buffers = kbrun_channel.rebuild(torch, header["inputs"], payloads, self.device)
            except Exception as exc:  # e.g. CUDA IPC refused on this machine
                return self.by_value_from_now(live, "CUDA IPC could not be mapped in the checker (%s: %s)" % (
                    type(exc).__name__, str(exc)[:300]))
        for b, x in zip(buffers, live):
            if isinstance(x, torch.Tensor):
                if not isinstance(b, torch.Tensor) or b.shape != x.shape or b.dtype != x.dtype:
                    raise RuntimeError("the worker's buffers do not match the inputs")
                b.copy_(x)
        self.sync()
        self.chan.send({"type": "filled"})
        return buffers

    def by_value_from_now(self, live, why):
        """Tensors cross the channel by value from now on (slower, same verdict); sends `live`."""
        self.result["transport_note"] = "%s; tensors sent by value" % why
        self.by_value = True
        return self.hand_over(live)

    def receive_outputs(self, live, buffers):
        """The candidate's outputs for one call, and its inputs as the worker holds them after it."""
        reply, payloads = self.chan.recv()
        if reply.get("type") != "outputs":
            raise RuntimeError("unexpected message %r" % reply.get("type"))
        outputs = kbrun_channel.rebuild(self.torch, reply["outputs"], payloads, self.device)
        if "inputs_after" in reply:
            after = kbrun_channel.rebuild(self.torch, reply["inputs_after"], payloads, self.device)
        else:
            after = buffers if buffers is not None else live
        return outputs, after

    # Judging --------------------------------------------------------------------------
    def judge(self, kind, label, live, after, outputs, expected, ahead=None):
        torch = self.torch
        counts = self.result["checks"][kind]
        counts["run"] += 1
        verdict = {"type": "verdict", "ok": True, "status": "correct", "category": "", "message": ""}
        modified = [i for i, (now, before) in enumerate(zip(after, live))
                    if isinstance(before, torch.Tensor)
                    and not (isinstance(now, torch.Tensor) and torch.equal(now, before))]
        if modified:
            verdict.update(ok=False, status="rejected", category="modified_inputs",
                           message="%s: forward modified input %d in place" % (label, modified[0]))
        elif kind == "shape" and self.shape_skip:
            counts["skipped"] += 1
            verdict["skipped"] = True
            self.result.setdefault("shape_skipped", []).append(self.shape_skip)
        else:
            out = outputs[0] if len(outputs) == 1 and isinstance(expected, torch.Tensor) else tuple(outputs)
            # Timed calls against the fp32 reference only, within the bound the trials' evidence gives.
            v = (self.judger.judge_timed(expected, out) if kind in ("timed", "warmup")
                 else self.judger.judge(live, expected, out, kind, label, ahead))
            ok, category, message = v.ok, v.category, v.message
            self.result["max_abs_diff"] = self.judger.max_abs_diff
            self.result["mean_abs_diff"] = self.judger.mean_abs_diff
            if v.skipped:  # an extra draw outside the problem's domain: recorded, neither failed nor passed
                counts["skipped"] += 1
                verdict["skipped"] = True
            if not ok:
                if kind == "extra":
                    category, message = "failed_extra_inputs", "%s (%s)" % (message, category)
                elif kind == "shape":
                    category, message = "failed_varied_shapes", "%s (%s)" % (message, category)
                elif kind in ("timed", "warmup"):
                    category = "timed_output_mismatch"
                verdict.update(ok=False, status="incorrect", category=category, message="%s: %s" % (label, message))
        if verdict.get("skipped"):
            pass  # counted as skipped above: neither passed nor a failure
        elif verdict["ok"]:
            counts["passed"] += 1
        elif self.result["failure"] is None:
            self.result["failure"] = {k: verdict[k] for k in ("status", "category", "message")}
        return verdict

    def determinism_due(self, kind):
        return kind == "trial" and not self.determinism_checked

    def check_determinism(self, kind, live, expected, state_before):
        """On the first trial, the reference once more on the same inputs, from the state it started
        the first run in (`state_before`, snapshot_state: a reference that keeps state between calls,
        such as a hidden state, is checked, and stays in step with the candidate, which is called
        once). Where the two runs differ beyond rounding (kbrun_judge.run_to_run_difference), the
        problem cannot be checked, and the candidate is not judged against it
        (runtime_error/problem_error, not its fault). Returns that failing verdict, else None."""
        if not self.determinism_due(kind):
            return None
        self.determinism_checked = True
        restore_state(state_before)
        why = kbrun_judge.run_to_run_difference(self.torch, expected, self.reference(live), self.judger.unit)
        self.result["reference_deterministic"] = why is None
        if why is None:
            return None
        self.result["checks"][kind]["run"] += 1
        verdict = {"type": "verdict", "ok": False, "status": "runtime_error", "category": "problem_error",
                   "message": why}
        if self.result["failure"] is None:
            self.result["failure"] = {k: verdict[k] for k in ("status", "category", "message")}
        return verdict

    def reference(self, live, method=None):
        """The reference's output for `live` (on a copy: a reference that writes its inputs
        must not change the values later calls start from); timed when `method` is given."""
        torch = self.torch
        args = [x.clone() if isinstance(x, torch.Tensor) else x for x in live]
        with torch.no_grad():
            if method is None:
                return self.model(*args)
            if method == "warmup":
                return self.timer.warm_up(self.model, args)
            ms, out, _ = self.timer.time_once(self.model, args, method=method)
        self.ref_ms.setdefault(method, []).append(ms)
        return out

    # Protocol -------------------------------------------------------------------------
    def checked_call(self, header):
        """One correctness check: inputs out, the candidate's outputs back, a verdict. What needs
        only the inputs (the reference, its second run on the first trial, its float64 run) runs
        while the candidate's call runs in the worker: nothing here is timed, and the two
        processes share nothing but the inputs' buffers, written before the call."""
        kind = header.get("kind") if header.get("kind") in ("trial", "extra", "shape") else "trial"
        label = str(header.get("label", ""))[:200]
        laps = self.check_laps
        t = time.perf_counter()
        live = self.draw(kind)
        t = laps.lap("draw_s", t)
        buffers = self.hand_over(live)
        t = laps.lap("hand_over_s", t)
        state_before = snapshot_state(self.torch, self.model) if self.determinism_due(kind) else None
        expected = self.reference(live)
        self.sync()
        t = laps.lap("reference_calls_s", t)
        verdict = self.check_determinism(kind, live, expected, state_before)
        del state_before
        t = laps.lap("determinism_s", t)
        ahead = None if verdict or (kind == "shape" and self.shape_skip) else self.judger.reference64_ahead(live)
        self.sync()
        t = laps.lap("reference64_calls_s", t)
        outputs, after = self.receive_outputs(live, buffers)
        t = laps.lap("worker_calls_s", t)  # what is left of the candidate's call by now
        verdict = verdict or self.judge(kind, label, live, after, outputs, expected, ahead)
        del outputs, after, expected, buffers, ahead
        self.sync()
        laps.lap("judge_s", t)
        self.chan.send(verdict)

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def timing(self, header):
        """Warm-up and timed calls, alternating with the worker: each round new values in the
        worker's buffers, the candidate's call (timed there), then the reference's (timed here)."""
        torch = self.torch
        laps = self.laps
        t = time.perf_counter()
        rounds = [("warmup", None)] * int(header.get("warmup", 0)) + \
                 [("timed", m) for m in header.get("methods", [])]
        self.timing_rounds = rounds
        self.timer = timing.Timer(torch, self.device)
        t = laps.lap("timer_setup_s", t)
        live = self.draw("timed")
        self.input_recipes = [("draw", self.seeds[-1])]
        buffers = self.hand_over(live)
        t = laps.lap("first_inputs_s", t)
        for n, (kind, method) in enumerate(rounds):
            # The worker's turn (its timed call and guards), then its outputs mapped here.
            outputs, after = self.receive_outputs(live, buffers)
            t = laps.lap("worker_turns_s", t)
            expected = self.reference(live, "warmup" if kind == "warmup" else method)
            t = laps.lap("reference_calls_s", t)
            timed_index = n - int(header.get("warmup", 0))
            label = "warm-up call %d" % n if kind == "warmup" else "timed call %d" % timed_index
            verdict = self.judge(kind, label, live, after, outputs, expected)
            del outputs, after, expected
            t = laps.lap("judge_s", t)
            if verdict["ok"] and n + 1 < len(rounds):
                live = self.next_timed_inputs(live, kind, timed_index)
                t = laps.lap("next_inputs_s", t)
                verdict["next"] = True
                self.chan.send(verdict)
                self.hand_over(live, buffers)
                t = laps.lap("hand_over_s", t)
            else:
                self.chan.send(verdict)
                if not verdict["ok"]:
                    return
        self.timed_ok = bool(rounds)

    def next_timed_inputs(self, live, kind, timed_index):
        """The next round's values: a fresh draw, or every other timed round a few swapped
        elements of these (a sampled or summed memo of the inputs misses that change). Records
        how they were made (input_recipes), for replay_timed_inputs."""
        torch = self.torch
        if kind == "timed" and timed_index % 2 == 0:
            if self.swap_plan is None:
                self.swap_plan = swap_plan(torch, live)
            self.input_recipes.append(("swap", self.rng.getstate()))
            return swap_elements(torch, live, self.swap_plan, self.rng)
        live = self.draw("timed")
        self.input_recipes.append(("draw", self.seeds[-1]))
        return live

    def replay_timed_inputs(self):
        """The values of every timing round again, in order, made as they were made then (the
        same seeds, the same swaps): what the reference saw in round i, the baselines see too."""
        torch = self.torch
        live = None
        for how, arg in self.input_recipes:
            if how == "draw":
                kp.seed_all(torch, arg)
                live = kp.make_inputs(torch, self.problem.get_inputs, self.device, self.dtype)
            else:
                rng = random.Random()
                rng.setstate(arg)
                live = swap_elements(torch, live, self.swap_plan, rng)
            yield live

    def serve(self):
        while True:
            try:
                header, _ = self.chan.recv()
            except EOFError:
                return
            t = header.get("type")
            if t == "done":
                self.done = True
                return
            if t == "check":
                self.checked_call(header)
            elif t == "timing":
                self.timing(header)
            else:
                raise RuntimeError("unexpected message %r" % t)

    def wait_for_worker_end(self):
        """Returns when the worker's end of the channel is closed: the worker, and whatever it
        started that held the channel, has ended (the supervisor and the sandbox's init hold no
        copy). Reads raw bytes, so nothing the worker sends can end the wait early."""
        sock = self.chan.sock
        while True:
            try:
                if not sock.recv(1 << 16):
                    return
            except InterruptedError:
                continue
            except OSError:
                return

    def timing_summary(self):
        out = {}
        for method, samples in self.ref_ms.items():
            out[method] = timing.stats(samples)
        if self.timer is not None:
            out["spin_ms"] = self.timer.spin_ms
            out["clock_mhz"] = self.timer.clock_summary()
            out["spin"] = self.timer.spin_summary() if self.timer.cuda else None
        return out


def seal_self():
    """Not dumpable: the worker shares this process's PID namespace (CUDA IPC needs it), and
    a process of the same user without capabilities, as the candidate is, could otherwise
    read or write this one's memory (ptrace, /proc/<pid>/mem) and change its verdicts. Then
    the hello that the worker waits for before it loads any candidate code."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    chan = kbrun_channel.Channel(4)
    chan.send({"type": "hello"})
    return chan


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--request", required=True)
    args = parser.parse_args()
    chan = seal_self()
    with open(args.request) as f:
        req = json.load(f)
    os.unlink(args.request)
    nonce = req.pop("nonce")
    result = {"checks": {k: {"run": 0, "passed": 0} for k in ("trial", "extra", "shape", "timed", "warmup")},
              "max_abs_diff": None, "mean_abs_diff": None, "failure": None}
    checker = None
    t0 = time.perf_counter()
    stage_times = result["stage_times"] = {}
    try:
        import torch
        device = kp.use_device(torch, req["device"])
        stage_times["import_torch_s"] = time.perf_counter() - t0
        if req.get("go_fifo"):  # started ahead of its turn on the GPU lane: CUDA only, then wait
            t = time.perf_counter()
            if device.type == "cuda":
                torch.cuda.init()
            stage_times["cuda_init_s"] = time.perf_counter() - t
            if not protocol.wait_for_lane(req["go_fifo"]):
                os._exit(0)
            stage_times["waited_for_lane_s"] = time.perf_counter() - t - stage_times["cuda_init_s"]
        checker = Checker(torch, req, device, chan, result)  # the reference and its float64 copy
        stage_times["setup_s"] = time.perf_counter() - t0
        stage_times["timing_detail"] = checker.laps
        stage_times["correctness_detail"] = checker.check_laps
        checker.serve()
    except BaseException as exc:
        result["failure"] = {"status": "runtime_error", "category": "checker_failed",
                             "message": protocol.clip("%s: %s" % (type(exc).__name__, exc), 4000),
                             "detail": protocol.clip(traceback.format_exc(), 8000)}
    if checker is not None:
        result["input_seeds"] = checker.seeds
        result["timing"] = checker.timing_summary()
        result["judge"] = checker.judger.summary()
    result["checker_total_s"] = time.perf_counter() - t0
    protocol.progress("result %s %s" % (nonce, json.dumps(result, allow_nan=True)))
    # --baseline compile|cudagraph: after the verdict's figures are sent, and only when the
    # candidate's timing ran to its end (baselines.py). Each its own line.
    wanted = [b for b in req.get("baselines") or [] if b != "eager"]
    if checker is not None and wanted and checker.timed_ok and checker.done:
        from . import baselines as kbrun_baselines
        kbrun_baselines.run(checker, wanted, nonce, checker.wait_for_worker_end)
    os._exit(0)


if __name__ == "__main__":
    main()
