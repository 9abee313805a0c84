#!/usr/bin/env python3
"""Turns a corpus of (reference, candidate) pairs into what `kbrun batch` runs: a problems folder
and a replay folder of recorded answers (`--replay-dir`).

Usage: make_corpus_replay.py CORPUS LEVEL OUT   (CORPUS: e.g. ../shared/corpus/cuda-l1-h100)

CORPUS/level<L>/<N_Name>.ref.py is the reference the candidate was written against and
CORPUS/level<L>/<N_Name>.cand.py the candidate (its SOURCE.txt says where they come from). For
each pair with a candidate this writes OUT/problems/level<L>/<N_Name>.py (the reference; the
folder is named level<L> so that `kbrun export` knows the level) and OUT/replay/level<L>/<N_Name>.txt (the
candidate as a model's answer: a line of prose and one fenced python block, which the replay
provider serves for every attempt and sample of that problem). Prints what it wrote and what
it left out, and why.
"""
import ast
import os
import re
import sys

NAME = re.compile(r"^(\d+)_(.+)$")


def defines(source, names):
    """The names among `names` that the module defines at top level (classes, functions)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    return found & set(names)


def candidate_note(code):
    """What kbrun will find wrong with the candidate before building it, for the listing ("" if nothing)."""
    try:
        ast.parse(code)
    except SyntaxError as exc:
        return " (does not parse: %s, line %s)" % (exc.msg, exc.lineno)
    return "" if "ModelNew" in defines(code, ("ModelNew",)) else " (defines no ModelNew at top level)"


def answer(code):
    """The candidate as an LLM answer, fenced with a fence its code does not contain."""
    fence = "```" if "```" not in code else "~~~"
    return "Here is the optimised model.\n\n%spython\n%s%s%s\n" % (fence, code, "" if code.endswith("\n") else "\n",
                                                                   fence)


def prepare(corpus, level, out):
    src = os.path.join(corpus, "level%d" % level)
    problems = os.path.join(out, "problems", "level%d" % level)
    replay = os.path.join(out, "replay", "level%d" % level)
    os.makedirs(problems, exist_ok=True)
    os.makedirs(replay, exist_ok=True)
    written, left_out = [], []
    for ref in sorted(f for f in os.listdir(src) if f.endswith(".ref.py")):
        name = ref[:-len(".ref.py")]
        if not NAME.match(name):
            left_out.append((name, "not an N_Name file name"))
            continue
        cand = os.path.join(src, name + ".cand.py")
        if not os.path.exists(cand):
            left_out.append((name, "no candidate"))
            continue
        with open(os.path.join(src, ref)) as f:
            reference = f.read()
        missing = {"Model", "get_inputs", "get_init_inputs"} - defines(reference, ("Model", "get_inputs",
                                                                                   "get_init_inputs"))
        if missing:
            left_out.append((name, "the reference lacks %s" % ", ".join(sorted(missing))))
            continue
        with open(cand) as f:
            code = f.read()
        with open(os.path.join(problems, name + ".py"), "w") as f:
            f.write(reference)
        with open(os.path.join(replay, name + ".txt"), "w") as f:
            f.write(answer(code))
        written.append(name + candidate_note(code))
    return written, left_out


def main(argv):
    if len(argv) != 4 or not argv[2].isdigit():
        print(__doc__.strip(), file=sys.stderr)
        return 64
    written, left_out = prepare(argv[1], int(argv[2]), argv[3])
    print("level %s: %d pairs written to %s, %d left out" % (argv[2], len(written), argv[3], len(left_out)))
    for name in written:
        if name.endswith(")"):
            print("  note: %s" % name)
    for name, why in left_out:
        print("  left out: %s: %s" % (name, why))
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
