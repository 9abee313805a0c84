"""kbrun_eval/judge.py on the CPU: the evidence rule tells honest reorderings from lower precision.

Each case builds a reference Model, its fp32 output, and a candidate output computed
another way (another summation order, TF32- or bf16-rounded inputs, a wrong element),
then asks the judge. Run: /usr/bin/python3 -m pytest -q tests/worker
"""
import pytest
import torch

from kbrun_eval import judge as kj  # src/eval/worker, on sys.path by conftest.py
from worker_test_util import Fn

CPU = torch.device("cpu")


def tf32(x):
    """Rounds to TF32 (10-bit mantissa, round to nearest), as tensor cores read fp32."""
    i = x.contiguous().view(torch.int32)
    return ((i + 0x1000) & ~0x1FFF).view(torch.float32)


def bf16(x):
    return x.bfloat16().float()


def judge_of(fn, rule="evidence", **kw):
    model = Fn(fn)
    return kj.Judge(torch, rule, "fp32", model, CPU, **kw), model


def check(judge, model, inputs, out, kind="trial"):
    with torch.no_grad():
        expected = model(*inputs)
    return judge.judge(inputs, expected, out, kind=kind, label="t")


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def fixed_ok(expected, out):
    return kj.compare(torch, expected, out, 1e-4, 1e-4)[0]


def test_honest_reordered_matmul_passes_where_1e4_fails():
    a, b = torch.randn(64, 65536), torch.randn(65536, 64)
    judge, model = judge_of(torch.matmul)
    reordered = a.flip(1) @ b.flip(0)  # the same sum, in reverse order
    assert not fixed_ok(a @ b, reordered)
    v = check(judge, model, [a, b], reordered)
    assert v.ok, v.message
    assert v.stats["error_ratio"] < 8


def test_honest_blocked_sum_passes():
    x = torch.randn(64, 1 << 18)
    judge, model = judge_of(lambda t: t.sum(1))
    blocked = x.view(64, 512, 512).sum(2).flip(1).sum(1)  # partial sums per block, blocks in reverse
    v = check(judge, model, [x], blocked)
    assert v.ok, v.message


def test_honest_sequential_sum_passes():
    # The worst honest order: one fp32 accumulator, left to right (a naive one-thread loop).
    x = torch.randn(64, 65536) + 0.5
    judge, model = judge_of(lambda t: t.sum(1))
    acc = torch.zeros(64)
    for i in range(x.shape[1]):
        acc = acc + x[:, i]
    v = check(judge, model, [x], acc)
    assert v.ok, v.message


def test_honest_sequential_sum_to_one_scalar_passes():
    # One output value: the reference's own error is one sample and can be any fraction of an
    # ulp by chance (here ~1e-3 ulp), so err_ref alone would reject an honest sequential sum.
    torch.manual_seed(5)
    x = torch.rand(64, 256).softmax(-1)
    judge, model = judge_of(lambda t: t.sum() / 64)
    acc = torch.zeros(())
    for v in x.reshape(-1):
        acc = acc + v
    v = check(judge, model, [x], acc / 64)
    assert v.ok, v.message
    assert v.stats["err_candidate"] > 128 * v.stats["err_reference"]  # passes by the floor


def test_honest_conv_as_im2col_passes_where_1e4_fails():
    x, w = torch.randn(4, 512, 12, 12) * 3, torch.randn(64, 512, 3, 3)
    judge, model = judge_of(torch.nn.functional.conv2d)
    cols = torch.nn.functional.unfold(x, 3)
    im2col = (w.view(64, -1).flip(1) @ cols.flip(1)).view(4, 64, 10, 10)
    assert not fixed_ok(torch.nn.functional.conv2d(x, w), im2col)
    v = check(judge, model, [x, w], im2col)
    assert v.ok, v.message


@pytest.mark.parametrize("rounding", [tf32, bf16], ids=["tf32", "bf16"])
@pytest.mark.parametrize("k", [256, 1024, 4096])
def test_lower_precision_matmul_is_a_precision_downgrade(rounding, k):
    a, b = torch.randn(128, k), torch.randn(k, 128)
    judge, model = judge_of(torch.matmul)
    v = check(judge, model, [a, b], rounding(a) @ rounding(b))
    assert not v.ok
    assert v.category == "precision_downgrade", v.message
    assert "float64" in v.message and "own error" in v.message


