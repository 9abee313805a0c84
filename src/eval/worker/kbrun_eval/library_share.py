"""Whose code the candidate's forward runs: its own, or a library's (result.json's "fallback").

Decided by provenance, not by names. Code is the candidate's own when it comes from a module
the candidate built in this process (load_inline / load: kbrun_build.loaded_libraries records
each .so when it is loaded, with a hash) or, for Triton, from a @triton.jit function defined in
the candidate's file. Everything else (ATen, cuBLAS, cuDNN, torch's Triton, a .so the candidate
did not build through torch, cupy, raw ctypes) is library time, whatever its name.

GPU, first without the profiler: call_events.py (CUDA events around the forward and the calls
into own code); its answer stands only when it finds the candidate's own code doing the work. A
would-be rejection, and every case it cannot judge, goes to the profiler, whose first start in a
process costs seconds of the GPU lane (3.5-5.3 s on an H200).

GPU, the profiler: the kernels the torch profiler records during three forwards. A kernel is own when its
demangled name is a function defined in one of the candidate's modules (nvcc gives every
__global__ a host function of the same name; template instantiations, CUTLASS's included, are
there too) or is one of the candidate's Triton kernels, and it was not launched from inside an
aten:: operator (a same-named symbol cannot make torch's kernel the candidate's).

CPU: the profiler cannot say which function ran, so the measurement marks the calls instead:
while it runs, a profile hook (sys.setprofile, measurement only, never during timing) wraps
each call into a builtin of the candidate's modules in a profiler range with an unguessable
name. Own time is those ranges less the aten compute inside them; library time is the time in
aten compute operators (outermost ones, wherever called from). Allocation and metadata
operators (empty, view, reshape, contiguous, ...) are neither: an honest extension allocates
its output with torch, and that is not torch doing its work. Both sides come from the same
profiler clock over the same calls, so a loaded machine stretches both alike; the forward's
wall time (Python, the profiler's own overhead, waiting for a core) is in neither.
"""
# Over 400 lines on purpose: the provenance rule (whose module, whose kernel name) and its GPU
# and CPU attributions are one decision, read together; its profiler-free variant is call_events.py.

import gc
import hashlib
import os
import re
import secrets
import subprocess
import sys
import time
import weakref

from .protocol import Laps

# Above these, the candidate is rejected as uses_library_only (unless --allow-library-kernels).
THRESHOLD = {"cuda": 0.9, "cpu": 0.5}
# aten operators that allocate or only describe memory: not work. Their children still count
# (contiguous() of a strided tensor runs aten::copy_, which is work done by torch).
NOT_WORK = frozenset("aten::" + n for n in (
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided",
    "view", "view_as", "_unsafe_view", "reshape", "_reshape_alias", "as_strided", "alias", "detach",
    "detach_", "lift", "lift_fresh", "resolve_conj", "resolve_neg", "contiguous", "to",
    "size", "stride", "numel", "dim", "is_contiguous", "t", "transpose", "permute", "expand",
    "expand_as", "squeeze", "unsqueeze", "select", "slice", "narrow", "flatten", "unflatten",
    "split", "chunk", "unbind", "set_", "resize_", "item", "_local_scalar_dense", "result_type"))
# Namespaces of torch's own operators: never the candidate's, whoever registered an op there.
TORCH_NAMESPACES = frozenset(("aten", "prim", "prims", "c10d", "profiler", "quantized", "_quantized",
                              "torchvision", "triton", "inductor", "cuda", "mkldnn", "onednn"))
TORCH_LIBRARY_INIT = re.compile(r"\bTORCH_LIBRARY(?:_FRAGMENT)?_init_([A-Za-z_]\w*?)(?:_\d+)?\b")
# Triton 2.0 appends the specialisation to the kernel's name (add_kernel_0d1d2d3de).
TRITON_SUFFIX = r"(?:_[0-9cde]+)?"


def name_key(name):
    """A kernel's name as both the profiler and nm print it (both demangle with the C++ ABI's
    demangler): whitespace collapsed, without a leading return type "void "."""
    name = " ".join(str(name).split())
    return name[5:] if name.startswith("void ") else name


def _file_sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def module_symbols(path):
    """Demangled names of the functions a shared object defines (local ones too, unless it
    was stripped: then its exported ones)."""
    names = set()
    for extra in ([], ["-D"]):
        try:
            out = subprocess.run(["nm", "-C", "--defined-only"] + extra + [path], capture_output=True,
                                 text=True, timeout=120).stdout
        except (OSError, subprocess.SubprocessError):
            return names
        for line in out.splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[1] in ("T", "t", "W", "w"):
                names.add(name_key(parts[2]))
        if names:
            break
    return names


