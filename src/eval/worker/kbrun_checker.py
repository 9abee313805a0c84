"""kbrun's checker, the script the supervisor runs beside the run phase's worker: kbrun_eval/checker.py
is the checker (the clean reference; it never imports candidate code), this file only starts it.
By path, not `python -m`, for the reason kbrun_worker.py gives."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kbrun_eval import checker  # noqa: E402  (the package beside this file, after the line above)

if __name__ == "__main__":
    checker.main()