def test_lower_precision_conv_is_a_precision_downgrade():
    x, w = torch.randn(8, 64, 16, 16), torch.randn(32, 64, 3, 3)
    judge, model = judge_of(torch.nn.functional.conv2d)
    v = check(judge, model, [x, w], torch.nn.functional.conv2d(bf16(x), bf16(w)))
    assert v.category == "precision_downgrade", v.message


def test_exact_relu_passes_and_one_ulp_off_passes_by_the_floor():
    x = torch.randn(256, 256)
    judge, model = judge_of(torch.relu)
    v = check(judge, model, [x], torch.relu(x))
    assert v.ok and v.stats["err_reference"] == 0
    nudged = torch.nextafter(torch.relu(x), torch.full_like(x, 1e9))  # every element one ulp up
    v = check(judge, model, [x], nudged)
    assert v.ok, v.message


def test_one_wrong_element_is_a_value_mismatch():
    a, b = torch.randn(128, 512), torch.randn(512, 128)
    judge, model = judge_of(torch.matmul)
    out = a @ b
    out[3, 7] += 0.5
    v = check(judge, model, [a, b], out)
    assert v.category == "value_mismatch", v.message


def test_grossly_wrong_result_is_a_value_mismatch():
    a, b = torch.randn(128, 512), torch.randn(512, 128)
    judge, model = judge_of(torch.matmul)
    v = check(judge, model, [a, b], (a @ b) * 1.5)
    assert v.category == "value_mismatch", v.message


def test_nan_reference_is_compared_by_pattern_with_a_clear_message():
    x = torch.rand(1000) - 0.5  # log of negatives: NaN
    judge, model = judge_of(torch.log)
    finite_everywhere = torch.log(x.abs())
    v = check(judge, model, [x], finite_everywhere)
    assert not v.ok and v.category == "non_finite"
    assert "the reference is NaN at" in v.message and "max abs diff 0" not in v.message
    # Same NaN pattern, same values elsewhere: correct.
    v = check(judge, model, [x], torch.log(x))
    assert v.ok, v.message
    # The fixed rule says the same, not "max abs diff 0".
    ok, category, message, _, _ = kj.compare(torch, torch.log(x), finite_everywhere, 1e-4, 1e-4)
    assert not ok and category == "non_finite" and "the reference is NaN at" in message


def test_extra_draw_outside_the_domain_is_skipped_and_recorded():
    x = torch.rand(1000) * 0.1 - 0.5
    judge, model = judge_of(torch.log)
    v = check(judge, model, [x], torch.zeros(1000), kind="extra")
    assert v.ok and v.skipped
    assert judge.summary()["skipped_extra_draws"] == ["t"]
    # In a trial the same output is a failure.
    v = check(judge, model, [x], torch.zeros(1000), kind="trial")
    assert not v.ok


def test_timed_bound_from_the_trials_evidence():
    a, b = torch.randn(128, 4096), torch.randn(4096, 128)
    judge, model = judge_of(torch.matmul)
    assert check(judge, model, [a, b], a.flip(1) @ b.flip(0)).ok
    assert judge.worst_relative_reference > 0
    a2, b2 = torch.randn(128, 4096), torch.randn(4096, 128)
    assert judge.judge_timed(a2 @ b2, a2.flip(1) @ b2.flip(0)).ok
    v = judge.judge_timed(a2 @ b2, bf16(a2) @ bf16(b2))
    assert not v.ok and "bound" in v.message


def test_timed_bound_keeps_the_trials_absolute_error_where_a_relu_leaves_small_outputs():
    """relu(a @ b - t): a timed draw whose outputs barely clear t keeps the rounding of a @ b's
    values (about 300), not of its own largest output (0.01): an honest reordering passes, bf16
    arithmetic still fails."""
    def shifted_relu(a, b, t):
        return torch.relu(a @ b - t)
    judge, model = judge_of(shifted_relu)
    a, b = torch.randn(128, 4096), torch.randn(4096, 128)
    assert check(judge, model, [a, b, 0.0], shifted_relu(a.flip(1), b.flip(0), 0.0)).ok
    a2, b2 = torch.randn(128, 4096), torch.randn(4096, 128)
    products = a2 @ b2
    t = float(products.max()) - 0.01
    ref = shifted_relu(a2, b2, t)
    assert float(ref.max()) < 0.02
    honest = judge.judge_timed(ref, shifted_relu(a2.flip(1), b2.flip(0), t))
    assert honest.ok, honest.message
    low = judge.judge_timed(ref, torch.relu(bf16(a2) @ bf16(b2) - t))
    assert not low.ok and "absolute reference error" in low.message


