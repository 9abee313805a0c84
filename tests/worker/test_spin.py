"""kbrun_eval/spin.py: the PTX of the all-SM spin and of the drain assembles for the GPUs kbrun runs on, and a Spin that
cannot load it falls back to torch.cuda._sleep with the reason (the GPU runs are device checks:
tests/device/judge_floor_and_cheats.sh, tests/gpu/judge/spin_hider_relu.py)."""
import os
import shutil
import subprocess

import pytest
import torch

from kbrun_eval import spin as kbrun_spin


def ptxas():
    default = "/usr/local/cuda/bin/ptxas"
    found = shutil.which("ptxas") or (default if os.path.exists(default) else None)
    if found is None:
        pytest.fail("ptxas not found (CUDA toolkit: /usr/local/cuda/bin)")
    return found


@pytest.mark.parametrize("arch", ["sm_75", "sm_80", "sm_90", "sm_100"])
@pytest.mark.parametrize("name", ["OCCUPY_PTX", "DRAIN_PTX"])
def test_the_spin_and_drain_ptx_assemble(tmp_path, arch, name):
    ptx = getattr(kbrun_spin, name)
    src = tmp_path / "kernel.ptx"
    src.write_text(ptx)
    out = subprocess.run([ptxas(), "-arch=" + arch, str(src), "-o", str(tmp_path / "kernel.cubin")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert ".version 7.0" in ptx and ".target sm_70" in ptx
    assert (".entry kbrun_occupy(" if name == "OCCUPY_PTX" else ".entry kbrun_drain(") in ptx


def test_without_a_gpu_the_spin_is_torch_sleep_and_says_why():
    spin = kbrun_spin.Spin(torch, torch.device("cuda:0"))
    d = spin.describe()
    assert d["kind"] == "torch_sleep"
    assert d["note"]  # why the all-SM spin could not load
    assert d["drain"] is False and not spin.can_drain  # no drain without the all-SM spin
