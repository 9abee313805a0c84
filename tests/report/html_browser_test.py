#!/usr/bin/python3
"""detailed_report.html in a real browser (Debian's chromium, headless): ctest html_report_browser.

Usage: html_browser_test.py KBRUN_BINARY REPORT_TREE

Copies the results tree REPORT_TREE, adds a problem whose name, error message and code are
hostile HTML and a timeline.jsonl, runs `kbrun report DIR --html`, loads the page with
`chromium --headless=new --dump-dom` and checks that
  - the browser printed no console message for the page (the page has no script and a policy
    that forbids scripts and fetches, so any message is an error: a CSP violation, a parse
    error); a canary page that logs one first proves that console messages are seen;
  - every plot has its data points (data-* elements counted in the dumped DOM), the fast_p plot a
    curve for each baseline besides eager (--baseline), and the table against each baseline its rows;
  - every link to an #anchor has an element with that id, and every problem has one;
  - the hostile strings made no element (no <img>, no <script> in the DOM).
Fails (never skips) when chromium is missing: CI installs it (scripts/install-deps.sh).
"""
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HOSTILE_NAME = "9_<img src=x onerror=alert(1)>"
HOSTILE_MESSAGE = "</script><img src=x onerror=alert(1)><script>console.error('pwned')</script>"


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    fail("chromium is not installed: this test needs a headless browser "
         "(apt-get install --no-install-recommends chromium; scripts/install-deps.sh installs it)")


