"""kbrun_eval/cuda_split.py: a mono-layout CUDA file cut into a kernel file that names nothing from torch
and a host file that launches its kernels through cudaLaunchKernelEx; what it declines, and the template
kernels' instantiations. The real compile and link of a split file: MonoLayout.* in
src/eval/compile_cache_test.cc. Run: /usr/bin/python3 -m pytest -q tests/worker/test_cuda_split.py
"""
import os
import re
import subprocess

import pytest

from kbrun_eval import cuda_split  # src/eval/worker on sys.path by conftest.py
from test_build_plan import PREFIX, fixture_cuda

HOST_HEADER = "#include <torch/extension.h>\n"


def check_lines(split_text, original, path):
    """Each piece after a #line directive starts with the original line it names."""
    lines = original.split("\n")
    pieces = re.findall(r'#line (\d+) "%s"\n([^\n]*)' % re.escape(path), split_text)
    assert pieces
    for number, first in pieces:
        assert first.strip() in lines[int(number) - 1], (number, first)
    return len(pieces)


@pytest.mark.parametrize("fixture", ["mono_layout_light.py", "mono_layout_pybind.py"])
def test_fixtures_split_into_a_torch_free_kernel_file(fixture):
    text = fixture_cuda(fixture)
    s = cuda_split.split(text, "/b/cuda.cu", HOST_HEADER)
    code = re.sub(r"#line[^\n]*\n", "", s.kernels)
    assert not cuda_split.TORCH_WORD.search(code) and "torch" not in code and "<<<" not in code
    assert "__global__" in code and "TORCH_CHECK" not in code
    assert "<<<" not in s.host and "kbrun_launch_kernel(&" in s.host
    assert s.host.startswith(HOST_HEADER) and "__global__" in s.host  # the kernel's declaration
    assert check_lines(s.kernels, text, "/b/cuda.cu") >= 2 and check_lines(s.host, text, "/b/cuda.cu") >= 2


def test_launch_keeps_arguments_lines_and_configuration():
    code = ("#include <torch/extension.h>\n"
            "__global__ void k(float* y, int n) { if (threadIdx.x < n) y[threadIdx.x] = 1.f; }\n"
            "static __global__ void g(float* y) { y[0] = 2.f; }\n"
            "void f(torch::Tensor y, cudaStream_t s) {\n"
            "  k<<<dim3(1, 1), 32, 64, s>>>(\n    y.data_ptr<float>(),\n    (int)y.numel());\n"
            "  g<<<1, 1>>>(y.data_ptr<float>());\n}\n")
    s = cuda_split.split(PREFIX + code, "/b/cuda.cu", HOST_HEADER)
    host = s.host
    assert "kbrun_launch_kernel(&k, dim3(1, 1),  32,  64,  s, \n    y.data_ptr<float>(),\n    (int)y.numel());" in host
    assert "kbrun_launch_kernel(&g, 1,  1, 0, nullptr, y.data_ptr<float>());" in host
    assert "\nvoid g(float* y);" in host.replace("__global__ ", "")  # declared without static
    assert re.search(r"^__global__ void g\(float\* y\) \{", s.kernels, re.M)  # defined without static
    assert s.template_kernels == set()


def test_shared_declarations_go_to_both_files_and_host_only_ones_to_the_host():
    code = ("#include <torch/extension.h>\n#include <cuda_fp16.h>\n#include <mma.h>\n#define BLOCK 256\n"
            "constexpr int kTile = 16;\nstruct Params { int n; float a; };\n"
            "__host__ __device__ inline int ceil_div(int a, int b) { return (a + b - 1) / b; }\n"
            "__device__ float twice(float x) { return 2.f * x; }\n"
            "__host__ __device__ float half_of(float x) { return x / 2.f; }\n"
            "__global__ void k(Params p, float* y) { y[0] = twice(p.a) * kTile; }\n"
            "int launches = 0;\nint grid_for(int n) { return ceil_div(n, BLOCK); }\n"
            "void f(torch::Tensor y) { ++launches; k<<<grid_for(1), BLOCK>>>(Params{half_of(2.f), 2.f}, "
            "y.data_ptr<float>()); }\n")
    s = cuda_split.split(PREFIX + code, "/b/cuda.cu", HOST_HEADER)
    shared = ("#define BLOCK 256", "constexpr int kTile", "struct Params", "ceil_div(int a", "#include <cuda_fp16.h>")
    for both in shared:
        assert both in s.kernels and both in s.host, both
    for kernel_only in ("#include <mma.h>", "float twice(float x) {", "float half_of(float x) {"):
        assert kernel_only in s.kernels and kernel_only not in s.host, kernel_only
    # A __host__ __device__ function that is not inline is defined once, by nvcc; the host file declares it.
    assert "__host__ __device__ float half_of(float x);" in s.host
    for host_only in ("int launches = 0;", "int grid_for(int n) {", "#include <torch/extension.h>"):
        assert host_only in s.host and host_only not in s.kernels, host_only


