"""The spin the Timer queues before each timed GPU call (kbrun_worker.Timer), and the drain after.

A spin holds the caller's stream while the call's launches queue up behind it, so the timed region
holds the GPU's time for the call and not the host's launch latency. It must also keep the call's
work from running before the start event: a candidate that sees its stream busy can put its work
on another stream. torch.cuda._sleep spins in one thread, the rest of the GPU is free, and such
work finishes during the spin (on an H200: 82x for a ReLU whose honest kernel is 0.94x). A spin
that fills every multiprocessor on the caller's stream still leaves a gap: its blocks end, the
multiprocessors are free, and only then is the start event recorded; work pending on another
stream starts in that gap and a small kernel is done by the end event (a ReLU of 64x16384: 4.4x).

So the spin here is held across the start event. `kbrun_hold` fills every multiprocessor (two
blocks of half its threads and half its shared memory each) on a stream of the highest priority
(nothing of the candidate's can preempt it); the caller's stream waits (cuStreamWaitValue32) until
the spin has run its cycles, records the start event, then writes the release flag
(cuStreamWriteValue32), and only then do the hold's blocks end. Whatever the call runs, on any
stream, starts after the start event. The spin measures the SM clock itself (%globaltimer over its
last three quarters). Where the driver has no stream memory operations, the same kernel spins on
the caller's stream without waiting (`occupy_all_sms`, with the gap above); where it cannot load,
the spin is torch.cuda._sleep with two events for the clock (`torch_sleep`). `kind` says which.

Work on another stream still runs past the end event (on the caller's stream, it does not wait for
it): so after the call the Timer queues a drain of the same geometry (a grid barrier: its blocks
all fit only when no other block is on any multiprocessor) and counts the time from the end event
to the drain's end, less the drain's own, as part of the call. Both kernels are loaded from PTX
through the driver API (no build step; CUDA only).

The hold (PTX from `nvcc -ptx -arch=compute_75`, lowered to ISA 7.0 / sm_70 so that any driver since
CUDA 11 loads it):
    extern "C" __global__ void kbrun_hold(long long cycles, long long lead, unsigned long long* times,
                                          unsigned* flags, unsigned gen, long long max_cycles) {
      extern __shared__ unsigned char pad[];
      volatile unsigned* spun = flags;
      volatile unsigned* release = flags + 1;
      long long start = clock64();
      // A block that could not start before the release (another context held the GPU) holds nothing.
      if (__syncthreads_or(threadIdx.x == 0 && *release == gen)) return;
      if (blockIdx.x == 0 && threadIdx.x == 0) {  // the clock: nanoseconds over cycles - lead
        while (clock64() - start < lead) {}
        unsigned long long t;
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
        times[0] = t;
        while (clock64() - start < cycles) {}
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
        times[1] = t;
        __threadfence_system();
        *spun = gen;  // the caller's stream waits for this
      }
      while (clock64() - start < cycles) {}
      if (threadIdx.x == 0) {  // held until the caller's stream has recorded its start event
        long long wait = clock64();
        while (*release != gen && clock64() - wait < max_cycles) {}
      }
      __syncthreads();
      if (cycles < 0) pad[threadIdx.x] = 0;   // keeps the shared memory allocated
    }
"""
import ctypes
import time

