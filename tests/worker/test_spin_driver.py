"""kbrun_eval.spin.Spin and kbrun_eval.timing.Timer on the all-SM path, against a stand-in CUDA driver and GPU
(a clock that launches and events advance), so that their control flow runs on the CPU: the
spin's self-tests, the barriers' generations, the spin's own clock, the drain and its count.
The real kernels run in the device checks (tests/device/judge_floor_and_cheats.sh)."""
import ctypes
import types

import pytest

from kbrun_eval import spin as kbrun_spin
from kbrun_eval import timing as kw

MHZ = 1980.0  # the stand-in SM clock: cycles per microsecond
SMS = 132


class FakeGpu:
    """A GPU that runs every launch at once, in order: time advances by each kernel's length."""

    def __init__(self):
        self.now_ms = 0.0
        self.memory = {}  # data_ptr -> FakeTensor
        self.launches = []  # (kernel, args)
        self.side_work_ms = 0.0  # work a call leaves on another stream, run before the next drain ends
        self.at_release_ms = 0.0  # work pending on another stream when the next spin ends: runs at once


class FakeTensor:
    def __init__(self, gpu, values):
        self.gpu, self.values = gpu, list(values)
        self.ptr = 0x1000 * (len(gpu.memory) + 1)
        gpu.memory[self.ptr] = self

    def data_ptr(self):
        return self.ptr

    def item(self):
        return self.values[0]

    def tolist(self):
        return list(self.values)

    def zero_(self):
        return self


class FakeEvent:
    def __init__(self, gpu):
        self.gpu, self.t = gpu, None

    def record(self):
        self.t = self.gpu.now_ms

    def synchronize(self):
        pass

    def query(self):
        return True

    def elapsed_time(self, other):
        return other.t - self.t


class FakeDriver:
    """libcuda's calls that kbrun_spin makes; a launch runs its kernel on the FakeGpu."""

    def __init__(self, gpu):
        self.gpu = gpu
        self.functions = {}

    def cuModuleLoadData(self, module, ptx):
        return 0

    def cuModuleGetFunction(self, fn, module, name):
        fn._obj.value = len(self.functions) + 1
        self.functions[fn._obj.value] = name
        return 0

    def cuFuncSetAttribute(self, fn, attr, value):
        return 0

    def cuLaunchKernel(self, fn, gx, gy, gz, bx, by, bz, smem, stream, params, extra):
        name = self.functions[fn.value]
        arg = lambda i, t: ctypes.cast(params[i], ctypes.POINTER(t)).contents.value  # noqa: E731
        gpu = self.gpu
        if name == b"kbrun_occupy":
            cycles, lead, times = arg(0, ctypes.c_longlong), arg(1, ctypes.c_longlong), arg(2, ctypes.c_void_p)
            counter, target = arg(3, ctypes.c_void_p), arg(4, ctypes.c_uint)
            t = gpu.memory[times].values
            t[0], t[1] = int((gpu.now_ms + lead / MHZ / 1000) * 1e6), int((gpu.now_ms + cycles / MHZ / 1000) * 1e6)
            gpu.now_ms += cycles / MHZ / 1000
            t[2] = int(gpu.now_ms * 1e6)  # released
            gpu.now_ms += 0.001 + gpu.at_release_ms  # before the start event
            gpu.at_release_ms = 0.0
        else:
            counter, target, times = arg(0, ctypes.c_void_p), arg(1, ctypes.c_uint), arg(3, ctypes.c_void_p)
            gpu.now_ms += gpu.side_work_ms + 0.004
            gpu.side_work_ms = 0.0
            gpu.memory[times].values[3] = int(gpu.now_ms * 1e6)  # every block on the GPU
        gpu.memory[counter].values[0] += gx
        assert gpu.memory[counter].values[0] & 0xFFFFFFFF == target  # every block of this launch arrived
        gpu.launches.append(name)
        return 0


