"""The spin kernel the Timer queues before each timed GPU call (kbrun_worker.Timer).

A spin holds the stream while the call's launches queue up behind it, so the timed region
holds the GPU's time for the call and not the host's launch latency. torch.cuda._sleep spins
in one thread: the rest of the GPU is free during it, and a candidate that sees its stream busy
(a spin queued ahead) could launch its work on a side stream, let it finish during the spin and
time at zero. The spin here fills every multiprocessor instead (two blocks of half its threads
and half its shared memory each), so no other kernel's block can start until it ends: work on
another stream lands in the timed region or is still running at the snapshot after it
(rejected/unsynchronized_stream). It is loaded from PTX through the driver API (no build step;
CUDA only); where that is not possible the spin is torch.cuda._sleep, and `kind` says which.

The kernel (PTX from `nvcc -ptx -arch=compute_75`, lowered to ISA 7.0 / sm_70 so that any
driver since CUDA 11 loads it):
    extern "C" __global__ void kbrun_occupy(long long cycles) {
      extern __shared__ unsigned char pad[];
      long long start = clock64();
      while (clock64() - start < cycles) {}
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
    .param .u64 kbrun_occupy_param_0
)
{
    .reg .pred     %p<3>;
    .reg .b16     %rs<2>;
    .reg .b32     %r<4>;
    .reg .b64     %rd<6>;

    ld.param.u64     %rd2, [kbrun_occupy_param_0];
    mov.u64     %rd3, %clock64;

$L__BB0_1:
    mov.u64     %rd4, %clock64;
    sub.s64     %rd5, %rd4, %rd3;
    setp.lt.s64     %p1, %rd5, %rd2;
    @%p1 bra     $L__BB0_1;

    setp.gt.s64     %p2, %rd2, -1;
    @%p2 bra     $L__BB0_4;

    mov.u32     %r1, %tid.x;
    mov.u32     %r2, pad;
    add.s32     %r3, %r2, %r1;
    mov.u16     %rs1, 0;
    st.shared.u8     [%r3], %rs1;

$L__BB0_4:
    ret;

}
"""

CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8


class Spin:
    """spin(cycles) queues a spin of `cycles` SM clock cycles on the current stream."""

    def __init__(self, torch, device):
        self.torch = torch
        self.kind = "torch_sleep"
        self.note = None
        if getattr(torch.version, "hip", None):
            self.note = "ROCm: torch.cuda._sleep"
            return
        try:
            self._load(torch, device)
            self.kind = "occupy_all_sms"
        except Exception as exc:  # the one-thread spin still hides launch latency
            self.note = "%s: %s" % (type(exc).__name__, str(exc)[:200])

    def _load(self, torch, device):
        props = torch.cuda.get_device_properties(device)
        threads = props.max_threads_per_multi_processor // 2
        smem = props.shared_memory_per_multiprocessor // 2 - 1024  # the driver keeps 1 KiB per block
        smem = min(smem, props.shared_memory_per_block_optin)
        self.grid = 2 * props.multi_processor_count
        self.block = min(threads, 1024)
        self.smem = max(smem, 0)
        cuda = ctypes.CDLL("libcuda.so.1")
        self._cuda = cuda
        torch.cuda.current_stream(device)  # the context is current on this thread

        def check(rc, what):
            if rc != 0:
                raise RuntimeError("%s failed: CUresult %d" % (what, rc))

        module = ctypes.c_void_p()
        check(cuda.cuModuleLoadData(ctypes.byref(module), ctypes.c_char_p(OCCUPY_PTX.encode())), "cuModuleLoadData")
        fn = ctypes.c_void_p()
        check(cuda.cuModuleGetFunction(ctypes.byref(fn), module, b"kbrun_occupy"), "cuModuleGetFunction")
        check(cuda.cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, ctypes.c_int(self.smem)),
              "cuFuncSetAttribute")
        self._module, self._fn, self._check = module, fn, check
        self._cycles = ctypes.c_longlong(0)
        self._params = (ctypes.c_void_p * 1)(ctypes.cast(ctypes.byref(self._cycles), ctypes.c_void_p))
        # A launch that fails, or a spin that does not hold the caller's stream (events around
        # it would see ~0 ms), falls back here, before any timed call: a million cycles must
        # take 0.1-20 ms (an SM clock from 50 MHz to 10 GHz).
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        self._launch(1000)
        start.record()
        self._launch(1000000)
        end.record()
        end.synchronize()
        ms = start.elapsed_time(end)
        if not 0.1 <= ms <= 20.0:
            raise RuntimeError("a spin of 1e6 cycles took %.4f ms on the caller's stream" % ms)

    def __call__(self, cycles):
        if self.kind == "occupy_all_sms":
            self._launch(cycles)
        else:
            self.torch.cuda._sleep(int(cycles))

    def _launch(self, cycles):
        self._cycles.value = int(cycles)
        stream = ctypes.c_void_p(self.torch.cuda.current_stream().cuda_stream)
        self._check(self._cuda.cuLaunchKernel(self._fn, self.grid, 1, 1, self.block, 1, 1, self.smem, stream,
                                              self._params, None), "cuLaunchKernel")

    def describe(self):
        d = {"kind": self.kind}
        if self.kind == "occupy_all_sms":
            d.update(grid=self.grid, block=self.block, shared_bytes=self.smem)
        if self.note:
            d["note"] = self.note
        return d
