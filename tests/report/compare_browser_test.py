#!/usr/bin/python3
"""kbrun compare --html in a real browser (Debian's chromium, headless): ctest compare_html_browser.

Usage: compare_browser_test.py KBRUN_BINARY

Writes two results trees (A and B: a problem sped up, one slowed down, one fixed, one broken with a
hostile HTML name, one only in B; timing stats in every correct sample), runs
`kbrun compare A B --json --html PAGE`, loads PAGE with `chromium --headless=new --dump-dom` and checks
  - no console message for the page (a canary page proves that they are seen: html_browser_test.py);
  - the numbers on the page are the JSON's: the geomean B/A and its intervals (#geomean-ratio's
    data-*), each problem's row (A and B best speedups, B/A and its timing interval, change), fast_1;
  - the B/A plot has a point per problem correct in both and a whisker per interval, and the
    verdict changes table a row per fixed or broken problem;
  - the hostile name made no element.
Fails (never skips) when chromium is missing.
"""
import html.parser
import json
import os
import subprocess
import sys
import tempfile

from html_browser_test import check_console_is_seen, fail, find_chromium, load

HOSTILE_NAME = "4_<img src=x onerror=alert(1)>"


class Page(html.parser.HTMLParser):
    """Elements' attributes by kind: problem rows, plot points and whiskers, verdict-change rows."""

    def __init__(self):
        super().__init__()
        self.tags = set()
        self.ids = []
        self.table = None
        self.rows = {}  # table id -> [attrs of each <tr data-problem>]
        self.points, self.whiskers = [], []
        self.geomean = None
        self.fast_1 = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "table":
            self.table = a.get("id")
        elif tag == "tr" and "data-problem" in a:
            self.rows.setdefault(self.table, []).append(a)
        elif tag == "circle" and "ratio-point" in a.get("class", ""):
            self.points.append(a)
        elif tag == "line" and "ratio-whisker" in a.get("class", ""):
            self.whiskers.append(a)
        elif a.get("id") == "geomean-ratio":
            self.geomean = a
        elif a.get("id") == "fast-1":
            self.fast_1 = a

    def handle_endtag(self, tag):
        if tag == "table":
            self.table = None


def timing(median):
    return {"median_ms": median, "mean_ms": median * 1.05, "std_ms": median * 0.03, "min_ms": median * 0.9,
            "max_ms": median * 1.4, "trials": 100}


def write_tree(root, samples):
    """samples: (problem, status, speedup or None)."""
    problems = []
    for name, status, speedup in samples:
        folder = os.path.join(root, name)
        os.makedirs(folder)
        problems.append({"name": name, "number": int(name.split("_")[0]), "phase": "unsolved"})
        correct = status == "correct"
        doc = {"problem": name, "index": 1, "attempt": 1, "sample": 1, "status": status, "correct": correct,
               "success": correct and speedup >= 1, "speedup": speedup if correct else None,
               "error": None if correct else {"category": "value_mismatch", "message": "<b>hostile</b>"},
               "files": {}, "eval": {
                   "status": status, "correct": correct, "device": {"kind": "cuda", "name": "NVIDIA H200"},
                   "tolerance": {"rule": "evidence"},
                   "timing": {"method": "cuda_events_launch_hidden_l2_flush",
                              "reference": timing(speedup * 0.5) if correct else None,
                              "candidate": timing(0.5) if correct else None}}}
        with open(os.path.join(folder, "result_1.json"), "w") as f:
            json.dump(doc, f)
    with open(os.path.join(root, "summary.json"), "w") as f:
        json.dump({"kbrun_version": "0.1.0", "state": "finished", "sessions": [],
                   "config": {"samples": 1, "attempts": 1, "target_speedup": 1.0, "precision": "fp32"},
                   "problems": problems}, f)


def close(x, y):
    return abs(float(x) - float(y)) <= 1e-12 * max(1.0, abs(float(y)))


