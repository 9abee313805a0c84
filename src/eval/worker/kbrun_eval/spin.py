"""The spin kernel the Timer queues before each timed GPU call (kbrun_eval.timing.Timer).

A spin holds the stream while the call's launches queue up behind it, so the timed region
holds the GPU's time for the call and not the host's launch latency. torch.cuda._sleep spins
in one thread: the rest of the GPU is free during it, and a candidate that sees its stream busy
(a spin queued ahead) could launch its work on a side stream, let it finish during the spin and
time at zero. The spin here fills every multiprocessor instead (two blocks of half its threads
and half its shared memory each), so no other kernel's block can start until it ends, and it is
one kernel whose blocks end together (a grid barrier): a gap between two spins, or a
multiprocessor freed early, let such work run before the start event (on an H200 a ReLU of
64x16384 hidden that way timed at 4.4x, its honest kernel 0.95x). It measures the SM clock
itself (%globaltimer over its last three quarters), so no event need sit inside it. Work on
another stream then starts in the timed region, but the end event (on the caller's stream) does
not wait for it: on an H200 such a candidate timed at 138x (its honest kernel: 0.94x). So after
the call the Timer queues a drain of the same geometry (a grid barrier: its blocks all fit only
when no other block is on any multiprocessor). The spin's last block at its barrier and the
drain's last block each note %globaltimer: from the spin's release to the drain's barrier is all
the GPU did for the call, on any stream (release_to_drain_ms; the Timer subtracts an empty call's).
Both kernels are loaded from PTX through the driver API (no build step; CUDA only); where that is
not possible the spin is torch.cuda._sleep in two parts with an event between (the clock) and no
drain, and `kind` and `drain` say so.

Over 400 lines on purpose: most of it is the two kernels' PTX, kept beside their CUDA source.

The kernel (PTX from `nvcc -ptx -arch=compute_75`, lowered to ISA 7.0 / sm_70 so that any
driver since CUDA 11 loads it):
    extern "C" __global__ void kbrun_occupy(long long cycles, long long lead, unsigned long long* times,
                                            unsigned* counter, unsigned target, long long max_cycles) {
      extern __shared__ unsigned char pad[];
      long long start = clock64();
      if (blockIdx.x == 0 && threadIdx.x == 0) {  // the clock: nanoseconds over cycles - lead
        while (clock64() - start < lead) {}
        unsigned long long t;
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
        times[0] = t;
        while (clock64() - start < cycles) {}
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
        times[1] = t;
      }
      while (clock64() - start < cycles) {}
      if (threadIdx.x == 0) {  // the blocks end together (the drain's barrier)
        if (atomicAdd(counter, 1u) + 1u == target) {  // the last block: the GPU is released now
          unsigned long long t;
          asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
          times[2] = t;
        }
        long long wait = clock64();
        while (*(volatile unsigned*)counter - target > 0x80000000u && clock64() - wait < max_cycles) {}
      }
      __syncthreads();
      if (cycles < 0) pad[threadIdx.x] = 0;   // keeps the shared memory allocated
    }
"""
import ctypes

