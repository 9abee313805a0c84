"""Which part of kbrun's sandbox stops CUDA from initialising? Forks one child per variant,
applies that part of the sandbox (kbrun_zygote's own functions), calls cuInit(0) and prints
its result (0 = CUDA_SUCCESS; 304 = CUDA_ERROR_OPERATING_SYSTEM); "ipc" variants also make a
CUDA IPC handle, as the worker does for its input buffers. Run on the GPU machine from
the repository root: python3 tools/sandbox_cuda_probe.py [worker dir]"""
import ctypes
import os
import sys
import tempfile

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "src/eval/worker")
import kbrun_zygote as z  # noqa: E402  (from the folder named on the command line)

NODES = [(n, os.path.isdir("/dev/" + n)) for n in sorted(os.listdir("/dev"))
         if n.startswith("nvidia") or n in ("kfd", "dri", "null", "zero", "full", "random", "urandom", "tty")]
PRIVATE = tempfile.mkdtemp(prefix="kbrun-probe-")
SHM_ON_DISK = tempfile.mkdtemp(prefix="kbrun-probe-shm-", dir=os.getcwd())


def cuinit():
    rc = ctypes.CDLL("libcuda.so.1").cuInit(0)
    count = ctypes.c_int(-1)
    if rc == 0:
        ctypes.CDLL("libcuda.so.1").cuDeviceGetCount(ctypes.byref(count))
    return rc, count.value


CONSUMER = r"""
import pickle, sys, torch
from torch.multiprocessing import reductions
args = pickle.loads(bytes.fromhex(sys.stdin.read()))
t = reductions.rebuild_cuda_tensor(*args)
print("opened, sum %.0f" % t.sum().item())
"""


def ipc_round_trip():
    """Shares a CUDA tensor as the worker does (reduce_tensor); a fresh process outside this
    sandbox (as the checker) opens it. Returns a note."""
    import pickle
    import subprocess
    note = ""
    try:
        import torch
        from torch.multiprocessing import reductions
        t = torch.arange(1024, dtype=torch.float32, device="cuda")
        note = " alloc backend %s" % getattr(torch._C, "_cuda_getAllocatorBackend", lambda: "?")()
        _, args = reductions.reduce_tensor(t)
        note += " handle ok"
    except Exception as exc:  # the probe reports whatever fails
        return note + " handle failed: %s" % str(exc).splitlines()[0]
    try:
        r = subprocess.run([sys.executable, "-c", CONSUMER], input=pickle.dumps(args).hex(), text=True,
                           capture_output=True, timeout=60)
        last = (r.stdout.strip() or r.stderr.strip()).splitlines()
        return note + " consumer rc %d: %s (expect 523776)" % (r.returncode, last[-1] if last else "")
    except Exception as exc:
        return note + " consumer failed: %s" % exc


def variant(name, steps):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        libc = z.libc_handle()
        try:
            note = ""
            if "netns" in steps and libc.unshare(z.CLONE_NEWNET) != 0:
                note += " netns failed"
            if "pidns" in steps:
                if libc.unshare(z.CLONE_NEWPID | z.CLONE_NEWNS) != 0:
                    note += " unshare failed errno %d" % ctypes.get_errno()
                if os.fork() != 0:
                    _, st = os.wait()
                    os._exit(0)
            if "mntns" in steps and libc.unshare(z.CLONE_NEWNS) != 0:
                note += " mntns failed"
            if "private" in steps:
                note += " private rc %d" % libc.mount(None, b"/", None, z.MS_REC | z.MS_PRIVATE, None)
            if "slave" in steps:
                note += " slave rc %d" % libc.mount(None, b"/", None, z.MS_REC | 0x80000, None)
            if "proc" in steps:
                rc = libc.mount(b"proc", b"/proc", b"proc", z.MS_NOSUID | z.MS_NODEV | z.MS_NOEXEC | z.MS_RDONLY, None)
                note += " proc mount rc %d errno %d" % (rc, ctypes.get_errno())
            if "devonly" in steps:  # the /dev rebuild alone, no read-only view
                z.seal_filesystem(libc, {"dev_nodes": NODES, "writable_paths": ["/"]})
            if "rootro" in steps:  # the read-only view alone (no /dev rebuild, no /proc)
                note += " ro %s" % z.set_read_only(libc, b"/", True)
            if "seal" in steps or "seal_nodev" in steps or "shmdisk" in steps:
                req = {"dev_nodes": NODES if "seal_nodev" not in steps else [], "writable_paths": [PRIVATE]}
                if "shmdisk" in steps:  # /dev/shm bound from a folder on disk, as kbrun's dir/shm was
                    req["shm_dir"] = SHM_ON_DISK
                z.seal_filesystem(libc, req)
                note += " /dev now: %s" % " ".join(sorted(os.listdir("/dev"))[:30])
            if "caps" in steps:
                z.drop_capabilities(libc)
            if "cgroup" in steps:
                base = "/sys/fs/cgroup/kbrun-probe-%d" % os.getpid()
                try:
                    os.mkdir(base)
                    with open(base + "/cgroup.procs", "w") as f:
                        f.write("0")
                    note += " moved to " + base
                except OSError as exc:
                    note += " cgroup: %s" % exc
            rc, n = cuinit()
            if "dumpable0" in steps:
                libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0, as kbrun itself
            if "ipc" in steps and rc == 0:  # can this process make a CUDA IPC handle (the worker's input buffers)?
                note += ipc_round_trip()
            os.write(w, ("%-28s cuInit %d devices %d%s\n" % (name, rc, n, note)).encode())
        except BaseException as exc:
            os.write(w, ("%-28s error %r\n" % (name, exc)).encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    out = b""
    while True:
        part = os.read(r, 65536)
        if not part:
            break
        out += part
    os.close(r)
    print(out.decode().strip() or "%-28s (no report)" % name, flush=True)


print("dev nodes:", NODES)
VARIANTS = (("baseline", []), ("mntns+seal", ["mntns", "seal"]), ("mntns+seal+caps", ["mntns", "seal", "caps"]),
            ("net+mnt+seal+caps", ["netns", "mntns", "seal", "caps"]),
            ("pidns+seal+caps", ["pidns", "seal", "caps"]), ("pidns", ["pidns"]),
            ("ipc baseline", ["ipc"]), ("ipc dumpable0", ["dumpable0", "ipc"]), ("ipc netns", ["netns", "ipc"]),
            ("ipc mntns", ["mntns", "ipc"]), ("ipc mntns+devonly", ["mntns", "devonly", "ipc"]),
            ("ipc mntns+seal", ["mntns", "seal", "ipc"]), ("ipc caps", ["caps", "ipc"]),
            ("ipc net+mnt+seal+caps", ["netns", "mntns", "seal", "caps", "ipc"]), ("ipc pidns", ["pidns", "ipc"]),
            ("ipc mntns+shmdisk", ["mntns", "shmdisk", "ipc"]),
            ("ipc pidns+seal+caps", ["pidns", "seal", "caps", "ipc"]),
            ("ipc pidns+shmdisk", ["pidns", "shmdisk", "caps", "ipc"]))
ONLY = [v for v in os.environ.get("PROBE_ONLY", "").split(",") if v]  # e.g. PROBE_ONLY="ipc baseline,ipc pidns"
for name, steps in VARIANTS:
    if not ONLY or name in ONLY:
        variant(name, steps)
os.system("ls -la /dev/nvidia* | head; mount | grep -E ' /dev | /proc ' | head; cat /proc/self/cgroup")
