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


def test_names_unpacked_from_a_tuple_are_set_and_attributes_are_not():
    calls = []
    source = '''
class ModelNew:
    def _load(self):
        rows, (cols, *rest) = 4, (2, 1)
        self.side_effect = 1
        return load_inline(name="n%dx%d" % (rows, cols), cpp_sources="s")
'''
    model = types.SimpleNamespace()
    out = db.build_deferred(source, module_with(load_inline=lambda **kw: calls.append(kw)), model)
    assert out["built"] == 1 and calls == [{"name": "n4x2", "cpp_sources": "s"}]
    assert not hasattr(model, "side_effect")  # `self.x = ...` would change the model: not run


def test_a_constructor_that_stopped_early_has_its_calls_below_that_line_made():
    """A constructor that raised (`.cuda()` without a GPU) at line 5: its build at line 7, never
    reached, is made with the model it left; the one at line 4 ran (or was what raised)."""
    calls = []
    source = '''
class ModelNew:
    def __init__(self):
        self.a = load_inline(name="above", cpp_sources="s")
        self.w = make_weights().cuda()
        src = "code %d" % self.width
        self.b = load_inline(name="below", cpp_sources=src)
'''
    module = module_with(load_inline=lambda **kw: calls.append(kw))
    model = types.SimpleNamespace(width=4)
    assert db.build_deferred(source, module, model)["found"] == 0  # a constructor that ended made them
    out = db.build_deferred(source, module, model, unfinished_init=(3, 5))
    assert out == {"found": 1, "built": 1, "skipped": []}
    assert calls == [{"name": "below", "cpp_sources": "code 4"}]
    # Only the __init__ that stopped: another class's (its `def` on another line) is left alone.
    assert db.build_deferred(source, module, model, unfinished_init=(9, 5))["found"] == 0


def test_builds_at_import_are_counted_apart_from_builds_in_functions():
    assert db.module_level_builds("if gpu():\n    try:\n        ext = load_inline(name='x')\n"
                                  "    except Exception:\n        ext = None\n") == 1
    assert db.module_level_builds("class M:\n    ext = load(name='x', sources=[])\n") == 1
    assert db.module_level_builds("def f():\n    return load_inline(name='x')\n"
                                  "g = lambda: load(name='y', sources=[])\n") == 0
    assert db.module_level_builds("def (:") == 0
