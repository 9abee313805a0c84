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
- Binding header: even with the PCH, g++ spends most of main.cpp's time instantiating
  the templates that torch/extension.h's inline code uses (at the end of every unit;
  a g++ PCH cannot hold that work), most of them from the C++ frontend (torch/all.h:
  nn, optim, data, jit...) that binding code rarely names. When main.cpp names none of
  it, torch/python.h (tensors, ATen, pybind11 and torch's casters) stands in for
  torch/extension.h, with a `#line` directive so __FILE__ and __LINE__ are unchanged.
  If that file fails to compile, it is built again exactly as written, with the full
  header, and that build's errors are the ones reported. The -O level stays torch's
  (none, so -O0) or the candidate's own: -O1 and up only cost more (docs/PERFORMANCE.md).
- CUDA headers: torch prepends `#include <torch/types.h>` to cuda_sources (about
  30 s of nvcc time). plan_cuda_headers decides before compiling, from the names the
  code uses: when it names nothing from torch, ATen, c10 or pybind11 (and every std::
  name it uses is declared by cuda_runtime.h or a header it includes), that line is
  blanked (line numbers stay the same); when it includes torch/extension.h and uses
  only what torch/types.h declares (no pybind11/PYBIND11_MODULE, no C++ frontend, no
  torch/enum.h names, no at::cuda/c10::cuda API without its own include, no unknown
  torch macro), that include becomes torch/types.h; otherwise the file is built as
  written, once. Should a lighter file still fail to compile, it is built again as
  written (record: `fallback`, `path`), and that build's errors are the ones reported.
  When a CUDA file parses torch's headers, a precompiled header not built yet is not
  built in front of the build (nvcc is its long pole).
- Split: a CUDA file that still includes torch's headers is split by cuda_split.py into a
  kernel file without torch (nvcc, in the file's own object) and a host file (g++, with a
  precompiled header for its header and the CUDA flags' -O level and macros, in
  `<object>.host.o`, linked beside it). With template kernels the host objects (and the binding)
  are built first and the kernel file gets the instantiations their symbols name (their host
  stubs weak, -static-global-template-stub=false, so that the host file links). A split file
  that fails is judged on its own compiler's lines (_errors_are_own); a host file's error that a
  split could cause sends the file back as written.
"""
# Over 400 lines on purpose: one build step (cache, PCH, header lightening, the hooks on torch's
# build functions) whose parts share the cache's key and records; split, each part would need the rest.

import concurrent.futures
import fcntl
import functools
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

from . import cuda_split

# Bump when this file changes how it builds: older cache entries stop matching.
BUILD_FORMAT = 2
PCH_HEADER = "#include <torch/extension.h>\n"
# What a binding file that names nothing from the C++ frontend needs of torch/extension.h.
BINDING_HEADER = "#include <torch/python.h>\n"
TORCH_PREFIX = "#include <torch/types.h>"
# Anything in CUDA code that needs torch's headers.
NAMES_TORCH = re.compile(
    r"\b(?:torch|at|c10|caffe2|pybind11|py)\s*::"
    r"|\b(?:TORCH|AT|C10|PYBIND11|CAFFE2)_[A-Z0-9_]+"
    r"|#\s*include\s*[<\"](?:torch|ATen|c10|caffe2|pybind11|Python|THC?)\b")
EXTENSION_INCLUDE = re.compile(r"#\s*include\s*[<\"]torch/extension\.h[>\"]")
# Binding code that needs torch/extension.h in full: the C++ frontend's namespaces (what
# torch/all.h adds to torch/python.h), a using-directive for all of torch or reopening it
# (a name of the frontend could then clash or win an overload), another torch/ header.
NAMES_FRONTEND = re.compile(
    r"\btorch\s*::\s*(?:nn|optim|data|jit|fft|linalg|special|nested|sparse|serialize|cuda|mps|xpu|"
    r"autograd|enumtype|save|load)\b"
    r"|\busing\s+namespace\s+(?:::\s*)?torch\s*;"
    r"|^\s*(?:inline\s+)?namespace\s+torch\b"
    r"|#\s*include\s*[<\"]torch/(?!(?:extension|python|types)\.h[>\"]|csrc/)", re.M)

# One record per extension built or loaded in this process, for result.json.
builds = []
# Each shared object the candidate's load_inline/load calls loaded, with its hash at load time:
# the code that library_share.py counts as the candidate's own.
loaded_libraries = []
# Each load_inline/load call the candidate made in this process and how it ended (kbrun_library_share
# names a fallback from these: a build that failed, often inside the candidate's try/except).
build_attempts = []
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
    """Returns (text, mode): the CUDA file with fewer implicit torch headers, if safe
    (plan_cuda_headers, without its reason)."""
    text, mode, _ = plan_cuda_headers(text)
    return text, mode


# Deciding before compiling which header a CUDA file gets (plan_cuda_headers): the lighter file is
# chosen only when every name it uses from torch and the standard library is known to be declared
# by what it keeps, so that a wrong guess never costs a second build.
#
# Standard names that cuda.h and cuda_runtime.h (torch's prefix lines) declare on their own (nvcc
# 13, libstdc++): <cmath>'s functions, min/max, numeric_limits, swap, pair, type traits, fixed-width
# integer types.
STD_FROM_CUDA_RUNTIME = frozenset(
    "min max swap pair make_pair numeric_limits size_t ptrdiff_t nullptr_t is_same enable_if "
    "int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t "
    "abs fabs fabsf sqrt sqrtf rsqrt exp expf exp2 expm1 log logf log2 log10 log1p pow powf "
    "sin cos tan sinf cosf tanf asin acos atan atan2 sinh cosh tanh tanhf asinh acosh atanh "
    "erf erff erfc tgamma lgamma ceil ceilf floor floorf round roundf trunc fmod fma fmax fmin "
    "fmaxf fminf isnan isinf isfinite signbit copysign hypot cbrt ldexp frexp nearbyint rint lrint llrint "
    "lround llround remainder".split())
# Standard names a file must include a header for (without torch's headers): name -> headers that
# declare it. A standard name in neither set keeps the file as written (not known to be declared).
STD_HEADERS = {}
for _header, _names in {
        "vector": "vector", "string": "string to_string stoi stof", "iostream": "cout cerr clog cin endl",
        "sstream": "stringstream ostringstream istringstream", "tuple": "tuple make_tuple tie get",
        "array": "array", "memory": "unique_ptr shared_ptr make_unique make_shared",
        "functional": "function", "stdexcept": "runtime_error invalid_argument out_of_range logic_error",
        "numeric": "accumulate iota", "cstring": "memcpy memset strlen strcmp",
        "algorithm": "sort fill copy transform min_element max_element find reverse clamp",
        "cstdio": "printf snprintf fprintf", "map": "map", "unordered_map": "unordered_map",
        "utility": "move forward", "cstdlib": "exit abort getenv"}.items():
    for _name in _names.split():
        STD_HEADERS.setdefault(_name, set()).add(_header)
# torch/types.h (ATen, c10, torch's tensor factories) brings these standard headers itself.
STD_FROM_TORCH_TYPES = frozenset("vector string sstream tuple array memory functional stdexcept algorithm cstring "
                                 "utility map unordered_map cstdio cstdlib numeric".split())
STD_NAME = re.compile(r"\bstd\s*::\s*([A-Za-z_]\w*)")
STD_INCLUDE = re.compile(r"#\s*include\s*<(\w+)>")
# What torch/extension.h declares beyond torch/types.h, as CUDA code names it: pybind11 and Python,
# the C++ frontend (torch/all.h), torch/enum.h's k-names. A file naming any of them keeps it.
NAMES_PYBIND = re.compile(r"\b(?:PYBIND11_\w+|pybind11\s*::|py\s*::|Py_\w+|Py[A-Z][A-Za-z]*_[A-Z]\w*|PyObject)\b"
                          r"|#\s*include\s*[<\"](?:pybind11/|Python\.h|torch/python\.h)")
TORCH_K_NAME = re.compile(r"\btorch\s*::\s*(k[A-Z]\w*)")
# torch's k-names of dtypes, devices and layouts (c10, in torch/types.h); the others (kSum, kMean,
# kReLU, ...) are torch/enum.h's, part of torch/extension.h only.
TORCH_TYPE_K_NAMES = frozenset(
    "kFloat kFloat32 kFloat64 kDouble kHalf kFloat16 kBFloat16 kInt kInt32 kInt64 kLong kInt16 kShort kInt8 kChar "
    "kUInt8 kByte kBool kComplexFloat kComplexDouble kCPU kCUDA kHIP kMPS kXPU kMeta kStrided kSparse "
    "kFloat8_e4m3fn kFloat8_e5m2 kUInt16 kUInt32 kUInt64".split())
# CUDA-specific ATen/c10 API: declared by ATen/cuda and c10/cuda headers that neither torch/types.h
# nor (reliably) torch/extension.h bring; lightened only when the file includes one itself.
NAMES_TORCH_CUDA_API = re.compile(r"\b(?:at|c10)\s*::\s*cuda\s*::|\b(?:AT|C10)_CUDA_\w+|\bgetCurrentCUDAStream\b")
TORCH_CUDA_INCLUDE = re.compile(r"#\s*include\s*[<\"](?:ATen/cuda/|c10/cuda/)")
# torch's macros that torch/types.h defines (c10/util/Exception.h, c10/macros, ATen/Dispatch.h).
TORCH_MACRO = re.compile(r"\b(?:TORCH|AT|C10)_[A-Z0-9_]+")
KNOWN_TORCH_MACRO = re.compile(
    r"(?:TORCH_CHECK\w*|TORCH_INTERNAL_ASSERT\w*|TORCH_WARN\w*|TORCH_API|TORCH_EXTENSION_NAME"
    r"|AT_DISPATCH_\w+|AT_PRIVATE_\w+|AT_ERROR|AT_ASSERT\w*|AT_CHECK|AT_WARN"
    r"|C10_HOST_DEVICE|C10_DEVICE|C10_HOST|C10_UNUSED|C10_LIKELY|C10_UNLIKELY|C10_RESTRICT|C10_ALWAYS_INLINE"
    r"|C10_WARP_SIZE|C10_MAX_THREADS_PER_BLOCK|C10_LAUNCH_BOUNDS_\w+|C10_CUDA_\w+|AT_CUDA_\w+)$")


def _strip_comments(code):
    """The code without its comments (names in comments do not count); strings are kept."""
    return re.sub(r"//[^\n]*|/\*.*?\*/", " ", code, flags=re.S)


def _std_unknown(code, available):
    """The first standard name `code` uses that is neither declared by torch's CUDA prefix nor by a
    header in `available` or one it includes; None when all are known."""
    included = set(STD_INCLUDE.findall(code)) | set(available)
    for name in STD_NAME.findall(code):
        if name in STD_FROM_CUDA_RUNTIME:
            continue
        if not (STD_HEADERS.get(name, set()) & included):
            return "std::" + name
    return None


def plan_cuda_headers(text):
    """Decides, before compiling, which torch header a CUDA file of load_inline gets. Returns
    (text, mode, reason):

    - `no_torch_headers`: the code names nothing from torch, ATen, c10 or pybind11 and every
      standard name it uses is declared by cuda_runtime.h or a header it includes: torch's
      `#include <torch/types.h>` line is blanked.
    - `torch_types_only`: the code includes torch/extension.h and uses from it only what
      torch/types.h declares (tensors, ATen functions, torch's tensor factories, c10 types, dtypes,
      TORCH_CHECK, AT_DISPATCH_*): that include becomes torch/types.h.
    - `as_written`: anything else (pybind11 or Python, the C++ frontend, torch/enum.h's names,
      at::cuda/c10::cuda API without its header, unknown torch macros or standard names, a file
      that does not start with torch's prefix); the reason names what decided it.
    Line numbers never move."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != TORCH_PREFIX:
        return text, "as_written", "no torch prefix"
    user = _strip_comments("\n".join(lines[3:]))  # torch's three prefix lines, then the candidate's code
    if not NAMES_TORCH.search(user):
        unknown = _std_unknown(user, ())
        if unknown is None:
            return "\n".join([""] + lines[1:]), "no_torch_headers", "names nothing from torch"
        no_torch_reason = "%s without its header" % unknown
    else:
        no_torch_reason = None
    if not EXTENSION_INCLUDE.search(user):
        return text, "as_written", no_torch_reason or "uses torch without including torch/extension.h"
    why = None
    m = NAMES_PYBIND.search(user) or NAMES_FRONTEND.search(user)
    if m:
        why = "needs torch/extension.h: %s" % m.group(0).strip()
    if why is None:
        for k in TORCH_K_NAME.findall(user):
            if k not in TORCH_TYPE_K_NAMES:
                why = "needs torch/enum.h: torch::%s" % k
                break
    if why is None:
        m = NAMES_TORCH_CUDA_API.search(user)
        if m and not TORCH_CUDA_INCLUDE.search(user):
            why = "%s without an ATen/cuda or c10/cuda include" % m.group(0).strip()
    if why is None:
        for macro in TORCH_MACRO.findall(user):
            if not KNOWN_TORCH_MACRO.match(macro):
                why = "macro not known to be in torch/types.h: %s" % macro
                break
    if why is None:
        std_with_torch = _std_unknown(user, STD_FROM_TORCH_TYPES)
        if std_with_torch:
            why = "%s without its header" % std_with_torch
    if why:
        return text, "as_written", why
    return EXTENSION_INCLUDE.sub("#include <torch/types.h>", text), "torch_types_only", "torch/types.h suffices"


def lighten_binding(text, path):
    """Returns (text, mode): the binding file (main.cpp) with torch/python.h in place of
    torch/extension.h when it names nothing from the C++ frontend. Its first line, torch's
    include, becomes `#line 2 "main.cpp"`: the header comes with -include, and __FILE__ and
    __LINE__ stay what torch's own build gives."""
    first, sep, rest = text.partition("\n")
    if not sep or first.strip() != PCH_HEADER.strip() or NAMES_FRONTEND.search(rest):
        return text, "as_written"
    directive = '#line 2 "%s"' % path.replace("\\", "\\\\").replace('"', '\\"')
    return directive + sep + EXTENSION_INCLUDE.sub(BINDING_HEADER.strip(), rest), "torch_python_only"


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


def ensure_pch(cache_dir, ninja_text, record, compiler, header_text=PCH_HEADER, only_existing=False):
    """The precompiled header (torch/extension.h, or `header_text`) for this build's flags;
    None when unavailable. With `only_existing`, a header not built yet is not built now
    (record["pch"] = "skipped")."""
    cxx, cflags = _ninja_var(ninja_text, "cxx"), _ninja_var(ninja_text, "cflags")
    post = _ninja_var(ninja_text, "post_cflags") or ""
    if not cxx or cflags is None:
        record["pch"] = "unavailable"
        return None
    strip = re.compile(r"\s-DTORCH_EXTENSION_NAME=\S+")
    flags, post = strip.sub("", " " + cflags), strip.sub("", " " + post)
    key = _sha(json.dumps([cxx, flags, post, compiler] + ([header_text] if header_text != PCH_HEADER else []),
                          sort_keys=True, default=str))[:40]
    root = os.path.join(cache_dir, "pch")
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, key)
    header = os.path.join(final, "kbrun_pch.h")
    if os.path.exists(header + ".gch"):
        record["pch"] = "used"
        return header
    if only_existing:
        record["pch"] = "skipped"
        return None
    t = time.perf_counter()
    with _Lock(final + ".lock"):
        if os.path.exists(header + ".gch"):  # another worker built it while we waited
            record["pch"] = "used"
            record["pch_wait_s"] = round(time.perf_counter() - t, 2)
            return header
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=root)
        tmp_header = os.path.join(tmp, "kbrun_pch.h")
        with open(tmp_header, "w") as f:
            f.write(header_text)
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


