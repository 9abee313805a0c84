"""What the replay generators (make_level1_replay.py, make_makespan_replay.py) share: the
KernelBench level1 element-wise problems they answer and the end of every answer, the
extension's load and ModelNew."""

# problem: (init signature, init body, argument forward passes to the kernel, CUDA expression of v and p)
OPS = {
    "19_ReLU": ("", "", "0.0", "fmaxf(v, 0.f)"),
    "20_LeakyReLU": ("negative_slope: float = 0.01", "self.negative_slope = negative_slope",
                     "self.negative_slope", "v > 0.f ? v : v * p"),
    "21_Sigmoid": ("", "", "0.0", "1.f / (1.f + expf(-v))"),
    "22_Tanh": ("", "", "0.0", "tanhf(v)"),
    "25_Swish": ("", "", "0.0", "v / (1.f + expf(-v))"),
    "26_GELU_": ("", "", "0.0", "0.5f * v * (1.f + erff(v * 0.70710678118654752f))"),
    "27_SELU_": ("", "", "0.0",
                 "1.0507009873554805f * (v > 0.f ? v : 1.6732632423543772f * expm1f(v))"),
    "28_HardSigmoid": ("", "", "0.0", "fminf(fmaxf(v / 6.f + 0.5f, 0.f), 1.f)"),
    "29_Softplus": ("", "", "0.0", "v > 20.f ? v : log1pf(expf(v))"),
    "30_Softsign": ("", "", "0.0", "v / (1.f + fabsf(v))"),
    "31_ELU": ("alpha: float = 1.0", "self.alpha = alpha", "self.alpha", "v > 0.f ? v : p * expm1f(v)"),
    "32_HardTanh": ("", "", "0.0", "fminf(fmaxf(v, -1.f), 1.f)"),
}

MODEL_NEW = r'''ext = load_inline(name="@NAME@", cpp_sources=cpp_source, cuda_sources=cuda_source,
                  functions=["ew_forward"], extra_cuda_cflags=["-O3"], verbose=False)


class ModelNew(nn.Module):
    def __init__(self@INITSIG@):
        super().__init__()
        @INITBODY@

    def forward(self, x):
        return ext.ew_forward(x, @PARAM@)
```
'''


def model_new(problem, ext_name):
    """The answer's end for `problem`: its extension, named `ext_name`, and ModelNew."""
    sig, body, param, _ = OPS[problem]
    return (MODEL_NEW.replace("@NAME@", ext_name).replace("@INITSIG@", ", " + sig if sig else "")
            .replace("@INITBODY@", body or "pass").replace("@PARAM@", param))
