"""Device probe: does CUDA IPC work between a worker and a checker that share ONE PID
namespace (neither sees the host's processes)?

A holder process makes a PID namespace whose init only reaps; the exporter (the worker's
role: allocates, shares with reduce_tensor) and the importer (the checker's role: rebuilds,
reads, writes back) each join it with setns before forking, optionally after the rest of
kbrun's sandbox (own mount and network namespaces, fresh /proc, own /dev, shared /dev/shm
folder, no capabilities) and with the importer not dumpable. The exporter then tries to read
the importer's memory and environment and lists the processes it sees.
Run on the GPU machine from the repository root: python3 tools/ipc_pidns_probe.py [worker dir]"""
import ctypes
import os
import pickle
import signal
import socket
import sys
import tempfile

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "src/eval/worker")
import kbrun_zygote as z  # noqa: E402  (from the folder named on the command line)

NODES = [(n, os.path.isdir("/dev/" + n)) for n in sorted(os.listdir("/dev"))
         if n.startswith("nvidia") or n in ("null", "zero", "full", "random", "urandom", "tty")]
PR_SET_DUMPABLE = 4


def holder():
    """Returns (outer pid, host pid of the namespace's init)."""
    r, w = os.pipe()
    outer = os.fork()
    if outer == 0:
        libc = z.libc_handle()
        if libc.unshare(z.CLONE_NEWPID) != 0:
            os.write(w, b"-1\n")
            os._exit(1)
        init = os.fork()
        if init == 0:
            libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
            libc.prctl(z.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            while True:
                try:
                    os.waitpid(-1, 0)
                except ChildProcessError:
                    signal.pause()
                except InterruptedError:
                    pass
        os.write(w, b"%d\n" % init)
        os.waitpid(init, 0)
        os._exit(0)
    os.close(w)
    init = int(os.read(r, 64).split()[0])
    os.close(r)
    return outer, init


def in_namespace(ns_path, sandbox, shm_dir, dumpable, body, keep, drop):
    """Forks a process that joins the namespace at ns_path (or none), seals itself as kbrun's
    sandbox does when asked, and runs body() in a child inside the namespace. Returns the pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        libc = z.libc_handle()
        if ns_path:
            fd = os.open(ns_path, os.O_RDONLY)
            if libc.setns(fd, z.CLONE_NEWPID) != 0:
                raise OSError(ctypes.get_errno(), "setns " + ns_path)
            os.close(fd)
        if sandbox:
            libc.unshare(z.CLONE_NEWNS | z.CLONE_NEWNET)
        inner = os.fork()
        if inner == 0:
            drop.close()
            if sandbox:
                z.seal_filesystem(libc, {"dev_nodes": NODES, "writable_paths": [tempfile.gettempdir()],
                                         "shm_dir": shm_dir})
                z.drop_capabilities(libc)
            if not dumpable:
                libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
            body()
            os._exit(0)
        keep.close()
        drop.close()
        _, status = os.waitpid(inner, 0)
        code = os.waitstatus_to_exitcode(status)
    except BaseException as exc:  # the probe reports whatever fails
        print("  in_namespace failed: %r" % exc, flush=True)
    finally:
        os._exit(code)


def variant(name, shared, sandbox, importer_dumpable):
    shm_dir = tempfile.mkdtemp(prefix="kbrun-ipcns-", dir="/dev/shm")
    holders = [holder()] if shared == "one" else [holder(), holder()] if shared == "two" else []
    paths = ["/proc/%d/ns/pid" % h[1] for h in holders] * (2 if shared == "one" else 1) or [None, None]
    a, b = socket.socketpair()  # after the holders, which must not keep an end open

    def exporter():
        import torch
        from torch.multiprocessing import reductions
        if not torch.cuda.is_available():
            print("%-34s exporter: no CUDA (pid %d sees %s)" % (name, os.getpid(), sorted(
                int(p) for p in os.listdir("/proc") if p.isdigit())[:12]), flush=True)
            return
        t = torch.arange(1024, dtype=torch.float32, device="cuda")
        _, args = reductions.reduce_tensor(t)
        f = a.makefile("rwb")
        pickle.dump((os.getpid(), args), f)
        f.flush()
        importer_pid, note = pickle.load(f)
        torch.cuda.synchronize()
        seen = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        reach = []
        for what in ("environ", "mem"):
            try:
                with open("/proc/%d/%s" % (importer_pid, what), "rb") as fh:
                    fh.read(16)
                reach.append(what + " READABLE")
            except OSError as exc:
                reach.append("%s %s" % (what, exc.strerror))
        print("%-34s exporter pid %d sees pids %s; importer: %s; after write-back sum %.0f (expect 524800); "
              "importer's %s" % (name, os.getpid(), seen[:12], note, float(t.sum()), ", ".join(reach)), flush=True)
        f.write(b"x")
        f.flush()

    def importer():
        import torch
        from torch.multiprocessing import reductions
        f = b.makefile("rwb")
        try:
            peer, args = pickle.load(f)
        except EOFError:
            print("%-34s the exporter sent nothing" % name, flush=True)
            return
        try:
            y = reductions.rebuild_cuda_tensor(*args)
            note = "opened, sum %.0f (expect 523776)" % float(y.sum())
            y += 1
            torch.cuda.synchronize()
        except Exception as exc:  # the probe reports whatever fails
            note = "FAILED %s" % str(exc).splitlines()[0]
        pickle.dump((os.getpid(), note), f)
        f.flush()
        f.read(1)

    pids = [in_namespace(paths[1], sandbox, shm_dir, importer_dumpable, importer, b, a),
            in_namespace(paths[0], sandbox, shm_dir, True, exporter, a, b)]
    a.close()
    b.close()
    for p in pids:
        os.waitpid(p, 0)
    for outer, _ in holders:
        os.kill(outer, signal.SIGKILL)
        os.waitpid(outer, 0)


VARIANTS = (("no namespace", None, False, True), ("one shared ns", "one", False, True),
            ("two namespaces (kbrun's old try)", "two", False, True),
            ("one shared ns + sandbox", "one", True, True),
            ("one shared ns + sandbox, checker !dump", "one", True, False))
print("uid", os.getuid(), "yama", open("/proc/sys/kernel/yama/ptrace_scope").read().strip()
      if os.path.exists("/proc/sys/kernel/yama/ptrace_scope") else "-", flush=True)
for v in VARIANTS:
    variant(*v)