HOLD_PTX = r"""
.version 7.0
.target sm_70
.address_size 64

    // .globl    kbrun_hold
.extern .shared .align 16 .b8 pad[];

.visible .entry kbrun_hold(
    .param .u64 kbrun_hold_param_0,
    .param .u64 kbrun_hold_param_1,
    .param .u64 kbrun_hold_param_2,
    .param .u64 kbrun_hold_param_3,
    .param .u32 kbrun_hold_param_4,
    .param .u64 kbrun_hold_param_5
)
{
    .reg .pred     %p<12>;
    .reg .b16     %rs<2>;
    .reg .b32     %r<14>;
    .reg .b64     %rd<22>;


    ld.param.u64     %rd5, [kbrun_hold_param_0];
    ld.param.u64     %rd6, [kbrun_hold_param_1];
    ld.param.u64     %rd9, [kbrun_hold_param_2];
    ld.param.u64     %rd10, [kbrun_hold_param_3];
    ld.param.u32     %r4, [kbrun_hold_param_4];
    ld.param.u64     %rd7, [kbrun_hold_param_5];
    cvta.to.global.u64     %rd1, %rd9;
    cvta.to.global.u64     %rd2, %rd10;
    mov.u64     %rd8, %clock64;
    mov.u32     %r1, %tid.x;
    setp.ne.s32     %p1, %r1, 0;
    mov.u32     %r13, 0;
    @%p1 bra     $L__BB0_2;

    ld.volatile.global.u32     %r6, [%rd2+4];
    setp.eq.s32     %p2, %r6, %r4;
    selp.u32     %r13, 1, 0, %p2;

$L__BB0_2:
    {
    .reg .pred     %p1;
    .reg .pred     %p2;
    setp.ne.u32     %p1, %r13, 0;
    bar.red.or.pred     %p2, 0, %p1;
    selp.u32     %r7, 1, 0, %p2;
    }
    setp.ne.s32     %p3, %r7, 0;
    @%p3 bra     $L__BB0_15;

    mov.u32     %r8, %ctaid.x;
    or.b32      %r9, %r8, %r1;
    setp.ne.s32     %p4, %r9, 0;
    @%p4 bra     $L__BB0_8;

$L__BB0_4:
    mov.u64     %rd11, %clock64;
    sub.s64     %rd12, %rd11, %rd8;
    setp.lt.s64     %p5, %rd12, %rd6;
    @%p5 bra     $L__BB0_4;

    mov.u64 %rd13, %globaltimer;
    st.global.u64     [%rd1], %rd13;

$L__BB0_6:
    mov.u64     %rd14, %clock64;
    sub.s64     %rd15, %rd14, %rd8;
    setp.lt.s64     %p6, %rd15, %rd5;
    @%p6 bra     $L__BB0_6;

    mov.u64 %rd16, %globaltimer;
    st.global.u64     [%rd1+8], %rd16;
    membar.sys;
    st.volatile.global.u32     [%rd2], %r4;

$L__BB0_8:
    mov.u64     %rd17, %clock64;
    sub.s64     %rd18, %rd17, %rd8;
    setp.lt.s64     %p7, %rd18, %rd5;
    @%p7 bra     $L__BB0_8;

    @%p1 bra     $L__BB0_13;

    mov.u64     %rd19, %clock64;

$L__BB0_11:
    ld.volatile.global.u32     %r10, [%rd2+4];
    setp.eq.s32     %p9, %r10, %r4;
    @%p9 bra     $L__BB0_13;

    mov.u64     %rd20, %clock64;
    sub.s64     %rd21, %rd20, %rd19;
    setp.lt.s64     %p10, %rd21, %rd7;
    @%p10 bra     $L__BB0_11;

$L__BB0_13:
    bar.sync     0;
    setp.gt.s64     %p11, %rd5, -1;
    @%p11 bra     $L__BB0_15;

    mov.u32     %r11, pad;
    add.s32     %r12, %r11, %r1;
    mov.u16     %rs1, 0;
    st.shared.u8     [%r12], %rs1;

$L__BB0_15:
    ret;

}
"""