def main():
    if len(sys.argv) != 2:
        fail(__doc__)
    kbrun = sys.argv[1]
    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="kbrun-compare-browser-") as work:
        profile = os.path.join(work, "profile")
        check_console_is_seen(chromium, work, profile)

        a, b = os.path.join(work, "a"), os.path.join(work, "b")
        write_tree(a, [("1_Up", "correct", 1.2), ("2_Down", "correct", 2.5), ("3_Fixed", "incorrect", None),
                       (HOSTILE_NAME, "correct", 1.7), ("6_Same", "correct", 1.0)])
        write_tree(b, [("1_Up", "correct", 3.1), ("2_Down", "correct", 1.1), ("3_Fixed", "correct", 0.9),
                       (HOSTILE_NAME, "incorrect", None), ("5_OnlyB", "correct", 1.3), ("6_Same", "correct", 1.02)])
        page = os.path.join(work, "out", "compare.html")
        os.makedirs(os.path.dirname(page))
        proc = subprocess.run([kbrun, "compare", a, b, "--json", "--html", page], capture_output=True, text=True)
        if proc.returncode != 0:
            fail(f"kbrun compare --html exited {proc.returncode}: {proc.stderr}")
        doc = json.loads(proc.stdout)  # stdout is the JSON document alone

        dom_text, console = load(chromium, page, profile)
        errors = []
        if console:
            errors.append("console messages:\n  " + "\n  ".join(console))
        p = Page()
        p.feed(dom_text)
        for tag in ("img", "script", "b"):
            if tag in p.tags:
                errors.append(f"a <{tag}> element is in the DOM: a result string was not escaped")
        if len(set(p.ids)) != len(p.ids):
            errors.append("duplicate ids")

        s = doc["summary"]
        interval = s["geomean_ratio_interval"]
        if p.geomean is None:
            errors.append("no #geomean-ratio")
        else:
            for attr, want in (("data-ratio", s["geomean_ratio"]), ("data-low", interval["low"]),
                               ("data-high", interval["high"]), ("data-timing-low", interval["timing_only"]["low"]),
                               ("data-timing-high", interval["timing_only"]["high"]),
                               ("data-over", s["faster"] + s["slower"] + s["same"])):
                if attr not in p.geomean or not close(p.geomean[attr], want):
                    errors.append(f"#geomean-ratio {attr}={p.geomean.get(attr)!r}, the JSON says {want}")
            if not interval["low"] <= s["geomean_ratio"] <= interval["high"]:
                errors.append(f"the geomean {s['geomean_ratio']} is outside its interval {interval}")
        if p.fast_1 is None or not (close(p.fast_1["data-a"], s["fast_1"]["a"])
                                    and close(p.fast_1["data-b"], s["fast_1"]["b"])):
            errors.append(f"#fast-1 {p.fast_1} differs from the JSON's {s['fast_1']}")

        rows = {r["data-problem"]: r for r in p.rows.get("problems", [])}
        if sorted(rows) != sorted(q["name"] for q in doc["problems"]):
            errors.append(f"problem rows {sorted(rows)} differ from the JSON's problems")
        for q in doc["problems"]:
            row = rows.get(q["name"], {})
            want = {"data-change": q["change"], "data-ratio": q["ratio"],
                    "data-a-speedup": (q["a"] or {}).get("best_speedup"),
                    "data-b-speedup": (q["b"] or {}).get("best_speedup"),
                    "data-ratio-low": (q["ratio_interval"] or {}).get("low"),
                    "data-ratio-high": (q["ratio_interval"] or {}).get("high")}
            for attr, value in want.items():
                got = row.get(attr)
                if value is None:
                    if got is not None:
                        errors.append(f"{q['name']}: {attr}={got!r}, the JSON has none")
                elif got is None or (got != value if isinstance(value, str) else not close(got, value)):
                    errors.append(f"{q['name']}: {attr}={got!r}, the JSON says {value!r}")

        with_ratio = [q for q in doc["problems"] if q["ratio"] is not None]
        if sorted(pt["data-problem"] for pt in p.points) != sorted(q["name"] for q in with_ratio):
            errors.append(f"{len(p.points)} B/A points for {len(with_ratio)} problems correct in both")
        for pt in p.points:
            q = next(q for q in with_ratio if q["name"] == pt["data-problem"])
            if not close(pt["data-ratio"], q["ratio"]):
                errors.append(f"plot point {q['name']} at {pt['data-ratio']}, the JSON says {q['ratio']}")
        if len(p.whiskers) != sum(1 for q in with_ratio if q["ratio_interval"]):
            errors.append(f"{len(p.whiskers)} whiskers")
        changes = sorted(r["data-change"] for r in p.rows.get("verdict-changes", []))
        if changes != sorted(["fixed"] * s["fixed"] + ["broken"] * s["broken"]) or not changes:
            errors.append(f"verdict changes {changes}, the JSON says fixed {s['fixed']}, broken {s['broken']}")
        if errors:
            fail("\n".join(errors))
        print(f"ok: geomean B/A {s['geomean_ratio']:.4f} [{interval['low']:.4f}, {interval['high']:.4f}], "
              f"{len(rows)} problems, {len(p.points)} points, no console messages")


if __name__ == "__main__":
    main()
