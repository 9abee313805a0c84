"""The reference's other versions the candidate is compared with (`--baseline compile|cudagraph`;
`eager`, the reference as written, is the checker's main measurement): the checker times them after
the candidate's timing, once the worker process has ended, on the same inputs.

  cudagraph  the reference's forward captured once in a CUDA graph (torch.cuda.graph, after three
             warm-up calls on a side stream) and replayed; each call's inputs are copied into the
             graph's input tensors before the call, outside the timed region
  compile    torch.compile(reference) with its defaults: the inductor backend, mode "default"

How each is timed is how the reference was: a fresh timing.Timer (kbrun's method, spin and
L2 flush; KernelBench's method on the same calls where the run had it), the same warm-up and
timed rounds, the same values round by round (Checker.replay_timed_inputs: the same seeds and
swaps). The setup (torch.compile's compile on the first call, the graph's capture) is timed apart
(`compile_s`, `capture_s`) and never counted. The output of the first and the last round is
compared with the eager reference's for the same values (the timed-call bound): a baseline that
computes something else is not a baseline.

Order and isolation: the eager reference has been timed already (the checker's timing rounds,
alternating with the candidate) before anything here runs, so nothing here can change eager's
kernels or its figures. The graph is captured before torch.compile runs (dynamo and inductor are
first imported after the capture), so the graph holds the eager kernels. torch.compile writes
its caches and temporary files (inductor's, Triton's, HOME and TMPDIR) into a folder made here
after the worker ended, so nothing the candidate left in the private directory is read as a
cached kernel; it compiles in this process (compile_threads 1: no pool of compile workers).

A baseline that cannot run here (no GPU for a graph, a torch without torch.compile) or fails
(capture refused, compile error, output differs) is recorded as unavailable with the reason; the
candidate's verdict never depends on it. Each result goes to the supervisor as its own line,
`baseline <nonce> <name> <json>`, as soon as it is known.
"""

import json
import os
import tempfile
import time
import traceback

from . import protocol
from . import timing

# What --baseline accepts. eager is the checker's main measurement; the others are timed here,
# the graph first (before torch.compile imports dynamo).
NAMES = ("eager", "compile", "cudagraph")
ORDER = ("cudagraph", "compile")
WARMUP_BEFORE_CAPTURE = 3

# How each was made, for result.json's baselines.<name>.how.
HOW = {
    "cudagraph": "torch.cuda.graph capture of the reference's forward, replayed (inputs copied into the graph's "
                 "inputs before each call, untimed)",
    "compile": "torch.compile(reference): backend inductor, mode default",
}


class Unavailable(Exception):
    """The baseline cannot run or failed here; the message says why."""


def why_unavailable(torch, device, name):
    """None when `name` can be tried here, else the reason it cannot."""
    if name == "cudagraph":
        if device.type != "cuda":
            return "CUDA graphs need a GPU; this run is on the CPU"
        if not hasattr(torch.cuda, "CUDAGraph") or not hasattr(torch.cuda, "graph"):
            return "torch %s has no torch.cuda.graph" % torch.__version__
        return None
    if name == "compile":
        if not hasattr(torch, "compile"):
            return "torch %s has no torch.compile (it came with torch 2.0)" % torch.__version__
        return None
    return "unknown baseline %r" % name


def copies(torch, live):
    """The reference's own copy of the inputs, as the checker's eager calls get one."""
    return [x.clone() if isinstance(x, torch.Tensor) else x for x in live]


