"""kbrun_eval/library_share.py: whose code the forward runs, decided by provenance (real builds, real
profiler), and steady on a loaded machine. Run: /usr/bin/python3 -m pytest -q tests/worker
"""
import importlib.util
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
import weakref

import pytest
import torch
import torch.nn as nn

from kbrun_eval import build as kbrun_build  # src/eval/worker, on sys.path by conftest.py
from kbrun_eval import call_events as ce
from kbrun_eval import library_share as ls

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

CPU = torch.device("cpu")
HONEST = os.path.join(ROOT, "tests", "candidates", "correct_cpp.py")
CHEATS = os.path.join(ROOT, "tests", "cheats")
# Names that a name list would call library code; here they are the candidate's own.
LIBRARY_NAMED = r"""
#include <torch/extension.h>
torch::Tensor cutlass_sgemm_kernel(torch::Tensor x, double alpha) {
  auto xc = x.contiguous();
  auto out = torch::empty_like(xc);
  const float* in = xc.data_ptr<float>();
  float* o = out.data_ptr<float>();
  for (int64_t i = 0, n = xc.numel(); i < n; ++i) o[i] = in[i] * static_cast<float>(alpha);
  return out;
}
"""
# Its own function, with the work done by torch inside it.
TORCH_INSIDE = r"""
#include <torch/extension.h>
torch::Tensor my_conv(torch::Tensor x, torch::Tensor w) { return at::conv3d(x, w); }
"""


