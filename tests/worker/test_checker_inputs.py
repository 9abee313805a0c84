"""The checker's swapped-element rounds (kbrun_checker.swap_elements) on the CPU: they change
the inputs where a sampled or summed memo cannot see it, and keep what structured inputs rely on.
Run: /usr/bin/python3 -m pytest -q tests/worker
"""
import os
import random
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src", "eval", "worker"))
import kbrun_checker as kc  # noqa: E402


def swapped(values):
    return kc.swap_elements(torch, values, kc.swap_plan(torch, values), random.Random(7))


def test_swaps_change_a_few_elements_and_keep_values_and_sums():
    x = torch.randn(256, 512)
    (y,) = swapped([x])
    changed = int((x != y).sum())
    assert 0 < changed <= 2 * kc.SWAPS_PER_TENSOR
    assert torch.equal(x.reshape(-1).sort().values, y.reshape(-1).sort().values)
    assert abs(float(x.double().sum() - y.double().sum())) < 1e-9


def test_triangular_and_symmetric_inputs_stay_so():
    a = torch.tril(torch.rand(64, 64))
    s = torch.rand(64, 64)
    s = (s + s.T) / 2
    ta, ts = swapped([a, s])
    assert torch.equal(ta, torch.tril(ta)) and not torch.equal(ta, a)
    assert torch.equal(ts, ts.T) and not torch.equal(ts, s)


def test_sorted_axes_and_non_tensors_are_left_alone():
    r = torch.arange(1000.0)
    out = swapped([r, 3, None])
    assert torch.equal(out[0], r) and out[1:] == [3, None]


def test_buffers_keep_the_layout_of_dense_inputs_only():
    x = torch.randn(64, 32)
    assert kc.dense_strides(x) is None
    if hasattr(x, "untyped_storage"):  # torch >= 2.0
        assert kc.dense_strides(x.t()) == [1, 32]
    assert kc.dense_strides(x[:, :8]) is None  # a slice: gaps in its storage
    assert kc.dense_strides(torch.randn(8).expand(4, 8)) is None  # stride 0
