"""kbrun's warm worker: a fork server that has imported torch, so that a worker or checker
starts in milliseconds instead of seconds.

The C++ side (src/eval/warm_worker.cc) starts it once per kbrun process and interpreter,
with the same scrubbed environment the workers get and no GPU visible. It never touches a
GPU: CUDA is initialised in the children, after the fork, each with its own device list.

Protocol, on fd 4 (a SOCK_SEQPACKET socket from the supervisor):
  request  one message: JSON {argv, env, cwd, limits, cgroup_procs, sandbox, writable_paths,
           shm_dir, private_tmp, dev_nodes, isolate_network, loopback_up, progress, channel} with descriptors
           attached (SCM_RIGHTS), in this order:
           status socket, output (stdout and stderr), progress (fd 3, if "progress"),
           channel (fd 4, if "channel").
  replies  on the request's own status socket, text lines:
           "pid <pid>"                          the child is forked; it waits for the
                                                supervisor's "go" on the same socket (EOF
                                                instead: it exits at once, so a run the
                                                supervisor never heard of never runs)
           "exit <wait status> <cpu seconds>"   it ended (os.wait4: it and the
                                                descendants it waited for)
           "error <message>"                    nothing was started: run it cold
Fd 3 gets "ready <pid> <seconds> gpu=<1|0> <why>" once the imports are done: gpu=0 when
something initialised CUDA in the server (its forks could not use a GPU; the supervisor
then starts GPU runs cold). EOF on fd 4 (kbrun ended): the
children's process groups are killed and the server exits.

In the child, before the script runs, everything the cold start (src/util/subprocess.cc,
ExecChild) does: own session and process group, only fds 0-4, resource limits, the run's
memory cgroup, and with "sandbox" new PID, mount and network namespaces: the fork (the pid
the supervisor knows) forks the namespace's init, which seals the filesystem and forks the
worker (pid 2, its own session, no capabilities); the working directory, the request's
environment; then the script runs as __main__ (runpy), exactly as `python script args`
would run it. The fork ends as the worker ended (exit code or signal), so "exit" reports
the worker's status; its wait4 CPU time includes the worker's.
"""
# Over 400 lines on purpose: the sandbox steps mirror src/util/subprocess.cc one by one and are
# read against it (ExecChild, SealFilesystem, BecomeSandboxedWorker), so they stay in one file.

import array
import ctypes
import gc
import json
import os
import resource
import runpy
import select
import signal
import socket
import sys
import tempfile
import time

T0 = time.perf_counter()
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# torch.cuda.is_available() and device_count() without initialising CUDA (NVML instead): a
# process that has initialised CUDA cannot hand a working GPU to its forks, and torch marks
# such forks as bad. Only the server's environment: children get their run's own.
os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
import torch  # noqa: E402  (after PYTORCH_NVML_BASED_CUDA_CHECK is set)

# torch's calls that make forks bad (they initialise CUDA): while the rest is imported,
# record who makes them, so the ready line can say why GPU runs must start cold.
POISONERS = []


def _record_calls(name):
    original = getattr(torch._C, name, None)
    if original is None:
        return None

    def recorded(*args, **kwargs):
        import traceback
        caller = traceback.extract_stack(limit=8)[:-1]
        POISONERS.append("%s from %s" % (name, " < ".join("%s:%d" % (os.path.basename(f.filename), f.lineno)
                                                          for f in reversed(caller))))
        return original(*args, **kwargs)
    setattr(torch._C, name, recorded)
    return original


_originals = {name: _record_calls(name) for name in ("_cuda_getDeviceCount", "_cuda_getArchFlags", "_cuda_init")}

# What workers and checkers import, loaded once here (module state is copied into each
# child by fork; a child's changes never reach the server or its siblings). Imported for the
# children, not used here (F401), and only once the calls above are recorded (E402).
import torch.utils.cpp_extension  # noqa: E402
try:
    import numpy  # noqa: F401
except ImportError:
    pass
try:
    import tqdm  # noqa: F401  (guards.keep_library_monitors_off)
except ImportError:
    pass