def _ensure_pchs(cache_dir, jobs, ce):
    """ensure_pch for each job (name -> (ninja text, record, header text, only_existing)) at once:
    name -> header path or None."""
    if not jobs:
        return {}
    compiler = toolchain(ce, False)
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        futures = {name: pool.submit(ensure_pch, cache_dir, text, record, compiler, header, only_existing=only)
                   for name, (text, record, header, only) in jobs.items()}
        return {name: f.result() for name, f in futures.items()}


def _light_path(src):
    stem, ext = os.path.splitext(src)
    return stem + ".kbrun-light" + ext if ext in (".cu", ".cpp") else src + ".light.cu"


def _ninja_log_size(build_directory):
    try:
        return os.path.getsize(os.path.join(build_directory, ".ninja_log"))
    except OSError:
        return 0


def _ninja_log_since(build_directory, offset):
    """The commands ninja logged after `offset` bytes of its log: (start s, end s, output),
    times from ninja's start (log lines: start ms, end ms, mtime, output, hash)."""
    try:
        with open(os.path.join(build_directory, ".ninja_log")) as f:
            f.seek(offset)
            lines = f.read().splitlines()
    except OSError:
        return []
    entries = []
    for line in lines:
        fields = line.split("\t")
        if not line.startswith("#") and len(fields) >= 5 and fields[0].isdigit() and fields[1].isdigit():
            entries.append((int(fields[0]) / 1000, int(fields[1]) / 1000, fields[3]))
    return entries


