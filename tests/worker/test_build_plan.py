"""kbrun_eval.build's choice of headers for a mono-layout CUDA file, made before compiling, and what a build
then runs: one ninja run on the chosen path, no second build after a link failure, no precompiled
header built in front of a build whose CUDA file parses torch's headers. Without compilers: ninja is
a stand-in that records what it was asked to build. Run: /usr/bin/python3 -m pytest -q tests/worker
"""
import os
import re
import threading
import time

import pytest

from kbrun_eval import build as b  # src/eval/worker on sys.path by conftest.py

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PREFIX = "#include <torch/types.h>\n#include <cuda.h>\n#include <cuda_runtime.h>\n"


def fixture_cuda(name):
    with open(os.path.join(ROOT, "tests", "candidates", name)) as f:
        return PREFIX + re.search(r'cuda_source = r"""(.*?)"""', f.read(), re.S).group(1)


def unsplit(text):
    """The file with a use of its kernel that kbrun_eval.cuda_split declines (its address): the header plan
    alone decides how it builds."""
    return text + "void kb_keep_whole() { (void)&scale_add_kernel<float>; }\n"


def test_fixtures_take_the_planned_paths():
    plan = b.plan_cuda_headers(fixture_cuda("mono_layout_light.py"))
    assert plan[1:] == ("torch_types_only", "torch/types.h suffices")
    text, mode, reason = b.plan_cuda_headers(fixture_cuda("mono_layout_pybind.py"))
    assert mode == "as_written" and "PYBIND11_MODULE" in reason
    assert text == fixture_cuda("mono_layout_pybind.py")


FN = "torch::Tensor f(torch::Tensor x) {\n"


@pytest.mark.parametrize("code, mode", [
    ("#include <torch/extension.h>\n// PYBIND11_MODULE in a comment does not count\n"
     "torch::Tensor f(torch::Tensor x) { return x; }\n", "torch_types_only"),
    ("#include <torch/extension.h>\nnamespace F = torch::nn::functional;\n", "as_written"),
    ("#include <torch/extension.h>\nusing namespace torch;\n", "as_written"),
    ("#include <torch/extension.h>\nauto d = torch::kBFloat16;\n", "torch_types_only"),
    ("#include <torch/extension.h>\nauto r = torch::kMean;\n", "as_written"),
    ("#include <torch/extension.h>\nPyObject* p;\n", "as_written"),
    ("__global__ void k(float* y) { y[0] = std::fmax(std::exp(y[0]), 0.f); }\n", "no_torch_headers"),
    ("#include <string>\nstd::string s;\n", "no_torch_headers"),
    ("std::string s;\n", "as_written"),
    # Tensors, factories, checks, dispatch, dtypes, data_ptr, ATen functions, c10 types.
    ("#include <torch/extension.h>\n" + FN + "  TORCH_CHECK(x.is_cuda(), \"cuda\"); auto y = torch::empty_like(x);\n"
     "  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), \"f\", [&] { y.data_ptr<scalar_t>(); });\n"
     "  auto z = torch::zeros({2}, x.options().dtype(torch::kFloat)); c10::Half h; (void)h;\n"
     "  std::vector<int64_t> s(x.sizes().begin(), x.sizes().end()); return at::relu(y); }\n", "torch_types_only"),
    ("#include <torch/extension.h>\n#include <ATen/cuda/CUDAContext.h>\n" + FN +
     "  auto s = at::cuda::getCurrentCUDAStream(); C10_CUDA_KERNEL_LAUNCH_CHECK(); return x; }\n", "torch_types_only"),
    ("__global__ void k(float* y) { y[0] = std::max(std::sqrt(y[0]), 0.f); }\n", "no_torch_headers"),
    ("#include <vector>\nvoid h() { std::vector<int> v; }\n", "no_torch_headers"),
    ("#include <torch/extension.h>\n" + FN +
     "return x; }\nPYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def(\"f\", &f); }\n", "as_written"),
    ("#include <torch/extension.h>\npy::object g(py::object o) { return o; }\n", "as_written"),
    ("#include <torch/extension.h>\n" + FN + "return torch::nn::functional::relu(x); }\n", "as_written"),
    ("#include <torch/extension.h>\n" + FN + "auto s = at::cuda::getCurrentCUDAStream(); return x; }\n", "as_written"),
    ("#include <torch/extension.h>\nvoid g(cudaError_t e) { AT_CUDA_CHECK(e); }\n", "as_written"),
    ("#include <torch/extension.h>\nTORCH_LIBRARY(kb, m) {}\n", "as_written"),
    ("void h() { std::vector<int> v; }\n", "as_written"),
    (FN + "return x; }\n", "as_written"),
])
def test_plan(code, mode):
    text, got, reason = b.plan_cuda_headers(PREFIX + code)
    assert got == mode, reason
    assert text.count("\n") == (PREFIX + code).count("\n")


