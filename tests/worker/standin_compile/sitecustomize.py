"""A stand-in torch.compile for the baseline tests on a torch that has none (Debian's 1.13).

On PYTHONPATH, Python imports this at start-up. When KBRUN_TEST_COMPILE_STANDIN is set (the test
passes it with KBRUN_PASS_ENV), torch gets `compile` and a `torch._inductor.config` module, so the
checker's compile baseline (kbrun_eval/baselines.py) runs end to end through kbrun:
  identity  torch.compile(model) returns the model: the baseline is the reference again
  wrong     the compiled model's output is off by 1
  hang      the first call never returns (the baselines' deadline must stop it)
Nothing happens without the variable.
"""
import os
import sys
import time
import types

MODE = os.environ.get("KBRUN_TEST_COMPILE_STANDIN")

if MODE:
    import torch

    if not hasattr(torch, "compile"):
        def _compile(model):
            if MODE == "wrong":
                return lambda *args: model(*args) + 1
            if MODE == "hang":
                def _hang(*args):
                    while True:
                        time.sleep(1)
                return _hang
            return model

        _config = types.ModuleType("torch._inductor.config")
        _inductor = types.ModuleType("torch._inductor")
        _inductor.config = _config
        sys.modules["torch._inductor"] = _inductor
        sys.modules["torch._inductor.config"] = _config
        torch._inductor = _inductor
        torch.compile = _compile
