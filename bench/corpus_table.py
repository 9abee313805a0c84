#!/usr/bin/env python3
"""The corpus benchmark's table, from the results folders of bench/corpus_bench.sh (one per level).

Usage: corpus_table.py [--corpus DIR] [--rows FILE] [--cores N] RESULTS [RESULTS...]

Prints, per results folder (kbrun batch over corpus pairs, 1 sample each; docs/RESULTS.md):
  state          the batch's state, and how many pairs have a result
  statuses       result counts by status, and by status/category for the failures
  builds         how many candidates build an extension, and where: at import ("no (import)":
                 module-level load_inline; "import on a GPU": only when it sees one, made ahead by
                 build.prebuild.gpu_import), in ModelNew.__init__ or on the first call, made ahead in
                 the compile phase (build.prebuild.builds, build.prebuild.deferred.built), on the
                 first call but not made ahead (deferred.skipped says why), or only in the run phase
                 (fallback.builds); how many builds failed in the compile phase (build.extensions[].error)
  gpu lane       the run worker's time inside load_inline/load (stages.run_build_s: builds or
                 loads on the GPU lane) as a share of the lane's busy time (the gpu stages of
                 timeline.jsonl) and of the run workers' time; the same for building the models
                 (stages.run_load_models_s, where builds in __init__ land when they are not ready)
  compile        compile-phase wall seconds per candidate (stages.compile_worker_total_s):
                 median, 90th percentile, max, and the CPU seconds (stages.compile_cpu_s)
  makespan       against its floor (bench/makespan_table.py: max of compile CPU-s / cores,
                 GPU seconds / lanes and the longest sample's stages in sequence; target <= 1.3x)
  internal       every internal_error (kbrun failed on a sample, not the candidate; target: none),
                 and the worker_failed/checker_failed results, which may be kbrun's too
With --corpus, the speedups the corpus's authors claim (reported.csv, score_default) join the
rows; with --rows FILE, one Markdown row per candidate goes to FILE: problem, status, category,
speedup, claimed speedup, compile s, lazy build, run-phase build s, fallback_reason.
"""
import argparse
import csv
import glob
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import makespan_table  # noqa: E402  (beside this file)


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def claims(corpus):
    """{(level, name): claimed speedup over eager PyTorch} from the corpus's reported.csv."""
    out = {}
    path = os.path.join(corpus, "reported.csv") if corpus else ""
    if not path or not os.path.exists(path):
        return out
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                out[(int(row["level"]), row["kb_name"])] = float(row["score_default"]) if row["score_default"] else None
            except (KeyError, ValueError):
                continue
    return out


def level_of(results, summary):
    for text in (str((summary or {}).get("config", {}).get("problems_dir", "")), os.path.abspath(results)):
        m = re.search(r"level(\d+)/?$", text.rstrip("/"))
        if m:
            return int(m.group(1))
    return None


def last_result(folder):
    """The result of the highest sample index in a problem's folder (one sample each here)."""
    best, best_n = None, -1
    for path in glob.glob(os.path.join(folder, "result_*.json")):
        m = re.search(r"result_(\d+)\.json$", path)
        if m and int(m.group(1)) > best_n:
            r = read_json(path)
            if r is not None:
                best, best_n = r, int(m.group(1))
    return best


def num(v, default=0.0):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else default


def candidate_row(name, r, claimed):
    """One candidate's figures from its batch result (result_N.json: the eval result under "eval")."""
    ev = r.get("eval") or {}
    err = r.get("error") or ev.get("error") or {}
    build = ev.get("build") or {}
    pre = build.get("prebuild") or {}
    deferred = pre.get("deferred") or {}
    stages = ev.get("stages") or {}
    fallback = ev.get("fallback") or {}
    exts = build.get("extensions") or []
    lazy_builds = int(num(pre.get("builds")))
    run_builds = fallback.get("builds") or []
    tried_ahead = int(num(deferred.get("built"))) + sum(
        1 for k in deferred.get("skipped") or [] if str(k.get("reason", "")).startswith("build:"))
    if tried_ahead:
        lazy = "first call, made ahead"
    elif num((pre.get("gpu_import") or {}).get("builds")):
        lazy = "import on a GPU, made ahead"  # `if torch.cuda.is_available(): load_inline(...)` at import
    elif lazy_builds:
        lazy = "__init__"
    elif num(deferred.get("found")):
        lazy = "first call, not made ahead"  # deferred.skipped says why
    elif run_builds and not exts:
        lazy = "run phase only"
    elif exts:
        lazy = "no (import)"
    else:
        lazy = "no build"
    return {
        "problem": name,
        "status": r.get("status", "?"),
        "category": err.get("category", "") if isinstance(err, dict) else "",
        "message": (err.get("message", "") if isinstance(err, dict) else str(err))[:300],
        "speedup": r.get("speedup"),
        "claimed": claimed,
        "compile_s": num(stages.get("compile_worker_total_s"), None),
        "compile_cpu_s": num(stages.get("compile_cpu_s"), None),
        "has_build": bool(exts) or lazy_builds > 0 or bool(num(deferred.get("found"))) or bool(run_builds),
        "lazy": lazy,
        "lazy_builds": lazy_builds,
        "compile_build_failed": sum(1 for e in exts if isinstance(e, dict) and e.get("error")),
        "run_build_s": num(stages.get("run_build_s"), None),
        "run_load_models_s": num(stages.get("run_load_models_s"), None),
        "run_worker_s": num(stages.get("run_worker_total_s"), None),
        "gpu_stage_s": num(((r.get("stages") or {}).get("gpu") or {}).get("seconds"), None),
        "fallback_reason": fallback.get("fallback_reason") or "",
    }