def test_no_float64_falls_back_to_the_fixed_tolerance_and_says_why():
    def fp32_only(x):
        if x.dtype != torch.float32:
            raise RuntimeError("this op has no float64 kernel")
        return x * 2
    judge, model = judge_of(fp32_only)
    x = torch.randn(100)
    assert check(judge, model, [x], x * 2).ok
    s = judge.summary()
    assert s["fp64_reference"] is False and "no float64 kernel" in s["fp64_note"]
    assert not check(judge, model, [x], x * 2 + 1e-3).ok  # 1e-4 again


def test_integer_outputs_must_be_equal():
    x = torch.randn(100, 10)
    judge, model = judge_of(lambda t: t.argmax(1))
    assert check(judge, model, [x], x.argmax(1)).ok
    wrong = x.argmax(1)
    wrong[0] = (wrong[0] + 1) % 10
    assert check(judge, model, [x], wrong).category == "value_mismatch"


def test_kernelbench_rule_lets_tf32_through():
    a, b = torch.randn(128, 128), torch.randn(128, 128)
    judge, model = judge_of(torch.matmul, rule="kernelbench")
    assert (judge.atol, judge.rtol) == (1e-2, 1e-2)
    assert check(judge, model, [a, b], tf32(a) @ tf32(b)).ok
    assert judge.summary()["rule"] == "kernelbench"


def test_structure_failures():
    judge, model = judge_of(torch.relu)
    x = torch.randn(4, 4)
    assert check(judge, model, [x], torch.relu(x).double()).category == "dtype_mismatch"
    assert check(judge, model, [x], torch.relu(x).t().reshape(2, 8)).category == "shape_mismatch"
    assert check(judge, model, [x], (torch.relu(x), x)).category == "output_count_mismatch"


def test_rule_from_request():
    assert kj.rule_from_request({}) == "evidence"
    assert kj.rule_from_request({"tolerance": "kernelbench"}) == "kernelbench"
    assert kj.rule_from_request({"tolerance": "evidence", "atol": 1e-3}) == "fixed"
    assert kj.rule_from_request({"tolerance": "fixed"}) == "fixed"
    assert kj.fixed_tolerances("fixed", "bf16") == (1e-2, 1e-2)
    assert kj.fixed_tolerances("fixed", "fp32", 1e-3, None) == (1e-3, 1e-4)


def test_summary_has_both_errors_and_their_ratio():
    a, b = torch.randn(64, 2048), torch.randn(2048, 64)
    judge, model = judge_of(torch.matmul)
    check(judge, model, [a, b], a.flip(1) @ b.flip(0))
    s = judge.summary()
    assert s["rule"] == "evidence" and s["fp64_reference"] is True and s["k"] == kj.EVIDENCE_K
    assert s["err_candidate"] > 0 and s["err_reference"] > 0
    assert s["error_ratio"] == pytest.approx(s["err_candidate"] / s["err_reference"])


class DropoutSoftmax(torch.nn.Module):
    """KernelBench's 66_Matmul_Dropout_Softmax, small: dropout with p = 0.2 in training mode."""

    def __init__(self, p=0.2):
        super().__init__()
        self.linear = torch.nn.Linear(64, 256)
        self.dropout = torch.nn.Dropout(p)

    def forward(self, x):
        return torch.softmax(self.dropout(self.linear(x)), dim=1)


def test_dropout_reference_loosens_the_evidence_bound_enough_to_pass_a_constant():
    """Why the checker runs the reference twice: the judge alone takes a constant softmax for it,
    because the float64 run draws another dropout mask and err_ref measures the randomness."""
    model = DropoutSoftmax()
    judge = kj.Judge(torch, "evidence", "fp32", model, CPU)
    x = [torch.rand(32, 64)]
    with torch.no_grad():
        expected = model(*x)
    assert judge.judge(x, expected, torch.full_like(expected, 1.0 / 256), kind="trial", label="t").ok