def _built_since(build_directory, offset):
    """Outputs ninja built since `offset` bytes of its log."""
    return {output for _, _, output in _ninja_log_since(build_directory, offset)}


def _record_ninja_run(record, build_directory, offset, seconds):
    """Where a build's time went: ninja's wall time, and each step it ran ([output, start,
    end] in seconds from ninja's start), so time outside the compilers shows."""
    record["ninja_s"] = round(record.get("ninja_s", 0) + seconds, 3)
    steps = record.setdefault("ninja_steps", [])
    for start, end, output in _ninja_log_since(build_directory, offset):
        steps.append([os.path.basename(output), start, end])


# Compiler errors a lighter header can cause: a name, member or type it no longer declares. A
# lightened file that fails with none of them (a syntax error, a redeclaration, a bad conversion)
# fails as written too, so it is reported without a second build.
HEADER_ERRORS = re.compile(
    r"undefined|undeclared|not declared|was not declared|is not a member|has no member|no member named"
    r"|incomplete type|not a template|not a type|unknown type|does not name|no matching|no instance of"
    r"|cannot open source file|No such file|expected a type|conversion|ambiguous", re.I)


# A conversion between two types torch/types.h declares (ATen, c10, std, built-in): no header
# torch/extension.h adds beyond it declares a conversion between them, so the error is the file's
# own (AT_DISPATCH on the removed Tensor::type(), torch 2.x: nvcc's `no suitable conversion function
# from "const at::DeprecatedTypeProperties" to "c10::ScalarType"`, g++'s `cannot convert ...`).
DECLARED_TYPE = (r"(?:const |volatile )*(?:(?:at|c10|std)::[\w:<>, ]+"
                 r"|(?:unsigned |signed |long )*(?:int|float|double|char|bool|short|long|void|int64_t|size_t)"
                 r"(?: ?[*&])*)")