@pytest.mark.parametrize("code, named", [
    ("#include <torch/extension.h>\n" + FN + "return x; }\nPYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {}\n",
     "PYBIND11_MODULE"),
    ("#include <torch/extension.h>\n" + FN + "auto r = torch::kSum; (void)r; return x; }\n", "torch::kSum"),
    ("#include <torch/extension.h>\n" + FN + "std::cout << x.sizes(); return x; }\n", "std::cout"),
])
def test_the_reason_names_what_keeps_the_file_as_written(code, named):
    _, mode, reason = b.plan_cuda_headers(PREFIX + code)
    assert mode == "as_written" and named in reason, reason


class FakeNinja:
    """Stands in for torch's _run_ninja_build: logs each compile the ninja file asks for as built
    (ninja's log), except those whose source matches `fail_source`; then fails if asked to."""

    def __init__(self, fail_source=None, link_fails=False):
        self.fail_source, self.link_fails, self.runs = fail_source, link_fails, []

    def __call__(self, build_directory, verbose, error_prefix):
        text = open(os.path.join(build_directory, "build.ninja")).read()
        self.runs.append(text)
        failed = False
        targets = (re.findall(r"^default (.*)$", text, re.M) or [""])[0].split()
        with open(os.path.join(build_directory, ".ninja_log"), "a") as log:
            for obj, src in re.findall(r"^build (\S+): (?:cuda_)?compile (\S+)$", text, re.M):
                if any(t.endswith(".o") for t in targets) and obj not in targets:
                    continue
                if self.fail_source and re.search(self.fail_source, open(src).read()):
                    failed = True
                    continue
                open(os.path.join(build_directory, obj), "w").close()
                log.write("0\t10\t0\t%s\tabc\n" % obj)
        if failed:
            raise RuntimeError(error_prefix + ": cuda.cu error: identifier undefined")
        if self.link_fails:
            raise RuntimeError(error_prefix + ": multiple definition of `PyInit_ext'")


def build_dir(tmp_path, cuda_text):
    d = tmp_path / "build"
    d.mkdir()
    (d / "main.cpp").write_text("#include <torch/extension.h>\ntorch::Tensor f(torch::Tensor x);\n")
    (d / "cuda.cu").write_text(cuda_text)
    (d / ".ninja_log").write_text("# ninja log v5\n")
    (d / "build.ninja").write_text(
        "cxx = c++\ncflags = -DTORCH_EXTENSION_NAME=ext -O0\npost_cflags = \n"
        "build main.o: compile %s\nbuild cuda.cuda.o: cuda_compile %s\nbuild ext.so: link main.o cuda.cuda.o\n"
        "default ext.so\n"
        % (d / "main.cpp", d / "cuda.cu"))
    return str(d)


@pytest.mark.parametrize("fixture, mode", [("mono_layout_light.py", "torch_types_only"),
                                           ("mono_layout_pybind.py", "as_written")])
def test_one_ninja_run_on_the_planned_path_when_not_split(tmp_path, fixture, mode):
    d = build_dir(tmp_path, unsplit(fixture_cuda(fixture)))
    ninja, record = FakeNinja(), {}
    b.fast_ninja_build(None, ninja, str(tmp_path / "cache"), True, record)(d, False, "Error building")
    assert len(ninja.runs) == 1 and record["ninja_runs"] == 1 and "fallback" not in record
    assert record["cuda_headers"] == [mode]
    assert record["path"] == "light"  # main.cpp gets torch/python.h either way
    # nvcc parses torch's headers in both: no precompiled header is built in front of the build.
    assert record["pch"] == "skipped" and not os.path.exists(tmp_path / "cache" / "pch" / "x")
    assert ("cuda.kbrun-light.cu" in ninja.runs[0]) == (mode != "as_written")


