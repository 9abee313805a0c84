"""Builds ahead of time what a candidate would build on its first forward call.

Real model output often calls load_inline inside forward (or a helper it calls), behind an
`if self._ext is None`. That build would run in the run phase, on the GPU lane. In the compile
phase (compile_phase.prebuild) this module finds every load_inline/load call inside a function of
the candidate's source, evaluates its arguments as the function would see them at that point
(the module's globals, `self` = the model constructed there, the function's own simple
assignments and its imports above the call), and makes the call: the build lands in the compile cache, and the
run phase's call finds it there. A constructor that raised on the compile phase's CPU (`.cuda()`
before its build) leaves `self` as it was then, and its own calls below that line are made too.
A build that fails here is not compiled again in the run phase (build.py). Best effort, never a
verdict: a call whose arguments cannot be evaluated here is skipped and named in the result.
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


def _deferred_calls(tree, unfinished_init=None):
    """(innermost function, call) for each build call inside a function body other than
    __init__ (the compile phase has run the constructor), in source order. `unfinished_init`:
    (line of its `def`, line it raised at) of a constructor that stopped early (a GPU-only step
    such as `.cuda()` before its build, on the compile phase's CPU): its calls below that line,
    which it never reached, are included."""
    innermost = {}
    for fn in ast.walk(tree):  # outer functions come before the functions inside them
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.Call) and _called_name(node) in BUILD_FUNCTIONS:
                    innermost[node] = fn

    def wanted(fn, call):
        if fn.name != "__init__":
            return True
        return unfinished_init is not None and fn.lineno == unfinished_init[0] and call.lineno > unfinished_init[1]

    found = [(fn, call) for call, fn in innermost.items() if wanted(fn, call)]
    found.sort(key=lambda pair: (pair[1].lineno, pair[1].col_offset))
    return found


def module_level_builds(source):
    """How many build calls the source makes outside any function (at import, often behind
    `if torch.cuda.is_available():`)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return 0
    in_functions = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_functions.update(id(node) for node in ast.walk(fn))
    return sum(1 for node in ast.walk(tree)
               if isinstance(node, ast.Call) and _called_name(node) in BUILD_FUNCTIONS and id(node) not in in_functions)


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
            elif isinstance(stmt, ast.Assign) and all(_names_only(t) for t in stmt.targets):
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


def _names_only(target):
    """An assignment target that binds only local names (`a`, `a, b = ...`): running it here
    changes nothing but the namespace (`self.x = ...` would change the model)."""
    if isinstance(target, ast.Name):
        return True
    if isinstance(target, (ast.Tuple, ast.List)):
        return all(_names_only(e.value if isinstance(e, ast.Starred) else e) for e in target.elts)
    return False


def _run_statement(stmt, namespace):
    """Runs one of _local_statements' statements (an import or a names-only assignment) in
    `namespace`; one that fails (it reads the call's arguments, say) is left out, and a call
    argument that needs it fails by name."""
    exec(compile(ast.Module(body=[stmt], type_ignores=[]), "<candidate>", "exec"), namespace)


def _evaluate(node, namespace):
    return eval(compile(ast.Expression(node), "<candidate>", "eval"), namespace)


def build_deferred(source, module, model, unfinished_init=None):
    """Makes each build call found inside the candidate's functions (and, with `unfinished_init`,
    those the constructor did not reach: _deferred_calls). Returns
    {"found": n, "built": k, "skipped": [{"line", "reason"}]}."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {"found": 0, "built": 0, "skipped": []}
    calls = _deferred_calls(tree, unfinished_init)
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