def sync(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def check_output(checker, live, out, label):
    """Compares `out` with the eager reference's output for `live` (the timed-call bound)."""
    torch = checker.torch
    with torch.no_grad():
        expected = checker.model(*copies(torch, live))
    v = checker.judger.judge_timed(expected, out)
    if not v.ok:
        raise Unavailable("its output differs from the eager reference's in %s: %s" % (label, v.message))


def time_rounds(checker, call, prepare):
    """Times `call(*prepare(live))` over the checker's timing rounds again, on the values each round
    had, with a fresh Timer (the same method). prepare runs outside the timed region. Returns
    (timer, {method: [ms, ...]}, outputs checked)."""
    torch = checker.torch
    timer = timing.Timer(torch, checker.device)
    samples = {}
    rounds = checker.timing_rounds
    checked = 0
    with torch.no_grad():
        for n, ((kind, method), live) in enumerate(zip(rounds, checker.replay_timed_inputs())):
            args = prepare(live)
            if kind == "warmup":
                out = timer.warm_up(call, args)
            else:
                ms, out, _ = timer.time_once(call, args, method=method)
                samples.setdefault(method, []).append(ms)
            if n in (0, len(rounds) - 1):
                label = "warm-up call %d" % n if kind == "warmup" else "round %d (timed)" % n
                check_output(checker, live, out, label)
                checked += 1
            del out, args
    return timer, samples, checked


def measured(checker, timer, samples, checked):
    """The result.json entry of a timed baseline."""
    primary = next((m for kind, m in checker.timing_rounds if kind == "timed"), None)
    if not samples.get(primary):
        raise Unavailable("no timed call")
    doc = {"status": "measured", "method": primary}
    doc.update(timing.stats(samples[primary]))
    if samples.get(timing.KERNELBENCH_METHOD):
        doc["kernelbench"] = timing.stats(samples[timing.KERNELBENCH_METHOD])
    doc["checked_calls"] = checked
    if timer.cuda:
        doc["spin_ms"] = timer.spin_ms
        doc["sm_clock_mhz"] = timer.clock_summary()
    return doc


def cudagraph_baseline(checker):
    torch = checker.torch
    first = next(checker.replay_timed_inputs())
    static = copies(torch, first)
    t = time.perf_counter()
    with torch.no_grad():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_BEFORE_CAPTURE):
                checker.model(*static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = checker.model(*static)
    torch.cuda.synchronize()
    capture_s = time.perf_counter() - t

    def prepare(live):
        for s, x in zip(static, live):
            if isinstance(s, torch.Tensor):
                s.copy_(x)
        return []

    def replay():
        graph.replay()
        return static_out

    timer, samples, checked = time_rounds(checker, replay, prepare)
    doc = measured(checker, timer, samples, checked)
    doc["capture_s"] = capture_s
    return doc


def private_compile_dirs():
    """A folder made now (the worker has ended) for torch.compile's caches and temporary files:
    inductor's and Triton's caches, HOME and TMPDIR. Returns its path."""
    root = tempfile.mkdtemp(prefix="kbrun-baseline-")
    for sub, var in (("inductor", "TORCHINDUCTOR_CACHE_DIR"), ("triton", "TRITON_CACHE_DIR"), ("home", "HOME"),
                     ("tmp", "TMPDIR")):
        path = os.path.join(root, sub)
        os.mkdir(path)
        os.environ[var] = path
    tempfile.tempdir = None  # tempfile reads TMPDIR again
    return root


def graph_breaks(torch):
    """How many times dynamo broke the graph (parts then run eagerly), or None where unknown."""
    try:
        from torch._dynamo.utils import counters
        return int(sum(counters["graph_break"].values()))
    except Exception:
        return None


def compile_baseline(checker):
    torch = checker.torch
    cache = private_compile_dirs()
    os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = "1"  # read when inductor's config is imported
    try:
        import torch._inductor.config as inductor_config
    except Exception as exc:
        raise Unavailable("torch.compile's inductor cannot be loaded: %s: %s" % (type(exc).__name__, exc))
    try:
        inductor_config.compile_threads = 1  # compile here, no pool of worker processes
    except Exception:
        pass  # a torch without the setting: the variable above, or its default
    first = next(checker.replay_timed_inputs())
    t = time.perf_counter()
    compiled = torch.compile(checker.model)
    with torch.no_grad():
        out = compiled(*copies(torch, first))  # the first call compiles
    sync(torch, checker.device)
    compile_s = time.perf_counter() - t
    del out
    timer, samples, checked = time_rounds(checker, compiled, lambda live: copies(torch, live))
    doc = measured(checker, timer, samples, checked)
    doc["compile_s"] = compile_s
    doc["graph_breaks"] = graph_breaks(torch)
    doc["cache_dir"] = cache
    return doc


def cleanup(torch, device):
    try:
        sync(torch, device)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    except Exception:
        pass


def run(checker, names, nonce, wait_for_worker, emit=protocol.progress):
    """Times the baselines in `names` (compile, cudagraph; eager is the supervisor's from the
    checker's main timing), each result on its own line. wait_for_worker() returns once the worker
    has ended; it is called only when a baseline can be tried here. Never raises."""
    torch = checker.torch
    wanted = [n for n in ORDER if n in names]
    reasons = {n: why_unavailable(torch, checker.device, n) for n in wanted}
    if any(r is None for r in reasons.values()):
        wait_for_worker()
        emit("stage baselines")  # the supervisor's baseline deadline starts here
    for name in wanted:
        emit("stage baseline %s" % name)
        t = time.perf_counter()
        try:
            if reasons[name] is not None:
                raise Unavailable(reasons[name])
            doc = cudagraph_baseline(checker) if name == "cudagraph" else compile_baseline(checker)
        except Unavailable as exc:
            doc = {"status": "unavailable", "reason": protocol.clip(str(exc), 2000)}
        except Exception as exc:
            doc = {"status": "unavailable",
                   "reason": protocol.clip("%s failed: %s: %s" % (name, type(exc).__name__, exc), 2000),
                   "detail": protocol.clip(traceback.format_exc(), 4000)}
        cleanup(torch, checker.device)
        doc["how"] = HOW[name]
        doc["seconds"] = round(time.perf_counter() - t, 3)
        emit("baseline %s %s %s" % (nonce, name, json.dumps(doc, allow_nan=True)))