try:
    # The profiler's first start in a process imports it: 4.2-5.1 s of a GPU lane per candidate
    # on an H200 (import torch._dynamo alone: 4.8-5.1 s; the profiler after it: 0.14 s).
    import torch._dynamo  # noqa: E402,F401
except ImportError:  # torch 1.x
    pass
import kbrun_eval.build  # noqa: E402,F401
import kbrun_eval.channel  # noqa: E402,F401
import kbrun_eval.judge  # noqa: E402,F401
import kbrun_eval.checker  # noqa: E402,F401
import kbrun_eval.library_share  # noqa: E402,F401
import kbrun_eval.call_events  # noqa: E402,F401
import kbrun_eval.busy_check  # noqa: E402,F401
import kbrun_eval.worker  # noqa: E402,F401

for _name, _original in _originals.items():
    if _original is not None:
        setattr(torch._C, _name, _original)


def forks_can_use_gpu():
    """Forks a probe: can a child of this process still initialise CUDA?"""
    bad_fork = getattr(torch._C, "_cuda_isInBadFork", None)
    if bad_fork is None:
        return True  # a torch without CUDA: nothing to poison
    pid = os.fork()
    if pid == 0:
        os._exit(1 if bad_fork() else 0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 0x1000, 0x2000, 0x4000, 0x40000
PR_SET_CHILD_SUBREAPER = 36
# Under the sandbox's writable /proc, what stays read-only (as container runtimes do).
PROC_READ_ONLY = (b"/proc/sys", b"/proc/sysrq-trigger", b"/proc/irq", b"/proc/bus", b"/proc/fs")
MNT_DETACH = 2
SYS_MOUNT_SETATTR = 442  # the same on every architecture (Linux 5.12)
SYS_OPEN_TREE, SYS_MOVE_MOUNT = 428, 429  # (Linux 5.2)
OPEN_TREE_CLONE, MOVE_MOUNT_F_EMPTY_PATH = 1, 0x4
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = -100, 0x8000, 0x1
PR_SET_PDEATHSIG, PR_SET_NAME, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 15, 24, 38
MAX_FDS = 4
LIMITS = {"max_file_bytes": resource.RLIMIT_FSIZE, "max_processes": resource.RLIMIT_NPROC,
          "max_address_space": resource.RLIMIT_AS, "max_cpu_seconds": resource.RLIMIT_CPU,
          "max_data_bytes": resource.RLIMIT_DATA}


def write_proc(path, text):
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError:
        pass


def loopback_up():
    # SIOCSIFFLAGS on "lo": IFF_UP | IFF_RUNNING, as subprocess.cc's LoopbackUp().
    import fcntl
    import struct
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, 0x8913, ifr))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", flags | 0x1 | 0x40))  # SIOCSIFFLAGS
    except OSError:
        pass
    finally:
        s.close()


def isolate_network(with_loopback):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        # Not root: a user namespace mapping our own ids allows the network namespace.
        uid, gid = os.getuid(), os.getgid()
        if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
            return
        write_proc("/proc/self/setgroups", "deny")
        write_proc("/proc/self/uid_map", "%d %d 1\n" % (uid, uid))
        write_proc("/proc/self/gid_map", "%d %d 1\n" % (gid, gid))
    if with_loopback:
        loopback_up()


def libc_handle():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return libc


def unshare_namespaces(libc, flags):
    """As subprocess.cc's UnshareNamespaces: directly, else inside a user namespace mapping our ids."""
    if libc.unshare(flags) == 0:
        return True
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | flags) != 0:
        return False
    write_proc("/proc/self/setgroups", "deny")
    write_proc("/proc/self/uid_map", "%d %d 1\n" % (uid, uid))
    write_proc("/proc/self/gid_map", "%d %d 1\n" % (gid, gid))
    return True


def set_read_only(libc, path, read_only):
    attr = (ctypes.c_uint64 * 4)(MOUNT_ATTR_RDONLY if read_only else 0, 0 if read_only else MOUNT_ATTR_RDONLY, 0, 0)
    return libc.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(AT_FDCWD), ctypes.c_char_p(path),
                        ctypes.c_uint(AT_RECURSIVE), ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))) == 0


