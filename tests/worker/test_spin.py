"""kbrun_spin: the PTX of the all-SM spin assembles for the GPUs kbrun runs on, and a Spin that
cannot load it falls back to torch.cuda._sleep with the reason (the GPU runs are device checks:
bench/device_judge_check.sh, tests/gpu/judge/spin_hider_relu.py)."""
import os
import shutil
import subprocess

import pytest
import torch

import kbrun_spin


def ptxas():
    default = "/usr/local/cuda/bin/ptxas"
    found = shutil.which("ptxas") or (default if os.path.exists(default) else None)
    if found is None:
        pytest.fail("ptxas not found (CUDA toolkit: /usr/local/cuda/bin)")
    return found


@pytest.mark.parametrize("arch", ["sm_75", "sm_80", "sm_90", "sm_100"])
def test_the_spin_ptx_assembles(tmp_path, arch):
    src = tmp_path / "spin.ptx"
    src.write_text(kbrun_spin.OCCUPY_PTX)
    out = subprocess.run([ptxas(), "-arch=" + arch, str(src), "-o", str(tmp_path / "spin.cubin")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert ".entry kbrun_occupy(" in kbrun_spin.OCCUPY_PTX and ".version 7.0" in kbrun_spin.OCCUPY_PTX


def test_without_a_gpu_the_spin_is_torch_sleep_and_says_why():
    spin = kbrun_spin.Spin(torch, torch.device("cuda:0"))
    d = spin.describe()
    assert d["kind"] == "torch_sleep"
    assert d["note"]  # why the all-SM spin could not load
