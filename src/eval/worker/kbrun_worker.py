"""kbrun's evaluation worker: runs in a child process that the C++ supervisor controls.

It measures; it does not decide. The supervisor (src/eval/supervisor.cc) reads the
measurements this worker writes and decides the verdict. Phases:
  compile  import the candidate (its load_inline builds run here); no GPU work
  run      reload the candidate (the build is cached in the same private dir), call it on
           the inputs the checker (kbrun_checker.py) draws, and time it; the checker judges
           the outputs and runs and times the reference in its own process

Progress lines go to fd 3 ("stage <name>") so the supervisor can start the run
clock when compiling ends. Only torch (and the standard library) is used.
"""

import argparse
import importlib.util
import json
import os
import random
import statistics
import threading
import sys
import time
import traceback

T0 = time.perf_counter()

PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
MAX_TEXT = 20000
CHUNK = 1 << 26  # elements compared at a time


def progress(line):
    try:
        os.write(3, (line + "\n").encode())
    except OSError:
        pass


def clip(text, limit=MAX_TEXT):
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n[... %d characters omitted ...]\n" % (len(text) - limit) + text[-half:]


class Failure(Exception):
    """A classified failure: status is the supervisor's vocabulary."""

    def __init__(self, status, category, message, detail=""):
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.detail = detail


class _Deferred(Exception):
    pass


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def classify_exception(exc, phase):
    """Maps an exception to (status, category)."""
    text = "%s: %s" % (type(exc).__name__, exc)
    low = text.lower()
    if isinstance(exc, SyntaxError):
        return "compile_error", "syntax_error"
    if "error building extension" in low or "ninja: build stopped" in low:
        return "compile_error", "build_failed"
    if "out of memory" in low or type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError) \
            or "can't allocate memory" in low:
        return "runtime_error", "out_of_memory"
    if "illegal memory access" in low or "cuda error" in low or "device-side assert" in low \
            or "misaligned address" in low or "unspecified launch failure" in low:
        return "runtime_error", "cuda_error"
    if phase == "compile":
        return "runtime_error", "import_error"
    return "runtime_error", "exception"


def failure_from_exception(exc, phase):
    status, category = classify_exception(exc, phase)
    tb = traceback.format_exc()
    message = "%s: %s" % (type(exc).__name__, exc)
    return Failure(status, category, clip(message, 8000), clip(tb, 8000))


def prepare_build(build, reuse_earlier_builds):
    """Sets up how this process builds the candidate's extensions: the backend's flags
    (include paths, -std, defines, arch) in both compile modes; in fast mode kbrun's build
    step (kbrun_build.py, beside this file: cached, PCH, lighter CUDA headers), which without
    a shared cache still caches in the private dir, so later phases reuse the compile; in
    plain mode, with reuse_earlier_builds, the compile phase's torch build folders.
    Returns kbrun_build's list of build records (filled as builds happen) in fast mode, else None."""
    from kbrun_eval import build as kbrun_build
    kbrun_build.add_backend_flags(build.get("backend") or {})
    if build.get("mode", "fast") == "fast":
        private = os.path.join(os.environ.get("TORCH_EXTENSIONS_DIR", "."), "kbrun-cache")
        kbrun_build.install(build.get("cache_dir") or private,
                            use_pch=bool(build.get("pch", True) and build.get("cache_dir")))
        return kbrun_build.builds
    if reuse_earlier_builds and os.environ.get("TORCH_EXTENSIONS_DIR"):
        reuse_compile_phase_builds(os.environ["TORCH_EXTENSIONS_DIR"])
    return None


def reuse_compile_phase_builds(build_root):
    """In the run phase, load what the compile phase built instead of building again.

    load_inline rewrites its sources on every call (torch 1.13 always does), so ninja
    sees new mtimes and rebuilds. The compile phase already built these exact
    sources in this private directory, so the run phase skips ninja where a
    library from that build exists.
    """
    from torch.utils import cpp_extension

    original = cpp_extension._run_ninja_build

    def run_ninja_build(build_directory, *args, **kwargs):
        built = [f for f in os.listdir(build_directory) if f.endswith((".so", ".pyd"))]
        if built and os.path.abspath(build_directory).startswith(os.path.abspath(build_root)):
            return None
        return original(build_directory, *args, **kwargs)

    cpp_extension._run_ninja_build = run_ninja_build


