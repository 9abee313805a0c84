"""What `kbrun serve` costs per evaluation beyond the run itself, with concurrent clients.

Starts `kbrun serve` (one lane: --device cpu, or --device cuda on the GPU machine) on a free
port, warms the compile cache with one evaluation, then has C client threads submit N
evaluations of the same cached candidate at once and poll them to the end. Prints, side by side:
- makespan of the N (first submit to last done) and the client-seen latency (median, max);
- the lane's seconds from /metrics (kbrun_serve_lane_busy_seconds_total: eval::Run, from taking
  the candidate to its result) against the run workers' own wall time (result.json
  stages.run_worker_total_s): the service's overhead on the lane per evaluation;
- the lane idle per evaluation (makespan less the lane's busy time): what the queue and the
  compile pool fail to keep fed;
- evaluations per lane-hour (kbrun_serve_evaluations_per_gpu_hour).
The issue's figure (#17) is the overhead per evaluation beyond compile and run time:
(makespan - the run workers' time) / N, with the compile of a cached build overlapped.

Usage: python3 bench/serve_overhead.py [--kbrun build/kbrun] [--device cpu|cuda] [-n 32] [-c 8]
  [--problem tests/problems/1_ScaleAdd.py --code tests/candidates/correct_cpp.py] [eval flags...]
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, url, token):
        self.url, self.token = url, token

    def call(self, path, body=None):
        req = urllib.request.Request(self.url + path, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": "Bearer " + self.token,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read().decode()
        return text if path == "/metrics" else json.loads(text)

    def evaluate(self, problem, code, options):
        """(seconds from submit to done, the result document)."""
        t = time.perf_counter()
        ident = self.call("/v1/evaluations", {"problem": problem, "code": code, "options": options})["id"]
        delay = 0.05
        while True:
            answer = self.call("/v1/evaluations/" + ident)
            if answer["state"] == "done":
                return time.perf_counter() - t, answer["result"]
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def metric(text, name):
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^%s(\{[^}]*\})? (\S+)$" % re.escape(name), line)
        if m and m.group(2) not in ("NaN",):
            total += float(m.group(2))
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kbrun", default=os.path.join(ROOT, "build", "kbrun"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("-n", type=int, default=32, help="evaluations")
    ap.add_argument("-c", type=int, default=8, help="concurrent clients")
    ap.add_argument("--problem", default=os.path.join(ROOT, "tests", "problems", "1_ScaleAdd.py"))
    ap.add_argument("--code", default=os.path.join(ROOT, "tests", "candidates", "correct_cpp.py"))
    ap.add_argument("--perf-trials", type=int, default=None, help="the request's perf_trials (default: kbrun's)")
    args, eval_flags = ap.parse_known_args()
    problem, code = open(args.problem).read(), open(args.code).read()
    options = {} if args.perf_trials is None else {"perf_trials": args.perf_trials}
    work = tempfile.mkdtemp(prefix="kbrun-serve-bench-")
    token = os.path.join(work, "token")
    with open(token, "w") as f:
        f.write("bench-token\n")
    port = free_port()
    server = subprocess.Popen([args.kbrun, "serve", "--listen", "127.0.0.1:%d" % port, "--token-file", token,
                               "--state-dir", os.path.join(work, "state"), "--device", args.device] + eval_flags,
                              stdout=open(os.path.join(work, "serve.log"), "w"), stderr=subprocess.STDOUT)
    client = Client("http://127.0.0.1:%d" % port, "bench-token")
    try:
        for _ in range(300):
            try:
                client.call("/metrics")
                break
            except OSError:
                time.sleep(0.2)
        warm_s, warm = client.evaluate(problem, code, options)  # builds the cache; starts the warm worker
        print("warm-up evaluation: %s in %.2f s (compile %.2f s, run worker %.2f s)" % (
            warm["status"], warm_s, warm["stages"]["compile_worker_total_s"], warm["stages"]["run_worker_total_s"]))
        before = client.call("/metrics")
        results, lock = [], threading.Lock()
        per_client = [args.n // args.c + (1 if i < args.n % args.c else 0) for i in range(args.c)]

        def run(count):
            for _ in range(count):
                latency, result = client.evaluate(problem, code, options)
                with lock:
                    results.append((latency, result))

        t0 = time.perf_counter()
        threads = [threading.Thread(target=run, args=(k,)) for k in per_client]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        makespan = time.perf_counter() - t0
        after = client.call("/metrics")
    finally:
        server.terminate()
        server.wait(timeout=60)
    n = len(results)
    statuses = sorted({r["status"] for _, r in results})
    run_s = sum(r["stages"]["run_worker_total_s"] for _, r in results)
    lane_s = metric(after, "kbrun_serve_lane_busy_seconds_total") - \
        metric(before, "kbrun_serve_lane_busy_seconds_total")
    latencies = sorted(lat for lat, _ in results)
    print("%d evaluations (%s) from %d clients on one %s lane, %s" % (
        n, ", ".join(statuses), args.c, args.device, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    print("makespan %.2f s; client latency median %.2f s, max %.2f s" % (
        makespan, statistics.median(latencies), latencies[-1]))
    print("run workers %.3f s per evaluation; the lane busy %.3f s per evaluation (service overhead on the lane "
          "%.3f s); lane idle %.3f s per evaluation" % (
              run_s / n, lane_s / n, (lane_s - run_s) / n, (makespan - lane_s) / n))
    print("overhead beyond the run workers: %.3f s per evaluation ((makespan - run workers) / N); "
          "evaluations per lane-hour %.0f" % (
              (makespan - run_s) / n, metric(after, "kbrun_serve_evaluations_per_gpu_hour")))


if __name__ == "__main__":
    sys.exit(main())