def own_modules():
    """The candidate's own modules: [{"name", "path", "symbols", "namespaces", "changed"}].
    A module whose file changed since it was loaded is not own (it may now be anything)."""
    try:
        from . import build as kbrun_build
        loaded = list(kbrun_build.loaded_libraries)
    except ImportError:
        loaded = []
    modules, seen = [], set()
    for lib in loaded:
        path = lib["path"]
        if path in seen:
            continue
        seen.add(path)
        module = {"name": lib["name"], "path": path, "symbols": set(), "namespaces": set(), "changed": False}
        try:
            module["changed"] = _file_sha(path) != lib["sha256"]
        except OSError:
            module["changed"] = True
        if not module["changed"]:
            module["symbols"] = module_symbols(path)
            module["namespaces"] = {m.group(1) for s in module["symbols"] for m in TORCH_LIBRARY_INIT.finditer(s)
                                    } - TORCH_NAMESPACES
        modules.append(module)
    return modules


def own_triton_kernels(code_path):
    """Names of the @triton.jit functions defined in the candidate's file (a Triton kernel
    jitted from elsewhere, torch.compile's included, is library)."""
    if "triton" not in sys.modules:
        return set()
    try:
        from triton.runtime.jit import JITFunction
    except ImportError:
        return set()
    source = os.path.realpath(code_path)
    names = set()
    proxies = (weakref.ProxyType, weakref.CallableProxyType)
    for obj in gc.get_objects():
        # A proxy whose object is gone raises on isinstance (torch.compile leaves such proxies).
        if type(obj) not in proxies and isinstance(obj, JITFunction):
            code = getattr(getattr(obj, "fn", None), "__code__", None)
            if code is not None and os.path.realpath(code.co_filename) == source:
                names.add(obj.fn.__name__)
    return names


class OwnCallMarker:
    """While active, wraps each call into a builtin of the candidate's modules in a profiler
    range named with a random prefix, so the profiler's tree shows the candidate's own calls
    (and what torch ran inside them)."""

    def __init__(self, torch, modules, enter=None, exit=None):
        # The profiler's range operators (torch >= 1.13); record_function would add an
        # aten::zeros of its own to every call in torch 1.13. `enter(name)` / `exit(handle)`
        # replace them (call_events: CUDA events), called for the outermost own calls only.
        self.profiler_ops = torch.ops.profiler
        self.enter_range = enter or (lambda name: self.profiler_ops._record_function_enter_new(name, None))
        self.exit_range = exit or self.profiler_ops._record_function_exit._RecordFunction
        self.outermost_only = enter is not None
        self.paths = {os.path.realpath(m["path"]) for m in modules}
        # pybind11's functions name their module (__module__; torch's loader does not put it in
        # sys.modules). A name that is some other module's too says nothing.
        self.names = {m["name"] for m in modules if m["name"].split(".")[0] not in ("torch", "builtins")
                      and os.path.realpath(getattr(sys.modules.get(m["name"]), "__file__", None) or m["path"])
                      in self.paths}
        self.prefix = "kbrun_own_%s::" % secrets.token_hex(8)
        self.open = []  # (function, range handle) of the calls in progress
        self.calls = {}  # function name -> calls
        self._is_own = {}

    def own_function(self, fn):
        key = id(fn)
        if key not in self._is_own:
            owner = getattr(fn, "__self__", None)
            if isinstance(owner, type(sys)):  # a C extension's module function: the module's file
                path = getattr(owner, "__file__", None)
                self._is_own[key] = bool(path) and os.path.realpath(path) in self.paths
            else:  # pybind11's functions (their __self__ is a capsule), a class's methods
                module = getattr(fn, "__module__", None) or type(owner).__module__
                self._is_own[key] = module in self.names
        return self._is_own[key]

    def hook(self, frame, event, arg):
        # Runs with profiling off (CPython does not profile its profile hook).
        if event == "c_call" and self.own_function(arg):
            name = "%s.%s" % (getattr(arg, "__module__", None) or "?", getattr(arg, "__name__", "?"))
            handle = None if self.open and self.outermost_only else self.enter_range(self.prefix + name)
            self.open.append((arg, handle))
            self.calls[name] = self.calls.get(name, 0) + 1
        elif event in ("c_return", "c_exception") and self.open and self.open[-1][0] is arg:
            handle = self.open.pop()[1]
            if handle is not None:
                self.exit_range(handle)

    def __enter__(self):
        if self.paths:
            sys.setprofile(self.hook)
        return self

    def __exit__(self, *exc):
        if self.paths:
            sys.setprofile(None)
        while self.open:
            handle = self.open.pop()[1]
            if handle is not None:
                self.exit_range(handle)


