#!/usr/bin/env python3
"""The batch makespan table from kbrun batch results folders.

Usage: makespan_table.py [--cores N] PIPELINED_RESULTS [BY_PROBLEM_RESULTS]

For each folder, from summary.json and timeline.jsonl (docs/RESULTS.md):
  makespan   the batch's wall time (its sessions summed; a resumed batch counts every session)
  llm        LLM seconds (sum of llm stages) / --llm-concurrency
  compile    compile CPU-seconds (timeline cpu_s: the compile worker and its compilers) / cores
  gpu        GPU-stage seconds / GPU lanes
  chain      the longest one sample's stages take in sequence (its LLM call, compile and GPU run
             cannot overlap each other; their seconds are those measured in the batch, so a compile
             slowed by the batch's load counts as slow)
  floor      the largest of the four; ratio = makespan / floor (target: <= 1.3)
A by-problem run cut short by the device time limit (state interrupted) is reported as a lower
bound, with a projection: the mean time of its finished problems times the number of problems.
"""
import argparse
import json
import os
import sys


def load(results):
    with open(os.path.join(results, "summary.json")) as f:
        summary = json.load(f)
    events = []
    path = os.path.join(results, "timeline.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    events.append(json.loads(line))
                except ValueError:
                    pass  # a line cut by a crash (docs/RESULTS.md)
    return summary, events


def measure(results, cores):
    summary, events = load(results)
    config = summary.get("config", {})
    sessions = summary.get("sessions") or []
    makespan = sum((s.get("ended_at") or summary.get("updated_at", 0)) - s["started_at"] for s in sessions)
    if not sessions and events:
        makespan = max(e["end"] for e in events) - min(e["start"] for e in events)
    stage = {"llm": 0.0, "compile": 0.0, "gpu": 0.0}
    count = {"llm": 0, "compile": 0, "gpu": 0}
    cpu = 0.0
    cpu_missing = 0
    chains = {}  # (problem, sample, attempt) -> its stages' seconds
    for e in events:
        if e.get("stage") in stage:
            seconds = e.get("seconds", e["end"] - e["start"])
            stage[e["stage"]] += seconds
            count[e["stage"]] += 1
            key = (e.get("problem"), e.get("sample"), e.get("attempt"))
            chains[key] = chains.get(key, 0.0) + seconds
        if e.get("stage") == "compile":
            if "cpu_s" in e:
                cpu += e["cpu_s"]
            else:
                cpu_missing += 1  # a timeline from before cpu_s was recorded
    concurrency = max(1, int(config.get("llm_concurrency", 1)))
    lanes = max(1, len(config.get("gpu_lanes") or [0]))
    terms = {"llm": stage["llm"] / concurrency, "compile": cpu / cores, "gpu": stage["gpu"] / lanes,
             "chain": max(chains.values(), default=0.0)}
    longest = max(chains, key=chains.get) if chains else None
    floor = max(terms.values())
    problems = summary.get("problems", [])
    finished = [p for p in problems if p.get("phase") in ("solved", "unsolved")]
    durations = [p["finished_at"] - p["started_at"] for p in finished if p.get("finished_at") and p.get("started_at")]
    return {
        "results": results, "schedule": config.get("schedule", "pipelined"), "state": summary.get("state"),
        "makespan": makespan, "terms": terms, "floor": floor, "ratio": makespan / floor if floor > 0 else float("nan"),
        "stage": stage, "count": count, "cpu": cpu, "cpu_missing": cpu_missing, "concurrency": concurrency,
        "lanes": lanes, "longest_sample": longest, "problems": len(problems), "finished": len(finished),
        "solved": sum(1 for p in problems if p.get("phase") == "solved"),
        "projected": (sum(durations) / len(durations) * len(problems)) if durations else None,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", type=int, default=os.cpu_count(), help="CPU cores of the machine that ran the batch")
    ap.add_argument("runs", nargs="+")
    a = ap.parse_args()
    rows = [measure(r, a.cores) for r in a.runs]
    print("%-11s %-11s %9s %9s %9s %9s %9s %9s %7s %s" % (
        "schedule", "state", "makespan", "llm/conc", "cpu/cores", "gpu/lanes", "chain", "floor", "ratio", "problems"))
    for m in rows:
        t = m["terms"]
        print("%-11s %-11s %8.1fs %8.1fs %8.1fs %8.1fs %8.1fs %8.1fs %6.2fx %d/%d done, %d solved" % (
            m["schedule"], m["state"], m["makespan"], t["llm"], t["compile"], t["gpu"], t["chain"], m["floor"],
            m["ratio"], m["finished"], m["problems"], m["solved"]))
    for m in rows:
        print("%s: %d llm calls %.1f s (concurrency %d), %d compiles %.1f s wall / %.1f CPU-s (%d cores), "
              "%d gpu runs %.1f s (%d lane%s)%s" % (
                  m["schedule"], m["count"]["llm"], m["stage"]["llm"], m["concurrency"], m["count"]["compile"],
                  m["stage"]["compile"], m["cpu"], a.cores, m["count"]["gpu"], m["stage"]["gpu"], m["lanes"],
                  "" if m["lanes"] == 1 else "s",
                  ", %d compiles without cpu_s" % m["cpu_missing"] if m["cpu_missing"] else ""))
    pipe = next((m for m in rows if m["schedule"] == "pipelined"), None)
    seq = next((m for m in rows if m["schedule"] == "by-problem"), None)
    if pipe:
        binding = max(pipe["terms"], key=pipe["terms"].get)
        print("pipelined makespan %.1f s = %.2fx the floor %.1f s (bound by %s; target <= 1.3x)" % (
            pipe["makespan"], pipe["ratio"], pipe["floor"], binding))
    if pipe and seq:
        if seq["state"] == "finished":
            print("by-problem makespan %.1f s = %.2fx the pipelined one"
                  % (seq["makespan"], seq["makespan"] / pipe["makespan"]))
        else:
            proj = seq["projected"]
            print("by-problem makespan >= %.1f s (%s after %d of %d problems; >= %.2fx the pipelined one)%s" % (
                seq["makespan"], seq["state"], seq["finished"], seq["problems"], seq["makespan"] / pipe["makespan"],
                "; projected %.1f s = %.2fx from its finished problems' mean" % (proj, proj / pipe["makespan"])
                if proj else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
