"""Where a batch's GPU-lane seconds go, stage by stage: medians over each results folder's samples
(every `<problem>/result_*.json`), one column per folder, from result.json's stages (the worker's
side, and the checker's under correctness.checker.stage_times; docs/RESULT_SCHEMA.md). Stages a
build does not report are left blank.
Usage: python3 bench/lane_stages.py RESULTS_DIR...   (bench/lane_ab.sh runs it on its runs)
"""
import glob
import json
import os
import statistics
import sys

# (row label, where in a result) where is: "top.<key>" (the batch's record), "stages.<key>",
# "checker.<key>" (the checker's stage_times) or "<block>.<key>" for a *_detail block.
ROWS = [("GPU lane (batch)", "top.gpu"), ("run worker", "stages.run_worker_total_s"),
        ("CUDA init", "stages.run_cuda_init_s"), ("checker CUDA init", "checker.import_torch_s"),
        ("waited for the lane (ahead)", "stages.run_waited_for_lane_s"),
        ("building models", "stages.run_load_models_s"), ("correctness", "stages.correctness_s"),
        ("timing", "stages.timing_s"), ("after the result line", "stages.run_worker_after_result_s")]
DETAILS = [("correctness, worker", "stages", "correctness_detail"),
           ("correctness, checker", "checker", "correctness_detail"),
           ("timing, worker", "stages", "timing_detail"), ("timing, checker", "checker", "timing_detail")]


def samples(folder):
    out = []
    for path in sorted(glob.glob(os.path.join(folder, "*", "result_*.json"))):
        with open(path) as f:
            record = json.load(f)
        result = record.get("eval", record)
        checker = ((result.get("correctness") or {}).get("checker") or {}).get("stage_times") or {}
        out.append({"top": {"gpu": ((record.get("stages") or {}).get("gpu") or {}).get("seconds")},
                    "stages": result.get("stages") or {}, "checker": checker})
    return out


def value(sample, where):
    block, key = where.split(".", 1)
    v = sample[block].get(key)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def median(values):
    values = [v for v in values if v is not None]
    return "%.3f" % statistics.median(values) if values else "-"


def main(folders):
    runs = [(os.path.basename(os.path.dirname(os.path.abspath(f))) or f, samples(f)) for f in folders]
    width = max([len(label) for label, _ in ROWS] + [28])
    print("%-*s %s" % (width, "median seconds", " ".join("%12s" % name[:12] for name, _ in runs)))
    print("%-*s %s" % (width, "samples", " ".join("%12d" % len(s) for _, s in runs)))
    for label, where in ROWS:
        print("%-*s %s" % (width, label, " ".join("%12s" % median([value(x, where) for x in s]) for _, s in runs)))
    for title, block, key in DETAILS:
        names = sorted({k for _, s in runs for x in s for k in (x[block].get(key) or {}) if k != "rounds"})
        if not names:
            continue
        print(title)
        for name in names:
            cells = [median([(x[block].get(key) or {}).get(name) for x in s]) for _, s in runs]
            print("%-*s %s" % (width, "  " + name, " ".join("%12s" % c for c in cells)))
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