def _namespace(name):
    head, sep, _ = name.partition("::")
    return head if sep else None


def _ancestors(event):
    e = event.cpu_parent
    while e is not None:
        yield e
        e = e.cpu_parent


def merged_spans(intervals):
    """Sorted, disjoint intervals covering the given ones."""
    merged = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _overlap(a, b):
    """Length of the intersection of two sorted, disjoint interval lists."""
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        total += max(0.0, min(a[i][1], b[j][1]) - max(a[i][0], b[j][0]))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def cpu_share(events, marker_prefix, own_namespaces):
    """(library us, own us, {name: [us, calls, library]}) from the profiler's CPU events.

    Measured on the timeline, not the profiler's parent links (they misplace an operator when
    timestamps tie at its parent's): library is the time covered by aten work, own the time
    covered by the candidate's calls and not by aten work."""

    def is_work(e):
        return e.name.startswith("aten::") and e.name not in NOT_WORK

    def is_own(e):
        return e.name.startswith(marker_prefix) or _namespace(e.name) in own_namespaces

    cpu = [e for e in events if not str(getattr(e, "device_type", "CPU")).endswith("CUDA")]
    work = merged_spans((e.time_range.start, e.time_range.end) for e in cpu if is_work(e))
    own_spans = merged_spans((e.time_range.start, e.time_range.end) for e in cpu if is_own(e))
    library = sum(end - start for start, end in work)
    own = sum(end - start for start, end in own_spans) - _overlap(own_spans, work)
    table = {}  # what ran, by name: outermost aten work and the candidate's calls
    for e in cpu:
        if (is_work(e) and not any(is_work(a) for a in _ancestors(e))) or \
                (is_own(e) and not any(is_own(a) for a in _ancestors(e))):
            name = e.name[len(marker_prefix):] if e.name.startswith(marker_prefix) else e.name
            row = table.setdefault(name, [0.0, 0, is_work(e)])
            row[0] += float(e.cpu_time_total)
            row[1] += 1
    return float(library), max(0.0, float(own)), table


def gpu_share(events, own_symbols, triton_names, annotation_prefix=""):
    """(library us, own us, {name: [us, launches, library]}) from the profiler's GPU kernels.
    Ranges on the GPU timeline are not kernels: user annotations, and the marker's own ranges
    (`annotation_prefix`), which the profiler also reports with device time, are left out."""
    triton = re.compile("(?:%s)%s" % ("|".join(map(re.escape, sorted(triton_names))), TRITON_SUFFIX)) \
        if triton_names else None

    def own_name(name):
        return name_key(name) in own_symbols or bool(triton and triton.fullmatch(name))

    under_aten = {}  # kernel name -> device us of its launches from inside an aten operator
    for e in events:
        kernels = getattr(e, "kernels", None)
        if kernels and any(x.name.startswith("aten::") for x in [e] + list(_ancestors(e))):
            for k in kernels:
                under_aten[k.name] = under_aten.get(k.name, 0.0) + float(k.duration)
    table = {}
    for e in events:
        if str(getattr(e, "device_type", "")).endswith("CUDA"):
            if getattr(e, "is_user_annotation", False) or (annotation_prefix and e.name.startswith(annotation_prefix)):
                continue
            us = getattr(e, "device_time", None)
            if us is None:
                us = getattr(e, "cuda_time", 0.0)
            row = table.setdefault(e.name, [0.0, 0, True])
            row[0] += float(us or 0.0)
            row[1] += 1
    own = 0.0
    for name, row in table.items():
        if own_name(name):
            own_us = max(0.0, row[0] - under_aten.get(name, 0.0))
            own += own_us
            row[2] = own_us < row[0]  # library when some of its launches were torch's
    total = sum(row[0] for row in table.values())
    return total - own, own, table


def build_attempts():
    """The candidate's load_inline/load calls in this process: [{"name", "ok", "error"?}]."""
    try:
        from . import build as kbrun_build
        return [dict(a) for a in kbrun_build.build_attempts]
    except ImportError:
        return []


def fallback_reason(own_us, total_us, attempts, modules):
    """Why none of the candidate's own code ran, when none did: "build_failed" (a build it asked
    for failed, and it went on without it), "never_launched" (it built or loaded a module of its
    own, and the forward never called into it), "library_only" (it built nothing). None when
    its own code ran, or when nothing was measured."""
    if own_us > 0 or total_us <= 0:
        return None
    if any(not a.get("ok") for a in attempts):
        return "build_failed"
    if modules:
        return "never_launched"
    return "library_only"