@pytest.mark.parametrize("code, why", [
    ("__global__ void k(at::Half* y) {}\nvoid f(torch::Tensor y) { k<<<1, 1>>>(nullptr); }\n",
     "device code names torch"),
    ("__constant__ float c[4];\n__global__ void k(float* y) { y[0] = c[0]; }\n"
     "void f(torch::Tensor y, float* h) { cudaMemcpyToSymbol(c, h, 16); k<<<1, 1>>>(y.data_ptr<float>()); }\n",
     "device symbol c"),
    ("namespace {\n__global__ void k(float* y) {}\n}\nvoid f(torch::Tensor y) { k<<<1, 1>>>(y.data_ptr<float>()); }\n",
     "namespace"),
    ("__global__ void k(float* y) {}\nvoid f(torch::Tensor y) {\n"
     "  cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, 0); k<<<1, 1>>>(y.data_ptr<float>()); }\n",
     "other than launching"),
    ("template <typename T> __global__ void k(T* y) {}\n"
     "void f(torch::Tensor y) { k<<<1, 1>>>(y.data_ptr<float>()); }\n", "without template arguments"),
    ("__global__ void k(float* y) {}\nconst char* s = R\"(x)\";\n"
     "void f(torch::Tensor y) { k<<<1, 1>>>(y.data_ptr<float>()); }\n", "raw string"),
    ("torch::Tensor f(torch::Tensor y) { return y; }\n", "no kernel"),
    ("__global__ void k(float* y) {}\nconst char* s = \"unterminated", "unterminated literal"),
    ("#define KERNEL(n) __global__ void n(float* y) { y[0] = 1.f; }\nKERNEL(k)\n"
     "void f(torch::Tensor y) { k<<<1, 1>>>(y.data_ptr<float>()); }\n", "a macro that defines"),
    ("__global__ void k(float* y) {}\n__global__ void k(double* y) {}\n"
     "void f(torch::Tensor y) { k<<<1, 1>>>(y.data_ptr<float>()); }\n", "overloaded kernel k"),
    ("__global__ void k(float* y, int n = 4) {}\n"
     "void f(torch::Tensor y) { k<<<1, 1>>>(y.data_ptr<float>()); }\n", "default arguments"),
    ("__global__ void child(float* y) {}\n__global__ void parent(float* y) { child<<<1, 1>>>(y); }\n"
     "void f(torch::Tensor y) { parent<<<1, 1>>>(y.data_ptr<float>()); }\n", "launched from device code"),
])
def test_what_the_split_cannot_carry_is_declined(code, why):
    with pytest.raises(cuda_split.Declined, match=why):
        cuda_split.split(PREFIX + "#include <torch/extension.h>\n" + code, "/b/cuda.cu", HOST_HEADER)


def test_comments_and_strings_do_not_cut_or_classify():
    code = ('#include <torch/extension.h>\n// a } in a comment; and __global__ too\n'
            '__global__ void k(float* y) { /* { */ y[0] = 1.f; }\n'
            'void f(torch::Tensor y) { TORCH_CHECK(y.numel() > 0, "need }; elements");\n'
            '  k<<<1, 1>>>(y.data_ptr<float>()); }\n')
    s = cuda_split.split(PREFIX + code, "/b/cuda.cu", HOST_HEADER)
    assert 'TORCH_CHECK(y.numel() > 0, "need }; elements")' in s.host and "TORCH_CHECK" not in s.kernels


def test_instantiations_come_from_the_host_objects_symbols():
    symbols = ["void scale_add_kernel<float>(float const*, float const*, float*, float, long)",
               "void scale_add_kernel<double>(double const*, double const*, double*, double, long)",
               "at::Tensor::empty_like() const", "void other<int>(int)", "cudaLaunchKernelExC"]
    code = cuda_split.instantiations({"scale_add_kernel"}, symbols)
    assert code.splitlines() == [
        "template __global__ void scale_add_kernel<double>(double const*, double const*, double*, double, long);",
        "template __global__ void scale_add_kernel<float>(float const*, float const*, float*, float, long);"]
    with pytest.raises(cuda_split.Declined):
        cuda_split.instantiations({"k"}, ["void k<(anonymous namespace)::P>((anonymous namespace)::P)"])


def test_undefined_symbols_reads_a_real_object(tmp_path):
    src = tmp_path / "host.cpp"
    src.write_text("template <typename T> void k(const T* x, int n);\nvoid f(const float* x) { k<float>(x, 1); }\n")
    obj = tmp_path / "host.o"
    subprocess.run(["c++", "-c", str(src), "-o", str(obj)], check=True)
    assert "void k<float>(float const*, int)" in cuda_split.undefined_symbols(str(obj))
    assert os.path.exists(obj)


TORCH_STUB = "namespace torch { struct Tensor { template <typename T> T* data_ptr() { return nullptr; } }; }\n"


def test_the_host_file_is_valid_for_gxx(tmp_path):
    # What nvcc accepts in a kernel's declaration and g++ does not know (__launch_bounds__), an operator
    # defined at file scope, and launches whose arguments convert to the kernel's parameter types.
    code = ("#include <torch/extension.h>\n"
            "__global__ void __launch_bounds__(256, 2) k(float* __restrict__ y, int n) { y[0] = n; }\n"
            "template <typename T, int B> __global__ __launch_bounds__(B) void t(T* y, long n) { y[0] = n; }\n"
            "inline bool operator==(const dim3& a, const dim3& b) { return a.x == b.x; }\n"
            "__host__ __device__ float half_of(float x) { return x / 2.f; }\n"
            "void f(torch::Tensor y, cudaStream_t s) {\n"
            "  k<<<dim3(1) == dim3(1) ? 1 : 2, 256, 0, s>>>(y.data_ptr<float>(), 3.0);\n"
            "  t<double, 128><<<1, 128>>>(y.data_ptr<double>(), half_of(14.f));\n}\n")
    s = cuda_split.split(PREFIX + code, str(tmp_path / "cuda.cu"), HOST_HEADER)
    host = tmp_path / "host.cpp"
    include = "#include <torch/extension.h>"
    host.write_text(s.host.replace(include, TORCH_STUB, 1).replace(include, ""))
    cuda = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    if not os.path.exists(os.path.join(cuda, "include", "cuda_runtime.h")):
        pytest.skip("no CUDA headers")
    p = subprocess.run(["c++", "-std=c++17", "-fsyntax-only", "-I", os.path.join(cuda, "include"), str(host)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert s.template_kernels == {"t"} and "inline bool operator==" in s.kernels
