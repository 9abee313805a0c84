"""The reward-hack guards around every call of the candidate (docs/EVALUATION.md): the harness's
functions unreplaced, no thread or process left running, outputs that are plain tensors owning
their memory, outputs ready on the caller's stream, and freed memory poisoned before each check.
"""
import os
import threading
import time

from . import protocol
from . import timing
from .problem import flatten_outputs
from .protocol import Failure

CHUNK = 1 << 26  # elements compared at a time


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
        # What the harness relies on, captured before the candidate runs any code: by dotted name,
        # a module's name (the modules as they are now, not sys.modules later) and the attribute
        # path in it. The run phase calls the timer and progress through these modules and the
        # module bindings below, so a replacement anywhere on that path is seen.
        from . import run_phase, spin, worker
        self.roots = {"torch": torch, "time": time, "kbrun_eval.protocol": protocol, "kbrun_eval.timing": timing,
                      "kbrun_eval.spin": spin, "kbrun_eval.run_phase": run_phase, "kbrun_eval.worker": worker}
        self.originals = {
            "torch.allclose": torch.allclose,
            "torch.isfinite": torch.isfinite,
            "torch.equal": torch.equal,
            "torch.Tensor.float": torch.Tensor.float,
            "time.perf_counter": time.perf_counter,
            "kbrun_eval.timing.Timer.time_once": timing.Timer.time_once,
            "kbrun_eval.protocol.progress": protocol.progress,
            "kbrun_eval.run_phase.timing": timing,
            "kbrun_eval.run_phase.protocol": protocol,
            "kbrun_eval.worker.protocol": protocol,
        }
        if self.cuda:
            self.originals.update({
                "kbrun_eval.spin.Spin.__call__": spin.Spin.__call__,
                "kbrun_eval.spin.Spin.drain": spin.Spin.drain,
                "kbrun_eval.spin.Spin.measured_ms": spin.Spin.measured_ms,
                "torch.cuda._sleep": torch.cuda._sleep,
                "torch.cuda.synchronize": torch.cuda.synchronize,
                "torch.cuda.Event": torch.cuda.Event,
                "torch.cuda.Event.record": torch.cuda.Event.record,
                "torch.cuda.Event.elapsed_time": torch.cuda.Event.elapsed_time,
                "torch.cuda.Event.synchronize": torch.cuda.Event.synchronize,
            })

    def current(self, name):
        """What `name` is now: its root module (the longest captured prefix), then getattr."""
        root = max((r for r in self.roots if name == r or name.startswith(r + ".")), key=len)
        obj = self.roots[root]
        for part in name[len(root):].split(".")[1:]:
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


def keep_library_monitors_off():
    """tqdm starts a monitor thread with its first progress bar (torch.compile's are tqdm's), which
    outlives the call and would be taken for the candidate's background work: kbrun turns it off
    before the candidate loads. A candidate that turns it back on and starts a bar is rejected."""
    try:
        import tqdm
    except ImportError:
        return
    tqdm.tqdm.monitor_interval = 0


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