def library_share(torch, model, inputs, device, code_path, timer=None, timed_ms=None):
    """The share of the forward's time in library code (see the module's docstring), with the
    kernels or operators and the candidate's modules, for result.json's "fallback". `timer`: the
    run's Timer (its spin; call_events needs it on the GPU); `timed_ms`: its median for the
    candidate."""
    laps, t = Laps(), time.perf_counter()  # where this check's seconds go (it runs on the GPU lane)
    modules = own_modules()
    usable = [m for m in modules if not m["changed"]]
    is_cuda = device.type == "cuda"
    threshold = THRESHOLD["cuda" if is_cuda else "cpu"]
    triton_names = own_triton_kernels(code_path) if is_cuda else set()
    t = laps.lap("modules_s", t)
    attempts = build_attempts()
    tried = None  # call_events' figure or why it could not judge, when the profiler decides
    if is_cuda and not usable and not triton_names:
        # Nothing is the candidate's own by provenance: all its time is library time.
        return _share_result("no_own_code", 1.0, threshold, 0.0, 0.0, {}, 0, attempts, modules, laps,
                             fallback_reason(0.0, 1.0, attempts, modules))
    if is_cuda:
        from . import call_events  # it imports this module
        why = call_events.unusable(usable, triton_names) if timer is not None and getattr(timer, "cuda", False) \
            else "no Timer with a spin"
        if why is None:
            try:
                with torch.no_grad():
                    library, own, table, why = call_events.share(torch, model, inputs, usable, timer, timed_ms)
            except Exception as exc:  # the profiler decides instead: a failed check must not pass anyone
                why = "it failed: %s: %s" % (type(exc).__name__, str(exc)[:300])
        t = laps.lap("call_events_s", t)
        if why is None:
            total = library + own
            fraction = library / total if total > 0 else None
            if fraction is not None and fraction <= threshold and own > 0:
                return _share_result("call_events", fraction, threshold, library, own, table, 3, attempts, modules,
                                     laps, fallback_reason(own, total, attempts, modules))
            why = "it found %s: the profiler confirms" % (
                "no own code running" if own <= 0 else "%.0f%% library time" % (100 * (fraction or 0)))
        tried = why
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if is_cuda else [])
    marker = OwnCallMarker(torch, usable)
    prof = profile(activities=activities)
    with torch.no_grad():
        prof.__enter__()
        t = laps.lap("profiler_start_s", t)
        try:
            # A few forwards (GPU kernel times are exact); on the CPU, enough for a tenth of a second.
            t_calls, calls = time.perf_counter(), 0
            with marker:
                while calls < 3 or (not is_cuda and calls < 50 and time.perf_counter() - t_calls < 0.1):
                    model(*inputs)
                    calls += 1
                if is_cuda:
                    torch.cuda.synchronize()
            t = laps.lap("forwards_s", t)
        finally:
            prof.__exit__(None, None, None)
    t = laps.lap("profiler_stop_s", t)
    events = prof.events()
    t = laps.lap("events_s", t)
    if is_cuda:
        symbols = set().union(*(m["symbols"] for m in usable)) if usable else set()
        library, own, table = gpu_share(events, symbols, triton_names, marker.prefix)
    else:
        namespaces = set().union(*(m["namespaces"] for m in usable)) if usable else set()
        library, own, table = cpu_share(events, marker.prefix, namespaces)
    total = library + own
    fraction = library / total if total > 0 else None
    laps.lap("attribution_s", t)
    out = _share_result("provenance", fraction, threshold, library, own, table, calls, attempts, modules, laps,
                        fallback_reason(own, total, attempts, modules))
    if tried is not None:
        out["call_events_not_used"] = tried
    return out


def _share_result(method, fraction, threshold, library, own, table, forwards, attempts, modules, laps, reason):
    top = sorted(table.items(), key=lambda kv: -kv[1][0])[:20]
    return {
        "method": method,
        "library_time_fraction": fraction,
        "threshold": threshold,
        "uses_library_only": fraction is not None and fraction > threshold,
        "fallback_reason": reason,
        "builds": attempts,
        "forwards": forwards,
        "library_time_us": round(library, 3),
        "own_time_us": round(own, 3),
        "own_modules": [{"name": m["name"], "symbols": len(m["symbols"]),
                         **({"changed_since_load": True} if m["changed"] else {})} for m in modules],
        "kernels": [{"name": n[:200], "time_us": round(row[0], 3), "calls": row[1], "library": row[2]}
                    for n, row in top],
        "seconds": dict(laps),
    }