def test_link_failure_is_not_built_again(tmp_path):
    d = build_dir(tmp_path, unsplit(fixture_cuda("mono_layout_light.py")))
    ninja, record = FakeNinja(link_fails=True), {}
    with pytest.raises(RuntimeError, match="multiple definition"):
        b.fast_ninja_build(None, ninja, str(tmp_path / "cache"), False, record)(d, False, "Error building")
    assert len(ninja.runs) == 1 and record["ninja_runs"] == 1 and "fallback" not in record


def test_a_light_file_that_fails_anyway_is_built_as_written(tmp_path):
    # The safety net stays (a verdict must not depend on kbrun's header choice); the plan makes it rare.
    d = build_dir(tmp_path, unsplit(fixture_cuda("mono_layout_light.py")))
    ninja, record = FakeNinja(fail_source=r"#include <torch/types.h>\n#include <cuda_runtime.h>"), {}
    b.fast_ninja_build(None, ninja, str(tmp_path / "cache"), False, record)(d, False, "Error building")
    assert len(ninja.runs) == 2 and record["ninja_runs"] == 2
    assert record["path"] == "as_written_after_light_failed" and "cuda.cuda.o" in record["fallback"]
    assert "cuda.kbrun-light.cu" not in ninja.runs[1]


def test_a_light_file_with_its_own_error_is_not_built_again(tmp_path):
    # An error no lighter header causes (CUDA-L1 level2/91: a redeclared extern __shared__ array) fails as
    # written too: reported at once, one ninja run.
    d = build_dir(tmp_path, unsplit(fixture_cuda("mono_layout_light.py")))
    ninja, record = FakeNinja(fail_source=r"#include <torch/types.h>\n#include <cuda_runtime.h>"), {}

    def own_error(build_directory, verbose, error_prefix):
        try:
            ninja(build_directory, verbose, error_prefix)
        except RuntimeError:
            raise RuntimeError('cuda.cu(86): error: declaration is incompatible with previous "shared_mem"\n'
                               '1 error detected in the compilation of "cuda.cu".')

    with pytest.raises(RuntimeError, match="incompatible"):
        b.fast_ninja_build(None, own_error, str(tmp_path / "cache"), False, record)(d, False, "Error building")
    assert len(ninja.runs) == 1 and record["ninja_runs"] == 1 and record["light_error_kept"]
    assert "fallback" not in record and record["path"] == "light"


def undeclared_in_binding(tmp_path, name):
    """A build whose binding file binds `fused` and fails with "'<name>' was not declared"."""
    d = build_dir(tmp_path, unsplit(fixture_cuda("mono_layout_light.py")))
    with open(os.path.join(d, "main.cpp"), "a") as f:
        f.write('PYBIND11_MODULE(ext, m) {\nm.def("fused", torch::wrap_pybind_function(fused), "fused");\n}\n')
    ninja = FakeNinja(fail_source=r"m\.def")

    def run(build_directory, verbose, error_prefix):
        try:
            ninja(build_directory, verbose, error_prefix)
        except RuntimeError:
            raise RuntimeError("main.cpp: In function 'void pybind11_init_ext(pybind11::module_&)':\n"
                               "main.cpp:5:43: error: \u2018%s\u2019 was not declared in this scope; did you "
                               "mean \u2018PyInit_ext\u2019?\nninja: build stopped: subcommand failed." % name)
    return d, ninja, run


def test_a_bound_function_its_sources_never_declare_is_not_built_again(tmp_path):
    # CUDA-L1 level2/13, 20, 24, 27, 30, 32: `functions` names a function cpp_sources does not declare. The
    # binding's m.def line fails with any header: one ninja run, the compiler's lines reported.
    d, ninja, run = undeclared_in_binding(tmp_path, "fused")
    record = {}
    with pytest.raises(RuntimeError, match="was not declared"):
        b.fast_ninja_build(None, run, str(tmp_path / "cache"), False, record)(d, False, "Error")
    assert len(ninja.runs) == 1 and record["light_error_kept"] and "fallback" not in record


