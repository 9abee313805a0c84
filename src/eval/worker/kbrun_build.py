"""kbrun's build step for load_inline: a content-addressed cache, a precompiled torch
header for the binding file, and no torch headers in CUDA code that never names torch.

The worker installs it in place of torch's `_write_ninja_file_and_build_library`, so
the candidate's call to load_inline (or load) is unchanged: torch still writes the
sources and the ninja file with its own flags; this module only changes how they are
compiled, never what they mean:

- Cache: the key hashes the generated sources, every build argument, the extension
  name and the toolchain (compiler and nvcc versions and paths, torch, Python, arch
  list). An entry also records the headers the build read (ninja's deps log) with
  their size and mtime; a changed header makes the entry stale. Entries are written
  to a temporary folder and renamed into place, so concurrent batches never see half
  an entry, and the first writer wins.
- Precompiled header: main.cpp starts with `#include <torch/extension.h>` (torch puts
  it there). That header is precompiled once per toolchain and flag set and given with
  `-include`, so g++ skips parsing it; the include guard makes the file's own include
  a no-op. g++ ignores a PCH that does not match the flags (-Winvalid-pch says so).
- CUDA headers: torch prepends `#include <torch/types.h>` to cuda_sources (about
  30 s of nvcc time). When the candidate's CUDA code names nothing from torch, ATen,
  c10 or pybind11, that line is blanked (line numbers stay the same); when it
  includes torch/extension.h, that include becomes torch/types.h (the rest of
  extension.h is the C++ frontend and pybind11, which CUDA code does not use). If the
  lighter file fails to compile, it is built again exactly as written, and that
  build's errors are the ones reported.
"""

import fcntl
import hashlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# Bump when this file changes how it builds: older cache entries stop matching.
BUILD_FORMAT = 1
PCH_HEADER = "#include <torch/extension.h>\n"
TORCH_PREFIX = "#include <torch/types.h>"
# Anything in CUDA code that needs torch's headers.
NAMES_TORCH = re.compile(
    r"\b(?:torch|at|c10|caffe2|pybind11|py)\s*::"
    r"|\b(?:TORCH|AT|C10|PYBIND11|CAFFE2)_[A-Z0-9_]+"
    r"|#\s*include\s*[<\"](?:torch|ATen|c10|caffe2|pybind11|Python|THC?)\b")
EXTENSION_INCLUDE = re.compile(r"#\s*include\s*[<\"]torch/extension\.h[>\"]")

# One record per extension built or loaded in this process, for result.json.
builds = []
_toolchain = {}


def _run(cmd, **kw):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def toolchain(ce, with_cuda):
    """What the build's output depends on besides its sources and arguments."""
    key = bool(with_cuda)
    if key in _toolchain:
        return _toolchain[key]
    import torch
    cxx = os.environ.get("CXX", "c++")
    info = {
        "format": BUILD_FORMAT,
        "python": sys.version,
        "torch": torch.__version__,
        "torch_path": os.path.dirname(torch.__file__),
        "cxx": shutil.which(cxx) or cxx,
        "cxx_real": os.path.realpath(shutil.which(cxx) or cxx),
        "cxx_version": _run([cxx, "--version"]),
        "env": {k: os.environ.get(k) for k in ("CC", "CUDAHOSTCXX", "NVCC_CCBIN", "TORCH_CUDA_ARCH_LIST",
                                               "PYTORCH_ROCM_ARCH", "CUDA_HOME", "ROCM_PATH")},
    }
    if with_cuda:
        home = getattr(ce, "CUDA_HOME", None) or getattr(ce, "ROCM_HOME", None) or ""
        nvcc = os.path.join(home, "bin", "nvcc")
        info["nvcc"] = nvcc
        info["nvcc_version"] = _run([nvcc, "--version"]) if os.path.exists(nvcc) else ""
    _toolchain[key] = info
    return info


def _sha(data):
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()


def cache_key(args, with_cuda, ce):
    sources = []
    for path in args["sources"]:
        with open(path, "rb") as f:
            sources.append([os.path.basename(path), _sha(f.read())])
    rest = {k: v for k, v in args.items() if k not in ("sources", "build_directory", "verbose")}
    material = json.dumps({"sources": sources, "args": rest, "toolchain": toolchain(ce, with_cuda)},
                          sort_keys=True, default=str)
    return _sha(material)[:40]


