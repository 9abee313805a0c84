"""The compile phase, and how every phase builds: the backend's flags and kbrun's build step
(build.py), the compile phase's builds reused later, and ModelNew constructed once so that its
builds happen in the compile pool."""
import contextlib
import os
import time

from . import build as kbrun_build
from . import deferred_builds as kbrun_deferred_builds
from . import problem as kp
from .protocol import clip


def prepare_build(build, reuse_earlier_builds):
    """Sets up how this process builds the candidate's extensions: the backend's flags
    (include paths, -std, defines, arch) in both compile modes; in fast mode kbrun's build
    step (build.py: cached, PCH, lighter CUDA headers), which without
    a shared cache still caches in the private dir, so later phases reuse the compile; in
    plain mode, with reuse_earlier_builds, the compile phase's torch build folders.
    Returns build.py's list of build records (filled as builds happen) in fast mode, else None."""
    kbrun_build.add_backend_flags(build.get("backend") or {})
    if build.get("mode", "fast") == "fast":
        private = os.path.join(os.environ.get("TORCH_EXTENSIONS_DIR", "."), "kbrun-cache")
        kbrun_build.install(build.get("cache_dir") or private,
                            use_pch=bool(build.get("pch", True) and build.get("cache_dir")))
        return kbrun_build.builds
    if reuse_earlier_builds and os.environ.get("TORCH_EXTENSIONS_DIR"):
        reuse_compile_phase_builds(os.environ["TORCH_EXTENSIONS_DIR"])
    return None


def reuse_compile_phase_builds(build_root):
    """In the run phase, load what the compile phase built instead of building again.

    load_inline rewrites its sources on every call (torch 1.13 always does), so ninja
    sees new mtimes and rebuilds. The compile phase already built these exact
    sources in this private directory, so the run phase skips ninja where a
    library from that build exists.
    """
    from torch.utils import cpp_extension

    original = cpp_extension._run_ninja_build

    def run_ninja_build(build_directory, *args, **kwargs):
        built = [f for f in os.listdir(build_directory) if f.endswith((".so", ".pyd"))]
        if built and os.path.abspath(build_directory).startswith(os.path.abspath(build_root)):
            return None
        return original(build_directory, *args, **kwargs)

    cpp_extension._run_ninja_build = run_ninja_build


def _unfinished_model(exc, cls, path):
    """The model a constructor that raised left behind: (its `self`, (line of that __init__'s `def`,
    line it raised at)) from the traceback's first __init__ frame in the candidate's file, or
    (None, None). Its attributes set before the raise are what a build below that line reads."""
    tb = exc.__traceback__
    while tb is not None:
        code, model = tb.tb_frame.f_code, tb.tb_frame.f_locals.get("self")
        if code.co_name == "__init__" and code.co_filename == path and isinstance(model, cls):
            return model, (code.co_firstlineno, tb.tb_lineno)
        tb = tb.tb_next
    return None, None


@contextlib.contextmanager
def _as_on_gpu(torch):
    """torch.cuda.is_available() answers true inside: the run phase sees a GPU, and what a
    candidate builds only then should be built here too."""
    is_available = torch.cuda.is_available
    torch.cuda.is_available = lambda: True
    try:
        yield
    finally:
        torch.cuda.is_available = is_available


def _import_as_on_gpu(torch, path):
    """Imports the candidate again with torch.cuda.is_available() answering true, for the builds
    it makes at import only when it sees a GPU (`if torch.cuda.is_available(): ext = load_inline(...)`,
    at the top of the file): the run phase, which sees one, would make them on the GPU lane.
    Builds the first import made are cache hits or earlier failures here (in fast mode). Only the builds count:
    the module is thrown away, and an error is only noted. Returns {"builds", "note"?}."""
    before = len(kbrun_build.build_attempts)
    out = {}
    try:
        with _as_on_gpu(torch):
            kp.load_module(path, "kbrun_prebuild_gpu_import")
    except (Exception, SystemExit) as exc:  # what it does on the GPU it lacks, say; judged in the run phase
        out["note"] = clip("%s: %s" % (type(exc).__name__, exc), 500)
    out["builds"] = len(kbrun_build.build_attempts) - before
    return out


def prebuild(req, torch, candidate):
    """Compile phase: constructs ModelNew(*get_init_inputs()) once, on the CPU, so that what a
    candidate builds in its __init__ (load_inline there is common in real model output) is built
    here, by the compile pool, through the cache, instead of on the GPU lane in the run phase;
    then makes the build calls its other functions hold (deferred_builds.py: a build on the
    first forward), and those below the line where a constructor that raised stopped; then
    imports it again as on a GPU when it builds at import (_import_as_on_gpu). Best effort and
    never a verdict: the model is thrown away, an error (a constructor that needs a GPU, say) is
    only recorded. A build that fails here fails at once in the run phase (build.py's record of
    failed builds), so none of these builds runs the compiler on the GPU lane. Returns
    {"constructed", "builds", "seconds", "deferred", "note"?, "gpu_import"?}."""
    t = time.perf_counter()
    before = len(kbrun_build.build_attempts)
    out = {"constructed": False}
    model = unfinished_init = None
    # The run phase has a GPU: a constructor that builds only `if torch.cuda.is_available()`
    # builds here too (what it then does on a GPU it does not have fails, and is only noted).
    try:
        with _as_on_gpu(torch):
            problem = kp.load_module(req["problem"], "kbrun_prebuild_problem")
            model = candidate.ModelNew(*kp.init_inputs(torch, problem, int(req.get("seed", 0))))
        out["constructed"] = True
    except (Exception, SystemExit) as exc:  # judged in the run phase, where the GPU is visible
        out["note"] = clip("%s: %s" % (type(exc).__name__, exc), 500)
        model, unfinished_init = _unfinished_model(exc, candidate.ModelNew, getattr(candidate, "__file__", None))
    # What forward would build on its first call (load_inline behind `if self._ext is None`).
    try:
        with open(req["code"]) as f:
            source = f.read()
        out["deferred"] = kbrun_deferred_builds.build_deferred(source, candidate, model, unfinished_init)
        # Last: an import that hangs as on a GPU costs only these builds. Only a file that asks
        # whether there is a GPU and whose import made fewer build calls than it has at its top
        # level (so far, this process's only builds were the import's) can build more this way.
        if "is_available" in source and kbrun_deferred_builds.module_level_builds(source) > before:
            out["gpu_import"] = _import_as_on_gpu(torch, req["code"])
    except (Exception, SystemExit) as exc:
        out["deferred"] = {"error": clip("%s: %s" % (type(exc).__name__, exc), 500)}
    out["builds"] = len(kbrun_build.build_attempts) - before
    out["seconds"] = round(time.perf_counter() - t, 3)
    return out