def seal_filesystem(libc, req):
    """As subprocess.cc's SealFilesystem, in the sandbox's init: own /dev, read-only view but
    for the writable paths, fresh /proc and /dev/shm."""
    mount = libc.mount
    if mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return
    # The shared /dev/shm folder, taken (as a detached bind) before the new /dev hides the
    # machine's /dev/shm and before the view turns read-only.
    shm_tree = libc.syscall(ctypes.c_long(SYS_OPEN_TREE), ctypes.c_int(AT_FDCWD),
                            ctypes.c_char_p(req["shm_dir"].encode()),
                            ctypes.c_uint(OPEN_TREE_CLONE | AT_RECURSIVE | os.O_CLOEXEC)) if req.get("shm_dir") else -1
    nodes = req.get("dev_nodes") or []
    if nodes and mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NOEXEC, b"mode=755,size=1m") == 0:
        for name, is_dir in nodes:
            staged = "/dev/shm/" + name
            try:
                if is_dir:
                    os.mkdir(staged, 0o755)
                else:
                    os.close(os.open(staged, os.O_CREAT | os.O_WRONLY, 0o644))
            except OSError:
                continue
            mount(("/dev/" + name).encode(), staged.encode(), None, MS_BIND | MS_REC, None)
        for link, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                             ("stderr", "/proc/self/fd/2")):
            try:
                os.symlink(target, "/dev/shm/" + link)
            except OSError:
                pass
        try:
            os.mkdir("/dev/shm/shm", 0o1777)
        except OSError:
            pass
        if mount(b"/dev/shm", b"/dev", None, MS_MOVE, None) != 0:
            libc.umount2(b"/dev/shm", MNT_DETACH)
    writable = [p.encode() for p in req.get("writable_paths") or []]
    for path in writable:
        mount(path, path, None, MS_BIND | MS_REC, None)
    if set_read_only(libc, b"/", True):
        cleared = [set_read_only(libc, path, False) for path in writable]
        if not all(cleared):
            set_read_only(libc, b"/", False)  # a private dir the run cannot write would fail it
    if req.get("private_tmp"):
        cover_tmp(libc, req["private_tmp"])
    # /proc stays writable where a process writes its own entries: NVIDIA's driver fails
    # cuInit (304) under a read-only /proc (seen on an H200). Its system-wide files are not.
    if mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) != 0:
        set_read_only(libc, b"/proc", False)
    for path in PROC_READ_ONLY:
        if os.path.exists(path):
            mount(path, path, None, MS_BIND | MS_REC, None)
            set_read_only(libc, path, True)
    if shm_tree >= 0:
        libc.syscall(ctypes.c_long(SYS_MOVE_MOUNT), ctypes.c_int(shm_tree), ctypes.c_char_p(b""),
                     ctypes.c_int(AT_FDCWD), ctypes.c_char_p(b"/dev/shm"), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH))
        os.close(shm_tree)
    else:
        mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=1777")


def cover_tmp(libc, private):
    """As subprocess.cc's CoverTmp (ProcessSpec::private_tmp): `private` bound on /tmp, each entry of
    the machine's /tmp (a clone, attached for the moment at /tmp/.kbrun-host-tmp) bound back over a
    stand-in of its kind, symlinks copied; the clone keeps each mount's read-only flag."""
    host_dir = "/tmp/.kbrun-host-tmp"
    host = libc.syscall(ctypes.c_long(SYS_OPEN_TREE), ctypes.c_int(AT_FDCWD), ctypes.c_char_p(b"/tmp"),
                        ctypes.c_uint(OPEN_TREE_CLONE | AT_RECURSIVE | os.O_CLOEXEC))
    if host < 0:
        return
    if libc.mount(private.encode(), b"/tmp", None, MS_BIND, None) != 0:
        os.close(host)
        return
    set_read_only(libc, b"/tmp", False)
    try:
        os.mkdir(host_dir, 0o700)
    except OSError:
        pass
    attached = libc.syscall(ctypes.c_long(SYS_MOVE_MOUNT), ctypes.c_int(host), ctypes.c_char_p(b""),
                            ctypes.c_int(AT_FDCWD), ctypes.c_char_p(host_dir.encode()),
                            ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)) == 0
    os.close(host)
    try:
        names = os.listdir(host_dir) if attached else []
    except OSError:
        names = []
    for name in names:
        src, dst = os.path.join(host_dir, name), os.path.join("/tmp", name)
        try:
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
                continue
            if os.path.isdir(src):
                os.makedirs(dst, 0o755, exist_ok=True)
            else:
                os.close(os.open(dst, os.O_CREAT | os.O_WRONLY, 0o644))
        except OSError:
            continue
        libc.mount(src.encode(), dst.encode(), None, MS_BIND | MS_REC, None)
    libc.umount2(host_dir.encode(), MNT_DETACH)
    try:
        os.rmdir(host_dir)
    except OSError:
        pass