OCCUPY_PTX = r"""
.version 7.0
.target sm_70
.address_size 64

    // .globl    kbrun_occupy
.extern .shared .align 16 .b8 pad[];

.visible .entry kbrun_occupy(
    .param .u64 kbrun_occupy_param_0,
    .param .u64 kbrun_occupy_param_1,
    .param .u64 kbrun_occupy_param_2,
    .param .u64 kbrun_occupy_param_3,
    .param .u32 kbrun_occupy_param_4,
    .param .u64 kbrun_occupy_param_5
)
{
    .reg .pred     %p<10>;
    .reg .b16     %rs<2>;
    .reg .b32     %r<11>;
    .reg .b64     %rd<23>;


    ld.param.u64     %rd5, [kbrun_occupy_param_0];
    ld.param.u64     %rd6, [kbrun_occupy_param_1];
    ld.param.u64     %rd9, [kbrun_occupy_param_2];
    ld.param.u64     %rd10, [kbrun_occupy_param_3];
    ld.param.u32     %r2, [kbrun_occupy_param_4];
    ld.param.u64     %rd7, [kbrun_occupy_param_5];
    cvta.to.global.u64     %rd1, %rd10;
    cvta.to.global.u64     %rd2, %rd9;
    // begin inline asm
    mov.u64     %rd8, %clock64;
    // end inline asm
    mov.u32     %r1, %tid.x;
    mov.u32     %r3, %ctaid.x;
    or.b32      %r4, %r3, %r1;
    setp.ne.s32     %p1, %r4, 0;
    @%p1 bra     $L__BB0_5;

$L__BB0_1:
    // begin inline asm
    mov.u64     %rd11, %clock64;
    // end inline asm
    sub.s64     %rd12, %rd11, %rd8;
    setp.lt.s64     %p2, %rd12, %rd6;
    @%p2 bra     $L__BB0_1;

    // begin inline asm
    mov.u64 %rd13, %globaltimer;
    // end inline asm
    st.global.u64     [%rd2], %rd13;

$L__BB0_3:
    // begin inline asm
    mov.u64     %rd14, %clock64;
    // end inline asm
    sub.s64     %rd15, %rd14, %rd8;
    setp.lt.s64     %p3, %rd15, %rd5;
    @%p3 bra     $L__BB0_3;

    // begin inline asm
    mov.u64 %rd16, %globaltimer;
    // end inline asm
    st.global.u64     [%rd2+8], %rd16;

$L__BB0_5:
    // begin inline asm
    mov.u64     %rd17, %clock64;
    // end inline asm
    sub.s64     %rd18, %rd17, %rd8;
    setp.lt.s64     %p4, %rd18, %rd5;
    @%p4 bra     $L__BB0_5;

    setp.ne.s32     %p5, %r1, 0;
    @%p5 bra     $L__BB0_12;

    atom.global.add.u32     %r5, [%rd1], 1;
    add.s32     %r6, %r5, 1;
    setp.ne.s32     %p6, %r6, %r2;
    @%p6 bra     $L__BB0_9;

    // begin inline asm
    mov.u64 %rd19, %globaltimer;
    // end inline asm
    st.global.u64     [%rd2+16], %rd19;

$L__BB0_9:
    // begin inline asm
    mov.u64     %rd20, %clock64;
    // end inline asm

$L__BB0_10:
    ld.volatile.global.u32     %r7, [%rd1];
    sub.s32     %r8, %r7, %r2;
    setp.lt.u32     %p7, %r8, -2147483647;
    @%p7 bra     $L__BB0_12;

    // begin inline asm
    mov.u64     %rd21, %clock64;
    // end inline asm
    sub.s64     %rd22, %rd21, %rd20;
    setp.lt.s64     %p8, %rd22, %rd7;
    @%p8 bra     $L__BB0_10;

$L__BB0_12:
    bar.sync     0;
    setp.gt.s64     %p9, %rd5, -1;
    @%p9 bra     $L__BB0_14;

    mov.u32     %r9, pad;
    add.s32     %r10, %r9, %r1;
    mov.u16     %rs1, 0;
    st.shared.u8     [%r10], %rs1;

$L__BB0_14:
    ret;

}
"""