OWN_CONVERSION = re.compile(
    r"(?:no suitable conversion function from|cannot convert|no suitable user-defined conversion from) "
    r"[\"\u2018'`]%s[\"\u2019'] to [\"\u2018'`]%s[\"\u2019']" % (DECLARED_TYPE, DECLARED_TYPE))


def _header_may_cause(message):
    """Whether an error message is of a kind a lighter header can cause (HEADER_ERRORS), and not a
    conversion between types the lighter header declares too (OWN_CONVERSION)."""
    return bool(HEADER_ERRORS.search(message)) and not OWN_CONVERSION.search(message)


def _failed_outputs(output):
    """The outputs ninja's FAILED lines name in a failed build's output; None when it has none."""
    names = set()
    for m in re.finditer(r"^FAILED: (?:\[code=\d+\] )?(.*)$", output, re.M):
        names.update(m.group(1).split())
    return names or None


# A link that fails on a symbol: a split file's declaration and definition that do not meet.
LINK_SYMBOL_ERRORS = re.compile(r"undefined reference|multiple definition|undefined symbol")


def _bound_names(build_directory):
    """The functions load_inline's generated binding file binds (its m.def("name", ...) lines)."""
    try:
        with open(os.path.join(build_directory, "main.cpp")) as f:
            return set(re.findall(r'\bm\.def\("(\w+)"', f.read()))
    except OSError:
        return set()


# A compiler's error line (g++ `file:line:col: error: ...`, nvcc `file(line): error: ...`, the linker's
# `collect2: error: ...`); not ninja's command lines, whose flags may hold any word.
DIAGNOSTIC = re.compile(r"(?:^|[\s:)])(?:fatal )?error(?: #?[A-Z]?\d+(?:-D)?)?:")