def percentile(values, p):
    values = sorted(values)
    if not values:
        return None
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * (len(values) - 1)))))
    return values[k]


def fmt_s(v):
    return "-" if v is None else "%.1f" % v


def fmt_x(v):
    return "-" if v is None else "%.2fx" % v


def table(results, corpus_claims, cores, out):
    summary = read_json(os.path.join(results, "summary.json"))
    level = level_of(results, summary)
    # summary.json lists the problems of the last session's range; a batch resumed over other ranges
    # has the earlier ones' folders too.
    names = {p["name"] for p in (summary or {}).get("problems", []) if p.get("name")}
    names |= {d for d in os.listdir(results) if glob.glob(os.path.join(results, d, "result_*.json"))}
    names = sorted(names, key=lambda n: (int(n.split("_")[0]) if n.split("_")[0].isdigit() else 0, n))
    rows = []
    for name in names:
        r = last_result(os.path.join(results, name))
        if r is not None:
            rows.append(candidate_row(name, r, corpus_claims.get((level, name))))
    p = out.write
    p("== %s (level %s): state %s, %d of %d pairs have a result\n" % (
        results, level if level is not None else "?", (summary or {}).get("state", "no summary.json"),
        len(rows), len(names)))
    if not rows:
        return rows

    statuses = {}
    categories = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
        if row["status"] != "correct":
            key = "%s/%s" % (row["status"], row["category"] or "-")
            categories[key] = categories.get(key, 0) + 1
    p("statuses:   %s\n" % ", ".join("%s %d" % kv for kv in sorted(statuses.items(), key=lambda kv: -kv[1])))
    failures = ", ".join("%s %d" % kv for kv in sorted(categories.items(), key=lambda kv: -kv[1]))
    p("failures:   %s\n" % (failures or "none"))
    reasons = {}
    for row in rows:
        if row["fallback_reason"]:
            reasons[row["fallback_reason"]] = reasons.get(row["fallback_reason"], 0) + 1
    if reasons:
        p("fallback:   %s (why none of the candidate's own code ran)\n" % ", ".join(
            "%s %d" % kv for kv in sorted(reasons.items(), key=lambda kv: -kv[1])))

    built = [row for row in rows if row["has_build"]]
    kinds = {}
    for row in built:
        kinds[row["lazy"]] = kinds.get(row["lazy"], 0) + 1
    lazy = [row for row in built if row["lazy"] not in ("no (import)", "no build")]
    failed = [row for row in built if row["compile_build_failed"]]
    p("builds:     %d of %d candidates build an extension, %d of them lazily; by where the build happens: %s; "
      "%d with a build that failed in the compile phase\n" % (
          len(built), len(rows), len(lazy),
          ", ".join("%s %d" % kv for kv in sorted(kinds.items(), key=lambda kv: -kv[1])) or "-", len(failed)))

    ran = [row for row in rows if row["run_worker_s"]]
    run_build = sum(num(row["run_build_s"]) for row in ran)
    run_models = sum(num(row["run_load_models_s"]) for row in ran)
    run_total = sum(num(row["run_worker_s"]) for row in ran)
    gpu_busy = sum(num(row["gpu_stage_s"]) for row in rows)
    if ran:
        share = run_build / gpu_busy if gpu_busy > 0 else None
        p("gpu lane:   %.1f s of %.1f s busy (%s) inside load_inline/load (run_build_s; target <= 5%%), %.1f%% of "
          "the run workers' %.1f s; building models %.1f s (%.1f%%)\n" % (
              run_build, gpu_busy, "-" if share is None else "%.1f%%" % (100 * share),
              100 * run_build / run_total if run_total else 0.0, run_total, run_models,
              100 * run_models / run_total if run_total else 0.0))
        worst = sorted(ran, key=lambda row: -num(row["run_build_s"]))[:3]
        if worst and num(worst[0]["run_build_s"]) > 0:
            most = ["%s %.1f s" % (row["problem"], num(row["run_build_s"])) for row in worst
                    if num(row["run_build_s"]) > 0]
            p("            most: %s\n" % ", ".join(most))
    else:
        p("gpu lane:   no run phase yet\n")

    compile_s = [row["compile_s"] for row in rows if row["compile_s"] is not None]
    compile_built = [row["compile_s"] for row in built if row["compile_s"] is not None]
    cpu_s = [row["compile_cpu_s"] for row in rows if row["compile_cpu_s"] is not None]
    if compile_s:
        p("compile:    wall s per candidate median %s, p90 %s, max %s (candidates that build: median %s, max %s); "
          "%.0f CPU-s in all\n" % (
              fmt_s(statistics.median(compile_s)), fmt_s(percentile(compile_s, 90)), fmt_s(max(compile_s)),
              fmt_s(statistics.median(compile_built)) if compile_built else "-",
              fmt_s(max(compile_built)) if compile_built else "-", sum(cpu_s)))

    if summary is not None:
        try:
            m = makespan_table.measure(results, cores)
            binding = max(m["terms"], key=m["terms"].get)
            p("makespan:   %.1f s = %.2fx its floor %.1f s (bound by %s: compile %.1f CPU-s / %d cores, gpu %.1f s / "
              "%d lane%s, longest sample %.1f s (%s); target <= 1.3x)%s\n" % (
                  m["makespan"], m["ratio"], m["floor"], binding, m["cpu"], cores, m["stage"]["gpu"], m["lanes"],
                  "" if m["lanes"] == 1 else "s", m["terms"]["chain"], (m["longest_sample"] or ["-"])[0],
                  "" if (summary.get("state") == "finished") else " (batch not finished: partial)"))
        except (OSError, KeyError, ValueError, ZeroDivisionError) as exc:
            p("makespan:   not computed (%s: %s)\n" % (type(exc).__name__, exc))

    correct = [row for row in rows if row["status"] == "correct" and row["speedup"] is not None]
    if correct:
        faster = sum(1 for row in correct if row["speedup"] >= 1.0)
        paired = [(row["speedup"], row["claimed"]) for row in correct if row["claimed"]]
        p("speedups:   %d correct, %d of them >= 1.0x, median %.2fx%s\n" % (
            len(correct), faster, statistics.median(row["speedup"] for row in correct),
            "; claimed median %.2fx for the same %d" % (statistics.median(c for _, c in paired), len(paired))
            if paired else ""))

    internal = [row for row in rows if row["status"] == "internal_error"]
    suspect = [row for row in rows if row["category"] in ("worker_failed", "checker_failed")]
    p("internal:   %d internal_error (target: none)%s\n" % (
        len(internal), "" if not suspect else "; %d worker_failed/checker_failed (may be kbrun's)" % len(suspect)))
    for row in internal + suspect:
        p("            %s: %s/%s: %s\n" % (row["problem"], row["status"], row["category"], row["message"]))
    log = os.path.join(results, "batch_run.log")
    if os.path.exists(log):
        with open(log, errors="replace") as f:
            lines = [line.rstrip() for line in f if "internal error" in line]
        for line in lines[:10]:
            p("            log: %s\n" % line[:300])
    return rows


