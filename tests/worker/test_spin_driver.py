"""kbrun_spin.Spin and kbrun_worker.Timer against a stand-in CUDA driver and GPU (a clock that
launches advance; an ordered log of what each stream was given), so that their control flow runs on
the CPU: the self-tests, the hold released after the start event, the fallback to a spin on the
caller's stream without stream memory operations, the spin's own clock, the drain and its count.
The real kernels run in the device checks (bench/device_judge_check.sh)."""
import ctypes
import types

import pytest

import kbrun_spin
import kbrun_worker as kw

MHZ = 1980.0  # the stand-in SM clock: cycles per microsecond
SMS = 132
CALLER, HOLD = 7, 9  # stream handles


class FakeGpu:
    """Runs every launch at once, in order: time advances by each kernel's length. `log` holds
    (stream, what) in the order the host queued them."""

    def __init__(self):
        self.now_ms = 0.0
        self.memory = {}  # data_ptr -> FakeTensor
        self.log = []
        self.side_work_ms = 0.0  # work a call leaves on another stream, run before the next drain ends

    def word(self, address):
        """(tensor, index) of the 32-bit word at address (flags are int32 tensors)."""
        for ptr, t in self.memory.items():
            if ptr <= address < ptr + 4 * len(t.values):
                return t, (address - ptr) // 4
        raise AssertionError("no memory at %#x" % address)


class FakeTensor:
    def __init__(self, gpu, n):
        self.gpu, self.values = gpu, [0] * min(n, 16)  # the L2 flush's buffer holds nothing we read
        self.ptr = max([t.ptr + 8 * n for t in gpu.memory.values()] + [0x10000]) + 0x100
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
        self.gpu.log.append((CALLER, "event"))

    def synchronize(self):
        pass

    def query(self):
        return True

    def elapsed_time(self, other):
        return other.t - self.t


class FakeDriver:
    """libcuda's calls that kbrun_spin makes; a launch runs its kernel on the FakeGpu."""

    def __init__(self, gpu, memops=True):
        self.gpu = gpu
        self.functions = {}
        if memops:
            self.cuStreamWaitValue32_v2 = Memop(self.wait_value)
            self.cuStreamWriteValue32_v2 = Memop(self.write_value)

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
        if name == b"kbrun_hold":
            cycles, lead, times = arg(0, ctypes.c_longlong), arg(1, ctypes.c_longlong), arg(2, ctypes.c_void_p)
            flags, gen = gpu.memory[arg(3, ctypes.c_void_p)], arg(4, ctypes.c_uint)
            gpu.memory[times].values = [int((gpu.now_ms + lead / MHZ / 1000) * 1e6),
                                        int((gpu.now_ms + cycles / MHZ / 1000) * 1e6)]
            gpu.now_ms += cycles / MHZ / 1000 + 0.001
            flags.values[0] = gen  # spun
        else:
            counter, target = gpu.memory[arg(0, ctypes.c_void_p)], arg(1, ctypes.c_uint)
            gpu.now_ms += gpu.side_work_ms + 0.004
            gpu.side_work_ms = 0.0
            counter.values[0] += gx
            assert counter.values[0] & 0xFFFFFFFF == target  # every block of this launch arrived
        gpu.log.append((stream.value, name.decode()))
        return 0

    def wait_value(self, stream, address, value, flags):
        tensor, i = self.gpu.word(address)
        assert flags == kbrun_spin.CU_STREAM_WAIT_VALUE_EQ
        assert tensor.values[i] == value, "the caller's stream would wait for ever"
        self.gpu.log.append((getattr(stream, "value", stream), "wait"))
        return 0

    def write_value(self, stream, address, value, flags):
        tensor, i = self.gpu.word(address)
        tensor.values[i] = value
        self.gpu.log.append((getattr(stream, "value", stream), "release"))
        return 0