def drop_capabilities(libc):
    """Root in the sandbox keeps uid 0 but no capabilities (as subprocess.cc's DropCapabilities)."""
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:  # EINVAL: no such cap
            break
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()
    libc.capset(ctypes.byref(header), ctypes.byref(data))
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def end_as(status):
    """The outer process ends as the worker ended: the same exit code, or the same signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def become_sandboxed_worker(libc, req):
    """As subprocess.cc's BecomeSandboxedWorker, after unshare(CLONE_NEWPID): the outer
    process waits for the namespace's init and ends as the worker did; the init seals the
    filesystem, forks the worker (pid 2), reaps orphans and exits with the worker, which
    kills every process left in the namespace. Returns only in the worker."""
    import fcntl
    pipe_fds = os.pipe2(os.O_CLOEXEC)
    # Above 0-4, which the outer process and the init close (unused 3 or 4 could be reused).
    report_r, report_w = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64) for fd in pipe_fds)
    for fd in pipe_fds:
        os.close(fd)
    init = os.fork()
    if init > 0:
        os.close(report_w)
        os.closerange(0, 5)  # the worker's ends are the worker's alone
        while True:
            try:
                _, status = os.waitpid(init, 0)
                break
            except InterruptedError:
                continue
        data = os.read(report_r, 4)
        if len(data) == 4:
            status = int.from_bytes(data, sys.byteorder, signed=True)
        end_as(status)
    os.close(report_r)
    libc.prctl(PR_SET_NAME, ctypes.cast(ctypes.c_char_p(b"kbrun-sandbox"), ctypes.c_void_p).value, 0, 0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    pid_namespace = req.get("pid_namespace", True)
    if not pid_namespace:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans come here, and die below
    seal_filesystem(libc, req)
    worker = os.fork()
    if worker == 0:
        os.close(report_w)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.setsid()
        drop_capabilities(libc)
        return
    os.closerange(0, 5)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(126)
        if pid == worker:
            break
    os.write(report_w, status.to_bytes(4, sys.byteorder, signed=True))
    if not pid_namespace:
        kill_children()
    os._exit(0)


def kill_children():
    """The sandbox's init without a PID namespace (as subprocess.cc's KillChildren): kills and
    reaps its children, what the worker left behind included, until it has none. An orphan can
    be reparented here after a look at the list, so nothing waits for a child it has not killed."""
    for _ in range(20000):  # 20 s at most
        try:
            with open("/proc/self/task/%d/children" % os.getpid()) as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            return  # no child left, living or dead
        time.sleep(0.001)


def join_pid_namespace(libc, path):
    """As subprocess.cc's ExecChild: the sandbox's init (forked next) and the worker are
    in that namespace. Where the join fails the run goes on as without a PID namespace."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    if libc.setns(fd, CLONE_NEWPID) != 0:
        os.write(2, b"kbrun: cannot join the run's PID namespace\n")
    os.close(fd)