@pytest.fixture(scope="session")
def ext_dir():
    path = tempfile.mkdtemp(prefix="kbrun-libshare-")
    os.environ["TORCH_EXTENSIONS_DIR"] = path
    kbrun_build.watch_loads()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def load_candidate(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_candidate(ext_dir, name, source, function, forward):
    """A candidate file that builds `source` with load_inline; `forward` is its forward's body."""
    path = os.path.join(ext_dir, name + ".py")
    with open(path, "w") as f:
        f.write("import torch\nimport torch.nn as nn\nfrom torch.utils.cpp_extension import load_inline\n"
                "ext = load_inline(name=%r, cpp_sources=%r, functions=[%r])\n"
                "class ModelNew(nn.Module):\n    def forward(self, *xs):\n        return %s\n"
                % (name, source, function, forward))
    return path


@pytest.fixture(scope="session")
def honest(ext_dir):
    module = load_candidate(HONEST, "kbrun_honest")
    return module.ModelNew(2.0), (torch.randn(1 << 16), torch.randn(1 << 16))


def test_honest_extension_is_own(honest):
    model, inputs = honest
    r = ls.library_share(torch, model, inputs, CPU, HONEST)
    assert r["uses_library_only"] is False
    assert r["library_time_fraction"] == 0.0  # empty_like/contiguous are not work
    assert r["own_time_us"] > 0
    assert [m["name"] for m in r["own_modules"]] == ["scale_add_ext"]
    own = [k for k in r["kernels"] if not k["library"]]
    assert own and own[0]["name"] == "scale_add_ext.scale_add" and own[0]["calls"] == r["forwards"]


@pytest.mark.parametrize("cheat", ["01_calls_torch.py", "12_fallback_on_error.py"])
def test_torch_only_candidates_are_library(ext_dir, cheat):
    path = os.path.join(CHEATS, cheat)
    model = load_candidate(path, "kbrun_cheat_" + cheat[:2]).ModelNew(2.0)
    r = ls.library_share(torch, model, (torch.randn(4096), torch.randn(4096)), CPU, path)
    assert r["library_time_fraction"] == 1.0 and r["uses_library_only"] is True


def test_ops_no_list_names_are_library(ext_dir):
    """A pure-torch conv3d: whatever its operators are called, they are torch's."""
    conv = nn.Conv3d(4, 8, 3)
    r = ls.library_share(torch, conv, (torch.randn(2, 4, 12, 12, 12),), CPU, HONEST)
    assert r["library_time_fraction"] == 1.0 and r["uses_library_only"] is True


def test_library_named_own_function_is_own(ext_dir):
    path = write_candidate(ext_dir, "cutlass_gemm_ext", LIBRARY_NAMED, "cutlass_sgemm_kernel",
                           "ext.cutlass_sgemm_kernel(xs[0], 2.0)")
    model = load_candidate(path, "kbrun_cutlass_named").ModelNew()
    r = ls.library_share(torch, model, (torch.randn(1 << 16),), CPU, path)
    assert r["library_time_fraction"] == 0.0 and r["uses_library_only"] is False
    assert "cutlass_gemm_ext.cutlass_sgemm_kernel" in [k["name"] for k in r["kernels"] if not k["library"]]


def test_torch_called_inside_own_extension_is_library(ext_dir):
    path = write_candidate(ext_dir, "torch_inside_ext", TORCH_INSIDE, "my_conv", "ext.my_conv(xs[0], xs[1])")
    model = load_candidate(path, "kbrun_torch_inside").ModelNew()
    r = ls.library_share(torch, model, (torch.randn(2, 4, 12, 12, 12), torch.randn(8, 4, 3, 3, 3)), CPU, path)
    assert r["library_time_fraction"] > ls.THRESHOLD["cpu"] and r["uses_library_only"] is True


def test_module_changed_after_load_is_not_own(ext_dir, honest):
    """A library file rewritten after loading (e.g. with another library's code) proves nothing."""
    record = next(lib for lib in kbrun_build.loaded_libraries if lib["name"] == "scale_add_ext")
    saved = dict(record)
    record["sha256"] = "0" * 64
    try:
        model, inputs = honest
        r = ls.library_share(torch, model, inputs, CPU, HONEST)
    finally:
        record.update(saved)
    assert r["own_modules"][0].get("changed_since_load") is True
    assert r["own_time_us"] == 0.0


def busy():
    while True:
        pass


def test_honest_extension_never_rejected_under_load(honest):
    """100 measurements of the honest extension with 2 busy processes beside it on this machine."""
    model, inputs = honest
    ctx = multiprocessing.get_context("fork")
    loads = [ctx.Process(target=busy, daemon=True) for _ in range(2)]
    for p in loads:
        p.start()
    try:
        shares = [ls.library_share(torch, model, inputs, CPU, HONEST)["library_time_fraction"] for _ in range(100)]
    finally:
        for p in loads:
            p.kill()
            p.join()
    worst = max(shares)
    print("honest extension under load: worst library share %.3f over 100 (threshold %.2f)"
          % (worst, ls.THRESHOLD["cpu"]))
    assert worst < ls.THRESHOLD["cpu"]


# GPU classification, on the profiler's event shapes, with names from a real compiled library.
GPU_SOURCE = r"""
template <int N> struct cutlass_gemm_tile {};
template <typename T, int N> void cutlass_like_gemm(const T*, T*, int, cutlass_gemm_tile<N>) {}
template void cutlass_like_gemm<float, 4>(const float*, float*, int, cutlass_gemm_tile<4>);
void scale_kernel(const float*, float*, int) {}
extern "C" void sgemm_tiled(const float*, float*) {}
"""


@pytest.fixture(scope="session")
def gpu_symbols(ext_dir):
    """The functions of a library built like the candidate's: nvcc gives a __global__ a host
    function of the same name, so a host build of the same names yields the same symbols."""
    src, lib = os.path.join(ext_dir, "kernels.cpp"), os.path.join(ext_dir, "kernels.so")
    with open(src, "w") as f:
        f.write(GPU_SOURCE)
    subprocess.run(["c++", "-shared", "-fPIC", "-O2", src, "-o", lib], check=True)
    return ls.module_symbols(lib)


def cuda_kernel(name, us):
    return types.SimpleNamespace(name=name, device_type="DeviceType.CUDA", device_time=us, kernels=[],
                                 cpu_parent=None)


def cpu_op(name, launches=(), parent=None):
    return types.SimpleNamespace(name=name, device_type="DeviceType.CPU", cpu_parent=parent,
                                 kernels=[types.SimpleNamespace(name=n, duration=us) for n, us in launches])


def test_gpu_own_kernels_by_symbol(gpu_symbols):
    events = [cuda_kernel("void cutlass_like_gemm<float, 4>(float const*, float*, int, cutlass_gemm_tile<4>)", 60.0),
              cuda_kernel("scale_kernel(float const*, float*, int)", 30.0),
              cuda_kernel("sgemm_tiled", 10.0)]
    library, own, table = ls.gpu_share(events, gpu_symbols, set())
    assert (library, own) == (0.0, 100.0)
    assert not any(row[2] for row in table.values())


def test_gpu_annotation_ranges_are_not_kernels(gpu_symbols):
    """The marker's own ranges (and user annotations) show on the GPU timeline with device time:
    counted as kernels they made an own kernel half library (0.5, seen on an H200)."""
    marker = "kbrun_own_0123456789abcdef::"
    events = [cuda_kernel("scale_kernel(float const*, float*, int)", 36.0),
              cuda_kernel(marker + "ext.scale", 36.0)]
    library, own, table = ls.gpu_share(events, gpu_symbols, set(), marker)
    assert (library, own) == (0.0, 36.0)
    assert list(table) == ["scale_kernel(float const*, float*, int)"]


def test_gpu_library_kernels_whatever_their_names(gpu_symbols):
    # cuDNN's conv kernel (matches no name list) and a cuBLAS gemm: neither is in the candidate's library.
    events = [cuda_kernel("void cudnn::engines_precompiled::convolve_common_engine_float_NHWC<float>(int)", 90.0),
              cuda_kernel("ampere_sgemm_128x64_nn", 10.0)]
    library, own, _ = ls.gpu_share(events, gpu_symbols, set())
    assert (library, own) == (100.0, 0.0)


def test_gpu_same_named_kernel_launched_by_torch_is_library(gpu_symbols):
    """A symbol named like torch's kernel does not make torch's launches of it the candidate's."""
    name = "sgemm_tiled"
    conv = cpu_op("aten::convolution")
    launcher = cpu_op("aten::cudnn_convolution", [(name, 40.0)], parent=conv)
    events = [conv, launcher, cuda_kernel(name, 40.0), cuda_kernel(name, 10.0)]
    library, own, _ = ls.gpu_share(events, gpu_symbols, set())
    assert (library, own) == (40.0, 10.0)


def test_gpu_triton_kernels_from_candidate_source():
    events = [cuda_kernel("add_kernel_0d1d2d3de", 50.0), cuda_kernel("triton_poi_fused_add_0", 50.0)]
    library, own, _ = ls.gpu_share(events, set(), {"add_kernel"})
    assert (library, own) == (50.0, 50.0)


def test_fallback_reason_says_why_no_own_code_ran():
    built = [{"name": "ext", "ok": True}]
    failed = [{"name": "ext", "ok": False, "error": "main.cpp:5:23: error: expected ';'"}]
    module = [{"name": "ext"}]
    assert ls.fallback_reason(12.0, 20.0, built, module) is None  # its own code ran
    assert ls.fallback_reason(0.0, 0.0, [], []) is None  # nothing measured
    assert ls.fallback_reason(0.0, 20.0, failed, []) == "build_failed"
    assert ls.fallback_reason(0.0, 20.0, failed + built, module) == "build_failed"
    assert ls.fallback_reason(0.0, 20.0, built, module) == "never_launched"
    assert ls.fallback_reason(0.0, 20.0, [], []) == "library_only"


def test_compiler_lines_keep_the_diagnostics():
    text = ("Error building extension 'x': [1/2] c++ -MMD -c main.cpp -o main.o\n"
            "main.cpp:5:23: error: expected ';' before '}' token\n"
            "    5 |   return x * alpha + y\n"
            "ninja: build stopped: subcommand failed.\n")
    assert kbrun_build.compiler_lines(text) == ("main.cpp:5:23: error: expected ';' before '}' token\n"
                                                "    5 |   return x * alpha + y")


# call_events (the GPU's first method) on the CPU: CUDA events and the spin stood in for by the
# wall clock, the extensions real.
class WallClockEvent:
    def __init__(self, enable_timing=True):
        self.t = None

    def record(self, stream=None):
        self.t = time.perf_counter()

    def elapsed_time(self, other):
        return (other.t - self.t) * 1000.0


def stand_in_timer(host_ms=1.0):
    return types.SimpleNamespace(cuda=True, host_ms=[host_ms], cycles_per_ms=1.0, flush_buf=torch.zeros(4),
                                 spin=lambda cycles: None)


@pytest.fixture
def wall_clock_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "Event", WallClockEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)