# The drain after each timed call (Spin.drain): every block of the same geometry adds one to a
# counter and waits until all have (a grid barrier, with a time limit so that nothing can hang
# it). All its blocks fit on the GPU only together, when no other kernel's block is left on any
# multiprocessor, so an event after it tells when work the call left on other streams ended.
#    extern "C" __global__ void kbrun_drain(unsigned* counter, unsigned target, long long max_cycles,
#                                           unsigned long long* times) {
#      extern __shared__ unsigned char pad[];
#      if (threadIdx.x == 0) {
#        if (atomicAdd(counter, 1u) + 1u == target) {  // the last block: nothing else is on the GPU
#          unsigned long long t;
#          asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
#          times[3] = t;
#        }
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
    .param .u64 kbrun_drain_param_2,
    .param .u64 kbrun_drain_param_3
)
{
    .reg .pred     %p<6>;
    .reg .b16     %rs<2>;
    .reg .b32     %r<9>;
    .reg .b64     %rd<11>;


    ld.param.u64     %rd5, [kbrun_drain_param_0];
    ld.param.u32     %r2, [kbrun_drain_param_1];
    ld.param.u64     %rd3, [kbrun_drain_param_2];
    ld.param.u64     %rd4, [kbrun_drain_param_3];
    cvta.to.global.u64     %rd1, %rd5;
    mov.u32     %r1, %tid.x;
    setp.ne.s32     %p1, %r1, 0;
    @%p1 bra     $L__BB0_6;

    atom.global.add.u32     %r3, [%rd1], 1;
    add.s32     %r4, %r3, 1;
    setp.ne.s32     %p2, %r4, %r2;
    @%p2 bra     $L__BB0_3;

    // begin inline asm
    mov.u64 %rd6, %globaltimer;
    // end inline asm
    cvta.to.global.u64     %rd7, %rd4;
    st.global.u64     [%rd7+24], %rd6;

$L__BB0_3:
    // begin inline asm
    mov.u64     %rd8, %clock64;
    // end inline asm

$L__BB0_4:
    ld.volatile.global.u32     %r5, [%rd1];
    sub.s32     %r6, %r5, %r2;
    setp.lt.u32     %p3, %r6, -2147483647;
    @%p3 bra     $L__BB0_6;

    // begin inline asm
    mov.u64     %rd9, %clock64;
    // end inline asm
    sub.s64     %rd10, %rd9, %rd8;
    setp.lt.s64     %p4, %rd10, %rd3;
    @%p4 bra     $L__BB0_4;

$L__BB0_6:
    bar.sync     0;
    setp.gt.s64     %p5, %rd3, -1;
    @%p5 bra     $L__BB0_8;

    mov.u32     %r7, pad;
    add.s32     %r8, %r7, %r1;
    mov.u16     %rs1, 0;
    st.shared.u8     [%r8], %rs1;

$L__BB0_8:
    ret;

}
"""
# The drain's time limit: far beyond any wait for other work (a few ms), short of a hang.
DRAIN_MAX_CYCLES = 400000000

CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8


def _check(rc, what):
    if rc != 0:
        raise RuntimeError("%s failed: CUresult %d" % (what, rc))


def _kernel_params(args):
    """cuLaunchKernel's array of pointers to the arguments (ctypes values kept by the caller)."""
    return (ctypes.c_void_p * len(args))(*[ctypes.cast(ctypes.byref(a), ctypes.c_void_p) for a in args])