def _diagnostics(output):
    return [line for line in output.splitlines() if DIAGNOSTIC.search(line) and not line.startswith("[")]


GCC_DIAGNOSTIC = re.compile(r"^\s*(.+?):(\d+):(?:\d+:)? (?:fatal )?error: (.*)$")
NVCC_DIAGNOSTIC = re.compile(r"^\s*(.+?)\((\d+)\): (?:catastrophic |fatal )?error")
# A torch name g++ does not know in a host file that includes torch/extension.h, as the file as
# written does: torch's headers declare the same names for g++ as for nvcc (AT_CUDA_CHECK without
# its header; level 2 corpus, 23_).
TORCH_NAME_UNDECLARED = re.compile(
    r"[\u2018'`](?:(?:TORCH|AT|C10)_\w+|(?:at|c10|torch)::[\w:]+)[\u2019'] (?:was|has) not (?:been )?declared"
    r"|is not a member of [\u2018'`](?:at|c10|torch)(?:::\w+)*[\u2019']")


def _split_errors_are_own(output, split):
    """Whether a split's host file failed with the candidate's own errors (`output`: g++'s error
    lines of that file), the same as written: each is in the candidate's file (#line), outside the
    launches kbrun rewrote, and of a kind no split causes (HEADER_ERRORS: a name, type or overload
    the other file or nvcc would have; a torch name when the host file has torch/extension.h)."""
    errors = _diagnostics(output)
    for line in errors:
        m = GCC_DIAGNOSTIC.match(line)
        if not m or os.path.basename(m.group(1)) != os.path.basename(split.src):
            return False
        if int(m.group(2)) in split.parts.launch_lines:
            return False
        if _header_may_cause(m.group(3)) and not (split.parts.host_header == PCH_HEADER
                                                  and TORCH_NAME_UNDECLARED.search(m.group(3))):
            return False
    return bool(errors)


def _errors_are_own(output, failed, binding, splits, host_failed, bound):
    """Whether each failed lightened or split file failed with errors of its own (the same as
    written), judged on its own compiler's lines: g++'s of the binding file (main.cpp) and of split
    host files, nvcc's of CUDA files. A file with no error line of its own goes back."""
    lines = _diagnostics(output)
    gcc = [line for line in lines if GCC_DIAGNOSTIC.match(line)]
    binding_lines = [line for line in gcc if os.path.basename(GCC_DIAGNOSTIC.match(line).group(1)).startswith("main")]
    host_lines = "\n".join(line for line in gcc if line not in binding_lines)
    nvcc_lines = [line for line in lines if NVCC_DIAGNOSTIC.match(line)]
    for obj in failed:
        if obj in host_failed:
            if splits[obj].failed or not _split_errors_are_own(host_lines, splits[obj]):
                return False
        else:
            own = binding_lines if obj == binding else nvcc_lines
            if not own or _may_be_the_header("\n".join(own), bound):
                return False
    return True


def _may_be_the_header(output, bound=()):
    """Whether a failed build's errors could come from a lighter header (HEADER_ERRORS); True when
    no error line is found (then the safe answer is to build again as written). A bound function
    that is "not declared" is not: no header declares the candidate's own functions (its
    cpp_sources lack the declaration: 7 of the 9 second builds of 30 real level-2 candidates)."""
    errors = _diagnostics(output)

    def own_function_undeclared(line):
        m = re.search(r"[\u2018'`](\w+)[\u2019'] was not declared|reference to [\u2018'`](\w+)[\u2019'] is ambiguous",
                      line)
        return m is not None and (m.group(1) or m.group(2)) in bound

    return not errors or any(_header_may_cause(line) and not own_function_undeclared(line) for line in errors)


def _cuda_is_long_pole(modes):
    """Whether a CUDA file of the build still parses torch's headers (`as_written` or
    `torch_types_only`: 30 s and more of nvcc): then a precompiled header not built yet is not built
    in front of the build (26-35 s more, in series), since the binding file compiled without one
    (beside nvcc) does not make the build longer; a later build makes it."""
    return any(mode not in ("no_torch_headers", "split") for mode in modes)