def test_an_undeclared_name_the_binding_does_not_bind_is_built_again_as_written(tmp_path):
    # 'torch' not declared may be the lighter header's doing.
    d, ninja, run = undeclared_in_binding(tmp_path, "torch")
    record = {}
    with pytest.raises(RuntimeError):
        b.fast_ninja_build(None, run, str(tmp_path / "cache"), False, record)(d, False, "Error")
    assert len(ninja.runs) == 2 and record["path"] == "as_written_after_light_failed"


def test_a_split_file_builds_its_host_object_then_its_kernels_with_their_instantiations(tmp_path, monkeypatch):
    # The fixture's template kernel runs under AT_DISPATCH_FLOATING_TYPES: the host object names
    # scale_add_kernel<float> and <double>, and the kernel file is compiled for both.
    d = build_dir(tmp_path, fixture_cuda("mono_layout_light.py"))
    symbols = ["void scale_add_kernel<%s>(%s const*, %s const*, %s*, %s, long)" % ((t,) * 5)
               for t in ("float", "double")]
    monkeypatch.setattr(b.cuda_split, "undefined_symbols", lambda obj: symbols + ["cudaLaunchKernelExC"])
    ninja, record = FakeNinja(), {}
    b.fast_ninja_build(None, ninja, str(tmp_path / "cache"), False, record)(d, False, "Error building")
    assert record["cuda_headers"] == ["split"] and record["ninja_runs"] == 1 and "fallback" not in record
    first, second = ninja.runs
    assert "\ndefault cuda.cuda.host.o main.o\n" in first
    assert re.search(r"^build cuda\.cuda\.host\.o: compile \S+cuda\.kbrun-host\.cpp$", second, re.M)
    assert re.search(r"^build cuda\.cuda\.o: cuda_compile \S+cuda\.kbrun-light\.cu$", second, re.M)
    assert "\nbuild ext.so: link main.o cuda.cuda.o cuda.cuda.host.o\n" in second and "\ndefault ext.so\n" in second
    kernels = open(os.path.join(d, "cuda.kbrun-light.cu")).read()
    assert ("template __global__ void scale_add_kernel<float>(float const*, float const*, float*, float, long);"
            in kernels)
    assert "torch" not in kernels.replace("#line", "")


def test_a_split_without_template_kernels_is_one_ninja_run(tmp_path):
    code = ("#include <torch/extension.h>\n__global__ void k(float* y) { y[0] = 1.f; }\n"
            "torch::Tensor f(torch::Tensor x) { k<<<1, 1>>>(x.data_ptr<float>()); return x; }\n")
    d = build_dir(tmp_path, PREFIX + code)
    ninja, record = FakeNinja(), {}
    b.fast_ninja_build(None, ninja, str(tmp_path / "cache"), False, record)(d, False, "Error building")
    assert len(ninja.runs) == 1 and record["cuda_headers"] == ["split"] and "cuda.cuda.host.o" in ninja.runs[0]


def test_the_binding_files_and_the_host_files_precompiled_headers_are_built_at_once(tmp_path, monkeypatch):
    # On a cold cache each header is 20-35 s of g++ (H200): one after the other, a split build waited for both.
    code = ("#include <torch/extension.h>\n__global__ void k(float* y) { y[0] = 1.f; }\n"
            "torch::Tensor f(torch::Tensor x) { k<<<1, 1>>>(x.data_ptr<float>()); return x; }\n")
    d = build_dir(tmp_path, PREFIX + code)
    spans, lock = [], threading.Lock()

    def slow_pch(cache_dir, ninja_text, record, compiler, header_text=b.PCH_HEADER, only_existing=False):
        start = time.perf_counter()
        time.sleep(0.5)
        with lock:
            spans.append((start, time.perf_counter()))
        record["pch"] = "built"
        return "/pch/%d/kbrun_pch.h" % len(spans)

    monkeypatch.setattr(b, "ensure_pch", slow_pch)
    monkeypatch.setattr(b, "toolchain", lambda ce, hip: "c++")
    ninja, record = FakeNinja(), {}
    b.fast_ninja_build(None, ninja, str(tmp_path / "cache"), True, record)(d, False, "Error building")
    assert record["cuda_headers"] == ["split"] and record["pch"] == "built" and record["split_pch"] == ["built"]
    (s1, e1), (s2, e2) = spans
    assert s2 < e1 and s1 < e2  # overlapping
    assert len(re.findall(r"-include /pch/\d/kbrun_pch.h -Winvalid-pch", ninja.runs[0])) == 2


