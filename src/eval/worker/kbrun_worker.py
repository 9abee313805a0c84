"""kbrun's evaluation worker, the script the supervisor runs (src/eval/supervisor.cc; KBRUN_WORKER
names it): kbrun_eval/worker.py is the worker, this file only starts it.

By path and not as `python -m`: -m puts the working directory (the run's private dir, which the
candidate writes in the compile phase) first on sys.path, so a planted kbrun_eval/ there would be
imported instead of kbrun's. A script puts its own folder first.
"""
import os
import sys
import time

T0 = time.perf_counter()  # here, not in the package: the warm worker imported that long before
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kbrun_eval import worker  # noqa: E402  (the package beside this file, after the line above)

if __name__ == "__main__":
    worker.main(T0)