def lighten_cuda(text):
    """Returns (text, mode): the CUDA file with fewer implicit torch headers, if safe."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != TORCH_PREFIX:
        return text, "as_written"
    user = "\n".join(lines[3:])  # torch's three prefix lines, then the candidate's code
    if not NAMES_TORCH.search(user):
        return "\n".join([""] + lines[1:]), "no_torch_headers"
    if EXTENSION_INCLUDE.search(user):
        return EXTENSION_INCLUDE.sub("#include <torch/types.h>", text), "torch_types_only"
    return text, "as_written"


def _ninja_var(text, name):
    m = re.search(r"^%s = (.*)$" % re.escape(name), text, re.M)
    return m.group(1) if m else None


def _set_ninja_var(text, name, value):
    return re.sub(r"^%s = .*$" % re.escape(name), lambda _: "%s = %s" % (name, value), text, count=1, flags=re.M)


class _Lock:
    """An exclusive flock on a file: concurrent workers build a shared artifact once."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.f = open(self.path, "a")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def ensure_pch(cache_dir, ninja_text, record, compiler):
    """The precompiled torch/extension.h for this build's flags; None when unavailable."""
    cxx, cflags = _ninja_var(ninja_text, "cxx"), _ninja_var(ninja_text, "cflags")
    post = _ninja_var(ninja_text, "post_cflags") or ""
    if not cxx or cflags is None:
        record["pch"] = "unavailable"
        return None
    strip = re.compile(r"\s-DTORCH_EXTENSION_NAME=\S+")
    flags, post = strip.sub("", " " + cflags), strip.sub("", " " + post)
    key = _sha(json.dumps([cxx, flags, post, compiler], sort_keys=True, default=str))[:40]
    root = os.path.join(cache_dir, "pch")
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, key)
    header = os.path.join(final, "kbrun_pch.h")
    if os.path.exists(header + ".gch"):
        record["pch"] = "used"
        return header
    t = time.perf_counter()
    with _Lock(final + ".lock"):
        if os.path.exists(header + ".gch"):  # another worker built it while we waited
            record["pch"] = "used"
            record["pch_wait_s"] = round(time.perf_counter() - t, 2)
            return header
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=root)
        tmp_header = os.path.join(tmp, "kbrun_pch.h")
        with open(tmp_header, "w") as f:
            f.write(PCH_HEADER)
        # The flags are shell text from torch's ninja file; ninja runs them with sh too.
        cmd = "%s -x c++-header %s -o %s.gch %s %s" % (cxx, flags, tmp_header, tmp_header, post)
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True)
        if p.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            record["pch"] = "failed"
            record["pch_error"] = (p.stdout + p.stderr)[-2000:]
            return None
        os.rename(tmp, final)
    record["pch"] = "built"
    record["pch_build_s"] = round(time.perf_counter() - t, 2)
    return header


def _cuda_sources(ninja_text):
    return re.findall(r"^build \S+: cuda_compile (\S+)$", ninja_text, re.M)


def fast_ninja_build(ce, original_run, cache_dir, use_pch, record):
    """Replaces _run_ninja_build for one build: PCH and lighter CUDA files, with a fallback."""

    def run(build_directory, verbose, error_prefix):
        path = os.path.join(build_directory, "build.ninja")
        with open(path) as f:
            plain = f.read()
        text = plain
        if use_pch and re.search(r"^build \S+: compile ", text, re.M):
            header = ensure_pch(cache_dir, text, record, toolchain(ce, False))
            if header:
                cflags = _ninja_var(text, "cflags")
                text = _set_ninja_var(text, "cflags", "-include %s -Winvalid-pch %s" % (header, cflags))
        modes = []
        for src in _cuda_sources(text):
            with open(src) as f:
                light, mode = lighten_cuda(f.read())
            modes.append(mode)
            if mode != "as_written":
                light_path = src[: -len(".cu")] + ".kbrun-light.cu" if src.endswith(".cu") else src + ".light.cu"
                with open(light_path, "w") as f:
                    f.write(light)
                text = text.replace(" cuda_compile %s\n" % src, " cuda_compile %s\n" % light_path)
        record["cuda_headers"] = modes
        with open(path, "w") as f:
            f.write(text)
        try:
            original_run(build_directory, verbose, error_prefix)
            return
        except RuntimeError as first:
            if not any(m != "as_written" for m in modes):
                raise
            record["fallback"] = "built again as written after: %s" % str(first)[-1500:]
        # The lighter CUDA file did not compile: build exactly what torch wrote.
        for src in _cuda_sources(plain):
            light_path = src[: -len(".cu")] + ".kbrun-light.cu" if src.endswith(".cu") else src + ".light.cu"
            text = text.replace(" cuda_compile %s\n" % light_path, " cuda_compile %s\n" % src)
        with open(path, "w") as f:
            f.write(text)
        original_run(build_directory, verbose, error_prefix)

    return run