class Memop:
    """A driver entry point: ctypes sets restype and argtypes on it."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args):
        return self.fn(*args)


def fake_torch(gpu):
    def stream(device=None, priority=0):
        assert priority < 0  # the hold's stream: the highest priority
        return types.SimpleNamespace(cuda_stream=HOLD, wait_stream=lambda s: gpu.log.append((HOLD, "wait_stream")))

    cuda = types.SimpleNamespace(
        get_device_properties=lambda d: types.SimpleNamespace(
            max_threads_per_multi_processor=2048, shared_memory_per_multiprocessor=233472,
            shared_memory_per_block_optin=232448, multi_processor_count=SMS, L2_cache_size=60 * 2 ** 20),
        current_stream=lambda device=None: types.SimpleNamespace(cuda_stream=CALLER),
        Stream=stream,
        Event=lambda enable_timing=True: FakeEvent(gpu),
        synchronize=lambda: None,
        _sleep=lambda cycles: pytest.fail("the all-SM spin fell back to torch.cuda._sleep"))
    make = lambda n, **kw: FakeTensor(gpu, n)  # noqa: E731
    return types.SimpleNamespace(version=types.SimpleNamespace(hip=None), cuda=cuda, zeros=make, empty=make,
                                 int32="int32", int64="int64")


def use_driver(monkeypatch, gpu, memops=True):
    monkeypatch.setattr(kbrun_spin.ctypes, "CDLL", lambda name: FakeDriver(gpu, memops))


def test_the_spin_holds_the_gpu_until_the_callers_stream_lets_it_go(monkeypatch):
    gpu = FakeGpu()
    use_driver(monkeypatch, gpu)
    spin = kbrun_spin.Spin(fake_torch(gpu), "cuda:0")
    d = spin.describe()
    assert d["kind"] == "hold_all_sms" and "note" not in d, d
    assert d["drain"] is True and d["grid"] == 2 * SMS and d["block"] == 1024
    del gpu.log[:]
    spin(400000, then=lambda: gpu.log.append((CALLER, "start")))
    # The hold runs on its own stream; the caller's stream waits for it, records the start event,
    # then lets it go: nothing the call queues can start before the start event.
    assert gpu.log == [(HOLD, "wait_stream"), (HOLD, "kbrun_hold"), (CALLER, "wait"), (CALLER, "start"),
                       (CALLER, "release")]
    assert spin.measured_cycles == 300000
    assert spin.measured_ms() == pytest.approx(300000 / MHZ / 1000, rel=1e-3)


def test_without_stream_memory_operations_the_spin_is_on_the_callers_stream(monkeypatch):
    gpu = FakeGpu()
    use_driver(monkeypatch, gpu, memops=False)
    spin = kbrun_spin.Spin(fake_torch(gpu), "cuda:0")
    d = spin.describe()
    assert d["kind"] == "occupy_all_sms" and "cuStreamWaitValue32" in d["note"] and d["drain"] is True, d
    del gpu.log[:]
    spin(400000, then=lambda: gpu.log.append((CALLER, "start")))
    assert gpu.log == [(CALLER, "kbrun_hold"), (CALLER, "start")]


def test_a_timed_call_is_the_hold_then_the_call_then_the_drain(monkeypatch):
    gpu = FakeGpu()
    use_driver(monkeypatch, gpu)
    timer = kw.Timer(fake_torch(gpu), types.SimpleNamespace(type="cuda"))
    timer.spin_ms = 0.1

    def call():
        gpu.log.append((CALLER, "call"))
        gpu.now_ms += 0.005
        return 1

    del gpu.log[:]
    ms, out, _ = timer.time_once(call, ())
    assert out == 1 and ms == pytest.approx(0.005, abs=1e-6)
    assert [w for _, w in gpu.log] == ["wait_stream", "kbrun_hold", "wait", "event", "release", "call", "event",
                                       "kbrun_drain", "event"]
    assert timer.clock_summary()["median"] == pytest.approx(MHZ, rel=1e-2)

    def hidden():  # the call's work ran on another stream past its end event
        gpu.side_work_ms = 0.050
        return 2

    ms, out, _ = timer.time_once(hidden, ())
    assert ms == pytest.approx(0.050, abs=1e-3)  # counted in the call
    s = timer.spin_summary()
    assert s["calls_with_work_after_end"] == 1 and s["drain_excess_ms"]["trials"] == 2