def test_a_split_whose_host_file_fails_is_built_as_written(tmp_path):
    # The split is kbrun's doing: any failure of its files is built again as written, whose errors count.
    d = build_dir(tmp_path, fixture_cuda("mono_layout_light.py"))
    ninja, record = FakeNinja(fail_source=r"kbrun_launch_kernel\(&"), {}
    b.fast_ninja_build(None, ninja, str(tmp_path / "cache"), False, record)(d, False, "Error building")
    assert len(ninja.runs) == 2 and record["ninja_runs"] == 2
    assert record["path"] == "as_written_after_light_failed" and "cuda.cuda.o" in record["fallback"]
    assert "host.o" not in ninja.runs[1] and re.search(r"cuda_compile \S+/cuda\.cu$", ninja.runs[1], re.M)


def test_declined_splits_are_recorded(tmp_path):
    d = build_dir(tmp_path, unsplit(fixture_cuda("mono_layout_light.py")))
    record = {}
    b.fast_ninja_build(None, FakeNinja(), str(tmp_path / "cache"), False, record)(d, False, "Error building")
    assert record["cuda_headers"] == ["torch_types_only"]
    assert record["cuda_split_declined"] == ["host code uses kernel scale_add_kernel other than launching it"]


def test_a_binding_error_with_a_split_is_reported_once(tmp_path):
    # CUDA-L1 level2/11, 21, 47: PYBIND11_MODULE in cpp_sources beside functions=[...]. ninja names the
    # binding's object in its FAILED line and stops the host file's compile: the split did not fail.
    d = build_dir(tmp_path, fixture_cuda("mono_layout_light.py"))
    ninja, record = FakeNinja(fail_source=r"torch::Tensor f\("), {}

    def run(build_directory, verbose, error_prefix):
        try:
            ninja(build_directory, verbose, error_prefix)
        except RuntimeError:
            raise RuntimeError(error_prefix + ": [1/2] c++ main.cpp\nFAILED: main.o\nmain.cpp:36:1: error: "
                               "redefinition of 'void pybind11_init_ext(pybind11::module_&)'\n"
                               "ninja: build stopped: subcommand failed.")

    with pytest.raises(RuntimeError, match="redefinition"):
        b.fast_ninja_build(None, run, str(tmp_path / "cache"), False, record)(d, False, "Error building")
    assert len(ninja.runs) == 1 and record["ninja_runs"] == 1 and "fallback" not in record
    assert record["cuda_headers"] == ["split"] and record["light_error_kept"]


def test_failed_outputs_are_read_from_ninjas_lines():
    named = b._failed_outputs("x\nFAILED: main.o \nFAILED: [code=1] cuda.cuda.host.o\n")
    assert named == {"main.o", "cuda.cuda.host.o"}
    assert b._failed_outputs("error: something") is None


def test_command_lines_are_not_errors():
    # torch's message starts with ninja's command lines, whose flags (-D__CUDA_NO_HALF_CONVERSIONS__) once
    # read as a "conversion" error: 20 second builds of 35 corpus builds on an H200.
    output = ("Error building extension 'ext': [1/3] nvcc -D__CUDA_NO_HALF_CONVERSIONS__ -c cuda.cu\nFAILED: main.o\n"
              "c++ -MMD -c main.cpp -o main.o\nmain.cpp:4:63: error: \u2018f\u2019 was not declared in this scope\n"
              "ninja: build stopped: subcommand failed.\n")
    assert not b._may_be_the_header(output, {"f"})
    assert b._diagnostics(output) == ["main.cpp:4:63: error: \u2018f\u2019 was not declared in this scope"]
    assert b._diagnostics("cuda.cu(86): error: declaration is incompatible\ncollect2: error: ld returned 1 exit status")