def usable_modules(*names):
    return [m for m in ls.own_modules() if m["name"] in names and not m["changed"]]


def test_call_events_finds_the_honest_extensions_time(honest, wall_clock_cuda):
    model, inputs = honest
    modules = usable_modules("scale_add_ext")
    assert ce.unusable(modules, set()) is None  # a torch extension imports no library
    library, own, table, why = ce.share(torch, model, inputs, modules, stand_in_timer(50.0), None)
    assert why is None, why
    assert own > 0 and table["scale_add_ext.scale_add"][1] == 3
    assert library < own


def test_call_events_will_not_judge_torch_inside_an_own_call(ext_dir, wall_clock_cuda):
    path = write_candidate(ext_dir, "torch_inside_ev", TORCH_INSIDE, "my_conv", "ext.my_conv(xs[0], xs[1])")
    model = load_candidate(path, "kbrun_torch_inside_ev").ModelNew()
    inputs = (torch.randn(2, 4, 12, 12, 12), torch.randn(8, 4, 3, 3, 3))
    _, _, _, why = ce.share(torch, model, inputs, usable_modules("torch_inside_ev"),
                            stand_in_timer(500.0), None)
    assert why and ("aten::convolution" in why or "aten::conv3d" in why), why


class SlowAfterFirstCall(torch.nn.Module):
    """Fast on its first call (the one that sizes the spin), then 30 ms of host time per call."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, *xs):
        self.calls += 1
        if self.calls > 1:
            time.sleep(0.03)
        return self.model(*xs)


def test_call_events_will_not_judge_a_forward_longer_than_its_spin(honest, wall_clock_cuda):
    model, inputs = honest
    _, _, _, why = ce.share(torch, SlowAfterFirstCall(model), inputs, usable_modules("scale_add_ext"),
                            stand_in_timer(0.0001), None)
    assert why is not None and "outlasted the spin" in why, why


def test_call_events_sizes_its_spin_on_a_watched_forward(honest, wall_clock_cuda):
    """The Timer's host time (here 0.1 us) is far below the forward's under the marker and the
    watcher; the spin follows the latter, so an honest forward is judged."""
    model, inputs = honest
    spins = []
    timer = stand_in_timer(0.0001)
    timer.spin = spins.append
    _, own, _, why = ce.share(torch, model, inputs, usable_modules("scale_add_ext"), timer, None)
    assert why is None and own > 0, why
    assert len(spins) == 3 and min(spins) > 0.2 * timer.cycles_per_ms, spins


def test_call_events_will_not_judge_work_the_stream_does_not_see(honest, wall_clock_cuda):
    """Most of the Timer's figure outside the forward's events: work on another stream."""
    model, inputs = honest
    _, _, _, why = ce.share(torch, model, inputs, usable_modules("scale_add_ext"),
                            stand_in_timer(50.0), 1000.0)
    assert why is not None and "other streams" in why, why


def test_call_events_not_for_modules_that_import_libraries(ext_dir):
    src, lib = os.path.join(ext_dir, "loader.cpp"), os.path.join(ext_dir, "libloader.so")
    with open(src, "w") as f:
        f.write('#include <dlfcn.h>\nextern "C" void* get(const char* n) { return dlsym(dlopen(n, 1), "f"); }\n')
    subprocess.run(["c++", "-shared", "-fPIC", src, "-o", lib, "-ldl"], check=True)
    why = ce.unusable([{"name": "loader", "path": lib}], set())
    assert why is not None and "dlopen" in why, why
    assert "Triton" in ce.unusable([], {"add_kernel"})


def test_gpu_candidate_without_own_code_needs_no_profiler(monkeypatch):
    """No own module and no Triton kernel: all library by provenance, without starting CUPTI."""
    monkeypatch.setattr(ls, "own_modules", lambda: [])
    r = ls.library_share(torch, nn.ReLU(), (torch.randn(8),), types.SimpleNamespace(type="cuda"), HONEST)
    assert r["method"] == "no_own_code" and r["uses_library_only"] is True
    assert r["fallback_reason"] == "library_only" and "profiler_start_s" not in r["seconds"]


def test_the_work_watcher_does_not_import_dynamo():
    """torch 2.x wraps a dispatch mode's __torch_dispatch__ in torch._disable_dynamo unless the
    mode opts out; its first call imports torch._dynamo, seconds on the GPU lane."""
    marker = types.SimpleNamespace(open=[])
    watcher = ce._work_watcher(torch, marker)
    assert type(watcher)._should_skip_dynamo() is False
    with watcher:
        torch.relu(torch.randn(4))
    assert watcher.seen == []  # no own call open: torch's work outside them is not noted


def test_a_failing_call_events_leaves_the_verdict_to_the_profiler(monkeypatch, wall_clock_cuda):
    """call_events breaking (an old torch without dispatch modes, a CUDA error) must not pass a
    candidate: the profiler decides, and says why call_events did not."""
    def broken(*args, **kwargs):
        raise ImportError("no dispatch modes here")
    monkeypatch.setattr(ce, "unusable", lambda modules, triton_names: None)
    monkeypatch.setattr(ce, "share", broken)
    monkeypatch.setattr(ls, "own_modules", lambda: [{"name": "ext", "path": "/nonexistent.so", "symbols": set(),
                                                     "namespaces": set(), "changed": False}])
    r = ls.library_share(torch, nn.ReLU(), (torch.randn(8),), CPU, HONEST, stand_in_timer())
    assert r["method"] == "provenance"  # on the CPU the GPU methods are not tried at all
    gpu = types.SimpleNamespace(type="cuda")
    monkeypatch.setattr(ls, "gpu_share", lambda events, symbols, triton, prefix: (10.0, 0.0, {}))
    r = ls.library_share(torch, nn.ReLU(), (torch.randn(8),), gpu, HONEST, stand_in_timer())
    assert r["method"] == "provenance" and r["uses_library_only"] is True
    assert "it failed: ImportError: no dispatch modes here" in r["call_events_not_used"]


def test_own_triton_kernels_skips_dead_weak_proxies(monkeypatch, tmp_path):
    """gc.get_objects() can hold weak proxies whose objects are gone (torch.compile leaves them);
    isinstance on one raises ReferenceError, which made the whole check fail on an H200."""
    class JITFunction:
        def __init__(self, fn):
            self.fn = fn

    runtime = types.ModuleType("triton.runtime")
    jit = types.ModuleType("triton.runtime.jit")
    jit.JITFunction = JITFunction
    for name, module in (("triton", types.ModuleType("triton")), ("triton.runtime", runtime),
                         ("triton.runtime.jit", jit)):
        monkeypatch.setitem(sys.modules, name, module)
    code = tmp_path / "candidate.py"
    code.write_text("def add_kernel():\n    pass\n")
    namespace = {}
    exec(compile(code.read_text(), str(code), "exec"), namespace)
    kernel = JITFunction(namespace["add_kernel"])

    class Gone:
        pass

    gone = Gone()
    dead = [weakref.proxy(gone)]
    del gone
    assert ls.own_triton_kernels(str(code)) == {"add_kernel"}
    assert dead and kernel
