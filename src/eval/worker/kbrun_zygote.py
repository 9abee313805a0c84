"""kbrun's warm worker: a fork server that has imported torch, so that a worker or checker
starts in milliseconds instead of seconds.

The C++ side (src/eval/warm_worker.cc) starts it once per kbrun process and interpreter,
with the same scrubbed environment the workers get and no GPU visible. It never touches a
GPU: CUDA is initialised in the children, after the fork, each with its own device list.

Protocol, on fd 4 (a SOCK_SEQPACKET socket from the supervisor):
  request  one message: JSON {argv, env, cwd, limits, isolate_network, loopback_up,
           progress, channel} with descriptors attached (SCM_RIGHTS), in this order:
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
ExecChild) does: own session and process group, only fds 0-4, resource limits, a new
network namespace, the working directory, the request's environment; then the script
runs as __main__ (runpy), exactly as `python script args` would run it.
"""

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
import torch  # noqa: E402

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
# child by fork; a child's changes never reach the server or its siblings).
import torch.utils.cpp_extension  # noqa: E402,F401
try:
    import numpy  # noqa: E402,F401
except ImportError:
    pass
import kbrun_build  # noqa: E402,F401
import kbrun_channel  # noqa: E402,F401
import kbrun_judge  # noqa: E402,F401
import kbrun_library_share  # noqa: E402,F401
import kbrun_worker  # noqa: E402,F401

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


CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MAX_FDS = 4
LIMITS = {"max_file_bytes": resource.RLIMIT_FSIZE, "max_processes": resource.RLIMIT_NPROC,
          "max_address_space": resource.RLIMIT_AS, "max_cpu_seconds": resource.RLIMIT_CPU}


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
        if req.get("isolate_network"):
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
