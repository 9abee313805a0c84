"""kbrun's judge: decides whether a candidate's outputs match the reference's.

Pure functions on torch tensors (no process plumbing), used by the checker, the only
process that judges outputs. Rules (--tolerance):

  evidence     (default when --atol/--rtol are not given) the reference is run a second
               time in float64 on the same inputs; its distance to the fp32 (or fp16/bf16)
               reference's output is that reference's own rounding error, err_ref. The
               candidate passes when its distance to the float64 result, err_new, is at most
               K * max(err_ref, floor), for the largest and for the mean error alike. An honest
               kernel that sums in another order lands within a few times err_ref (measured:
               <= 81x for a sequential fp32 sum of 65536 terms against torch's blocked sum);
               one that rounds to TF32, fp16 or bf16 lands 2^13-2^16 times the fp32 rounding
               away. floor (a few roundings of the largest value) stands in for err_ref where the
               reference is exact (ReLU) or exact by chance (one scalar output's error can be
               any fraction of an ulp).
               Where the float64 copy cannot be built or run (an op without float64, out of
               memory, integer outputs), the fixed tolerance of the precision is used and the
               reason recorded.
  kernelbench  KernelBench's own rule: torch.allclose with atol = rtol = 1e-2.
  fixed        torch.allclose with --atol/--rtol (default 1e-4 fp32, 1e-2 fp16/bf16).

Positions where the reference is NaN or Inf are compared by pattern in every rule. An
extra draw (inputs rescaled beyond get_inputs()'s range) whose reference output is not
finite left the problem's domain: it is skipped and recorded, not failed.
"""
# Over 400 lines on purpose: the three --tolerance rules and the evidence they share are one
# decision, read together (docs/EVALUATION.md "Correctness").

import copy
import math

RULES = ("evidence", "kernelbench", "fixed")
# KernelBench's tolerances by precision (atol = rtol); the fixed rule's defaults.
DEFAULT_TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 1e-2}
KERNELBENCH_TOLERANCE = 1e-2
# Unit roundoff of each precision's arithmetic (half an ulp at 1.0).
UNIT_ROUNDOFF = {"fp32": 2.0 ** -24, "fp16": 2.0 ** -11, "bf16": 2.0 ** -8}
# err_new may be this many times err_ref (docs/EVALUATION.md "Correctness" has the figures:
# honest reorderings measured <= 81x for the largest error and <= 61x for the mean; TF32
# matmuls with K <= 4096 >= 138x and >= 290x, bf16 >= 250x and >= 578x).
EVIDENCE_K = 128.0
# floor = FLOOR_ULPS * unit roundoff * max|reference|, the least err_ref counts as: a few roundings
# of the largest value (so at least K * FLOOR_ULPS = 1024 roundings are allowed: 6.1e-5 relative
# in fp32, below TF32's and fp16's 4.9e-4 for one rounding).
FLOOR_ULPS = 8.0
# A failing result whose largest error relative to the largest reference value is at most
# this (bf16's unit roundoff times 16, for error growth in sums) and whose errors are spread
# (the mean error also fails) looks like arithmetic in a lower precision, not a wrong answer.
DOWNGRADE_MAX_RELATIVE = 2.0 ** -4
CHUNK = 1 << 26  # elements compared at a time: a 6 GB output needs no 30 GB of temporaries


def rule_from_request(req):
    """The rule a request asks for: --atol/--rtol mean fixed; else --tolerance; else evidence."""
    if req.get("atol") is not None or req.get("rtol") is not None:
        return "fixed"
    rule = req.get("tolerance")
    return rule if rule in RULES else "evidence"


def fixed_tolerances(rule, precision, atol=None, rtol=None):
    """(atol, rtol) of allclose for the fixed and kernelbench rules, and of the evidence
    rule's fallback."""
    if rule == "kernelbench":
        return KERNELBENCH_TOLERANCE, KERNELBENCH_TOLERANCE
    default = DEFAULT_TOLERANCE.get(precision, 1e-4)
    return (atol if atol is not None else default), (rtol if rtol is not None else default)