# The drain after each timed call (Spin.drain): every block of the same geometry adds one to a
# counter and waits until all have (a grid barrier, with a time limit so that nothing can hang
# it). All its blocks fit on the GPU only together, when no other kernel's block is left on any
# multiprocessor, so an event after it tells when work the call left on other streams ended.
#    extern "C" __global__ void kbrun_drain(unsigned* counter, unsigned target, long long max_cycles) {
#      extern __shared__ unsigned char pad[];
#      if (threadIdx.x == 0) {
#        atomicAdd(counter, 1u);
#        long long start = clock64();
#        while (*(volatile unsigned*)counter - target > 0x80000000u && clock64() - start < max_cycles) {}
#      }
#      __syncthreads();
#      if (max_cycles < 0) pad[threadIdx.x] = 0;
#    }
DRAIN_PTX = r"""
.version 7.0
.target sm_70
.address_size 64

    // .globl    kbrun_drain
.extern .shared .align 16 .b8 pad[];

.visible .entry kbrun_drain(
    .param .u64 kbrun_drain_param_0,
    .param .u32 kbrun_drain_param_1,
    .param .u64 kbrun_drain_param_2
)
{
    .reg .pred     %p<5>;
    .reg .b16     %rs<2>;
    .reg .b32     %r<8>;
    .reg .b64     %rd<8>;


    ld.param.u64     %rd4, [kbrun_drain_param_0];
    ld.param.u32     %r2, [kbrun_drain_param_1];
    ld.param.u64     %rd3, [kbrun_drain_param_2];
    cvta.to.global.u64     %rd1, %rd4;
    mov.u32     %r1, %tid.x;
    setp.ne.s32     %p1, %r1, 0;
    @%p1 bra     $L__BB0_4;

    atom.global.add.u32     %r3, [%rd1], 1;
    mov.u64     %rd5, %clock64;

$L__BB0_2:
    ld.volatile.global.u32     %r4, [%rd1];
    sub.s32     %r5, %r4, %r2;
    setp.lt.u32     %p2, %r5, -2147483647;
    @%p2 bra     $L__BB0_4;

    mov.u64     %rd6, %clock64;
    sub.s64     %rd7, %rd6, %rd5;
    setp.lt.s64     %p3, %rd7, %rd3;
    @%p3 bra     $L__BB0_2;

$L__BB0_4:
    bar.sync     0;
    setp.gt.s64     %p4, %rd3, -1;
    @%p4 bra     $L__BB0_6;

    mov.u32     %r6, pad;
    add.s32     %r7, %r6, %r1;
    mov.u16     %rs1, 0;
    st.shared.u8     [%r7], %rs1;

$L__BB0_6:
    ret;

}
"""
# The hold's and the drain's time limit: far beyond any wait (a few ms), short of a hang.
DRAIN_MAX_CYCLES = 400000000

CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8
CU_STREAM_WAIT_VALUE_EQ = 0x1
CU_STREAM_WRITE_VALUE_DEFAULT = 0x0


def _check(rc, what):
    if rc != 0:
        raise RuntimeError("%s failed: CUresult %d" % (what, rc))


def _kernel_params(args):
    """cuLaunchKernel's array of pointers to the arguments (ctypes values kept by the caller)."""
    return (ctypes.c_void_p * len(args))(*[ctypes.cast(ctypes.byref(a), ctypes.c_void_p) for a in args])


