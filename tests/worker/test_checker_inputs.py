"""The checker's swapped-element rounds (kbrun_eval/timed_inputs.py) on the CPU: they change
the inputs where a sampled or summed memo cannot see it, and keep what structured inputs rely on.
Run: /usr/bin/python3 -m pytest -q tests/worker
"""
import random

import torch

from kbrun_eval import checker as kc  # src/eval/worker, on sys.path by conftest.py
from kbrun_eval import checker_link
from kbrun_eval import timed_inputs


def swapped(values):
    return timed_inputs.swap_elements(torch, values, timed_inputs.swap_plan(torch, values), random.Random(7))


def test_swaps_change_a_few_elements_and_keep_values_and_sums():
    x = torch.randn(256, 512)
    (y,) = swapped([x])
    changed = int((x != y).sum())
    assert 0 < changed <= 2 * timed_inputs.SWAPS_PER_TENSOR
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


def swapped_one_by_one(v, plan, rng):
    """The swaps as plain element-by-element code: what the gathered version must equal."""
    t = v.clone()
    axes, symmetric = plan
    for pairs in timed_inputs._proposed_swaps(t.shape, axes, symmetric, rng):
        if any(bool(t[x] == 0) or bool(t[y] == 0) for x, y in pairs):
            continue
        for x, y in pairs:
            kept = t[x].clone()
            t[x] = t[y]
            t[y] = kept
    return t


def test_swaps_in_one_gather_equal_swaps_one_by_one_where_they_overlap_and_meet_zeros():
    # Small tensors: the 16 swaps touch the same elements again and again, and zeros stop some.
    cases = [torch.tensor([[0.0, 1, 2, 3], [4, 0, 6, 7], [8, 9, 0, 11]]),
             torch.randint(0, 3, (2, 3, 4)).float(),
             torch.tensor([[True, False, True], [False, True, True]]),
             torch.tril(torch.rand(5, 5)) + torch.tril(torch.rand(5, 5)).T]
    for seed in range(40):
        for v in cases:
            (plan,) = timed_inputs.swap_plan(torch, [v])
            (got,) = timed_inputs.swap_elements(torch, [v], [plan], random.Random(seed))
            assert torch.equal(got, swapped_one_by_one(v, plan, random.Random(seed))), (seed, v)


def test_buffers_keep_the_layout_of_dense_inputs_only():
    x = torch.randn(64, 32)
    assert kc.dense_strides(x) is None
    if hasattr(x, "untyped_storage"):  # torch >= 2.0
        assert kc.dense_strides(x.t()) == [1, 32]
    assert kc.dense_strides(x[:, :8]) is None  # a slice: gaps in its storage
    assert kc.dense_strides(torch.randn(8).expand(4, 8)) is None  # stride 0


class FakeChannel:
    """One side of the worker-checker channel: records what is sent, answers from a script."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.sent = []

    def send(self, header, payloads=()):
        self.sent.append((header, list(payloads)))

    def recv(self):
        return self.answers.pop(0)

    def request(self, header, payloads=()):
        self.send(header, payloads)
        return self.recv()


def test_checker_sends_values_when_the_worker_cannot_share_its_buffers():
    """A worker that could not make CUDA IPC handles says so; the checker then sends values."""
    checker = object.__new__(kc.Checker)
    checker.torch, checker.device, checker.by_value, checker.result = torch, torch.device("cpu"), False, {}
    checker.cuda = False
    checker.chan = FakeChannel([({"type": "buffers", "refused": "RuntimeError: invalid argument"}, [])])
    live = [torch.arange(6.0).reshape(2, 3), 4]
    assert checker.hand_over(live) is None
    assert checker.by_value and "invalid argument" in checker.result["transport_note"]
    (specs, _), (values, payloads) = checker.chan.sent
    assert specs["type"] == "specs" and values["type"] == "inputs"
    rebuilt = kc.kbrun_channel.rebuild(torch, values["inputs"], payloads)
    assert torch.equal(rebuilt[0], live[0]) and rebuilt[1] == 4


def test_worker_falls_back_to_values_when_it_cannot_share_its_buffers(monkeypatch):
    link = object.__new__(checker_link.CheckerLink)
    link.torch, link.device, link.by_value = torch, torch.device("cpu"), False
    link.channel = kc.kbrun_channel
    values = [torch.full((2, 3), 7.0)]
    descs, payloads = kc.kbrun_channel.describe(torch, values)
    spec = {"kind": "tensor", "dtype": "float32", "shape": [2, 3], "stride": None}
    link.chan = FakeChannel([({"type": "specs", "inputs": [spec]}, []),
                             ({"type": "inputs", "inputs": descs}, payloads)])

    def no_ipc(*args, **kwargs):
        raise RuntimeError("CUDA error: invalid argument")
    monkeypatch.setattr(link.channel, "describe", no_ipc)
    got = link.receive_inputs()
    refused = {"type": "buffers", "refused": "RuntimeError: CUDA error: invalid argument"}
    assert link.by_value and link.chan.sent[0][0] == refused
    assert torch.equal(got[0], values[0])
