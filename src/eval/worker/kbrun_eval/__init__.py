"""kbrun's evaluation worker as a package: the modules the worker, the checker and the profiler
import. The supervisor runs the entry scripts beside this folder (kbrun_worker.py, ...) by path."""
