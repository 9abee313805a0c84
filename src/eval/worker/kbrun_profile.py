"""kbrun's profile step (kbrun eval --profile), the script the supervisor and the profiler run:
kbrun_eval/profiling.py is the step, this file only starts it. By path, not `python -m`, for the
reason kbrun_worker.py gives."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kbrun_eval import profiling  # noqa: E402  (the package beside this file, after the line above)

if __name__ == "__main__":
    profiling.main()
