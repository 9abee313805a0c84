"""call_events: the library share on the GPU without the profiler (library_share.py decides when).

The Timer's spin holds the stream while a forward's launches queue behind it, so the GPU runs them
back to back; CUDA events around the forward and around each call into the candidate's own
modules (library_share.OwnCallMarker's profile hook) give own and total GPU time. It is used only
where it cannot be fooled that way: every call into own code stays within the spin (else idle
time would count as own), no torch operator runs inside an own call (a dispatch mode watches),
the own modules import no GPU library nor a way to load code (cuBLAS, cuDNN, dlopen,
cuModuleLoad...), there is no Triton, and the forward's time seen on the stream is most of what
the Timer measured (work left on other streams is not between the events).

Why it exists: the profiler's first start in a process costs 3.5-5.3 s of the GPU lane on an
H200, the same one-time cost as the first call of a dispatch mode that does not opt out of
torch._disable_dynamo; either makes the other cheap, so it looks like torch._dynamo's import, not
CUPTI (docs/device-runs/2026-12-02-session11-h200.txt).
"""
import re
import subprocess
import time

from .library_share import NOT_WORK, OwnCallMarker

# Imports of an own module that let its calls run code that is not its own: GPU libraries, and
# ways to load or look up code at run time. With one, only the profiler can say whose kernels ran.
FOREIGN_CODE_IMPORT = re.compile(
    r"(cublas|cudnn|cufft|curand|cusparse|cusolver|nccl|nvrtc|nvJitLink|cuModule|cuLibrary|cudaLibrary|"
    r"cudaGetFuncBySymbol|cuGetProcAddress|cudaGetDriverEntryPoint|dlopen|dlsym|dlvsym)")
# A forward whose host time passes this share of the spin may have let the GPU idle
# (idle time inside an own call would count as own).
SPIN_SHARE = 0.8
# The forward's time between its events must be at least this share of the Timer's
# figure (work on other streams, which the Timer's drain counts, is not between the events).
SEEN_SHARE = 0.5


def module_imports(path):
    """The names a shared object takes from others (its undefined dynamic symbols); None when
    they cannot be read."""
    try:
        p = subprocess.run(["nm", "-D", "--undefined-only", path], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    if p.returncode != 0:
        return None
    return {line.split()[-1].split("@")[0] for line in p.stdout.splitlines() if line.split()}


def unusable(modules, triton_names):
    """Why call_events cannot judge these own modules (None: it can)."""
    if triton_names:
        return "Triton kernels are launched from Python, not by calls into the candidate's modules"
    for m in modules:
        imports = module_imports(m["path"])
        if imports is None:
            return "cannot read the imports of %s" % m["name"]
        foreign = sorted(n for n in imports if FOREIGN_CODE_IMPORT.match(n))
        if foreign:
            return "%s imports %s" % (m["name"], ", ".join(foreign[:3]))
    return None


def _work_watcher(torch, marker):
    """A dispatch mode that notes the torch operators (other than allocation and views) that
    run while a call into own code is open, from Python or from the extension's C++ alike."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class WorkInOwnCalls(TorchDispatchMode):
        @classmethod
        def _should_skip_dynamo(cls):
            # Otherwise torch (2.x) wraps __torch_dispatch__ in torch._disable_dynamo, whose first
            # call imports torch._dynamo: 5.6-8.8 s of the first forward's host time on an H200.
            return False

        def __init__(self):
            super().__init__()
            self.seen = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if marker.open:
                name = str(getattr(getattr(func, "_schema", None), "name", func))
                if name not in NOT_WORK:
                    self.seen.append(name)
            return func(*args, **(kwargs or {}))

    return WorkInOwnCalls()


def share(torch, model, inputs, modules, timer, timed_ms, forwards=3):
    """(library us, own us, {name: [us, calls, library]}, None) by call_events (see the module's
    doc), or (None, None, None, why) where it cannot judge."""
    cuda = torch.cuda
    pairs = []

    def enter(name):
        e = cuda.Event(enable_timing=True)
        e.record()
        return name, e

    def exit_(handle):
        e = cuda.Event(enable_timing=True)
        e.record()
        pairs.append((handle[0], handle[1], e))

    marker = OwnCallMarker(torch, modules, enter, exit_)
    watcher = _work_watcher(torch, marker)
    host_ms = sorted(timer.host_ms)[len(timer.host_ms) // 2] if timer.host_ms else 1.0
    # The marker and the watcher lengthen the forward's host time (on an H200, forwards of 0.1-0.2
    # ms took 1.5 ms under them, past a spin sized on the Timer's figure alone), so a first watched
    # forward, not measured, sizes the spin; what it sees of torch inside own calls still counts.
    cuda.synchronize()
    t = time.perf_counter()
    with marker, watcher:
        model(*inputs)
    host_ms = max(host_ms, (time.perf_counter() - t) * 1000.0)
    cuda.synchronize()
    pairs.clear()
    spin_ms = min(max(4 * host_ms + 0.05, 0.2), 20.0)
    start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
    total, own, table = 0.0, 0.0, {}
    for _ in range(forwards):
        timer.flush_buf.zero_()  # as the Timer's calls start: the figures are compared below
        cuda.synchronize()
        timer.spin(int(spin_ms * timer.cycles_per_ms))
        start.record()
        t = time.perf_counter()
        with marker, watcher:
            model(*inputs)
        host = (time.perf_counter() - t) * 1000.0
        end.record()
        cuda.synchronize()
        if host > SPIN_SHARE * spin_ms:
            return None, None, None, "the forward's host time %.3f ms outlasted the spin (%.3f ms)" % (host, spin_ms)
        total += start.elapsed_time(end) * 1000.0
        for name, a, b in pairs:
            us = a.elapsed_time(b) * 1000.0
            own += us
            row = table.setdefault(name[len(marker.prefix):], [0.0, 0, False])
            row[0] += us
            row[1] += 1
        pairs.clear()
    if watcher.seen:
        return None, None, None, "torch ran %s inside a call into the candidate's own code" % (
            ", ".join(sorted(set(watcher.seen))[:3]))
    if timed_ms and total / forwards < SEEN_SHARE * timed_ms * 1000.0:
        return None, None, None, ("%.1f us of the forward ran on the caller's stream, of %.1f us timed: work on "
                                  "other streams" % (total / forwards, timed_ms * 1000.0))
    own = min(own, total)
    table["(torch and library kernels, between the own calls)"] = [total - own, forwards, True]
    return total - own, own, table, None
