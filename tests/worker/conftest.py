"""pytest loads this before the tests: the worker's modules (src/eval/worker) import by name."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "eval", "worker"))