def fake_torch(gpu):
    cuda = types.SimpleNamespace(
        get_device_properties=lambda d: types.SimpleNamespace(
            max_threads_per_multi_processor=2048, shared_memory_per_multiprocessor=233472,
            shared_memory_per_block_optin=232448, multi_processor_count=SMS, L2_cache_size=60 * 2 ** 20),
        current_stream=lambda device=None: types.SimpleNamespace(cuda_stream=7),
        Event=lambda enable_timing=True: FakeEvent(gpu),
        synchronize=lambda: None,
        _sleep=lambda cycles: pytest.fail("the all-SM spin fell back to torch.cuda._sleep"))
    make = lambda *shape, **kw: FakeTensor(gpu, [0] * (shape[0] if isinstance(shape[0], int) else 1))  # noqa: E731
    return types.SimpleNamespace(version=types.SimpleNamespace(hip=None), cuda=cuda, zeros=make, empty=make,
                                 int32="int32", int64="int64")


@pytest.fixture
def gpu(monkeypatch):
    gpu = FakeGpu()
    monkeypatch.setattr(kbrun_spin.ctypes, "CDLL", lambda name: FakeDriver(gpu))
    return gpu


def test_the_spin_loads_tests_itself_and_measures_its_own_clock(gpu):
    spin = kbrun_spin.Spin(fake_torch(gpu), "cuda:0")
    d = spin.describe()
    assert d["kind"] == "occupy_all_sms" and "note" not in d, d
    assert d["drain"] is True and d["grid"] == 2 * SMS and d["block"] == 1024
    assert gpu.launches == [b"kbrun_occupy", b"kbrun_occupy", b"kbrun_drain"]
    spin(400000)
    assert spin.measured_cycles == 300000
    assert spin.measured_ms() == pytest.approx(300000 / MHZ / 1000, rel=1e-3)


def test_a_timed_call_is_one_spin_then_the_call_then_the_drain(gpu):
    torch = fake_torch(gpu)
    timer = kw.Timer(torch, types.SimpleNamespace(type="cuda"))
    timer.spin_ms = 0.1
    before = len(gpu.launches)

    def call():
        gpu.now_ms += 0.005
        return 1

    ms, out, _ = timer.time_once(call, ())
    assert out == 1 and ms == pytest.approx(0.005, abs=1e-6)
    assert gpu.launches[before:] == [b"kbrun_occupy", b"kbrun_drain"]  # no gap between two spins
    assert timer.clock_summary()["median"] == pytest.approx(MHZ, rel=1e-2)

    def hidden():  # the call's work ran on another stream past its end event
        gpu.side_work_ms = 0.050
        return 2

    ms, out, _ = timer.time_once(hidden, ())
    assert ms == pytest.approx(0.050, abs=1e-3)  # counted in the call
    s = timer.spin_summary()
    assert s["calls_with_work_outside_events"] == 1 and s["window_excess_ms"]["trials"] == 2


def test_work_that_runs_as_the_spin_releases_the_gpu_is_counted(gpu):
    """A candidate that saw its stream busy and queued its kernel on another stream: the kernel
    starts as the spin's blocks leave, before the start event, and is done by the end event
    (tests/gpu/judge/spin_hider_relu.py). The events see nothing; the window sees it."""
    timer = kw.Timer(fake_torch(gpu), types.SimpleNamespace(type="cuda"))
    timer.spin_ms = 0.1

    def hider():
        return 3

    gpu.at_release_ms = 0.004  # queued before the call: the fake GPU runs launches at once
    ms, out, _ = timer.time_once(hider, ())
    assert out == 3 and ms == pytest.approx(0.004, abs=1e-5)
    assert timer.spin_summary()["calls_with_work_outside_events"] == 1
    ms, _, _ = timer.time_once(hider, ())  # nothing at the release: an empty call
    assert ms == pytest.approx(0.0, abs=1e-5)
