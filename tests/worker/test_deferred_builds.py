"""kbrun_eval/deferred_builds.py: which build calls it finds and how it evaluates their arguments."""
import types

from kbrun_eval import deferred_builds as db


def module_with(**names):
    m = types.ModuleType("candidate")
    for k, v in names.items():
        setattr(m, k, v)
    return m


def test_calls_in_forward_and_helpers_are_made_with_globals_self_and_locals():
    calls = []
    source = '''
SRC = "global source"
def load_inline(**kw): pass
def get_ext():
    return load_inline(name="helper", cpp_sources=SRC)
class ModelNew:
    def __init__(self):
        self.ext = load_inline(name="in_init", cpp_sources=SRC)
    def forward(self, x):
        flags = ["-O2", self.flag]
        if self.ext is None:
            self.ext = load_inline(name="in_forward", cpp_sources=SRC, extra_cflags=flags)
        return x
'''
    module = module_with(SRC="global source", load_inline=lambda **kw: calls.append(kw))
    model = types.SimpleNamespace(flag="-DX")
    out = db.build_deferred(source, module, model)
    assert out == {"found": 2, "built": 2, "skipped": []}  # __init__'s call is the constructor's
    assert calls == [{"name": "helper", "cpp_sources": "global source"},
                     {"name": "in_forward", "cpp_sources": "global source", "extra_cflags": ["-O2", "-DX"]}]


def test_arguments_known_only_at_call_time_are_skipped_and_named():
    source = '''
def load_inline(**kw): pass
class ModelNew:
    def forward(self, x):
        return load_inline(name="n%d" % x.shape[0], cpp_sources="s")
'''
    out = db.build_deferred(source, module_with(load_inline=lambda **kw: None), None)
    assert out["found"] == 1 and out["built"] == 0
    assert out["skipped"][0]["line"] == 5
    assert "NameError" in out["skipped"][0]["reason"]


def test_a_failing_build_is_noted_not_raised():
    def failing(**kw):
        raise RuntimeError("Error building extension")
    source = "def f():\n    load(name='x', sources=['a.cpp'])\n"
    out = db.build_deferred(source, module_with(load=failing), None)
    assert out["built"] == 0 and "build: RuntimeError" in out["skipped"][0]["reason"]


def test_source_that_does_not_parse_finds_nothing():
    assert db.build_deferred("def (:", module_with(), None) == {"found": 0, "built": 0, "skipped": []}


def test_imports_inside_the_function_and_failing_assignments_it_does_not_need():
    """As real candidates write it: load_inline imported inside the try around the call, and an
    assignment above it that reads forward's arguments (an autograd Function's `input`)."""
    import sys
    calls = []
    fake = types.ModuleType("kbrun_fake_cpp_extension")
    fake.load_inline = lambda **kw: calls.append(kw)
    sys.modules["kbrun_fake_cpp_extension"] = fake
    try:
        source = '''
class ModelNew:
    def _load(self):
        if self.loaded:
            return
        out = torch_empty(device=input.device)
        src = self.source
        try:
            from kbrun_fake_cpp_extension import load_inline
            self.ext = load_inline(name="in_try", cuda_sources=src)
        except Exception:
            self.ext = None
    def forward(self, x):
        n = x.shape[0]
        size = 4
        return load_inline(name="n%d" % n, cuda_sources="s%d" % size)
'''
        model = types.SimpleNamespace(loaded=False, source="cuda code")
        out = db.build_deferred(source, module_with(load_inline=lambda **kw: calls.append(("global", kw))), model)
    finally:
        del sys.modules["kbrun_fake_cpp_extension"]
    assert out["found"] == 2 and out["built"] == 1, out
    assert calls == [{"name": "in_try", "cuda_sources": "cuda code"}]
    # forward's call needs `n`, whose assignment failed (x is only known at call time): skipped by name.
    assert out["skipped"][0]["line"] == 16 and "name 'n' is not defined" in out["skipped"][0]["reason"], out


def test_assignments_in_a_branch_are_not_taken_for_the_call():
    calls = []
    source = '''
def build(flag):
    src = "default"
    if flag:
        src = "branch"
    return load_inline(name="x", cpp_sources=src)
'''
    out = db.build_deferred(source, module_with(load_inline=lambda **kw: calls.append(kw)), None)
    assert out["built"] == 1 and calls == [{"name": "x", "cpp_sources": "default"}]
