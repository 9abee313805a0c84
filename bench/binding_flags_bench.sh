#!/usr/bin/env bash
# What the binding file (main.cpp: torch/extension.h, the candidate's cpp_sources and the
# PYBIND11_MODULE that load_inline writes) costs to compile, and which build choices change
# that: precompiled headers, -O levels, -pipe, a lighter header, clang, the linker.
# Rows: torch's own build; kbrun's PCH of torch/extension.h (build format 1); the same
# for an empty file (the floor of that header); -pipe; -O1..-O3 (torch gives no -O: g++'s
# -O0); kbrun's binding file with torch/python.h (format 2); clang++ with a PCH whose
# templates are instantiated once (-fpch-instantiate-templates), where clang++ exists.
# Runs anywhere with torch and a C++ compiler (nvcc only for the link rows):
#   bash bench/binding_flags_bench.sh [rounds]        (default 3; table on stdout and in $OUT)
# main.cpp and build.ninja come from torch's own load_inline (its build step is skipped),
# and every row times the exact `compile` command of that ninja file, with the variant's
# changes. Rows run interleaved, round after round (the order rotates), so load from other
# work spreads over all of them; medians of wall and CPU (user+sys) seconds are reported.
set -uo pipefail
ROUNDS=${1:-3}
PY=${PYTHON:-python3}
W=${BENCH_DIR:-/tmp/kbrun-binding-bench}
FINAL=${OUT:-$W}
rm -rf "$W"; mkdir -p "$W" "$FINAL"
export TORCH_EXTENSIONS_DIR=$W/ext
exec "$PY" - "$W" "$ROUNDS" "$FINAL" <<'PY'
import os, re, shlex, shutil, statistics, subprocess, sys, time
W, ROUNDS, FINAL = sys.argv[1], int(sys.argv[2]), sys.argv[3]
import torch
from torch.utils import cpp_extension as ce

os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "9.0" if torch.__version__ >= "2" else "8.6")
CUDA = r'''
__global__ void relu_kernel(const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}
extern "C" void launch_relu(const float* x, float* y, int n) {
  relu_kernel<<<(n + 255) / 256, 256>>>(x, y, n);
}
'''
CPP = r'''
extern "C" void launch_relu(const float* x, float* y, int n);
torch::Tensor relu_forward(torch::Tensor x) {
  TORCH_CHECK(x.is_cuda(), "x must be a CUDA tensor");
  auto xc = x.contiguous();
  auto y = torch::empty_like(xc);
  launch_relu(xc.data_ptr<float>(), y.data_ptr<float>(), (int)xc.numel());
  return y;
}
'''
# torch writes the sources and build.ninja; the build itself is skipped.
ce._run_ninja_build = lambda *a, **k: None
try:
    ce.load_inline(name="relu_split", cpp_sources=CPP, cuda_sources=CUDA, functions=["relu_forward"],
                   with_cuda=True, verbose=False)
except Exception:
    pass  # the library does not exist: expected
ext = os.path.join(W, "ext", "relu_split")
ninja = open(os.path.join(ext, "build.ninja")).read()
var = lambda n: (re.search(r"^%s = (.*)$" % n, ninja, re.M) or [None, ""])[1]
cxx, cflags, post = var("cxx"), var("cflags"), var("post_cflags")
main = os.path.join(ext, "main.cpp")
os.chdir(W)
shutil.copy(main, "main.cpp")
shutil.copy(os.path.join(ext, "build.ninja"), "build.ninja")
src = open("main.cpp").read()
# kbrun's light binding file (kbrun_build.lighten_binding): torch/python.h by -include.
open("main_light.cpp", "w").write('#line 2 "%s"\n' % main + src.split("\n", 1)[1])
open("empty.cpp", "w").write("")
print("torch %s, %s; cflags of main.cpp: %s %s" % (torch.__version__, subprocess.run(
    [cxx, "--version"], capture_output=True, text=True).stdout.split("\n")[0], cflags, post), flush=True)
pch_flags = re.sub(r"\s-DTORCH_EXTENSION_NAME=\S+", "", " " + cflags)
clang = shutil.which("clang++") or next((shutil.which("clang++-%d" % v) for v in range(30, 9, -1)
                                         if shutil.which("clang++-%d" % v)), None)
ONLY = os.environ.get("BENCH_ROWS")  # a regex: only the rows whose name matches (and their PCHs)


def sh(cmd):
    """Runs a shell command: (wall s, output, rc)."""
    t = time.perf_counter()
    p = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return time.perf_counter() - t, p.stdout, p.returncode


def cpu_of(cmd):
    """(wall s, CPU s of the command and its children, rc, output)."""
    r0 = os.times()
    wall, out, rc = sh(cmd)
    r1 = os.times()
    return wall, (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system), rc, out


# PCHs: name -> (compiler, header text, extra flags).
pchs = {"full": (cxx, "#include <torch/extension.h>\n", ""),
        "full_O1": (cxx, "#include <torch/extension.h>\n", " -O1"),
        "full_O2": (cxx, "#include <torch/extension.h>\n", " -O2"),
        "full_O3": (cxx, "#include <torch/extension.h>\n", " -O3"),
        "python_h": (cxx, "#include <torch/python.h>\n", ""),
        "clang_full": (clang, "#include <torch/extension.h>\n", " -fpch-instantiate-templates"),
        "clang_python_h": (clang, "#include <torch/python.h>\n", " -fpch-instantiate-templates")}