def use_device(torch, name):
    """The device a process works on ("cuda": its only visible GPU), set up alike in the
    worker, the checker and the profiler: honest fp32, no TF32 shortcuts for the reference
    (or the candidate's torch calls)."""
    device = torch.device("cuda:0" if name == "cuda" else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return device


def seed_all(torch, seed):
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def make_inputs(torch, get_inputs, device, dtype):
    """Draws inputs directly on the device where torch allows it (fast for GB-sized inputs)."""
    if device.type == "cuda" and hasattr(torch.device, "__enter__"):
        with torch.device(device):
            values = get_inputs()
    else:
        values = get_inputs()
    return to_device(torch, values, device, dtype)


def to_device(torch, values, device, dtype):
    out = []
    for v in values:
        if isinstance(v, torch.Tensor):
            v = v.to(device)
            if dtype is not None and v.is_floating_point():
                v = v.to(dtype)
        out.append(v)
    return out


def flatten_outputs(torch, out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        flat = []
        for o in out:
            flat.extend(flatten_outputs(torch, o))
        return flat
    raise Failure("incorrect", "bad_output_type", "forward returned %s, not a tensor" % type(out).__name__)


def stats(samples_ms):
    s = sorted(samples_ms)
    return {
        "median_ms": statistics.median(s),
        "mean_ms": statistics.fmean(s),
        "std_ms": statistics.pstdev(s) if len(s) > 1 else 0.0,
        "min_ms": s[0],
        "max_ms": s[-1],
        "trials": len(s),
    }


# Timing methods (result.json timing.method). On the GPU every run has both: kbrun's figure,
# and KernelBench's cuda_event method on a quarter as many calls, interleaved, for comparison.
GPU_METHOD = "cuda_events_launch_hidden_l2_flush"
KERNELBENCH_METHOD = "kernelbench_cuda_event_l2_flush"
CPU_METHOD = "wall_clock_cache_flush"
# The spin before each call: at least MIN_SPIN_MS, twice the call's host time, longer while the
# clock during it stays below FULL_CLOCK of the fastest rate seen (Timer._note_clock).
MIN_SPIN_MS = 0.1
MAX_SPIN_MS = 2.0
FULL_CLOCK = 0.95
# Time between a call's end event and the drain's end, beyond the drain's own, below which it
# is the drain's jitter, not the call's work (Timer.time_once).
AFTER_END_SLACK_MS = 0.001


def timing_methods(device, n):
    """The method of each timed call, in order."""
    if device.type != "cuda":
        return [CPU_METHOD] * n
    methods = []
    for i in range(n):
        methods.append(GPU_METHOD)
        if i % 4 == 3:
            methods.append(KERNELBENCH_METHOD)
    return methods


class Timer:
    """Times one call of fn, the same way for the reference (in the checker) and the candidate
    (in the worker).

    GPU, kbrun's method: the L2 cache is flushed (a buffer twice its size is zeroed) and the
    device synchronised; a spin kernel then holds the stream while the call's launches queue
    up behind it (nvbench's blocking kernel), so the events measure the GPU's time for the
    call, not the host's launch latency. The spin fills every multiprocessor (kbrun_spin), so
    work the call puts on another stream cannot run during it. It lasts at least MIN_SPIN_MS
    and twice the call's host time seen in the warm-up (at most MAX_SPIN_MS): host time beyond
    that is still counted. Its last three quarters lie between two events, so each call also tells the SM
    clock it ran at (`clock_mhz`): the GPU lowers its clock within milliseconds of idling
    (the host's work between calls), and a call that starts at a low clock runs slower, so the
    spin grows until the clock during it is full (`_note_clock`); it keeps reference and
    candidate at the same clock. KernelBench's method is the same without the spin (launch
    latency and clock ramp counted). Both record the end event in
    stream order. kbrun's method then queues the drain (kbrun_spin), which ends only when no
    other kernel runs: work the call left on another stream past the end event is counted in
    the call. `snapshot(out)` is queued after, outside the timed region, and the whole device is
    synchronised before anything else runs, so such work never overlaps the next measurement.
    CPU: wall clock, with a cache flush by writing a buffer larger than the last-level cache.
    """

    def __init__(self, torch, device):
        self.torch = torch
        self.cuda = device.type == "cuda"
        self.host_ms = []
        self.spin_ms = MIN_SPIN_MS if self.cuda else 0.0
        self.clock_mhz = []
        if self.cuda:
            props = torch.cuda.get_device_properties(device)
            l2 = getattr(props, "L2_cache_size", 0) or 64 * 1024 * 1024
            self.flush_buf = torch.empty(int(2 * l2) // 4, dtype=torch.int32, device=device)
            self.start = torch.cuda.Event(enable_timing=True)
            self.end = torch.cuda.Event(enable_timing=True)
            self.spin_mark = torch.cuda.Event(enable_timing=True)
            self.end_all = torch.cuda.Event(enable_timing=True)
            from kbrun_eval import spin as kbrun_spin
            self.spin = kbrun_spin.Spin(torch, device)
            self.cycles_per_ms = self._spin_cycles_per_ms()
            self.drain_ms = self._drain_ms() if self.spin.can_drain else None
            self.after_end_ms = []  # work the timed calls left on other streams, counted
        else:
            self.flush_buf = torch.empty(32 * 1024 * 1024 // 4, dtype=torch.int32)

    @property
    def spin_cycles(self):
        """The spin's length in SM clock cycles: spin_ms at the fastest rate seen (0 off the GPU,
        which has no rate)."""
        return int(self.spin_ms * getattr(self, "cycles_per_ms", 0.0))

    def _spin_cycles_per_ms(self, cycles=1000000):
        """How many of the spin's clock cycles pass per millisecond at the SM clock right now."""
        torch = self.torch
        torch.cuda.synchronize()
        self.start.record()
        self.spin(cycles)
        self.end.record()
        self.end.synchronize()
        ms = self.start.elapsed_time(self.end)
        return cycles / ms if ms > 0 else 2000000.0

    def _drain_ms(self, runs=5):
        """The drain's own duration on an otherwise idle GPU, right after a spin (full clock):
        the least of a few, so that anything beyond it after a call is counted."""
        torch = self.torch
        samples = []
        for _ in range(runs):
            torch.cuda.synchronize()
            self.spin(int(0.05 * getattr(self, "cycles_per_ms", 2000000.0)))
            self.start.record()
            self.spin.drain()
            self.end.record()
            self.end.synchronize()
            samples.append(self.start.elapsed_time(self.end))
        return min(samples)

    def warm_up(self, fn, args):
        """One untimed call (a warm-up), spun and flushed like a timed one: measures how long
        the host takes to issue it, which sizes the spin. Returns its output."""
        if not self.cuda:
            return fn(*args)
        _, out, _ = self.time_once(fn, args, warm_up=True)
        # Calibrated again right after a call, at the clock the timed calls will see: a rate
        # taken at an idle clock (an H200 idles at 345 MHz, boosts to 1980) would make the
        # spin several times shorter than meant, and launch latency would leak into the
        # figure. The fastest rate seen wins: a spin too long costs nothing.
        self.cycles_per_ms = max(self.cycles_per_ms, self._spin_cycles_per_ms(200000))
        self.spin_ms = min(max(2 * statistics.median(self.host_ms) + 0.01, self.spin_ms), MAX_SPIN_MS)
        if self.drain_ms is not None:
            self.drain_ms = min(self.drain_ms, self._drain_ms(2))
        return out

    def time_once(self, fn, args, method=None, snapshot=None, warm_up=False):
        """Returns (milliseconds, output, snapshot(output) or None)."""
        torch = self.torch
        self.flush_buf.zero_()
        snap = None
        if self.cuda:
            torch.cuda.synchronize()
            cycles = self.spin_cycles if method != KERNELBENCH_METHOD else 0
            if cycles:
                # The first quarter covers the launch of the mark and of the rest of the spin.
                lead = cycles // 4
                self.spin(lead)
                self.spin_mark.record()
                self.spin(cycles - lead)
            self.start.record()
            t = time.perf_counter()
            out = fn(*args)
            if warm_up:
                self.host_ms.append((time.perf_counter() - t) * 1000.0)
            self.end.record()
            drained = bool(cycles) and self.drain_ms is not None
            if drained:
                self.spin.drain()
                self.end_all.record()
            if snapshot is not None:
                snap = snapshot(out)
            (self.end_all if drained else self.end).synchronize()
            ms = self.start.elapsed_time(self.end)
            if drained:
                # The end event waits for the caller's stream only; the drain ends when nothing
                # else runs. What lies between, beyond the drain's own time and its jitter, was
                # the call's work on other streams: part of the call.
                after = self.end.elapsed_time(self.end_all) - self.drain_ms
                if after > max(AFTER_END_SLACK_MS, 0.5 * self.drain_ms):
                    ms += after
                    if not warm_up:
                        self.after_end_ms.append(after)
            if cycles:
                self._note_clock(self.spin_mark.elapsed_time(self.start), cycles - lead, warm_up)
            torch.cuda.synchronize()
        else:
            t = time.perf_counter()
            out = fn(*args)
            ms = (time.perf_counter() - t) * 1000.0
        return ms, out, snap

    def _note_clock(self, spin_ms, cycles, warm_up):
        """The SM clock over the spin's measured part. Below FULL_CLOCK of the fastest rate
        seen, the GPU has not reached its clock after the idle gap before the call (the host's
        work between calls; the clock falls within milliseconds), or the host's launches ran
        past the spin: either way a longer spin, up to MAX_SPIN_MS, for the calls after."""
        if spin_ms <= 0:
            return
        mhz = cycles / spin_ms / 1000.0
        if not warm_up:
            self.clock_mhz.append(mhz)
        if mhz < FULL_CLOCK * self.cycles_per_ms / 1000.0 and self.spin_ms < MAX_SPIN_MS:
            self.spin_ms = min(2 * self.spin_ms, MAX_SPIN_MS)

    def spin_summary(self):
        """result.json timing.spin for this side: the spin's kind, the drain's own time, and
        the timed calls whose work on other streams ran past their end event (counted)."""
        d = self.spin.describe()
        d["drain_ms"] = self.drain_ms
        d["calls_with_work_after_end"] = len(self.after_end_ms)
        if self.after_end_ms:
            d["work_after_end_ms"] = stats(self.after_end_ms)
        return d

    def clock_summary(self):
        """result.json timing.sm_clock_mhz for this side, or None off the GPU."""
        if not self.clock_mhz:
            return None
        s = sorted(self.clock_mhz)
        full = FULL_CLOCK * self.cycles_per_ms / 1000.0
        return {"median": statistics.median(s), "min": s[0], "max": s[-1],
                "max_rate": self.cycles_per_ms / 1000.0, "calls_below_full": sum(1 for m in s if m < full)}


class Guard:
    """Checks around every call of the candidate (reward-hack defences, docs/EVALUATION.md).

    Raises Failure("rejected", ...) when the candidate patched the harness, kept work
    running in threads or processes, changed its inputs, or returned memory it does
    not own (an input, or a tensor the harness holds).
    """

    def __init__(self, torch, device):
        self.torch = torch
        self.cuda = device.type == "cuda"
        self.threads_before = set(threading.enumerate())
        # What the harness relies on, captured before the candidate runs any code.
        self.originals = {
            "torch.allclose": torch.allclose,
            "torch.isfinite": torch.isfinite,
            "torch.equal": torch.equal,
            "torch.Tensor.float": torch.Tensor.float,
            "time.perf_counter": time.perf_counter,
            "kbrun_worker.Timer.time_once": Timer.time_once,
            "kbrun_worker.progress": progress,
        }
        if self.cuda:
            from kbrun_eval import spin as kbrun_spin
            self.originals.update({
                "kbrun_spin.Spin.__call__": kbrun_spin.Spin.__call__,
                "kbrun_spin.Spin.drain": kbrun_spin.Spin.drain,
                "torch.cuda._sleep": torch.cuda._sleep,
                "torch.cuda.synchronize": torch.cuda.synchronize,
                "torch.cuda.Event": torch.cuda.Event,
                "torch.cuda.Event.record": torch.cuda.Event.record,
                "torch.cuda.Event.elapsed_time": torch.cuda.Event.elapsed_time,
                "torch.cuda.Event.synchronize": torch.cuda.Event.synchronize,
            })

    def current(self, name):
        roots = {"torch": self.torch, "time": time, "kbrun_worker": sys.modules[__name__],
                 "kbrun_spin": sys.modules.get("kbrun_eval.spin")}
        obj = roots[name.split(".")[0]]
        for part in name.split(".")[1:]:
            obj = getattr(obj, part)
        return obj

    def check_harness(self):
        for name, original in self.originals.items():
            if self.current(name) is not original:
                raise Failure("rejected", "patched_harness", "the candidate replaced %s" % name)

    def check_after_call(self, inputs, saved_inputs, outputs):
        torch = self.torch
        self.check_harness()
        new_threads = [t for t in threading.enumerate() if t not in self.threads_before and t.is_alive()]
        if new_threads:
            raise Failure("rejected", "background_thread",
                          "the candidate left %d thread(s) running after forward returned: %s" % (
                              len(new_threads), ", ".join(t.name for t in new_threads[:3])))
        children = child_processes()
        if children:
            raise Failure("rejected", "spawned_process",
                          "the candidate started processes: pids %s" % ", ".join(map(str, children[:5])))
        if saved_inputs is not None:
            for i, (now, before) in enumerate(zip(inputs, saved_inputs)):
                if isinstance(before, torch.Tensor) and not torch.equal(now, before):
                    raise Failure("rejected", "modified_inputs", "forward modified input %d in place" % i)
        for i, out in enumerate(flatten_outputs(torch, outputs)):
            if type(out) is not torch.Tensor:
                raise Failure("rejected", "bad_output_type",
                              "output %d is a %s, not a plain torch.Tensor" % (i, type(out).__name__))
            for j, x in enumerate(inputs):
                if isinstance(x, torch.Tensor) and shares_memory(out, x):
                    raise Failure("rejected", "output_aliases_input",
                                  "output %d shares memory with input %d (a view or the input itself)" % (i, j))


def memory_span(t):
    """[first, last) byte addresses a tensor can touch, from its pointer, sizes and strides."""
    extent = 1 + sum((size - 1) * abs(stride) for size, stride in zip(t.shape, t.stride()))
    return t.data_ptr(), t.data_ptr() + extent * t.element_size()


def shares_memory(a, b):
    if a.numel() == 0 or b.numel() == 0 or a.device != b.device:
        return False
    a0, a1 = memory_span(a)
    b0, b1 = memory_span(b)
    return a0 < b1 and b0 < a1


def network_interfaces():
    """Interfaces of this process's network namespace (/sys/class/net shows the mount's)."""
    try:
        with open("/proc/self/net/dev") as f:
            return sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    except OSError:
        return None


def child_processes():
    """Live children of this process (the worker starts none after compiling). In kbrun's
    sandbox (a PID namespace whose init, pid 1, is kbrun's) every other live process there
    is the candidate's, a double-forked daemon too. Without the PID namespace
    (ProcessSpec::pid_namespace off) the init, the parent, is a subreaper that adopts what
    the candidate left, so its other children are the candidate's."""
    pids, adopted = [], []
    me = os.getpid()
    try:
        with open("/proc/1/comm") as f:
            sandboxed = me != 1 and f.read().strip() == "kbrun-sandbox"
        if sandboxed:
            pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]
        else:
            parent = os.getppid()
            with open("/proc/%d/comm" % parent) as f:
                if f.read().strip() == "kbrun-sandbox":
                    with open("/proc/%d/task/%d/children" % (parent, parent)) as f:
                        adopted = [int(p) for p in f.read().split() if int(p) != me]
                    pids += adopted
    except OSError:
        sandboxed = False
    try:
        for tid in ([] if sandboxed else os.listdir("/proc/self/task")):
            with open("/proc/self/task/%s/children" % tid) as f:
                pids += [int(p) for p in f.read().split()]
    except OSError:
        return []
    alive = []
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and (sandboxed or int(fields[1]) == me or pid in adopted):
                alive.append(pid)
        except (OSError, IndexError, ValueError):
            pass
    return alive


def poison_free_memory(torch, device):
    """Fills the caching allocator's free blocks with NaN, so a candidate that returns
    uninitialised memory cannot return a previous answer that happens to be there."""
    if device.type != "cuda":
        return
    free = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if free > (1 << 20):
        try:
            block = torch.empty(free // 4, dtype=torch.float32, device=device)
            block.fill_(float("nan"))
            del block
        except RuntimeError:
            pass


def transformed_inputs(torch, inputs, scale, shift):
    """Inputs of another scale and mean: catches kernels right only for one input range."""
    out = []
    for x in inputs:
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            x = x * scale + shift
        out.append(x)
    return out


# The two extra draws: other scales and means than get_inputs() gives.
EXTRA_DRAWS = (("extra inputs x*4+2", 4.0, 2.0), ("extra inputs x*0.1-0.5", 0.1, -0.5))
# --shapes varied: the leading batch size (a problem's module-level batch_size) halved and doubled.
SHAPE_DRAWS = (("batch size x0.5", 0.5), ("batch size x2", 2.0))


class CheckerLink:
    """The worker's end of the channel to the checker process (kbrun_checker.py).

    The checker, not this process, draws the inputs of every checked call, runs the reference
    and decides whether the outputs are right: the worker receives the inputs (written by the
    checker into buffers this process allocated, so it never holds a handle to the checker's
    memory; or by value), calls the candidate, and sends the outputs back. The checker's verdict
    comes back so that a failing run stops early; its own counts go to the supervisor directly.
    """

    def __init__(self, torch, device):
        from kbrun_eval import channel as kbrun_channel
        self.torch = torch
        self.device = device
        self.channel = kbrun_channel
        self.by_value = device.type != "cuda"  # CUDA: IPC until the checker says otherwise
        try:
            self.chan = kbrun_channel.Channel(4)
        except OSError as exc:
            raise Failure("runtime_error", "checker_failed", "no channel to the checker: %s" % exc)
        # The checker's first message says it can no longer be traced (kbrun_checker.seal_self):
        # the worker loads candidate code only after it.
        header, _ = self._recv()
        if header.get("type") != "hello":
            raise self._unexpected(header)

    def _send(self, header, payloads=()):
        try:
            self.chan.send(header, payloads)
        except OSError as exc:
            raise Failure("runtime_error", "checker_failed", "the checker stopped answering: %s" % exc)

    def _recv(self):
        try:
            return self.chan.recv()
        except (OSError, EOFError, ValueError) as exc:
            raise Failure("runtime_error", "checker_failed", "the checker stopped answering: %s" % exc)

    def _unexpected(self, header):
        return Failure("runtime_error", "checker_failed", "unexpected answer from the checker: %r" % (
            {k: header.get(k) for k in ("type", "message")},))

    def receive_inputs(self, buffers=None):
        """The checker's next inputs. It asks for buffers (shapes and dtypes) the first time and
        writes into them; or it sends values, which go into `buffers` when given, so that the
        candidate sees the same pointers every timed call."""
        torch = self.torch
        header, payloads = self._recv()
        if header.get("type") == "specs":
            buffers = []
            for spec in header.get("inputs", []):
                if spec.get("kind") != "tensor":
                    buffers.append(spec.get("v"))
                    continue
                dtype = self.channel._dtype(torch, spec["dtype"])
                if spec.get("stride") is not None:
                    buffers.append(torch.empty_strided(spec["shape"], spec["stride"], dtype=dtype, device=self.device))
                else:
                    buffers.append(torch.empty(spec["shape"], dtype=dtype, device=self.device))
            try:
                descs, out_payloads = self.channel.describe(torch, buffers)
                self._send({"type": "buffers", "inputs": descs}, out_payloads)
            except Failure:
                raise
            except Exception as exc:  # no CUDA IPC handle here (seen in a sandbox on an H200): values instead
                self.by_value = True
                self._send({"type": "buffers", "refused": "%s: %s" % (type(exc).__name__, str(exc)[:300])})
            header, payloads = self._recv()
        if header.get("type") == "filled" and buffers is not None:
            return buffers
        if header.get("type") != "inputs":
            raise self._unexpected(header)
        self.by_value = True  # the checker sends values from now on
        try:
            values = self.channel.rebuild(torch, header["inputs"], payloads, self.device)
        except Exception as exc:
            raise Failure("runtime_error", "checker_failed", "cannot read the checker's inputs: %s" % exc)
        if buffers is None:
            return values
        for b, v in zip(buffers, values):
            if isinstance(b, torch.Tensor):
                b.copy_(v)
        return buffers

    def check(self, kind, label):
        """Inputs for one correctness check."""
        self._send({"type": "check", "kind": kind, "label": label})
        return self.receive_inputs()

    def start_timing(self, warmup, methods):
        """The buffers every warm-up and timed call uses, holding the first call's values."""
        self._send({"type": "timing", "warmup": warmup, "methods": methods})
        return self.receive_inputs()

    def outputs(self, inputs, outputs):
        """Sends the outputs (and the inputs, where the checker cannot see the worker's buffers
        itself); returns the checker's verdict, or raises its failure."""
        torch = self.torch
        flat = flatten_outputs(torch, outputs)
        try:
            descs, payloads = self.channel.describe(torch, flat, cuda_by_value=self.by_value)
        except Exception:  # no CUDA IPC handle for this output: by value, this call and the rest
            if self.by_value:
                raise
            self.by_value = True
            descs, payloads = self.channel.describe(torch, flat, cuda_by_value=True)
        header = {"type": "outputs", "outputs": descs}
        if self.by_value:
            header["inputs_after"], payloads = self.channel.describe(torch, inputs, payloads, True)
        self._send(header, payloads)
        v, _ = self._recv()
        if v.get("type") != "verdict":
            raise self._unexpected(v)
        if not v.get("ok"):
            raise Failure(v.get("status", "incorrect"), v.get("category", "checker"), v.get("message", ""))
        return v

    def done(self):
        try:
            self.chan.send({"type": "done"})
        except OSError:
            pass


def stream_snapshot(torch, out):
    """Copies (the head of) each output on the current stream, right after forward returns.

    A caller that reads the output in stream order sees exactly this. Work left on
    another stream without synchronising is still writing the output: the copy then
    holds poisoned or partial memory and differs from the output after a device sync.
    """
    snap = []
    for o in flatten_outputs(torch, out):
        if isinstance(o, torch.Tensor) and o.is_cuda:
            snap.append(o.detach().reshape(-1)[:CHUNK].clone())
        else:
            snap.append(None)
    return snap


def check_stream_order(torch, out, snapshot):
    for i, (o, s) in enumerate(zip(flatten_outputs(torch, out), snapshot)):
        if s is None:
            continue
        final = o.detach().reshape(-1)[:CHUNK].contiguous()
        same = (torch.equal(s, final) if s.dtype == torch.bool
                else torch.equal(s.view(torch.uint8), final.view(torch.uint8)))
        if not same:
            raise Failure("rejected", "unsynchronized_stream",
                          "output %d was not ready on the current stream when forward returned: the work "
                          "ran on another stream without synchronising with the caller's stream" % i)


def check_trial(torch, guard, device, new_model, checker, kind, label):
    """One correctness check: the checker's inputs, the candidate's call, the checker's verdict
    (it runs the reference on its own copy of the inputs, in its own process)."""
    inputs = checker.check(kind, label)
    poison_free_memory(torch, device)
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
        guard.check_after_call(inputs, None, new_out)
        if snapshot is not None:
            check_stream_order(torch, new_out, snapshot)
        checker.outputs(inputs, new_out)


def prebuild(req, torch, candidate):
    """Compile phase: constructs ModelNew(*get_init_inputs()) once, on the CPU, so that what a
    candidate builds in its __init__ (load_inline there is common in real model output) is built
    here, by the compile pool, through the cache, instead of on the GPU lane in the run phase;
    then makes the build calls its other functions hold (kbrun_deferred_builds: a build on the
    first forward). Best effort and never a verdict: the model is thrown away, an error (a
    constructor that needs a GPU, say) is only recorded. Returns {"constructed", "builds",
    "seconds", "deferred", "note"?}."""
    from kbrun_eval import build as kbrun_build
    t = time.perf_counter()
    before = len(kbrun_build.build_attempts)
    out = {"constructed": False}
    model = None
    # The run phase has a GPU: a constructor that builds only `if torch.cuda.is_available()`
    # builds here too (what it then does on a GPU it does not have fails, and is only noted).
    is_available = torch.cuda.is_available
    torch.cuda.is_available = lambda: True
    try:
        problem = load_module(req["problem"], "kbrun_prebuild_problem")
        seed_all(torch, int(req.get("seed", 0)))
        model = candidate.ModelNew(*problem.get_init_inputs())
        out["constructed"] = True
    except (Exception, SystemExit) as exc:  # judged in the run phase, where the GPU is visible
        out["note"] = clip("%s: %s" % (type(exc).__name__, exc), 500)
    finally:
        torch.cuda.is_available = is_available
    # What forward would build on its first call (load_inline behind `if self._ext is None`).
    try:
        from kbrun_eval import deferred_builds as kbrun_deferred_builds
        with open(req["code"]) as f:
            out["deferred"] = kbrun_deferred_builds.build_deferred(f.read(), candidate, model)
    except (Exception, SystemExit) as exc:
        out["deferred"] = {"error": clip("%s: %s" % (type(exc).__name__, exc), 500)}
    out["builds"] = len(kbrun_build.build_attempts) - before
    out["seconds"] = round(time.perf_counter() - t, 3)
    return out


def run_phase(req, result, stage_times, torch, module_candidate, guard, checker):
    device_kind = req["device"]
    precision = req["precision"]
    dtype = getattr(torch, PRECISIONS[precision]) if precision != "fp32" else None
    seed = int(req["seed"])
    device = torch.device("cuda:0" if device_kind == "cuda" else "cpu")
    if device.type == "cuda":
        result["env"]["device_name"] = torch.cuda.get_device_name(device)
    else:
        result["env"]["device_name"] = "cpu"

    t = time.perf_counter()
    try:
        problem = load_module(req["problem"], "kbrun_problem")
        get_init_inputs = problem.get_init_inputs
    except Exception as exc:  # the problem itself is broken: not the candidate's fault
        raise Failure("runtime_error", "problem_error", "cannot load problem: %s: %s" % (type(exc).__name__, exc),
                      clip(traceback.format_exc(), 8000))
    ModelNew = getattr(module_candidate, "ModelNew", None)
    if ModelNew is None:
        raise Failure("compile_error", "no_model_new", "the candidate defines no ModelNew")

    # The reference Model is built (from the same seed) and run only in the checker, a process
    # that never loads the candidate: nothing the candidate does here can reach it.
    seed_all(torch, seed)
    init_inputs = get_init_inputs()
    try:
        seed_all(torch, seed)
        new_model = ModelNew(*init_inputs)
        if hasattr(new_model, "to"):
            new_model = new_model.to(device)
            if dtype is not None:
                new_model = new_model.to(dtype)
    except Exception as exc:
        raise failure_from_exception(exc, "run")
    guard.check_harness()
    stage_times["load_models_s"] = time.perf_counter() - t

    # Correctness: fresh inputs for every trial, drawn by the checker from seeds this process
    # never sees; the checker's figures are the ones the supervisor reports.
    progress("stage correctness")
    t = time.perf_counter()
    trials = int(req["correctness_trials"])
    corr = {"trials_run": 0, "trials_passed": 0, "seed": seed, "extra_trials_run": 0, "extra_trials_passed": 0}
    result["correctness"] = corr
    # The trials; extra draws (other scales and means than get_inputs() gives); with --shapes
    # varied, other batch sizes (the checker skips and records those the problem cannot take).
    checks = [("trial", "trials", "trial %d" % i) for i in range(trials)]
    checks += [("extra", "extra_trials", label) for label, _, _ in EXTRA_DRAWS]
    if req.get("shapes") == "varied":
        corr["shape_trials_run"] = corr["shape_trials_passed"] = 0
        checks += [("shape", "shape_trials", label) for label, _ in SHAPE_DRAWS]
    try:
        for kind, counter, label in checks:
            corr[counter + "_run"] += 1
            try:
                check_trial(torch, guard, device, new_model, checker, kind, label)
            except Failure:
                if kind == "trial":
                    corr["failed_trial"] = corr["trials_run"] - 1
                raise
            corr[counter + "_passed"] += 1
    finally:
        stage_times["correctness_s"] = time.perf_counter() - t

    # Timing: the candidate here, the reference in the checker, alternating call by call so
    # that drift (clocks, temperature, other tenants) hits both alike. Every call gets new
    # values in the same buffers and every output is checked: a candidate that remembers its
    # last answer (by pointer, shape, sampled values or a checksum) returns a wrong one.
    progress("stage timing")
    t = time.perf_counter()
    timer = Timer(torch, device)
    n = int(req["timing_trials"])
    warmup = int(req["warmup_runs"])
    methods = timing_methods(device, n)
    rounds = [None] * warmup + methods
    samples = {}
    snapshot = (lambda out: stream_snapshot(torch, out)) if device.type == "cuda" else None
    inputs = checker.start_timing(warmup, methods)
    with torch.no_grad():
        for method in rounds:
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
            guard.check_after_call(inputs, None, out)
            if snap is not None:
                check_stream_order(torch, out, snap)
            verdict = checker.outputs(inputs, out)
            del out, snap
            if verdict.get("next"):
                inputs = checker.receive_inputs(inputs)
    guard.check_harness()
    checker.done()
    try:
        from kbrun_eval import library_share as kbrun_library_share  # the zygote has it loaded
        result["fallback"] = kbrun_library_share.library_share(torch, new_model, inputs, device, req["code"])
    except Exception as exc:  # the profiler is a check, not a verdict: note it and go on
        result["fallback"] = {"error": "%s: %s" % (type(exc).__name__, exc), "uses_library_only": None}
    guard.check_harness()
    primary = methods[0] if methods else (GPU_METHOD if device.type == "cuda" else CPU_METHOD)
    result["timing"] = {
        "method": primary,
        "warmup_runs": warmup,
        "checked_timed_calls": len(methods),
        "spin_ms": timer.spin_ms,
        "spin_cycles_per_ms": getattr(timer, "cycles_per_ms", None),
        "clock_mhz": timer.clock_summary() if device.type == "cuda" else None,
        "spin": timer.spin_summary() if device.type == "cuda" else None,
        "candidate": stats(samples[primary]) if samples.get(primary) else None,
    }
    if samples.get(KERNELBENCH_METHOD):
        result["timing"]["candidate_kernelbench"] = stats(samples[KERNELBENCH_METHOD])
    stage_times["timing_s"] = time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--request", required=True)
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # kbrun_build, kbrun_channel
    with open(args.request) as f:
        req = json.load(f)
    # The candidate must not read the seed or the result nonce: the file goes before it loads.
    os.unlink(args.request)
    nonce = req.pop("nonce")

    result = {"phase": req["phase"], "ok": False, "env": {}, "stage_times": {}}
    stage_times = result["stage_times"]

    try:
        import torch
        stage_times["import_torch_s"] = time.perf_counter() - T0
        result["env"].update({
            "python": sys.version.split()[0],
            "torch_version": torch.__version__,
            "cuda_version": torch.version.cuda,
            "hip_version": getattr(torch.version, "hip", None),
            "network_interfaces": network_interfaces(),
        })
        t = time.perf_counter()
        device = use_device(torch, req["device"] if req["phase"] != "compile" else "cpu")
        if device.type == "cuda":
            torch.cuda.init()
        stage_times["cuda_init_s"] = time.perf_counter() - t
        guard = Guard(torch, device)
        progress("stage compile")
        t = time.perf_counter()
        builds = prepare_build(req.get("build") or {}, reuse_earlier_builds=req["phase"] == "run")
        if builds is not None:
            result["builds"] = builds
        checker = CheckerLink(torch, device) if req["phase"] == "run" else None
        try:
            candidate = load_module(req["code"], "kbrun_candidate")
        except Exception as exc:
            failure = failure_from_exception(exc, "compile")
            if req["phase"] == "compile" and failure.status != "compile_error":
                # The compile phase runs without a GPU; an import that needs one is
                # judged again in the run phase, where the GPU is visible.
                stage_times["compile_s"] = time.perf_counter() - t
                result["import_deferred"] = failure.message
                result["ok"] = True
                raise _Deferred()
            raise failure
        stage_times["compile_s"] = time.perf_counter() - t
        if getattr(candidate, "ModelNew", None) is None:
            raise Failure("compile_error", "no_model_new", "the candidate defines no ModelNew")
        result["compiled"] = True
        if req["phase"] == "compile":
            progress("stage prebuild")
            result["prebuild"] = prebuild(req, torch, candidate)
            stage_times["prebuild_s"] = result["prebuild"]["seconds"]
        if req["phase"] == "run":
            guard.check_harness()
            run_phase(req, result, stage_times, torch, candidate, guard, checker)
        result["ok"] = True
    except _Deferred:
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
    stage_times["worker_total_s"] = time.perf_counter() - T0
    sys.stdout.flush()
    sys.stderr.flush()
    # One result line on fd 3, with the nonce: the supervisor rejects a run that sent
    # none, several, or one without it.
    progress("result %s %s" % (nonce, json.dumps(result, allow_nan=True)))
    # Skip interpreter teardown: a broken CUDA context can hang or crash in it.
    os._exit(0)


if __name__ == "__main__":
    main()