def test_a_conversion_between_types_torch_types_declares_is_the_files_own():
    # CUDA-L1 level2/4_ (torch/types.h): AT_DISPATCH on the removed Tensor::type() was built again on an H200.
    nvcc = ('/b/cuda.kbrun-light.cu(194): error: no suitable conversion function from '
            '"const at::DeprecatedTypeProperties" to "c10::ScalarType" exists')
    gcc = ("/b/main.cpp:9:5: error: cannot convert \u2018const at::DeprecatedTypeProperties\u2019 "
           "to \u2018c10::ScalarType\u2019")
    assert not b._may_be_the_header(nvcc) and not b._may_be_the_header(gcc)
    # A type the lighter header may lack keeps the second build.
    assert b._may_be_the_header('/b/x.cu(3): error: no suitable conversion function from "torch::nn::Linear" to "int"')
    assert b._may_be_the_header('/b/x.cu(3): error: no suitable conversion function from "Foo" to "c10::ScalarType"')


def test_a_host_files_own_errors_are_told_from_the_splits():
    text = fixture_cuda("mono_layout_light.py")
    src = "/b/cuda.cu"
    split = b._SplitBuild.__new__(b._SplitBuild)
    split.src, split.parts = src, b.cuda_split.split(text, src, b.PCH_HEADER)
    dispatch = next(i for i, line in enumerate(text.split("\n"), 1) if "AT_DISPATCH" in line)
    launch = next(i for i, line in enumerate(text.split("\n"), 1) if "<<<" in line)
    assert launch in split.parts.launch_lines and dispatch not in split.parts.launch_lines
    own = "%s:%d:5: error: cannot convert \u2018const at::DeprecatedTypeProperties\u2019 to \u2018c10::ScalarType\u2019"
    own %= (src, dispatch)
    assert b._split_errors_are_own("FAILED: cuda.cuda.host.o\n" + own, split)
    assert not b._split_errors_are_own("%s:%d:13: error: cannot convert x" % (src, launch), split)
    assert not b._split_errors_are_own("%s:%d:5: error: \u2018__half\u2019 was not declared" % (src, dispatch), split)
    assert not b._split_errors_are_own("/b/cuda.kbrun-host.cpp:14:3: error: cannot convert x", split)
    assert not b._split_errors_are_own("ninja: build stopped", split)


def test_each_failed_file_is_judged_on_its_own_compilers_lines():
    # CUDA-L1 level2/11, 21, 47: the binding redefines its module and the split's host file uses the removed
    # Tensor::type() in AT_DISPATCH; both errors are the candidate's own: no second build.
    text = fixture_cuda("mono_layout_light.py")
    split = b._SplitBuild.__new__(b._SplitBuild)
    split.src, split.parts, split.failed = "/b/cuda.cu", b.cuda_split.split(text, "/b/cuda.cu", b.PCH_HEADER), False
    dispatch = next(i for i, line in enumerate(text.split("\n"), 1) if "AT_DISPATCH" in line)
    binding = "/b/main.cpp:36:1: error: redefinition of \u2018void pybind11_init_ext(pybind11::module_&)\u2019"
    host = "/b/cuda.cu:%d:5: error: cannot convert \u2018const at::DeprecatedTypeProperties\u2019" % dispatch
    nvcc_flags = "Error building extension 'ext': [1/3] nvcc -D__CUDA_NO_HALF_CONVERSIONS__ -c /b/cuda.kbrun-light.cu\n"
    splits = {"cuda.cuda.o": split}
    args = (["main.o", "cuda.cuda.o"], "main.o", splits, ["cuda.cuda.o"], set())
    assert b._errors_are_own(nvcc_flags + "FAILED: main.o\n%s\nFAILED: cuda.cuda.host.o\n%s\n" % (binding, host), *args)
    undeclared = "/b/cuda.cu:%d:5: error: \u2018__half\u2019 was not declared in this scope" % dispatch
    assert not b._errors_are_own("%s\n%s\n" % (binding, undeclared), *args)
    torch_macro = "/b/cuda.cu:%d:5: error: \u2018AT_CUDA_CHECK\u2019 was not declared in this scope" % dispatch
    assert b._errors_are_own("%s\n%s\n" % (binding, torch_macro), *args)  # the host file has torch/extension.h
    assert not b._errors_are_own(binding + "\n", *args)  # the host file failed with no line of its own