def compile_cmd(cc=None, pch=None, src="main.cpp", extra="", out="main.o"):
    inc = " -include %s -Winvalid-pch" % os.path.join(W, "pch_" + pch, "h.h") if pch else ""
    return ("%s -MMD -MF %s.d%s %s%s -c %s -o %s %s" % (cc or cxx, out, inc, cflags, extra, src, out, post), pch)


# (name, (command, PCH it uses)); the binding file's first line is torch's `#include <torch/extension.h>`.
rows = [("plain (torch: no PCH)", compile_cmd()),
        ("PCH extension.h (kbrun, format 1)", compile_cmd(pch="full")),
        ("PCH, empty TU (floor)", compile_cmd(pch="full", src="empty.cpp", out="empty.o")),
        ("PCH + -pipe", compile_cmd(pch="full", extra=" -pipe")),
        ("PCH -O1", compile_cmd(pch="full_O1", extra=" -O1")),
        ("PCH -O2", compile_cmd(pch="full_O2", extra=" -O2")),
        ("PCH -O3", compile_cmd(pch="full_O3", extra=" -O3")),
        ("PCH torch/python.h (kbrun, format 2)", compile_cmd(pch="python_h", src="main_light.cpp"))]
if clang:
    rows += [("clang++ PCH extension.h, instantiated", compile_cmd(cc=clang, pch="clang_full", out="main_c.o")),
             ("clang++ PCH python.h, instantiated", compile_cmd(cc=clang, pch="clang_python_h", src="main_light.cpp",
                                                               out="main_cl.o"))]
if ONLY:
    rows = [r for r in rows if re.search(ONLY, r[0])]
names = sorted({pch for _, (_, pch) in rows if pch})
jobs = max(1, min(len(names), (os.cpu_count() or 1) // 2))  # ~2 GB of memory each
t = time.perf_counter()
for i in range(0, len(names), jobs):
    procs = {}
    for name in names[i:i + jobs]:
        cc, text, extra = pchs[name]
        os.makedirs("pch_" + name, exist_ok=True)
        h = os.path.join(W, "pch_" + name, "h.h")
        open(h, "w").write(text)
        suffix = ".pch" if cc == clang else ".gch"
        procs[name] = subprocess.Popen("%s -x c++-header %s%s -o %s%s %s %s" % (
            cc, pch_flags, extra, h, suffix, h, post), shell=True, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
    for name, p in procs.items():
        out = p.communicate()[0]
        if p.returncode:
            print("PCH %s failed: %s" % (name, out[-800:]))
print("%d PCHs built in %.1f s (%d at a time)" % (len(names), time.perf_counter() - t, jobs), flush=True)
rows = [(name, cmd) for name, (cmd, _) in rows]
times = {name: [] for name, _ in rows}
cpus = {name: [] for name, _ in rows}
for r in range(ROUNDS):
    order = rows[r % len(rows):] + rows[:r % len(rows)]
    for name, cmd in order:
        wall, cpu, rc, out = cpu_of(cmd)
        if rc or "pch" in out.lower():
            print("%s: rc %d %s" % (name, rc, out[-600:]))
            continue
        times[name].append(wall)
        cpus[name].append(cpu)
    print("round %d done" % (r + 1), flush=True)

# The link rows: the CUDA object (no torch headers, as kbrun compiles it) and each linker.
link_rows = []
nvcc = os.path.join(ce.CUDA_HOME or "/usr/local/cuda", "bin", "nvcc")
cuda_cflags, ldflags = var("cuda_cflags"), var("ldflags")
open("cuda.cu", "w").write(CUDA)
if os.path.exists(nvcc) and sh("%s %s -c cuda.cu -o cuda.cuda.o %s" % (
        nvcc, cuda_cflags.replace("-std=c++14", "-std=c++17"), var("cuda_post_cflags")))[2] == 0:
    for ld in ("bfd", "gold", "lld"):
        if sh("%s -fuse-ld=%s -Wl,--version" % (cxx, ld))[2] == 0:
            link_rows.append(("link, -fuse-ld=%s" % ld, "%s main.o cuda.cuda.o %s -fuse-ld=%s -o relu_%s.so" % (
                cxx, ldflags, ld, ld)))
    for name, _ in link_rows:
        times[name], cpus[name] = [], []
    for r in range(ROUNDS):
        for name, cmd in link_rows:
            wall, cpu, rc, out = cpu_of(cmd)
            if rc:
                print("%s: rc %d %s" % (name, rc, out[-600:]))
                continue
            times[name].append(wall)
            cpus[name].append(cpu)

lines = ["%-42s %8s %8s %3s" % ("variant (binding file main.cpp)", "wall s", "cpu s", "n")]
for name, _ in rows + link_rows:
    if times[name]:
        lines.append("%-42s %8.2f %8.2f %3d" % (name, statistics.median(times[name]),
                                                   statistics.median(cpus[name]), len(times[name])))
    else:
        lines.append("%-42s   failed" % name)
table = "\n".join(lines)
print(table)
open(os.path.join(FINAL, "binding_flags_table.txt"), "w").write(table + "\n")
PY