def _deps(build_directory):
    """Files the build read, from ninja's deps log: [path, size, mtime_ns]."""
    out = _run(["ninja", "-t", "deps"], cwd=build_directory)
    files = set()
    for line in out.splitlines():
        if line.startswith("    "):
            files.add(line.strip())
    deps = []
    for p in sorted(files):
        full = p if os.path.isabs(p) else os.path.join(build_directory, p)
        if full.startswith(os.path.abspath(build_directory) + os.sep):
            continue  # the generated sources: covered by the key
        try:
            st = os.stat(full)
            deps.append([full, st.st_size, st.st_mtime_ns])
        except OSError:
            pass
    return deps


def _fresh(manifest):
    for path, size, mtime in manifest.get("deps", []):
        try:
            st = os.stat(path)
        except OSError:
            return False
        if st.st_size != size or st.st_mtime_ns != mtime:
            return False
    return True


def merge_flags(ours, theirs):
    """kbrun's flags first, then the candidate's (nvcc and g++ keep the last -std and -O, so
    the candidate's own choices win); flags the candidate already gives are not repeated."""
    if theirs is None:
        theirs = []
    elif isinstance(theirs, str):
        theirs = [theirs]
    else:
        theirs = list(theirs)
    return [f for f in ours if f not in theirs] + theirs


def add_backend_flags(backend):
    """Adds the backend's flags (from the supervisor's request) to every extension the
    candidate builds with load_inline or load, in both compile modes.

    It wraps torch's _jit_compile, upstream of the build step, so the flags are part of
    the build arguments: torch's own version check and this module's cache key see them.
    """
    adds = {"extra_cflags": backend.get("cflags") or [],
            "extra_cuda_cflags": backend.get("cuda_cflags") or [],
            "extra_ldflags": backend.get("ldflags") or [],
            "extra_include_paths": backend.get("include_paths") or []}
    if not any(adds.values()):
        return
    from torch.utils import cpp_extension as ce

    original = ce._jit_compile
    signature = inspect.signature(original)

    def jit_compile(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        for key, ours in adds.items():
            if ours and key in signature.parameters:
                bound.arguments[key] = merge_flags(ours, bound.arguments.get(key))
        return original(*bound.args, **bound.kwargs)

    ce._jit_compile = jit_compile


def install(cache_dir, use_pch=True):
    """Routes torch's extension builds through the cache in `cache_dir`."""
    from torch.utils import cpp_extension as ce

    original = ce._write_ninja_file_and_build_library
    signature = inspect.signature(original)
    lib_ext = getattr(ce, "LIB_EXT", ".so")
    ext_root = os.path.join(cache_dir, "ext")
    os.makedirs(ext_root, exist_ok=True)

    def build_library(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        a = dict(bound.arguments)
        if a.get("is_standalone"):
            return original(*args, **kwargs)
        name, build_directory = a["name"], a["build_directory"]
        with_cuda = a.get("with_cuda")
        if with_cuda is None:
            with_cuda = any(map(ce._is_cuda_file, a["sources"]))
        t = time.perf_counter()
        key = cache_key(a, with_cuda, ce)
        record = {"name": name, "key": key, "cache": "miss"}
        builds.append(record)
        entry = os.path.join(ext_root, key)
        lib_name = name + lib_ext
        manifest_path = os.path.join(entry, "manifest.json")
        if os.path.exists(manifest_path):
            try:
                with open(manifest_path) as f:
                    manifest = json.load(f)
            except (OSError, ValueError):
                manifest = {}
            if manifest and _fresh(manifest) and os.path.exists(os.path.join(entry, lib_name)):
                shutil.copy2(os.path.join(entry, lib_name), os.path.join(build_directory, lib_name))
                record["cache"] = "hit"
                record["seconds"] = round(time.perf_counter() - t, 3)
                return None
            record["cache"] = "stale"
            shutil.rmtree(entry, ignore_errors=True)
        original_run = ce._run_ninja_build
        ce._run_ninja_build = fast_ninja_build(ce, original_run, cache_dir, use_pch, record)
        try:
            original(*args, **kwargs)
        finally:
            ce._run_ninja_build = original_run
        record["seconds"] = round(time.perf_counter() - t, 3)
        try:
            tmp = tempfile.mkdtemp(prefix=".tmp-", dir=ext_root)
            shutil.copy2(os.path.join(build_directory, lib_name), os.path.join(tmp, lib_name))
            with open(os.path.join(tmp, "manifest.json"), "w") as f:
                json.dump({"name": name, "deps": _deps(build_directory), "build": record,
                           "created": time.time()}, f)
            try:
                os.rename(tmp, entry)
            except OSError:  # another batch stored the same build first
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError as exc:  # a cache that cannot be written costs speed, not results
            record["store_error"] = str(exc)
        return None

    ce._write_ninja_file_and_build_library = build_library