def become_child(req, fds):
    """In the forked child: set up like a cold start, run the script, never return."""
    code = 1
    try:
        go = b""
        while not go.endswith(b"\n"):
            part = os.read(fds["status"], 16)
            if not part:
                os._exit(0)  # the supervisor gave up on this run: it must not run
            go += part
        os.setsid()  # own session and process group: a timeout kills the whole tree
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        out, progress, channel = fds["out"], fds.get("progress"), fds.get("channel")
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        if progress is not None:
            os.dup2(progress, 3)
        else:
            os.close(3)
        if channel is not None:
            os.dup2(channel, 4)
        else:
            os.close(4)  # the server's request socket
        # Only 0-4 stay open, as in a cold start (torch's import opens none of its own).
        # (The server's sockets and pipes go too; their Python objects are never used again.)
        os.closerange(5, os.sysconf("SC_OPEN_MAX"))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        for key, which in LIMITS.items():
            value = int(req.get("limits", {}).get(key, 0))
            if value:
                resource.setrlimit(which, (value, value))
        if req.get("cgroup_procs"):
            write_proc(req["cgroup_procs"], "0")  # the run's memory cgroup: it and all it starts
        libc = libc_handle()
        pid_namespace = req.get("pid_namespace", True)  # off where it joins one (subprocess.h says why)
        if req.get("sandbox") and req.get("join_pid_namespace"):
            join_pid_namespace(libc, req["join_pid_namespace"])
        if req.get("sandbox") and unshare_namespaces(
                libc, (CLONE_NEWPID if pid_namespace else 0) | CLONE_NEWNS |
                (CLONE_NEWNET if req.get("isolate_network") else 0)):
            if req.get("isolate_network") and req.get("loopback_up"):
                loopback_up()
            become_sandboxed_worker(libc, req)
        elif req.get("isolate_network"):
            isolate_network(req.get("loopback_up", False))
        if req.get("cwd"):
            os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        tempfile.tempdir = None  # found again from the new TMPDIR
        argv = req["argv"]
        script = argv[1]
        sys.argv = argv[1:]
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        code = 0
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:  # the child must never return into the server's loop
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(code)


def receive(ctrl):
    fds = array.array("i")
    msg, ancdata, flags, _ = ctrl.recvmsg(1 << 20, socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds)


def reply(sock, line):
    try:
        sock.sendall((line + "\n").encode())
        return True
    except OSError:
        return False


def serve(private_dir):
    ctrl = socket.socket(fileno=4)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: None)  # shutdown is EOF on fd 4
    children = {}  # pid -> status socket
    gpu = forks_can_use_gpu()
    why = "" if gpu else ("; ".join(POISONERS) or "import torch initialised CUDA")
    gc.collect()
    gc.freeze()  # fewer pages copied into each child by the garbage collector's writes
    os.write(3, ("ready %d %.2f gpu=%d %s\n" % (os.getpid(), time.perf_counter() - T0, gpu, why[:2000])).encode())
    while True:
        try:
            ready, _, _ = select.select([ctrl, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
        while children:  # reap every child that ended
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            sock = children.pop(pid, None)
            if sock is not None:
                reply(sock, "exit %d %.6f" % (status, usage.ru_utime + usage.ru_stime))
                sock.close()
        if ctrl not in ready:
            continue
        try:
            msg, fds = receive(ctrl)
        except OSError:
            msg, fds = b"", []
        if not msg:
            break  # kbrun is gone
        handle(msg, fds, children)
    for pid in children:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    if private_dir and os.path.basename(private_dir.rstrip("/")).startswith("zygote-"):
        import shutil
        shutil.rmtree(private_dir, ignore_errors=True)


def handle(msg, fds, children):
    if not fds:
        return
    status = socket.socket(fileno=fds[0])
    try:
        req = json.loads(msg)
        names = ["out"] + (["progress"] if req.get("progress") else []) + (["channel"] if req.get("channel") else [])
        if len(fds) != 1 + len(names):
            raise ValueError("expected %d descriptors, got %d" % (1 + len(names), len(fds)))
        argv = req["argv"]
        if len(argv) < 2 or not argv[1].endswith(".py"):  # the supervisor matched the interpreter
            raise ValueError("not a Python script: %r" % argv[:2])
        named = dict(zip(names, fds[1:]))
        named["status"] = fds[0]
    except (ValueError, KeyError, TypeError) as exc:
        reply(status, "error %s" % exc)
        status.close()
        for fd in fds[1:]:
            os.close(fd)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        become_child(req, named)
    for fd in fds[1:]:
        os.close(fd)  # the child has them; the supervisor sees EOF when it ends
    children[pid] = status
    reply(status, "pid %d" % pid)


if __name__ == "__main__":
    serve(sys.argv[sys.argv.index("--private-dir") + 1] if "--private-dir" in sys.argv else "")