class Spin:
    """spin(cycles) queues a spin of `cycles` SM clock cycles on the current stream;
    measured_ms() then tells, once the stream has passed it, how long its last `measured_cycles`
    took (the SM clock during it)."""

    def __init__(self, torch, device):
        self.torch = torch
        self.kind = "torch_sleep"
        self.note = None
        self.can_drain = False
        self.drain_note = None
        self.measured_cycles = 0
        if getattr(torch.version, "hip", None):
            self.note = "ROCm: torch.cuda._sleep"
        else:
            try:
                self._load(torch, device)
                self.kind = "occupy_all_sms"
            except Exception as exc:  # the one-thread spin still hides launch latency
                self.note = "%s: %s" % (type(exc).__name__, str(exc)[:200])
        self._marks = None  # torch_sleep's clock: events around its measured part

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
        self._module, self._fn = self._load_function(OCCUPY_PTX, b"kbrun_occupy")
        # One counter for the spin's and the drain's barriers: every launch of either adds one
        # per block, and a launch's blocks wait until it reaches generation x grid.
        self._counter = torch.zeros(1, dtype=torch.int32, device=device)
        self._generation = 0
        # %globaltimer (ns, 32 ns steps on an H200): [0, 1] the spin's measured part, [2] the spin's
        # release (its last block at the barrier), [3] the drain's (every block on the GPU).
        self._times = torch.zeros(4, dtype=torch.int64, device=device)
        self._read = [0, 0, 0, 0]
        self._spin_args = (ctypes.c_longlong(0), ctypes.c_longlong(0), ctypes.c_void_p(self._times.data_ptr()),
                           ctypes.c_void_p(self._counter.data_ptr()), ctypes.c_uint(0),
                           ctypes.c_longlong(DRAIN_MAX_CYCLES))
        self._params = _kernel_params(self._spin_args)
        # A launch that fails, a spin that does not hold the caller's stream (events around it
        # would see ~0 ms) or whose blocks cannot all be on the GPU at once (the barrier would
        # wait for its time limit) falls back here, before any timed call: a million cycles
        # must take 0.1-20 ms (an SM clock from 50 MHz to 10 GHz), and so must its own clock.
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        self._launch(1000)
        start.record()
        self._launch(1000000)
        end.record()
        end.synchronize()
        ms = start.elapsed_time(end)
        if not 0.1 <= ms <= 20.0:
            raise RuntimeError("a spin of 1e6 cycles took %.4f ms on the caller's stream" % ms)
        own = self._own_clock_ms() * 1000000 / max(self.measured_cycles, 1)
        if not 0.1 <= own <= 20.0:
            raise RuntimeError("a spin of 1e6 cycles measured %.4f ms by its own clock" % own)
        self._check_barrier_count()
        try:
            self._load_drain(torch, device)
        except Exception as exc:  # the spin still works; work after the call is then not seen
            self.drain_note = "%s: %s" % (type(exc).__name__, str(exc)[:200])

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

    def _check_barrier_count(self):
        """Every block of every launch so far added one to the barriers' counter."""
        self.torch.cuda.synchronize()
        expected = (self._generation * self.grid) & 0xFFFFFFFF
        got = int(self._counter.item()) & 0xFFFFFFFF
        if got != expected:
            raise RuntimeError("the barriers' counter reads %d, not %d" % (got, expected))

    def _load_drain(self, torch, device):
        self._drain_module, self._drain_fn = self._load_function(DRAIN_PTX, b"kbrun_drain")
        self._drain_args = (ctypes.c_void_p(self._counter.data_ptr()), ctypes.c_uint(0),
                            ctypes.c_longlong(DRAIN_MAX_CYCLES), ctypes.c_void_p(self._times.data_ptr()))
        self._drain_params = _kernel_params(self._drain_args)
        self.drain()
        self._check_barrier_count()
        self.can_drain = True

    def _next_target(self):
        self._generation += 1
        return (self._generation * self.grid) & 0xFFFFFFFF

    def drain(self):
        """Queues the drain on the current stream (occupy_all_sms only: see can_drain)."""
        self._drain_args[1].value = self._next_target()
        self._launch_on_current_stream(self._drain_fn, self._drain_params)

    def __call__(self, cycles):
        if self.kind == "occupy_all_sms":
            self._launch(cycles)
        else:
            lead = self._lead(cycles)
            if self._marks is None:
                self._marks = tuple(self.torch.cuda.Event(enable_timing=True) for _ in range(2))
            self.torch.cuda._sleep(lead)
            self._marks[0].record()
            self.torch.cuda._sleep(int(cycles) - lead)
            self._marks[1].record()

    def _lead(self, cycles):
        """The spin's first quarter, not measured: the clock is the SM's, not the start's."""
        lead = int(cycles) // 4
        self.measured_cycles = int(cycles) - lead
        return lead

    def measured_ms(self):
        """How long the last spin's measured part took; call once the stream has passed it."""
        if self.kind == "occupy_all_sms":
            return self._own_clock_ms()
        return self._marks[0].elapsed_time(self._marks[1])

    def _own_clock_ms(self):
        self._read = self._times.tolist()  # one copy for this and release_to_drain_ms
        return (self._read[1] - self._read[0]) / 1e6

    def release_to_drain_ms(self):
        """From the last spin's release to the last drain's barrier, by the GPU's own timer: all the
        work that ran on any stream in between, whatever events it was or was not between. Call
        after measured_ms() (which reads the timer), once the stream has passed the drain."""
        return (self._read[3] - self._read[2]) / 1e6

    def _launch(self, cycles):
        self._spin_args[1].value = self._lead(cycles)
        self._spin_args[0].value = int(cycles)
        self._spin_args[4].value = self._next_target()
        self._launch_on_current_stream(self._fn, self._params)

    def _launch_on_current_stream(self, fn, params):
        stream = ctypes.c_void_p(self.torch.cuda.current_stream().cuda_stream)
        _check(self._cuda.cuLaunchKernel(fn, self.grid, 1, 1, self.block, 1, 1, self.smem, stream, params, None),
               "cuLaunchKernel")

    def describe(self):
        d = {"kind": self.kind}
        if self.kind == "occupy_all_sms":
            d.update(grid=self.grid, block=self.block, shared_bytes=self.smem)
        if self.note:
            d["note"] = self.note
        d["drain"] = self.can_drain
        if self.drain_note:
            d["drain_note"] = self.drain_note
        return d
