"""kbrun_eval/build.py's lighter headers: a binding file gets torch/python.h only where it names
nothing from the C++ frontend, CUDA code that names nothing from torch loses torch's headers, and
line numbers never move (compiler messages still point at the candidate's lines).
Run: /usr/bin/python3 -m pytest -q tests/worker/test_build_lighten.py
"""
import os
import shutil
import subprocess

import pytest

from kbrun_eval import build  # src/eval/worker, on sys.path by conftest.py

BINDING_PREFIX = "#include <torch/extension.h>\n"
BINDING_BODY = "torch::Tensor f(torch::Tensor x) { return x.relu(); }\n"
BINDINGS = {
    "glue": BINDING_PREFIX + BINDING_BODY,
    "own_include": BINDING_PREFIX + "#include <torch/extension.h>\n" + BINDING_BODY,
    "indexing": BINDING_PREFIX + "using namespace torch::indexing;\n" + BINDING_BODY,
    "frontend": BINDING_PREFIX + "namespace F = torch::nn::functional;\n" + BINDING_BODY,
    "using_torch": BINDING_PREFIX + "using namespace torch;\n" + BINDING_BODY,
    "reopens_torch": BINDING_PREFIX + "namespace torch { int kb_x; }\n" + BINDING_BODY,
    "torch_h": BINDING_PREFIX + "#include <torch/torch.h>\n" + BINDING_BODY,
    "no_prefix": BINDING_BODY,
}

CUDA_PREFIX = "#include <torch/types.h>\n#include <cuda.h>\n#include <cuda_runtime.h>\n"
CUDA = {
    "plain_kernel": CUDA_PREFIX + "__global__ void k(float* y, int n) { int i = threadIdx.x; if (i < n) y[i] = 1.f; }\n"
                                  "void launch(float* y, int n, cudaStream_t s) { k<<<1, 32, 0, s>>>(y, n); }\n",
    "uses_torch": CUDA_PREFIX + "#include <torch/extension.h>\ntorch::Tensor f(torch::Tensor x) { return x; }\n",
    "checks_with_macro": CUDA_PREFIX + "void g(int n) { TORCH_CHECK(n > 0, \"n\"); }\n",
    "includes_aten": CUDA_PREFIX + "#include <ATen/ATen.h>\nvoid h() {}\n",
    "no_prefix": "__global__ void k() {}\n",
}


@pytest.mark.parametrize("name", sorted(BINDINGS))
def test_binding_header_is_lightened_only_when_safe(name):
    text = BINDINGS[name]
    light, mode = build.lighten_binding(text, "/b/main.cpp")
    assert light.count("\n") == text.count("\n"), "line numbers moved"
    if name in ("glue", "own_include", "indexing"):
        assert mode == "torch_python_only"
        assert light.startswith('#line 2 "/b/main.cpp"\n') and "torch/extension.h" not in light
    else:
        assert (mode, light) == ("as_written", text)


@pytest.mark.parametrize("name, expected", [("plain_kernel", "no_torch_headers"), ("uses_torch", "torch_types_only"),
                                            ("checks_with_macro", "as_written"), ("includes_aten", "as_written"),
                                            ("no_prefix", "as_written")])
def test_cuda_headers_are_lightened_only_when_safe(name, expected):
    text = CUDA[name]
    light, mode = build.lighten_cuda(text)
    assert mode == expected
    assert light.count("\n") == text.count("\n"), "line numbers moved"
    if name == "plain_kernel":
        assert "torch" not in light
    if name == "uses_torch":
        assert "#include <torch/types.h>\n#include <cuda.h>" in light and "torch/extension.h" not in light


def test_the_lightened_kernel_compiles_without_torch(tmp_path):
    """With no torch include path at all (skipped where nvcc is missing)."""
    nvcc = os.path.join(os.environ.get("CUDA_HOME") or "/usr/local/cuda", "bin", "nvcc")
    if not os.path.exists(nvcc):
        nvcc = shutil.which("nvcc")
    if not nvcc:
        pytest.skip("no nvcc")
    light, _ = build.lighten_cuda(CUDA["plain_kernel"])
    (tmp_path / "k.cu").write_text(light)
    out = subprocess.run([nvcc, "-std=c++17", "-c", str(tmp_path / "k.cu"), "-o", str(tmp_path / "k.o")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