def write_rows(path, all_rows):
    with open(path, "w") as f:
        f.write("| level | problem | status | category | speedup | claimed | compile s | lazy build | run build s "
                "| fallback_reason |\n|---|---|---|---|---|---|---|---|---|---|\n")
        for level, rows in all_rows:
            for row in rows:
                f.write("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" % (
                    level if level is not None else "?", row["problem"], row["status"], row["category"] or "",
                    fmt_x(row["speedup"]), fmt_x(row["claimed"]), fmt_s(row["compile_s"]),
                    row["lazy"], fmt_s(row["run_build_s"]),
                    row["fallback_reason"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="the corpus folder (its reported.csv has the claimed speedups)")
    ap.add_argument("--rows", help="write one Markdown row per candidate to this file")
    ap.add_argument("--cores", type=int, default=os.cpu_count(), help="CPU cores of the machine that ran the batch")
    ap.add_argument("results", nargs="+")
    a = ap.parse_args()
    corpus_claims = claims(a.corpus)
    all_rows = []
    for results in a.results:
        rows = table(results, corpus_claims, a.cores, sys.stdout)
        all_rows.append((level_of(results, read_json(os.path.join(results, "summary.json"))), rows))
    if a.rows:
        write_rows(a.rows, all_rows)
        print("rows: %s (%d candidates)" % (a.rows, sum(len(rows) for _, rows in all_rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