def load(chromium, page, profile):
    """The dumped DOM and the console lines chromium logged for `page`."""
    cmd = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           "--dump-dom", "file://" + page]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        fail(f"chromium exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


def check_console_is_seen(chromium, work, profile):
    """Fails unless a canary page's console message is seen: else "no console errors" means nothing."""
    canary = os.path.join(work, "canary.html")
    with open(canary, "w") as f:
        f.write("<!DOCTYPE html><html><body><script>console.error('kbrun-canary')</script></body></html>")
    _, console = load(chromium, canary, profile)
    if not any("kbrun-canary" in line for line in console):
        fail("chromium's console messages are not visible on stderr (--enable-logging=stderr --v=0); "
             "cannot check the page for console errors")


class Dom(html.parser.HTMLParser):
    """Ids, #links, tags seen, and data-* elements inside each <svg id=...>."""

    def __init__(self):
        super().__init__()
        self.ids = []
        self.links = []
        self.tags = set()
        self.svg = None
        self.plot_points = {}  # svg id -> number of elements with a data-* attribute
        self.baseline_points = 0  # of the fast_p plot's, those of a baseline's curve

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "a" and (a.get("href") or "").startswith("#"):
            self.links.append(a["href"][1:])
        if tag == "svg":
            self.svg = a.get("id", "")
            self.plot_points.setdefault(self.svg, 0)
        elif self.svg is not None and any(k.startswith("data-") for k in a):
            self.plot_points[self.svg] += 1
            if self.svg == "fast-p-plot" and "data-baseline" in a:
                self.baseline_points += 1

    def handle_endtag(self, tag):
        if tag == "svg":
            self.svg = None


def make_tree(source, work):
    tree = os.path.join(work, "results")
    shutil.copytree(source, tree)
    # Code and prompt files for the samples that name them: later attempts then link to the diff
    # from the same sample of the attempt before.
    for name in sorted(os.listdir(tree)):
        folder = os.path.join(tree, name)
        for result in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            doc = json.load(open(os.path.join(folder, result)))
            files = doc.get("files") or {}
            if files.get("code"):
                with open(os.path.join(folder, files["code"]), "w") as f:
                    f.write(f"# {name} sample {doc['index']}\nclass ModelNew:\n    pass  # <{doc['status']}>\n")
            if files.get("prompt"):
                with open(os.path.join(folder, files["prompt"]), "w") as f:
                    f.write(f"Write a kernel for {name} <b>not bold</b>\n")
    # --baseline compile --baseline cudagraph on the two correct problems' best samples: the baseline
    # table, its fast_p curves and columns; one baseline unavailable with a hostile reason.
    for name, result, compile_entry in (
            ("1_A", "result_1.json", {"status": "measured", "median_ms": 2.0, "speedup": 2.0,
                                      "speedup_over_eager": 1.25, "compile_s": 14.2}),
            ("2_B", "result_2.json", {"status": "unavailable", "reason": HOSTILE_MESSAGE})):
        path = os.path.join(tree, name, result)
        doc = json.load(open(path))
        doc["eval"] = dict(doc.get("eval") or {}, baselines={
            "eager": {"status": "measured", "speedup": doc["speedup"]}, "compile": compile_entry,
            "cudagraph": {"status": "measured", "median_ms": 1.5, "speedup": 1.5, "speedup_over_eager": 1.6,
                          "capture_s": 0.3}})
        with open(path, "w") as f:
            json.dump(doc, f)
    problem = os.path.join(tree, HOSTILE_NAME)
    os.makedirs(problem)
    with open(os.path.join(problem, "code_1.py"), "w") as f:
        f.write("</pre><script>alert(1)</script>\nclass ModelNew:\n    pass\n")
    with open(os.path.join(problem, "result_1.json"), "w") as f:
        json.dump({"problem": HOSTILE_NAME, "index": 1, "attempt": 1, "sample": 1, "status": "compile_error",
                   "correct": False, "success": False, "speedup": None,
                   "error": {"category": "build_failed", "message": HOSTILE_MESSAGE},
                   "files": {"code": "code_1.py"},
                   "eval": {"status": "compile_error", "output_tail": HOSTILE_MESSAGE}}, f)
    with open(os.path.join(tree, "timeline.jsonl"), "w") as f:
        for e in [{"problem": "1_A", "index": 1, "stage": "llm", "start": 1000.0, "end": 1010.0},
                  {"problem": HOSTILE_NAME, "index": 1, "stage": "llm", "start": 1001.0, "end": 1005.0},
                  {"problem": "1_A", "index": 1, "stage": "compile", "start": 1010.0, "end": 1020.0},
                  {"problem": "1_A", "index": 1, "stage": "gpu", "start": 1020.0, "end": 1023.0, "lane": 0}]:
            f.write(json.dumps(e) + "\n")
    return tree


def main():
    if len(sys.argv) != 3:
        fail(__doc__)
    kbrun, source = sys.argv[1], sys.argv[2]
    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="kbrun-html-browser-") as work:
        profile = os.path.join(work, "profile")
        check_console_is_seen(chromium, work, profile)

        tree = make_tree(source, work)
        page = os.path.join(work, "page", "report.html")
        proc = subprocess.run([kbrun, "report", tree, "--quiet", "--html", page], capture_output=True, text=True)
        if proc.returncode != 0:
            fail(f"kbrun report --html exited {proc.returncode}: {proc.stderr}")
        proc = subprocess.run([kbrun, "report", tree, "--quiet", "--html"], capture_output=True, text=True)
        if proc.returncode != 0 or not os.path.exists(os.path.join(tree, "detailed_report.html")):
            fail(f"kbrun report RESULTS --html wrote no detailed_report.html beside detailed_report.txt: {proc.stderr}")
        report = json.load(open(os.path.join(tree, "detailed_report.json")))

        dom_text, console = load(chromium, page, profile)
        errors = []
        if console:
            errors.append("console messages:\n  " + "\n  ".join(console))
        dom = Dom()
        dom.feed(dom_text)
        if not dom_text.strip() or "fast-p-plot" not in dom.plot_points:
            errors.append(f"the page did not load (DOM: {dom_text[:500]!r})")
        for tag in ("img", "script", "iframe", "object", "b"):
            if tag in dom.tags:
                errors.append(f"a <{tag}> element is in the DOM: a result string was not escaped")
        expected = {"fast-p-plot": 6, "speedup-plot": report["overall"]["samples_correct"],
                    "status-plot": len(report["overall"]["samples_by_status"]),
                    "failure-plot": len(report["overall"]["failure_kinds"]), "timeline-plot": 4}
        for plot, least in expected.items():
            n = dom.plot_points.get(plot)
            if n is None:
                errors.append(f"no <svg id={plot}>")
            elif n == 0 or n < least:
                errors.append(f"{plot} has {n} data points, expected at least {least}")
        ids = set(dom.ids)
        if len(ids) != len(dom.ids):
            errors.append("duplicate ids: " + ", ".join(sorted({i for i in dom.ids if dom.ids.count(i) > 1})))
        for link in dom.links:
            if link not in ids:
                errors.append(f"link #{link} has no element with that id")
        if not any(link.startswith("sample-") for link in dom.links):
            errors.append("no link to a sample (the diff from the previous attempt)")
        problem_links = [link for link in dom.links if link.startswith("problem-")]
        if len(set(problem_links)) != len(report["problems"]):
            errors.append(f"{len(set(problem_links))} problem links for {len(report['problems'])} problems")
        problem_ids = [i for i in dom.ids if re.match(r"problem-", i)]
        if len(problem_ids) != len(report["problems"]):
            errors.append(f"{len(problem_ids)} problem ids for {len(report['problems'])} problems")
        # Against each baseline: a row per baseline, a curve per other baseline in the fast_p plot.
        for name in ("eager", "compile", "cudagraph"):
            if name not in report["overall"]["baselines"]:
                errors.append(f"detailed_report.json has no baseline {name}")
            if f'data-baseline="{name}"' not in dom_text:
                errors.append(f"no element for the baseline {name}")
        if dom.baseline_points < 2 * 6:
            errors.append(f"{dom.baseline_points} baseline points in the fast_p plot, expected at least 12")
        if errors:
            fail("\n".join(errors))
        print(f"ok: {len(dom.links)} links resolve, plots {dom.plot_points}, no console messages")


if __name__ == "__main__":
    main()