@functools.lru_cache(maxsize=None)
def _nvcc_knows(nvcc, flag):
    """Whether this nvcc's --help names `flag`."""
    try:
        p = subprocess.run([nvcc or "nvcc", "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return flag in p.stdout


class _SplitBuild:
    """One CUDA file built as two (cuda_split.py): the kernel file in the file's own object, the
    host file in `<object>.host.o`, linked beside it."""

    def __init__(self, obj, src, parts, plain):
        self.obj, self.src, self.parts = obj, src, parts
        self.host_obj = obj[:-2] + ".host.o" if obj.endswith(".o") else obj + ".host.o"
        self.host_src = os.path.splitext(src)[0] + ".kbrun-host.cpp"
        self.instantiated = False
        self.failed = False
        with open(self.host_src, "w") as f:
            f.write(parts.host)
        # The host code gets what nvcc would give it: the CUDA flags' -O level and macros.
        # (torch's own macros are in the C++ flags already; its __CUDA_NO_HALF* ones concern device code.)
        cuda_flags = " ".join(_ninja_var(plain, v) or "" for v in ("cuda_cflags", "cuda_post_cflags"))
        cxx_flags = set((_ninja_var(plain, "cflags") or "").split())
        flags = [f for f in re.findall(r"(?<!\S)(?:-O\d|-D\S+|-U\S+)", cuda_flags)
                 if f not in cxx_flags and not f.startswith("-D__CUDA_NO_")]
        flags += ["-O" + m for m in re.findall(r"--optimize[= ](\d)", cuda_flags)]
        self.host_flags = " ".join(dict.fromkeys(flags))
        # nvcc 12.8 and later give template kernels' host stubs internal linkage by default; the host
        # file links to them (only the kernel file instantiates them, so weak linkage is safe).
        self.kernel_line = ""
        if parts.template_kernels and _nvcc_knows(_ninja_var(plain, "nvcc"), "-static-global-template-stub"):
            self.kernel_line = "  cuda_post_cflags = %s -static-global-template-stub=false\n" % (
                _ninja_var(plain, "cuda_post_cflags") or "")

    def add_host_build(self, ninja_text, cflags):
        """The ninja file with the host object built and linked."""
        line = "build %s: compile %s\n  cflags = %s %s\n" % (self.host_obj, self.host_src, cflags, self.host_flags)
        ninja_text = re.sub(r"^(build \S+: link .*)$", lambda m: m.group(1) + " " + self.host_obj, ninja_text,
                            count=1, flags=re.M)
        return re.sub(r"^(build %s: cuda_compile .*\n)" % re.escape(self.obj),
                      lambda m: m.group(1) + self.kernel_line + line, ninja_text, count=1, flags=re.M)

    def instantiate(self, build_directory):
        """Appends to the kernel file the template kernels' instantiations its host object uses."""
        try:
            code = cuda_split.instantiations(
                self.parts.template_kernels, cuda_split.undefined_symbols(os.path.join(build_directory, self.host_obj)))
        except cuda_split.Declined:
            self.failed = True
            raise
        with open(_light_path(self.src), "a") as f:
            f.write(code)
        self.instantiated = True


def fast_ninja_build(ce, original_run, cache_dir, use_pch, record):
    """Replaces _run_ninja_build for one build: PCH, lighter binding and CUDA headers, with
    a fallback to the files as written."""

    def run(build_directory, verbose, error_prefix):
        path = os.path.join(build_directory, "build.ninja")
        with open(path) as f:
            plain = f.read()
        cflags = _ninja_var(plain, "cflags")
        # Lightened files: output -> (its build line as written, as lightened).
        light = {}
        compiles = re.findall(r"^build (\S+): compile (\S+)$", plain, re.M)
        binding = None
        record["binding_header"] = "as_written"
        # Only the file load_inline writes (main.cpp in the build folder); files given to load()
        # keep their own folder for their quoted includes, and the PCH's -include reaches them all.
        if len(compiles) == 1 and os.path.dirname(os.path.abspath(compiles[0][1])) == os.path.abspath(build_directory):
            binding, src = compiles[0]
            with open(src) as f:
                text, mode = lighten_binding(f.read(), src)
            record["binding_header"] = mode
            if mode != "as_written":
                with open(_light_path(src), "w") as f:
                    f.write(text)
                light[binding] = ("build %s: compile %s\n" % (binding, src),
                                  "build %s: compile %s\n" % (binding, _light_path(src)))
        modes, reasons = [], []
        # Split CUDA files: kernel object -> SplitBuild (cuda_split.py).
        splits = {}
        for obj, src in re.findall(r"^build (\S+): cuda_compile (\S+)$", plain, re.M):
            with open(src) as f:
                written = f.read()
            text, mode, reason = plan_cuda_headers(written)
            if mode != "no_torch_headers":
                # The host file gets the lighter of the two headers, as plan_cuda_headers chose it.
                host_header = "#include <torch/types.h>\n" if mode == "torch_types_only" else PCH_HEADER
                try:
                    if re.search(r"default-stream\s*[= ]\s*per-thread", plain):
                        raise cuda_split.Declined("--default-stream per-thread")
                    parts = cuda_split.split(text, src, host_header)
                except cuda_split.Declined as exc:
                    record.setdefault("cuda_split_declined", []).append(str(exc))
                except Exception as exc:  # noqa: BLE001 - a file the scanner cannot read is built as planned
                    record.setdefault("cuda_split_declined", []).append("split failed: %r" % (exc,))
                else:
                    splits[obj] = _SplitBuild(obj, src, parts, plain)
                    text, mode, reason = parts.kernels, "split", "kernels without torch, host code with the PCH"
            modes.append(mode)
            reasons.append(reason)
            if mode != "as_written":
                with open(_light_path(src), "w") as f:
                    f.write(text)
                light[obj] = ("build %s: cuda_compile %s\n" % (obj, src),
                              "build %s: cuda_compile %s\n" % (obj, _light_path(src)))
        record["cuda_headers"] = modes
        record["cuda_header_reasons"] = reasons
        record["path"] = "light" if light else "as_written"
        # ninja logs each command that succeeded: a lightened file's entries since here are its
        # light builds (it is never lightened again once it goes back).
        offset = _ninja_log_size(build_directory)
        while True:
            text = plain
            for written, lightened in light.values():
                text = text.replace(written, lightened)
            light_binding = binding in light
            live = [s for obj, s in splits.items() if obj in light]
            # The binding file's precompiled header and the split host files' are built at once, not
            # one after the other (on a cold cache each is 20-35 s on the H200's g++).
            pch_jobs = {}
            if use_pch and compiles and cflags is not None:
                pch_jobs["binding"] = (plain, record, BINDING_HEADER if light_binding else PCH_HEADER,
                                       _cuda_is_long_pole(modes))
            if use_pch and cflags is not None:
                for s in live:
                    pch_jobs[s.obj] = (_set_ninja_var(plain, "cflags", cflags + " " + s.host_flags), {},
                                       s.parts.host_header, False)
            headers = _ensure_pchs(cache_dir, pch_jobs, ce)
            if compiles and cflags is not None:
                include = "-include torch/python.h " if light_binding else ""
                if headers.get("binding"):
                    include = "-include %s -Winvalid-pch " % headers["binding"]
                text = _set_ninja_var(text, "cflags", include + cflags)
            for s in live:
                host_include = ""
                if s.obj in pch_jobs:
                    pch = pch_jobs[s.obj][1]
                    record.setdefault("split_pch", []).append(pch.get("pch"))
                    for key in ("pch_build_s", "pch_wait_s"):  # built here, or waited for another build's
                        if key in pch:
                            record["split_" + key] = round(record.get("split_" + key, 0) + pch[key], 2)
                    if headers.get(s.obj):
                        host_include = "-include %s -Winvalid-pch " % headers[s.obj]
                text = s.add_host_build(text, host_include + (cflags or ""))
            # Template kernels are compiled for what the host objects use: those (and the binding
            # file, beside them) first, then the kernel files with their instantiations.
            first = [s for s in live if s.parts.template_kernels and not s.instantiated]
            phase, targets = ("host" if first else "all"), []
            if first:
                targets = [s.host_obj for s in first] + ([binding] if binding else [])
                text_first = re.sub(r"^default .*\n?", "", text, flags=re.M).rstrip("\n") + \
                    "\ndefault %s\n" % " ".join(targets)
            t, log_offset = time.perf_counter(), _ninja_log_size(build_directory)
            record["ninja_runs"] = record.get("ninja_runs", 0) + 1
            try:
                # Always quiet (verbose False): torch then puts ninja's output in the exception of a
                # failed build, where the record, the failed-build store and the header decision read
                # the compiler's lines (with the candidate's verbose=True torch prints them instead,
                # and the run phase built a failed build again on the GPU lane: 10.6 s for a level-3
                # corpus candidate on an H200).
                if first:
                    with open(path, "w") as f:
                        f.write(text_first)
                    original_run(build_directory, False, error_prefix)
                    for s in first:
                        s.instantiate(build_directory)
                    phase = "all"
                with open(path, "w") as f:
                    f.write(text)
                original_run(build_directory, False, error_prefix)
                return
            except (RuntimeError, cuda_split.Declined) as exc:
                if not light:
                    raise
                # A lightened or split file that did not build goes back to what torch wrote;
                # files that built are kept. When all of them built, a file as written failed or
                # the link did (a header choice does not change what links, a split does: a link
                # error naming a symbol goes back too): its errors are the ones to report, with
                # no second build.
                built = _built_since(build_directory, offset)
                named = _failed_outputs(str(exc))

                def did_fail(output):
                    # ninja names what failed; it stops (kills) the compiles still running then. The
                    # host step builds only its targets.
                    if phase == "host" and output not in targets:
                        return False
                    return output in named if named is not None else output not in built

                failed = [obj for obj in light if obj not in splits and did_fail(obj)]
                host_failed = [obj for obj, s in splits.items()
                               if obj in light and (s.failed or did_fail(s.host_obj))]
                failed += host_failed
                failed += [obj for obj in splits if obj in light and obj not in failed and did_fail(obj)]
                split_objs = [obj for obj in splits if obj in light]
                link_failed = not failed and split_objs and LINK_SYMBOL_ERRORS.search(str(exc))
                if link_failed:
                    failed = host_failed = split_objs
                if not failed:
                    raise
                # Errors a lighter header cannot cause are the file's own; so are those of a split's
                # kernel file (the candidate's code as written, compiled by nvcc as before) and a host
                # file's errors that no split causes (_split_errors_are_own: e.g. AT_DISPATCH on the
                # removed Tensor::type() in real level-2 output on torch 2.11).
                if not link_failed and _errors_are_own(str(exc), failed, binding, splits, host_failed,
                                                       _bound_names(build_directory)):
                    record["light_error_kept"] = True  # the file's own error: the same as written
                    raise
                for obj in failed:
                    del light[obj]
                record["path"] = "as_written_after_light_failed"
                note = "built again as written (%s) after: %s" % (", ".join(failed), str(exc)[-1500:])
                record["fallback"] = record["fallback"] + "\n" + note if "fallback" in record else note
            finally:
                _record_ninja_run(record, build_directory, log_offset, time.perf_counter() - t)

    return run


def _deps(build_directory, sources=()):
    """Files the build read, from ninja's deps log: [path, size, mtime_ns]. Not the sources: the
    key holds their contents (a candidate that writes its .cpp/.cu file again in __init__, as real
    model output does, gives it a new mtime in every phase)."""
    sources = {os.path.realpath(s) for s in sources}
    out = _run(["ninja", "-t", "deps"], cwd=build_directory)
    files = set()
    for line in out.splitlines():
        if line.startswith("    "):
            files.add(line.strip())
    deps = []
    for p in sorted(files):
        full = p if os.path.isabs(p) else os.path.join(build_directory, p)
        if full.startswith(os.path.abspath(build_directory) + os.sep) or os.path.realpath(full) in sources:
            continue  # the generated sources and the given ones: covered by the key
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


def compiler_lines(text, limit=2000):
    """The lines of a failed build's output that say why (error lines and their context), or its tail."""
    lines = str(text).splitlines()
    picked = []
    for i, line in enumerate(lines):  # the compiler's diagnostics, each with the source line it quotes
        if re.search(r"error:|undefined reference|undefined symbol", line, re.I):
            picked += lines[i:i + 2]
    out = "\n".join(picked[:20] if picked else lines[-20:])
    return out[:limit]


def watch_build_attempts():
    """Records in `build_attempts` each _jit_compile call (what load_inline and load run): the
    extension's name, whether it built (with the compiler's error lines when it did not), and its
    seconds (a cache hit's copy and load included)."""
    from torch.utils import cpp_extension as ce

    original = ce._jit_compile
    if getattr(original, "kbrun_watched", False):
        return

    @functools.wraps(original)  # add_backend_flags binds arguments by the original's signature
    def jit_compile(name, *args, **kwargs):
        record = {"name": str(name), "ok": False}
        build_attempts.append(record)
        t = time.perf_counter()
        try:
            module = original(name, *args, **kwargs)
        except BaseException as exc:
            record["error"] = compiler_lines(exc)
            raise
        finally:
            record["seconds"] = round(time.perf_counter() - t, 3)
        record["ok"] = True
        return module

    jit_compile.kbrun_watched = True
    ce._jit_compile = jit_compile


def watch_loads():
    """Records in `loaded_libraries` each library torch's extension loader loads (in both
    compile modes, built now, cached, or reused from the compile phase), and in
    `build_attempts` each build the candidate asked for."""
    from torch.utils import cpp_extension as ce

    watch_build_attempts()
    original = ce._import_module_from_library
    if getattr(original, "kbrun_watched", False):
        return
    lib_ext = getattr(ce, "LIB_EXT", ".so")

    def import_module_from_library(module_name, path, is_python_module, *args, **kwargs):
        module = original(module_name, path, is_python_module, *args, **kwargs)
        library = os.path.realpath(os.path.join(path, module_name + lib_ext))
        try:
            with open(library, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        except OSError:
            return module
        loaded_libraries.append({"name": module_name, "path": library, "sha256": digest})
        return module

    import_module_from_library.kbrun_watched = True
    ce._import_module_from_library = import_module_from_library


def add_backend_flags(backend):
    """Adds the backend's flags (from the supervisor's request) to every extension the
    candidate builds with load_inline or load, in both compile modes.

    It wraps torch's _jit_compile, upstream of the build step, so the flags are part of
    the build arguments: torch's own version check and this module's cache key see them.
    Every build mode sets this up first, so it also starts watch_loads().
    """
    watch_loads()
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
    # Builds that failed with compiler diagnostics, in this evaluation's private dir (both phases
    # see it; never the shared cache): the same build asked for again (the run phase imports and
    # constructs the candidate again) fails at once with the same lines instead of compiling again
    # on the GPU lane.
    private = os.environ.get("TORCH_EXTENSIONS_DIR")
    failed_root = os.path.join(private, "kbrun-failed") if private else None

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
        record = {"name": name, "key": key, "cache": "miss", "key_s": round(time.perf_counter() - t, 3)}
        builds.append(record)
        failed_path = os.path.join(failed_root, key + ".txt") if failed_root else None
        if failed_path and os.path.exists(failed_path):
            with open(failed_path, errors="replace") as f:
                output = f.read()
            record.update(cache="failed_before", error=compiler_lines(output),
                          seconds=round(time.perf_counter() - t, 3))
            raise RuntimeError("Error building extension '%s' (failed earlier in this evaluation, not built again): "
                               "%s" % (name, output))
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
        except BaseException as exc:  # a failed build: its cost and the compiler's lines are on record
            record["error"] = compiler_lines(exc)
            if failed_path and re.search(r"error:", str(exc)):  # a compiler's verdict, not a kill or a timeout
                try:
                    os.makedirs(failed_root, exist_ok=True)
                    with open(failed_path, "w") as f:
                        f.write(str(exc)[-20000:])
                except OSError:
                    pass
            raise
        finally:
            ce._run_ninja_build = original_run
            record["seconds"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        try:
            tmp = tempfile.mkdtemp(prefix=".tmp-", dir=ext_root)
            shutil.copy2(os.path.join(build_directory, lib_name), os.path.join(tmp, lib_name))
            with open(os.path.join(tmp, "manifest.json"), "w") as f:
                json.dump({"name": name, "deps": _deps(build_directory, a["sources"]), "build": record,
                           "created": time.time()}, f)
            try:
                os.rename(tmp, entry)
            except OSError:  # another batch stored the same build first
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError as exc:  # a cache that cannot be written costs speed, not results
            record["store_error"] = str(exc)
        record["store_s"] = round(time.perf_counter() - t, 3)
        return None

    ce._write_ninja_file_and_build_library = build_library
