"""Builds ahead of time what a candidate would build on its first forward call.

Real model output often calls load_inline inside forward (or a helper it calls), behind an
`if self._ext is None`. That build would run in the run phase, on the GPU lane. In the compile
phase (compile_phase.prebuild) this module finds every load_inline/load call inside a function of
the candidate's source, evaluates its arguments as the function would see them at that point
(the module's globals, `self` = the model constructed there, the function's own simple
assignments and its imports above the call), and makes the call: the build lands in the compile cache, and the
run phase's call finds it there. Best effort, never a verdict: a call whose arguments cannot be
evaluated here is skipped and named in the result.
"""
import ast

BUILD_FUNCTIONS = ("load_inline", "load")


def _called_name(call):
    f = call.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        return f.attr
    return None


def _deferred_calls(tree):
    """(innermost function, call) for each build call inside a function body other than
    __init__ (the compile phase has run the constructor), in source order."""
    innermost = {}
    for fn in ast.walk(tree):  # outer functions come before the functions inside them
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.Call) and _called_name(node) in BUILD_FUNCTIONS:
                    innermost[node] = fn
    found = [(fn, call) for call, fn in innermost.items() if fn.name != "__init__"]
    found.sort(key=lambda pair: (pair[1].lineno, pair[1].col_offset))
    return found


def _local_statements(fn, call):
    """The function's statements above the call that set what the call reads: `name = value` at
    the top level of its body or of a `try` there (its source strings, flags and names are usually
    set that way; a branch's are not, it may not be taken), and imports anywhere above it (real
    candidates import load_inline inside the function, in the try around the call)."""
    out = []

    def visit(body, assignments):
        for stmt in body:
            if stmt.lineno >= call.lineno:
                return
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                out.append(stmt)
            elif isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets):
                if assignments:
                    out.append(stmt)
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            else:
                try_body = isinstance(stmt, ast.Try)
                for field in ("body", "orelse", "finalbody", "handlers"):
                    for part in getattr(stmt, field, None) or []:
                        inner = part.body if isinstance(part, ast.ExceptHandler) else [part]
                        visit(inner, assignments and try_body and field == "body")

    visit(fn.body, True)
    return out


def _run_statement(stmt, namespace):
    """Runs one of _local_statements' statements in `namespace`; one that fails (it reads the call's
    arguments, say) is left out, and a call argument that needs it fails by name."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        exec(compile(ast.Module(body=[stmt], type_ignores=[]), "<candidate>", "exec"), namespace)
        return
    value = _evaluate(stmt.value, namespace)
    for target in stmt.targets:
        namespace[target.id] = value


def _evaluate(node, namespace):
    return eval(compile(ast.Expression(node), "<candidate>", "eval"), namespace)


def build_deferred(source, module, model):
    """Makes each build call found inside the candidate's functions. Returns
    {"found": n, "built": k, "skipped": [{"line", "reason"}]}."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {"found": 0, "built": 0, "skipped": []}
    calls = _deferred_calls(tree)
    out = {"found": len(calls), "built": 0, "skipped": []}
    for fn, call in calls:
        namespace = dict(vars(module))
        namespace["self"] = model
        for stmt in _local_statements(fn, call):
            try:
                _run_statement(stmt, namespace)
            except Exception:
                continue
        try:
            builder = _evaluate(call.func, namespace)
            args = [_evaluate(a, namespace) for a in call.args]
            kwargs = {k.arg: _evaluate(k.value, namespace) for k in call.keywords if k.arg is not None}
            if len(kwargs) != len(call.keywords):
                raise ValueError("**kwargs in the call")
        except Exception as exc:  # arguments known only when forward runs: left to the run phase
            out["skipped"].append({"line": call.lineno, "reason": "%s: %s" % (type(exc).__name__, str(exc)[:200])})
            continue
        try:
            builder(*args, **kwargs)
            out["built"] += 1
        except Exception as exc:  # a failing build fails again in the run phase, where it is judged
            out["skipped"].append({"line": call.lineno, "reason": "build: %s: %s" % (type(exc).__name__,
                                                                                     str(exc)[:200])})
    return out