def test_run_to_run_difference_finds_dropout_in_training_mode():
    model = DropoutSoftmax()
    x = torch.rand(32, 64)
    with torch.no_grad():
        why = kj.run_to_run_difference(torch, model(x), model(x), kj.UNIT_ROUNDOFF["fp32"])
    assert why is not None and "not deterministic" in why and "output 0" in why


def test_run_to_run_difference_accepts_determinism_and_rounding():
    unit = kj.UNIT_ROUNDOFF["fp32"]
    x = torch.rand(32, 64)
    with torch.no_grad():
        off = DropoutSoftmax(0.0)  # p = 0 (KernelBench's level 3 has many): the identity
        assert kj.run_to_run_difference(torch, off(x), off(x), unit) is None
        on = DropoutSoftmax()
        on.eval()
        assert kj.run_to_run_difference(torch, (on(x), x.sum(1)), (on(x), x.sum(1)), unit) is None
    # Another summation order (what atomics or another algorithm give from run to run): rounding.
    a = torch.rand(64, 4096)
    blocked = a.sum(dim=1)
    sequential = torch.zeros(64)
    for j in range(0, 4096, 7):
        sequential += a[:, j:j + 7].sum(dim=1)
    assert not torch.equal(blocked, sequential)
    assert kj.run_to_run_difference(torch, blocked, sequential, unit) is None


def test_run_to_run_difference_in_integers_nan_pattern_and_structure():
    unit = kj.UNIT_ROUNDOFF["fp32"]
    i = torch.arange(10)
    assert "differs at 1 positions" in kj.run_to_run_difference(torch, i, torch.where(i == 3, 0, i), unit)
    f = torch.ones(5)
    g = f.clone()
    g[2] = float("nan")
    assert "NaN/Inf pattern" in kj.run_to_run_difference(torch, f, g, unit)
    assert "structures" in kj.run_to_run_difference(torch, (f, f), f, unit)


def test_timed_fast_pass_agrees_with_the_careful_way():
    """The fast pass only ever passes what the careful way passes; anything else goes the careful way."""
    a, b = torch.randn(128, 4096), torch.randn(4096, 128)
    judge, model = judge_of(torch.matmul)
    assert check(judge, model, [a, b], a.flip(1) @ b.flip(0)).ok
    a2, b2 = torch.randn(128, 4096), torch.randn(4096, 128)
    ref, reordered = a2 @ b2, a2.flip(1) @ b2.flip(0)
    assert judge._timed_pass_fast(ref, reordered) and judge.judge_timed(ref, reordered).ok
    low = bf16(a2) @ bf16(b2)
    assert not judge._timed_pass_fast(ref, low) and not judge.judge_timed(ref, low).ok
    # Just past the bound: not passed fast, failed the careful way.
    largest = float(ref.abs().max())
    over = ref.clone()
    over[0, 0] += judge.timed_bound(largest) * 1.001
    assert not judge._timed_pass_fast(ref, over) and not judge.judge_timed(ref, over).ok
    # A NaN where the reference has a number: careful way, incorrect.
    nan = reordered.clone()
    nan[3, 3] = float("nan")
    assert not judge._timed_pass_fast(ref, nan) and not judge.judge_timed(ref, nan).ok
    # Infinities where the reference has them too: careful way, correct.
    ref_inf, out_inf = ref.clone(), reordered.clone()
    ref_inf[1, 1] = out_inf[1, 1] = float("inf")
    assert not judge._timed_pass_fast(ref_inf, out_inf) and judge.judge_timed(ref_inf, out_inf).ok
    # Another structure: careful way, which names it.
    assert not judge._timed_pass_fast(ref, reordered[:, :64])
    assert judge.judge_timed(ref, reordered[:, :64]).category == "shape_mismatch"
    # Outputs larger than one chunk are compared chunk by chunk.
    kj_chunk = kj.CHUNK
    try:
        kj.CHUNK = 1000
        assert judge._timed_pass_fast(ref, reordered) and not judge._timed_pass_fast(ref, over)
    finally:
        kj.CHUNK = kj_chunk
