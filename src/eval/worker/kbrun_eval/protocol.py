"""What the worker's processes say and how a failure is classified: progress and result lines on
fd 3 (the supervisor reads them), and the Failure the supervisor's vocabulary names.

The guard (guards.Guard) watches `progress` here: the worker calls it as protocol.progress, so a
replacement would be seen.
"""
import os
import time
import traceback

MAX_TEXT = 20000


def progress(line):
    try:
        os.write(3, (line + "\n").encode())
    except OSError:
        pass


_lane_gate = []  # the run gate's FIFO, open for reading, in a worker started ahead


def wait_for_lane(go_fifo, keep=False):
    """A run started ahead of its turn (src/eval/run_gate.h): says "stage ready" and waits for the
    supervisor's byte on the FIFO. False: the run was abandoned (EOF), nothing more may happen.
    `keep`: the FIFO stays open for wait_until_timing_may_start (the worker)."""
    progress("stage ready")
    # Nonblocking open: a blocking one would wait for a writer the supervisor may have closed.
    fd = os.open(go_fifo, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(fd, True)
    go = os.read(fd, 1) != b""
    if go and keep:
        _lane_gate.append(fd)
    else:
        os.close(fd)
    return go


def wait_until_timing_may_start():
    """In a worker started ahead: waits for the supervisor's byte that says the lane's next sample
    is past its CUDA start, so that no other process's set-up overlaps a timed call. Seconds waited."""
    if not _lane_gate:
        return 0.0
    t = time.perf_counter()
    fd = _lane_gate.pop()
    try:
        os.read(fd, 1)  # EOF too: the supervisor is gone, the run ends anyway
    finally:
        os.close(fd)
    return time.perf_counter() - t


def clip(text, limit=MAX_TEXT):
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n[... %d characters omitted ...]\n" % (len(text) - limit) + text[-half:]


class Laps(dict):
    """Seconds per named step, summed over a loop's rounds (result.json's stage details: where a
    run's seconds on the GPU lane go)."""

    def lap(self, name, since):
        """Adds the time since `since` (a perf_counter reading) to `name`; returns now."""
        now = time.perf_counter()
        self[name] = self.get(name, 0.0) + (now - since)
        return now


class Failure(Exception):
    """A classified failure: status is the supervisor's vocabulary."""

    def __init__(self, status, category, message, detail=""):
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.detail = detail


class Deferred(Exception):
    """The compile phase's import needs a GPU: judged again in the run phase (no result yet)."""


def classify_exception(exc, phase):
    """Maps an exception to (status, category)."""
    text = "%s: %s" % (type(exc).__name__, exc)
    low = text.lower()
    if isinstance(exc, SyntaxError):
        return "compile_error", "syntax_error"
    if "error building extension" in low or "ninja: build stopped" in low:
        return "compile_error", "build_failed"
    if "out of memory" in low or type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError) \
            or "can't allocate memory" in low:
        return "runtime_error", "out_of_memory"
    if "illegal memory access" in low or "cuda error" in low or "device-side assert" in low \
            or "misaligned address" in low or "unspecified launch failure" in low:
        return "runtime_error", "cuda_error"
    if phase == "compile":
        return "runtime_error", "import_error"
    return "runtime_error", "exception"


def failure_from_exception(exc, phase):
    status, category = classify_exception(exc, phase)
    tb = traceback.format_exc()
    message = "%s: %s" % (type(exc).__name__, exc)
    return Failure(status, category, clip(message, 8000), clip(tb, 8000))