class Verdict:
    """ok: passed (or skipped); skipped: not judged (an extra draw outside the domain)."""

    def __init__(self, ok, status="correct", category="", message="", stats=None, skipped=False):
        self.ok = ok
        self.status = status
        self.category = category
        self.message = message
        self.stats = stats or {}
        self.skipped = skipped

    def __repr__(self):
        return "Verdict(ok=%r, category=%r, message=%r)" % (self.ok, self.category, self.message)


def flatten(torch, out):
    """Tensors of a (nested) output; None where something is not a tensor."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        flat = []
        for o in out:
            flat.extend(flatten(torch, o))
        return flat
    return None


def structure_failure(torch, refs, news):
    """A Verdict for outputs that cannot be compared value by value, else None."""
    if news is None:
        return Verdict(False, "incorrect", "bad_output_type", "forward returned something that is not a tensor")
    if len(refs) != len(news):
        return Verdict(False, "incorrect", "output_count_mismatch",
                       "expected %d output tensors, got %d" % (len(refs), len(news)))
    for i, (r, n) in enumerate(zip(refs, news)):
        if not isinstance(n, torch.Tensor):
            return Verdict(False, "incorrect", "bad_output_type",
                           "output %d is %s, not a tensor" % (i, type(n).__name__))
        if tuple(r.shape) != tuple(n.shape):
            return Verdict(False, "incorrect", "shape_mismatch",
                           "output %d shape %s, expected %s" % (i, tuple(n.shape), tuple(r.shape)))
        if r.dtype != n.dtype:
            return Verdict(False, "incorrect", "dtype_mismatch",
                           "output %d dtype %s, expected %s" % (i, n.dtype, r.dtype))
        if n.device != r.device:
            return Verdict(False, "incorrect", "device_mismatch",
                           "output %d on %s, expected %s" % (i, n.device, r.device))
    return None


def _chunks(r, n):
    rflat, nflat = r.reshape(-1), n.reshape(-1)
    for start in range(0, rflat.numel(), CHUNK):
        yield rflat[start:start + CHUNK], nflat[start:start + CHUNK]


def nonfinite_pattern(torch, i, r, n):
    """Compares the NaN/Inf pattern of output i. Returns (failure message or None, number of
    positions where the reference is not finite)."""
    ref_nan = ref_inf = ref_nan_out_finite = ref_inf_out_other = out_nonfinite = 0
    for rc, nc in _chunks(r, n):
        if not (rc.is_floating_point() or rc.is_complex()):
            continue
        rfin, nfin = torch.isfinite(rc), torch.isfinite(nc)
        rnan, rinf = torch.isnan(rc), torch.isinf(rc)
        ref_nan += int(rnan.sum())
        ref_inf += int(rinf.sum())
        out_nonfinite += int(((~nfin) & rfin).sum())
        ref_nan_out_finite += int((rnan & ~torch.isnan(nc)).sum())
        ref_inf_out_other += int((rinf & (nc != rc)).sum())
    if out_nonfinite:
        return "output %d has %d NaN/Inf values where the reference is finite" % (i, out_nonfinite), ref_nan + ref_inf
    if ref_nan_out_finite:
        return ("the reference is NaN at %d positions of output %d where the output is not NaN" % (
            ref_nan_out_finite, i)), ref_nan + ref_inf
    if ref_inf_out_other:
        return ("the reference is +/-Inf at %d positions of output %d where the output differs" % (
            ref_inf_out_other, i)), ref_nan + ref_inf
    return None, ref_nan + ref_inf


def allclose_compare(torch, refs, news, atol, rtol):
    """The fixed rule on outputs of matching structure and non-finite pattern:
    (ok, message, max abs diff, mean abs diff) over the finite positions."""
    max_diff, means = 0.0, []
    for i, (r, n) in enumerate(zip(refs, news)):
        total, close = 0.0, True
        for rc, nc in _chunks(r, n):
            rf, nf = rc.double(), nc.double()
            both = torch.isfinite(rf) & torch.isfinite(nf)
            diff = torch.where(both, (nf - rf).abs(), torch.zeros_like(rf))
            if diff.numel():
                max_diff = max(max_diff, float(diff.max()))
                total += float(diff.sum())
            close = close and bool(torch.allclose(nc, rc, atol=atol, rtol=rtol, equal_nan=True))
        means.append(total / max(1, r.numel()))
        mean = sum(means) / len(means)
        if not close:
            return False, "output %d differs: max abs diff %.6g, mean abs diff %.6g (atol=%g, rtol=%g)" % (
                i, max_diff, mean, atol, rtol), max_diff, mean
    return True, "", max_diff, (sum(means) / len(means) if means else 0.0)


def compare(torch, ref_out, new_out, atol, rtol):
    """The fixed rule: (ok, category, message, max_abs_diff, mean_abs_diff)."""
    refs, news = flatten(torch, ref_out), flatten(torch, new_out)
    bad = structure_failure(torch, refs, news)
    if bad is not None:
        return False, bad.category, bad.message, None, None
    for i, (r, n) in enumerate(zip(refs, news)):
        message, _ = nonfinite_pattern(torch, i, r, n)
        if message:
            return False, "non_finite", message, None, None
    ok, message, md, mean = allclose_compare(torch, refs, news, atol, rtol)
    return ok, ("" if ok else "value_mismatch"), message, md, mean


def run_to_run_difference(torch, first, second, unit):
    """Compares two runs of the reference on the same inputs. Returns None when they agree within
    rounding, else a message saying where they differ.

    A reference that draws random numbers in forward (nn.Dropout with p > 0 in training mode, which
    is how KernelBench runs models; torch.rand in forward) cannot be checked: no output can match a
    mask that changes every call. Worse, its float64 run draws another mask, so the evidence rule's
    err_ref measures the randomness, and K times that lets a wrong output through (a constant
    softmax passed KernelBench's 66_Matmul_Dropout_Softmax). Run-to-run differences from rounding
    (atomics, another algorithm picked) stay within K * FLOOR_ULPS roundings of the largest value."""
    a, b = flatten(torch, first), flatten(torch, second)
    if a is None or b is None or len(a) != len(b):
        return "two runs of the reference on the same inputs returned different structures"
    for i, (x, y) in enumerate(zip(a, b)):
        if tuple(x.shape) != tuple(y.shape) or x.dtype != y.dtype:
            return "output %d of two reference runs on the same inputs has shapes %s and %s" % (
                i, tuple(x.shape), tuple(y.shape))
        if not x.is_floating_point():
            if not torch.equal(x, y):
                return "output %d (%s) of two reference runs on the same inputs differs at %d positions" % (
                    i, x.dtype, int((x != y).sum()))
            continue
        worst, largest, pattern = 0.0, 0.0, 0
        for xc, yc in _chunks(x, y):
            xd, yd = xc.double(), yc.double()
            fx, fy = torch.isfinite(xd), torch.isfinite(yd)
            pattern += int((fx != fy).sum()) + int((~fx & ~fy & (torch.isnan(xd) != torch.isnan(yd))).sum())
            both = fx & fy
            if bool(both.any()):
                worst = max(worst, float((xd - yd).abs()[both].max()))
                largest = max(largest, float(xd.abs()[both].max()))
        bound = EVIDENCE_K * FLOOR_ULPS * unit * largest
        if pattern or worst > bound:
            return ("output %d of two reference runs on the same inputs differs by up to %.3g (largest value %.3g%s): "
                    "the reference is not deterministic (dropout in training mode, random numbers drawn in forward, "
                    "or state it keeps between calls that kbrun does not restore: its modules' buffers and tensor "
                    "and number attributes are restored before the second run, tensors in lists or dicts are not), "
                    "so no output can be checked against it" % (
                        i, worst, largest, ", and in its NaN/Inf pattern" if pattern else ""))
    return None


def _to_float64(torch, values):
    return [v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v for v in values]


def evidence_errors(torch, expected, out, ref64):
    """Distances of the reference's and the candidate's output to the float64 result, over
    the positions where all three are finite: max and mean of each, max|ref64|, count."""
    e = {"err_reference": 0.0, "err_candidate": 0.0, "sum_reference": 0.0, "sum_candidate": 0.0,
         "max_abs_reference": 0.0, "sum_abs_reference": 0.0, "count": 0}
    for (rc, nc), (r64c, _) in zip(_chunks(expected, out), _chunks(ref64, ref64)):
        r64 = r64c.double()
        finite = torch.isfinite(r64) & torch.isfinite(rc) & torch.isfinite(nc)
        zero = torch.zeros_like(r64)
        err_ref = torch.where(finite, (rc.double() - r64).abs(), zero)
        err_new = torch.where(finite, (nc.double() - r64).abs(), zero)
        mag = torch.where(finite, r64.abs(), zero)
        if not r64.numel():
            continue
        e["err_reference"] = max(e["err_reference"], float(err_ref.max()))
        e["err_candidate"] = max(e["err_candidate"], float(err_new.max()))
        e["max_abs_reference"] = max(e["max_abs_reference"], float(mag.max()))
        e["sum_reference"] += float(err_ref.sum())
        e["sum_candidate"] += float(err_new.sum())
        e["sum_abs_reference"] += float(mag.sum())
        e["count"] += int(finite.sum())
    n = max(1, e["count"])
    return {"err_reference": e["err_reference"], "err_candidate": e["err_candidate"],
            "mean_err_reference": e["sum_reference"] / n, "mean_err_candidate": e["sum_candidate"] / n,
            "max_abs_reference": e["max_abs_reference"], "mean_abs_reference": e["sum_abs_reference"] / n}


def ratio(a, b):
    """a / b for the report; None where b is 0 (an exact reference)."""
    return a / b if b > 0 else None


class Judge:
    """Judges the outputs of one run's checked calls by one rule (see the module's doc).

    model: the reference Model already on its device and in its precision; the evidence
    rule deep-copies it to float64 here (the caller's model is not changed).
    """

    def __init__(self, torch, rule, precision, model, device, atol=None, rtol=None):
        self.torch = torch
        self.rule = rule if rule in RULES else "evidence"
        self.precision = precision
        self.device = device
        self.atol, self.rtol = fixed_tolerances(self.rule, precision, atol, rtol)
        self.unit = UNIT_ROUNDOFF.get(precision, UNIT_ROUNDOFF["fp32"])
        self.model64 = None
        self.fp64_note = None
        self.worst = None              # stats of the check closest to failing (evidence rule)
        self.worst_relative_reference = 0.0  # the trials' largest err_ref / max|ref64|
        self.worst_absolute_reference = 0.0  # the trials' largest err_ref
        self.max_abs_diff = None
        self.mean_abs_diffs = []
        self.skipped = []              # labels of extra draws skipped (reference not finite)
        self.judged = 0
        if self.rule == "evidence":
            try:
                self.model64 = copy.deepcopy(model).double()
            except Exception as exc:  # e.g. out of memory, a module that cannot be copied
                self._fall_back("cannot build a float64 copy of the reference: %s: %s" % (type(exc).__name__, exc))

    def _fall_back(self, why):
        self.model64 = None
        self.fp64_note = why[:500]
        if self.device is not None and getattr(self.device, "type", "") == "cuda":
            self.torch.cuda.empty_cache()

    @property
    def uses_fp64(self):
        return self.model64 is not None

    def floor(self, max_abs_reference):
        return FLOOR_ULPS * self.unit * max_abs_reference

    def reference64_ahead(self, inputs):
        """The float64 reference's outputs for `inputs`, run now (while the candidate's call runs
        in its own process) for a later judge(..., ahead=this): the outputs, or the exception."""
        if not self.uses_fp64:
            return None
        try:
            return self._run64(inputs)
        except Exception as exc:
            return exc

    def _run64(self, inputs):
        torch = self.torch
        with torch.no_grad():
            ref64 = self.model64(*_to_float64(torch, inputs))
        flat = flatten(torch, ref64)
        if flat is None:
            raise TypeError("the float64 reference returned no tensors")
        return flat

    def _reference64(self, inputs, ahead=None):
        """The float64 reference's outputs (`ahead`, or run now); None after falling back."""
        if ahead is None:
            ahead = self.reference64_ahead(inputs)
        if isinstance(ahead, Exception):
            self._fall_back("the float64 reference failed: %s: %s" % (type(ahead).__name__, ahead))
            return None
        return ahead

    def _record_diffs(self, md, mean):
        if md is not None:
            self.max_abs_diff = max(self.max_abs_diff or 0.0, md)
            self.mean_abs_diffs.append(mean)

    @property
    def mean_abs_diff(self):
        return sum(self.mean_abs_diffs) / len(self.mean_abs_diffs) if self.mean_abs_diffs else None

    def _comparable(self, expected, out, skip_label=None):
        """(refs, news, verdict): the outputs as tensors, and a verdict where they cannot be
        compared value by value (structure, or NaN/Inf where the reference has none). With
        `skip_label` (an extra draw), a reference that is NaN/Inf skips the check instead: the
        rescaled inputs left the problem's domain (log of a negative number...)."""
        torch = self.torch
        refs, news = flatten(torch, expected), flatten(torch, out)
        bad = structure_failure(torch, refs, news)
        if bad is not None:
            return refs, news, bad
        for i, (r, n) in enumerate(zip(refs, news)):
            message, ref_nonfinite = nonfinite_pattern(torch, i, r, n)
            if ref_nonfinite and skip_label is not None:
                self.skipped.append(skip_label)
                return refs, news, Verdict(True, "correct", "", "skipped: the reference is NaN/Inf at %d positions of "
                                           "output %d (inputs outside the problem's domain)" % (ref_nonfinite, i),
                                           skipped=True)
            if message:
                return refs, news, Verdict(False, "incorrect", "non_finite", message)
        return refs, news, None

    def judge(self, inputs, expected, out, kind="trial", label="", ahead=None):
        """Judges one checked call: inputs (the reference's own copies, unmodified), the
        reference's output and the candidate's; `ahead`: reference64_ahead(inputs)'s answer."""
        torch = self.torch
        refs, news, early = self._comparable(expected, out, (label or "extra draw") if kind == "extra" else None)
        if early is not None:
            return early
        self.judged += 1
        ref64 = self._reference64(inputs, ahead) if self.uses_fp64 else None
        if ref64 is not None and len(ref64) != len(refs):
            self._fall_back("the float64 reference returned %d outputs, not %d" % (len(ref64), len(refs)))
            ref64 = None
        if ref64 is None:
            ok, message, md, mean = allclose_compare(torch, refs, news, self.atol, self.rtol)
            self._record_diffs(md, mean)
            stats = {"max_abs_diff": md, "mean_abs_diff": mean}
            return Verdict(True, stats=stats) if ok else Verdict(False, "incorrect", "value_mismatch", message, stats)
        return self._judge_evidence(refs, news, ref64, kind)

    def _judge_evidence(self, refs, news, ref64, kind):
        torch = self.torch
        all_stats = []
        for i, (r, n, r64) in enumerate(zip(refs, news, ref64)):
            if not r.is_floating_point():
                # Integer or boolean outputs have no rounding error: they must be equal.
                if not torch.equal(r, n):
                    return Verdict(False, "incorrect", "value_mismatch",
                                   "output %d (%s) differs from the reference at %d positions" % (
                                       i, r.dtype, int((r != n).sum())))
                continue
            if tuple(r64.shape) != tuple(r.shape):
                self._fall_back("the float64 reference's output %d has shape %s" % (i, tuple(r64.shape)))
                ok, message, md, mean = allclose_compare(torch, refs, news, self.atol, self.rtol)
                self._record_diffs(md, mean)
                return Verdict(True) if ok else Verdict(False, "incorrect", "value_mismatch", message)
            e = evidence_errors(torch, r, n, r64)
            floor = self.floor(e["max_abs_reference"])
            mean_floor = self.floor(e["mean_abs_reference"])
            bound = EVIDENCE_K * max(e["err_reference"], floor)
            mean_bound = EVIDENCE_K * max(e["mean_err_reference"], mean_floor)
            e.update(output=i, bound=bound, mean_bound=mean_bound, floor=floor,
                     error_ratio=ratio(e["err_candidate"], e["err_reference"]),
                     mean_error_ratio=ratio(e["mean_err_candidate"], e["mean_err_reference"]),
                     margin=max(e["err_candidate"] / bound if bound > 0 else
                                (0.0 if e["err_candidate"] == 0 else math.inf),
                                e["mean_err_candidate"] / mean_bound if mean_bound > 0 else
                                (0.0 if e["mean_err_candidate"] == 0 else math.inf)))
            all_stats.append(e)
            if kind == "trial" and e["max_abs_reference"] > 0:
                self.worst_relative_reference = max(self.worst_relative_reference,
                                                    e["err_reference"] / e["max_abs_reference"])
            if kind == "trial":  # drawn as the timed calls are (extra draws are rescaled)
                self.worst_absolute_reference = max(self.worst_absolute_reference, e["err_reference"])
            if self.worst is None or e["margin"] > self.worst["margin"]:
                self.worst = dict(e)
            self._record_diffs(e["err_candidate"], e["mean_err_candidate"])
            if e["err_candidate"] > bound or e["mean_err_candidate"] > mean_bound:
                return self._evidence_failure(e)
        stats = max(all_stats, key=lambda s: s["margin"]) if all_stats else {}
        return Verdict(True, stats=stats)

    def _evidence_failure(self, e):
        relative = e["err_candidate"] / e["max_abs_reference"] if e["max_abs_reference"] > 0 else math.inf
        figures = ("max error %.3g against a float64 run of the reference, %s the reference's own error %.3g "
                   "(allowed %g x that, or x the floor %.3g); mean errors %.3g vs %.3g" % (
                       e["err_candidate"], ("%.3gx" % e["error_ratio"]) if e["error_ratio"] is not None else "vs",
                       e["err_reference"], EVIDENCE_K, e["floor"], e["mean_err_candidate"], e["mean_err_reference"]))
        spread = e["mean_err_candidate"] > e["mean_bound"]
        if relative <= DOWNGRADE_MAX_RELATIVE and spread and e["err_candidate"] > 0:
            return Verdict(False, "incorrect", "precision_downgrade",
                           "output %d: %s; errors everywhere of %.2g relative to the largest value, as arithmetic in a "
                           "lower precision (TF32, fp16, bf16) or an approximation gives: compute in %s" % (
                               e["output"], figures, relative, self.precision), e)
        return Verdict(False, "incorrect", "value_mismatch", "output %d differs: %s" % (e["output"], figures), e)

    def timed_bound(self, max_abs_expected):
        """The largest |candidate - reference| a timed call may show. Timed calls are compared
        with the run's own reference only (no float64 run in the timing loop): |out - ref| <=
        |out - ref64| + |ref64 - ref| <= (K + 1) * max(err_ref, floor), with err_ref estimated from
        the trials (drawn as the timed calls are) two ways, the larger kept: their largest relative
        reference error times this call's largest value, and their largest absolute one. The
        relative estimate alone fails honest kernels where rounding comes from larger intermediate
        values than the output keeps: after a ReLU or a subtraction, a draw whose largest output is
        100x smaller than the trials' keeps the same absolute rounding (measured: an honest fused
        matmul-subtract-ReLU failed one run in five)."""
        return (EVIDENCE_K + 1) * max(self.worst_relative_reference * max_abs_expected, self.worst_absolute_reference,
                                      self.floor(max_abs_expected))

    def judge_timed(self, expected, out):
        """Judges a checked timed call against the run's own reference only."""
        torch = self.torch
        if self.uses_fp64 and self.judged > 0 and self._timed_pass_fast(expected, out):
            return Verdict(True)
        refs, news, early = self._comparable(expected, out)
        if early is not None:
            return early
        if not self.uses_fp64 or self.judged == 0:
            ok, message, md, mean = allclose_compare(torch, refs, news, self.atol, self.rtol)
            return Verdict(True) if ok else Verdict(False, "incorrect", "value_mismatch", message)
        for i, (r, n) in enumerate(zip(refs, news)):
            if not r.is_floating_point():
                if not torch.equal(r, n):
                    return Verdict(False, "incorrect", "value_mismatch", "output %d (%s) differs" % (i, r.dtype))
                continue
            worst, largest = 0.0, 0.0
            for rc, nc in _chunks(r, n):
                rf, nf = rc.double(), nc.double()
                finite = torch.isfinite(rf) & torch.isfinite(nf)
                zero = torch.zeros_like(rf)
                if rf.numel():
                    worst = max(worst, float(torch.where(finite, (nf - rf).abs(), zero).max()))
                    largest = max(largest, float(torch.where(finite, rf.abs(), zero).max()))
            bound = self.timed_bound(largest)
            if worst > bound:
                return Verdict(False, "incorrect", "value_mismatch",
                               "output %d: max abs diff %.3g from the reference, above the bound %.3g that the "
                               "correctness trials allow ((%g + 1) x the larger of their relative reference error "
                               "%.3g, or the floor, x max|ref| %.3g and their absolute reference error %.3g)"
                               % (i, worst, bound, EVIDENCE_K, self.worst_relative_reference, largest,
                                  self.worst_absolute_reference))
        return Verdict(True)

    def _timed_pass_fast(self, expected, out):
        """True when every output is finite and within judge_timed's bound, found in two passes
        over each output and one synchronisation (a timed call on a GB-sized output took 180 ms
        the careful way; there are 130 of them per run). False sends the call the careful way,
        which decides: this never fails a call. The difference is taken in the outputs' own
        precision (float32 at least), so the pass needs a margin of 2^-20 beyond its rounding."""
        torch = self.torch
        refs, news = flatten(torch, expected), flatten(torch, out)
        if structure_failure(torch, refs, news) is not None:
            return False
        maxima, spans = [], []  # per chunk: max|out - ref|, max|ref|; per output: its run of maxima
        for r, n in zip(refs, news):
            if not r.is_floating_point() or r.numel() == 0:
                return False
            work = r.dtype if r.dtype in (torch.float32, torch.float64) else torch.float32
            first = len(maxima)
            for rc, nc in _chunks(r, n):
                # max() propagates NaN; Inf - Inf is NaN: any non-finite value fails the test below.
                maxima.append((nc.to(work) - rc.to(work)).abs().max().double())
                maxima.append(rc.abs().max().double())
            spans.append((first, len(maxima)))
        values = torch.stack(maxima).tolist()
        if not all(math.isfinite(v) for v in values):
            return False
        return all(max(values[a:b:2]) * (1.0 + 2.0 ** -20) <= self.timed_bound(max(values[a + 1:b:2]))
                   for a, b in spans)

    def summary(self):
        """For result.json: the rule and its figures."""
        s = {"rule": self.rule, "atol": self.atol, "rtol": self.rtol, "checks_judged": self.judged,
             "skipped_extra_draws": list(self.skipped),
             "max_abs_diff": self.max_abs_diff, "mean_abs_diff": self.mean_abs_diff}
        if self.rule == "evidence":
            s.update(k=EVIDENCE_K, floor_ulps=FLOOR_ULPS, unit_roundoff=self.unit, fp64_reference=self.uses_fp64,
                     fp64_note=self.fp64_note, worst_relative_reference_error=self.worst_relative_reference,
                     worst_absolute_reference_error=self.worst_absolute_reference)
            if self.worst is not None:
                w = self.worst
                s.update(err_candidate=w["err_candidate"], err_reference=w["err_reference"],
                         error_ratio=w["error_ratio"], mean_err_candidate=w["mean_err_candidate"],
                         mean_err_reference=w["mean_err_reference"], mean_error_ratio=w["mean_error_ratio"],
                         floor=w["floor"])
        return _finite_json(s)


def _finite_json(value):
    """JSON without Infinity/NaN (the supervisor's parser rejects them): None instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_json(v) for v in value]
    return value