class Spin:
    """spin(cycles, then) queues a spin of `cycles` SM clock cycles ahead of the current stream's
    next work, `then()` (the start event) at its end, before the spin lets go of the GPU;
    measured_ms() then tells, once the stream has passed it, how long its last `measured_cycles`
    took (the SM clock during it)."""

    def __init__(self, torch, device):
        self.torch = torch
        self.kind = "torch_sleep"
        self.note = None
        self.can_drain = False
        self.drain_note = None
        self.measured_cycles = 0
        self._marks = None  # torch_sleep's clock: events around its measured part
        if getattr(torch.version, "hip", None):
            self.note = "ROCm: torch.cuda._sleep"
            return
        try:
            self._load(torch, device)
        except Exception as exc:  # the one-thread spin still hides launch latency
            self.kind = "torch_sleep"
            self.note = "%s: %s" % (type(exc).__name__, str(exc)[:200])
            return
        try:
            self._load_drain(torch, device)
        except Exception as exc:  # the spin still works; work after the call is then not seen
            self.drain_note = "%s: %s" % (type(exc).__name__, str(exc)[:200])

    def _load(self, torch, device):
        props = torch.cuda.get_device_properties(device)
        threads = props.max_threads_per_multi_processor // 2
        smem = props.shared_memory_per_multiprocessor // 2 - 1024  # the driver keeps 1 KiB per block
        smem = min(smem, props.shared_memory_per_block_optin)
        self.grid = 2 * props.multi_processor_count
        self.block = min(threads, 1024)
        self.smem = max(smem, 0)
        self._cuda = ctypes.CDLL("libcuda.so.1")
        torch.cuda.current_stream(device)  # the context is current on this thread
        self._module, self._fn = self._load_function(HOLD_PTX, b"kbrun_hold")
        self._flags = torch.zeros(2, dtype=torch.int32, device=device)  # spun, release
        self._times = torch.zeros(2, dtype=torch.int64, device=device)
        self._hold_gen = 0
        self._hold_args = (ctypes.c_longlong(0), ctypes.c_longlong(0), ctypes.c_void_p(self._times.data_ptr()),
                           ctypes.c_void_p(self._flags.data_ptr()), ctypes.c_uint(0), ctypes.c_longlong(0))
        self._hold_params = _kernel_params(self._hold_args)
        try:
            self._wait_value = self._driver_function("cuStreamWaitValue32")
            self._write_value = self._driver_function("cuStreamWriteValue32")
            # The highest priority: a stream of the candidate's cannot preempt the hold.
            self._hold_stream = torch.cuda.Stream(device=device, priority=-100)
            self.kind = "hold_all_sms"
            self._self_test()
        except Exception as exc:  # no stream memory operations: spin on the caller's stream
            self.note = "hold: %s: %s" % (type(exc).__name__, str(exc)[:200])
            self.kind = "occupy_all_sms"
            torch.cuda.synchronize()  # a hold not let go ends at its time limit
            self._self_test()

    def _driver_function(self, name):
        """A stream memory operation of the driver (the _v2 entry point where there is one)."""
        for symbol in (name + "_v2", name):
            fn = getattr(self._cuda, symbol, None)
            if fn is not None:
                fn.restype = ctypes.c_int
                fn.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_uint]
                return fn
        raise RuntimeError("the driver has no %s" % name)

    def _self_test(self):
        """A launch that fails, a spin that does not hold the caller's stream (events around it
        would see ~0 ms), or a hold that is not let go (the GPU would be held up to its time limit)
        fails here, before any timed call: a million cycles must take 0.1-20 ms (an SM clock from
        50 MHz to 10 GHz) on the caller's stream and by the spin's own clock, and the GPU must be
        free again at once."""
        torch = self.torch
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        self(1000)
        start.record()
        self(1000000)
        end.record()
        t = time.perf_counter()
        torch.cuda.synchronize()
        host_ms = (time.perf_counter() - t) * 1000.0
        ms = start.elapsed_time(end)
        if not 0.1 <= ms <= 20.0:
            raise RuntimeError("a spin of 1e6 cycles took %.4f ms on the caller's stream" % ms)
        own = self.measured_ms() * 1000000 / max(self.measured_cycles, 1)
        if not 0.1 <= own <= 20.0:
            raise RuntimeError("a spin of 1e6 cycles measured %.4f ms by its own clock" % own)
        if host_ms > 100.0:
            raise RuntimeError("the GPU was held %.1f ms after a spin of 1e6 cycles" % host_ms)
        spun, release = self._flags.tolist()
        if self.kind == "hold_all_sms" and not spun == release == self._hold_gen:
            raise RuntimeError("the hold's flags read %d, %d, not %d" % (spun, release, self._hold_gen))

    def _load_function(self, ptx, name):
        """(module, function) from PTX, allowed the spin's dynamic shared memory."""
        cuda = self._cuda
        module = ctypes.c_void_p()
        _check(cuda.cuModuleLoadData(ctypes.byref(module), ctypes.c_char_p(ptx.encode())), "cuModuleLoadData")
        fn = ctypes.c_void_p()
        _check(cuda.cuModuleGetFunction(ctypes.byref(fn), module, name), "cuModuleGetFunction")
        _check(cuda.cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, ctypes.c_int(self.smem)),
               "cuFuncSetAttribute")
        return module, fn

    def _load_drain(self, torch, device):
        self._drain_module, self._drain_fn = self._load_function(DRAIN_PTX, b"kbrun_drain")
        self._counter = torch.zeros(1, dtype=torch.int32, device=device)
        self._drain_args = (ctypes.c_void_p(self._counter.data_ptr()), ctypes.c_uint(0),
                            ctypes.c_longlong(DRAIN_MAX_CYCLES))
        self._drain_params = _kernel_params(self._drain_args)
        self._generation = 0
        self.drain()
        torch.cuda.synchronize()
        if int(self._counter.item()) != self.grid:  # every block ran once: the barrier works
            raise RuntimeError("the drain's counter reads %d, not %d" % (int(self._counter.item()), self.grid))
        self.can_drain = True

    def drain(self):
        """Queues the drain on the current stream (not with torch_sleep: see can_drain)."""
        self._generation += 1
        self._drain_args[1].value = (self._generation * self.grid) & 0xFFFFFFFF
        self._launch_on(self._stream(), self._drain_fn, self._drain_params)

    def __call__(self, cycles, then=None):
        cycles = int(cycles)
        lead = cycles // 4  # the clock is measured over the rest: the SM's clock, not the start's
        self.measured_cycles = cycles - lead
        if self.kind == "torch_sleep":
            if self._marks is None:
                self._marks = tuple(self.torch.cuda.Event(enable_timing=True) for _ in range(2))
            self.torch.cuda._sleep(lead)
            self._marks[0].record()
            self.torch.cuda._sleep(cycles - lead)
            self._marks[1].record()
        else:
            self._hold(cycles, lead, then)
            return
        if then is not None:
            then()

    def _hold(self, cycles, lead, then):
        self._hold_gen = (self._hold_gen + 1) & 0xFFFFFFFF
        gen = self._hold_gen
        args = self._hold_args
        args[0].value, args[1].value, args[4].value = cycles, lead, gen
        caller = self._stream()
        if self.kind == "occupy_all_sms":  # on the caller's stream, let go when it has spun
            args[5].value = 0
            self._launch_on(caller, self._fn, self._hold_params)
            if then is not None:
                then()
            return
        args[5].value = DRAIN_MAX_CYCLES
        current = self.torch.cuda.current_stream()
        self._hold_stream.wait_stream(current)  # after whatever the caller queued before
        self._launch_on(ctypes.c_void_p(self._hold_stream.cuda_stream), self._fn, self._hold_params)
        spun, release = self._flags.data_ptr(), self._flags.data_ptr() + 4
        _check(self._wait_value(caller, spun, gen, CU_STREAM_WAIT_VALUE_EQ), "cuStreamWaitValue32")
        if then is not None:
            then()
        _check(self._write_value(caller, release, gen, CU_STREAM_WRITE_VALUE_DEFAULT), "cuStreamWriteValue32")

    def measured_ms(self):
        """How long the last spin's measured part took; call once the stream has passed it."""
        if self.kind == "torch_sleep":
            return self._marks[0].elapsed_time(self._marks[1])
        t0, t1 = self._times.tolist()  # %globaltimer, nanoseconds
        return (t1 - t0) / 1e6

    def _stream(self):
        return ctypes.c_void_p(self.torch.cuda.current_stream().cuda_stream)

    def _launch_on(self, stream, fn, params):
        _check(self._cuda.cuLaunchKernel(fn, self.grid, 1, 1, self.block, 1, 1, self.smem, stream, params, None),
               "cuLaunchKernel")

    def describe(self):
        d = {"kind": self.kind}
        if self.kind != "torch_sleep":
            d.update(grid=self.grid, block=self.block, shared_bytes=self.smem)
        if self.note:
            d["note"] = self.note
        d["drain"] = self.can_drain
        if self.drain_note:
            d["drain_note"] = self.drain_note
        return d
