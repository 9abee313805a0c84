"""Entry script for kbrun_eval/profile_digest.py (the profiler's CSV to a per-kernel digest), which
the supervisor runs by path as before; standard library only."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kbrun_eval import profile_digest  # noqa: E402  (the package beside this file, after the line above)

if __name__ == "__main__":
    sys.exit(profile_digest.main())
