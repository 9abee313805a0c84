"""Splits a load_inline CUDA file that includes torch's headers into a kernel file that names
nothing from torch (nvcc parses no torch header: seconds instead of 30 s and more) and a host file
that keeps torch (g++, with kbrun's precompiled torch header).

Models often write one CUDA file: kernels, then a host function taking torch::Tensor that launches
them with `<<<...>>>`. nvcc spends most of its time on torch's headers, which only the host function
needs. The file is cut at its top-level declarations (a small scanner: comments, strings and
preprocessor lines are skipped; brackets balanced) and each declaration goes where it belongs:

- kernel file: `__global__`/`__device__` functions and `__device__`/`__constant__`/`__shared__`
  variables; `static` is dropped from `__global__` functions so the host file can name them;
- host file: what names torch or launches a kernel, and functions or variables that are neither
  inline, static, constexpr nor templates (one definition in the program);
- both: preprocessor lines (torch's includes in the host file only, CUDA-only headers in the kernel
  file only), `__host__ __device__` functions, types, constants, templates and other declarations.

The host file declares each kernel (g++ reads `__global__` as nothing) and launches it through
cudaLaunchKernelEx, which converts the arguments to the kernel's parameter types as `<<<...>>>`
does; nvcc's host stub of a kernel has the kernel's own (mangled) name, so the declaration links
to it and the runtime finds the registered kernel by that address. A template kernel is compiled
for the arguments the host file uses: the host object's undefined symbols (nm) name them, and the
kernel file gets their explicit instantiations (instantiations()).

Every piece keeps its place in the original file through `#line` directives: compiler errors
name the candidate's file and line. Anything the split cannot carry faithfully declines it
(Declined, with the reason), and the file is built as written: kernel code that names torch or
launches kernels, namespaces and `extern "C"` blocks, `__constant__`/`__device__` symbols that
host code names, kernels whose address host code takes or passes, template kernels launched
without explicit template arguments, raw strings.
"""
import re
import subprocess

# torch's three prefix lines of a load_inline CUDA file (torch/types.h, cuda.h, cuda_runtime.h).
TORCH_PREFIX_LINES = 3
DEVICE_WORD = re.compile(r"\b__(?:global|device|constant|shared|managed)__\b")
TORCH_WORD = re.compile(
    r"\b(?:torch|at|c10|caffe2|pybind11|py)\s*::|\b(?:TORCH|AT|C10|PYBIND11|CAFFE2)_[A-Z0-9_]+"
    r"|\b(?:Tensor|PackedTensorAccessor\w*|TensorAccessor|IntArrayRef|ScalarType|TensorOptions)\b")
TORCH_INCLUDE = re.compile(r"#\s*include\s*[<\"](?:torch|ATen|c10|caffe2|pybind11|Python|THC?)\b")
# Headers g++ can read (C and C++ standard headers, the CUDA runtime API): both files get them.
HOST_SAFE_INCLUDE = re.compile(
    r"#\s*include\s*<(?:cuda_fp16\.h|cuda_bf16\.h|[a-z_]+|[a-z]+\.h)>")
CUDA_ONLY_INCLUDE = re.compile(
    r"#\s*include\s*[<\"](?:cuda_fp8|mma|cooperative_groups|cub/|thrust/|curand_kernel"
    r"|cuda/|sm_\d+|device_|crt/|math_constants|cuda_pipeline|cuda_awbarrier)")
STATIC = re.compile(r"\bstatic\s+")
LAUNCHER = """\
#include <cuda_runtime.h>
#include <utility>
// kbrun: CUDA's headers define these for nvcc only; a kernel's declaration may carry them.
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
#ifndef __cluster_dims__
#define __cluster_dims__(...)
#endif
// kbrun: kernel launches in a file g++ compiles. cudaLaunchKernelEx converts the
// arguments to the kernel's parameter types, and a failed launch is the runtime's last error.
template <typename... KbrunExpected, typename... KbrunActual>
static inline void kbrun_launch_kernel(void (*kernel)(KbrunExpected...), dim3 grid, dim3 block,
                                       size_t shared_bytes, cudaStream_t stream, KbrunActual&&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  (void)cudaLaunchKernelEx(&config, kernel, std::forward<KbrunActual>(args)...);
}
"""


class Declined(Exception):
    """The file cannot be split faithfully; the message says why."""


class Chunk:
    def __init__(self, start, end, kind):
        self.start, self.end, self.kind = start, end, kind  # kind: "pp" or "decl"
        self.where = None  # "kernel", "host" or "both"
        self.text = None


class Split:
    """The two files, and what instantiations() needs: the template kernels by name, with their
    declarations as written."""

    def __init__(self, kernels, host, host_header, template_kernels, launch_lines):
        self.kernels, self.host, self.host_header = kernels, host, host_header
        self.template_kernels = template_kernels
        self.launch_lines = launch_lines  # lines of the original file with a rewritten launch


def _skip_literal(code, i):
    quote = code[i]
    j = i + 1
    while j < len(code) and code[j] != quote:
        if code[j] == "\\":
            j += 1
        elif code[j] == "\n":
            raise Declined("unterminated literal")
        j += 1
    if j >= len(code):
        raise Declined("unterminated literal")
    return j + 1


def _blank(code):
    """The code with comments and literals' contents blanked (same length and line breaks), so
    that brackets and words are found only in code."""
    out, i, n = [], 0, len(code)
    while i < n:
        if code.startswith("//", i):
            j = code.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif code.startswith("/*", i):
            j = code.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", code[i:j]))
            i = j
        elif code[i] in "\"'":
            if code[i] == '"' and i > 0 and code[i - 1] == "R" and (i < 2 or not code[i - 2].isalnum()):
                raise Declined("raw string literal")
            j = _skip_literal(code, i)
            out.append(code[i] + " " * (j - i - 2) + code[j - 1])
            i = j
        else:
            out.append(code[i])
            i += 1
    return "".join(out)


def _chunks(blank):
    """Top-level pieces of blanked code: preprocessor directives and declarations (up to a `;` at
    depth 0, or a body's closing brace; a type's or an initializer's brace goes on to its `;`)."""
    chunks, i, n, depth, start = [], 0, len(blank), 0, None
    while i < n:
        c = blank[i]
        line_start = blank.rfind("\n", 0, i) + 1
        if c == "#" and not blank[line_start:i].strip():
            j = i
            while True:
                j = blank.find("\n", j)
                if j < 0 or blank[j - 1] != "\\":
                    break
                j += 1
            j = n if j < 0 else j
            if start is None and depth == 0:
                chunks.append(Chunk(i, j, "pp"))
            i = j
            continue
        if start is None and not c.isspace():
            start = i
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
            if depth < 0:
                raise Declined("unbalanced brackets")
            if c == "}" and depth == 0 and not _ends_at_semicolon(blank[start:i]):
                chunks.append(Chunk(start, i + 1, "decl"))
                start = None
        elif c == ";" and depth == 0:
            chunks.append(Chunk(start, i + 1, "decl"))
            start = None
        i += 1
    if depth or start is not None and blank[start:].strip():
        raise Declined("unbalanced brackets or a declaration without its end")
    return chunks


def _depth0(text):
    """The parts of `text` outside brackets."""
    out, depth = [], 0
    for c in text:
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


def _ends_at_semicolon(text):
    head = _depth0(text[:text.find("{")] if "{" in text else text)
    head = re.sub(r"\boperator\s*[^\s(]*", "operator", head)  # operator== is no initializer
    return bool(re.search(r"\b(?:struct|class|union|enum|typedef)\b|=", head))


def _declarator(text):
    """A function definition's text before its body."""
    return text[:_depth0_brace(text)]


def _depth0_brace(text):
    depth = 0
    for i, c in enumerate(text):
        if c == "{" and depth == 0:
            return i
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
    return len(text)


def _function_name(declarator):
    """The name a function declarator declares: the last word before its top-level parameter list."""
    depth, i = 0, len(declarator)
    while i > 0:
        i -= 1
        c = declarator[i]
        if c == ")":
            depth += 1
        elif c == "(":
            depth -= 1
            if depth == 0:
                m = re.search(r"(\w+)\s*$", declarator[:i])
                if m and m.group(1) not in ("__launch_bounds__", "__attribute__", "alignas"):
                    return m.group(1)
    return None


def _classify(chunk, blank_text):
    t = blank_text
    if chunk.kind == "pp":
        if re.match(r"#\s*define\b", t.strip()) and (DEVICE_WORD.search(t) or "<<<" in t):
            raise Declined("a macro that defines or launches kernels")
        if TORCH_INCLUDE.match(t.strip()):
            return "host"
        if CUDA_ONLY_INCLUDE.match(t.strip()):
            return "kernel"
        if re.match(r"#\s*include\b", t.strip()) and not HOST_SAFE_INCLUDE.match(t.strip()):
            return "kernel"  # the candidate's own header: kernel code; host code naming it fails (fallback)
        return "both"
    words = set(re.findall(r"\b__\w+__\b", t))
    if re.match(r'\s*(?:inline\s+)?namespace\b|\s*extern\s*"', t):
        raise Declined('a namespace or an extern "C" declaration')
    if DEVICE_WORD.search(t):
        m = TORCH_WORD.search(t)
        if m:
            raise Declined("device code names torch: %s" % m.group(0).strip())
        if "<<<" in t:
            raise Declined("a kernel launched from device code")
        if "__host__" in words and "__global__" not in words and "__device__" in words:
            # One definition in the program: nvcc's host-side one, which the host file declares.
            inline = re.search(r"\b(?:inline|static|constexpr|template|__forceinline__)\b", _depth0(_declarator(t)))
            return "both" if inline or not t.rstrip().endswith("}") else "kernel"
        return "kernel"
    if TORCH_WORD.search(t) or "<<<" in t or re.match(r"\s*using\s+namespace\b", t):
        return "host"
    head = _depth0(_declarator(t))
    is_function_definition = t.rstrip().endswith("}") and "(" in _declarator(t) and not _ends_at_semicolon(t)
    shared_ok = re.search(r"\b(?:inline|static|constexpr|template|__forceinline__)\b", head)
    if is_function_definition and not shared_ok:
        return "host"
    if not is_function_definition and "(" not in head and not re.search(
            r"\b(?:const|constexpr|static|typedef|using|struct|class|union|enum|template)\b", head):
        return "host"  # a variable: defined once
    return "both"


def _find_launches(blank):
    """(start, callee_end, cfg_start, cfg_end, args_start, args_end) of each `callee<<<cfg>>>(args)`."""
    launches, pos = [], 0
    while True:
        p = blank.find("<<<", pos)
        if p < 0:
            return launches
        i = p
        while i > 0 and blank[i - 1].isspace():
            i -= 1
        end = i
        if i > 0 and blank[i - 1] == ">":  # template arguments
            depth = 0
            while i > 0:
                i -= 1
                if blank[i] == ">":
                    depth += 1
                elif blank[i] == "<":
                    depth -= 1
                    if depth == 0:
                        break
        m = re.search(r"(?:\w+\s*::\s*)*\w+\s*$", blank[:i])
        if not m:
            raise Declined("a launch whose kernel is not a name")
        start = m.start()
        q, depth = p + 3, 0
        while q < len(blank):
            if blank[q] in "([{":
                depth += 1
            elif blank[q] in ")]}":
                depth -= 1
            elif depth == 0 and blank.startswith(">>>", q):
                break
            q += 1
        else:
            raise Declined("a launch without >>>")
        a = q + 3
        while a < len(blank) and blank[a].isspace():
            a += 1
        if a >= len(blank) or blank[a] != "(":
            raise Declined("a launch without arguments")
        b, depth = a, 0
        while b < len(blank):
            if blank[b] in "([{":
                depth += 1
            elif blank[b] in ")]}":
                depth -= 1
                if depth == 0:
                    break
            b += 1
        launches.append((start, end, p + 3, q, a + 1, b))
        pos = b + 1


def _top_level_commas(text):
    parts, depth, last = [], 0, 0
    for i, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append((last, i))
            last = i + 1
    parts.append((last, len(text)))
    return parts


def _rewrite_launches(text, blank, kernels, launches):
    """The host chunk with each launch (_find_launches) through kbrun_launch_kernel; line breaks kept."""
    out, pos = [], 0
    for start, end, cs, ce_, a, b in launches:
        callee = text[start:end]
        name = re.sub(r"\s", "", blank[start:end]).split("<")[0].split("::")[-1]
        if name not in kernels:
            raise Declined("a launch of %s, not a kernel of this file" % name)
        if kernels[name] and "<" not in blank[start:end]:
            raise Declined("template kernel %s launched without template arguments" % name)
        cfg = [text[cs + x:cs + y] for x, y in _top_level_commas(blank[cs:ce_])]
        if not 2 <= len(cfg) <= 4:
            raise Declined("a launch with %d configuration values" % len(cfg))
        cfg += ["0", "nullptr"][len(cfg) - 2:]
        args = text[a:b]
        gap = text[ce_ + 3:a - 1]
        out.append(text[pos:start])
        out.append("kbrun_launch_kernel(&%s, %s%s%s)" % (
            callee, ", ".join(cfg), "\n" * gap.count("\n"), (", " + args) if args.strip() else args))
        pos = b + 1
    out.append(text[pos:])
    return "".join(out)


def _line_directive(code, offset, path):
    return '#line %d "%s"\n' % (code.count("\n", 0, offset) + 1, path.replace("\\", "\\\\").replace('"', '\\"'))


def split(text, path, host_header):
    """Splits torch's CUDA file (`text`, written at `path`); `host_header` is the include line the
    host file starts with (the precompiled header's). Raises Declined."""
    lines = text.split("\n")
    if len(lines) < TORCH_PREFIX_LINES or lines[0].strip() != "#include <torch/types.h>":
        raise Declined("no torch prefix")
    blank = _blank(text)
    prefix_end = len("\n".join(lines[:TORCH_PREFIX_LINES]))
    chunks = _chunks(blank[prefix_end:])
    for c in chunks:
        c.start += prefix_end
        c.end += prefix_end
        c.text = text[c.start:c.end]
        c.where = _classify(c, blank[c.start:c.end])
    kernels, defined, device_symbols = {}, set(), set()
    for c in chunks:
        if c.kind == "decl" and c.where == "kernel":
            b = blank[c.start:c.end]
            if "__global__" in b:
                name = _function_name(_declarator(b))
                if not name:
                    raise Declined("a kernel without a name")
                if b.rstrip().endswith("}"):
                    if name in defined:
                        raise Declined("overloaded kernel %s" % name)
                    defined.add(name)
                declarator = _declarator(b)
                params = declarator[declarator.find("(", declarator.find(name)):]
                if "=" in _depth0(params[1:params.rfind(")")]):
                    raise Declined("kernel %s has default arguments" % name)
                kernels[name] = bool(re.match(r"\s*template\b", b))
            elif re.search(r"\b__(?:constant|device|managed)__\b", _declarator(b)) and \
                    not b.rstrip().endswith("}"):
                device_symbols.update(re.findall(r"(\w+)\s*(?:\[[^\]]*\]\s*)*(?:=|;|$)", _depth0(b)))
    if not kernels:
        raise Declined("no kernel")
    host_blank = " ".join(blank[c.start:c.end] for c in chunks if c.where in ("host", "both") and c.kind == "decl")
    for sym in device_symbols:
        if re.search(r"\b%s\b" % re.escape(sym), host_blank):
            raise Declined("host code names device symbol %s" % sym)
    for name in kernels:
        uses = len(re.findall(r"\b%s\b" % re.escape(name), host_blank))
        launched = len(re.findall(r"\b%s\s*(?:<[^;{}]*?>)?\s*<<<" % re.escape(name), host_blank))
        if uses != launched:
            raise Declined("host code uses kernel %s other than launching it" % name)
    if not any("<<<" in blank[c.start:c.end] for c in chunks if c.where == "host"):
        raise Declined("no launch in host code")
    kernel_parts = ["\n".join([""] + lines[1:TORCH_PREFIX_LINES]) + "\n"]
    launch_lines = set()
    host_parts = [host_header.rstrip("\n") + "\n", LAUNCHER]
    for c in chunks:
        line = _line_directive(text, c.start, path)
        b = blank[c.start:c.end]
        if c.where in ("kernel", "both"):
            body = c.text
            if c.kind == "decl" and "__global__" in b:
                body = STATIC.sub("", body, count=1) if STATIC.match(body.lstrip()) or \
                    re.match(r"\s*template\s*<[^{]*>\s*static\b", b) else body
            kernel_parts.append(line + body + "\n")
        if c.where in ("host", "both"):
            body = c.text
            if "<<<" in b:
                launches = _find_launches(b)
                body = _rewrite_launches(c.text, b, kernels, launches)
                for start, _, _, _, _, end in launches:
                    first = text.count("\n", 0, c.start + start) + 1
                    launch_lines.update(range(first, first + text.count("\n", c.start + start, c.start + end) + 1))
            host_parts.append(line + body + "\n")
        elif c.kind == "decl" and ("__global__" in b or "__host__" in b and b.rstrip().endswith("}")):
            decl = _declarator(c.text).rstrip().rstrip(";")
            decl = re.sub(r"^(\s*(?:template\s*<[^{]*?>\s*)?)static\s+", r"\1", decl)
            host_parts.append(line + decl + ";\n")
    host = "".join(host_parts)
    if host_header.strip() != "#include <torch/extension.h>":
        host = re.sub(r"#\s*include\s*[<\"]torch/extension\.h[>\"]", host_header.strip(), host)
    return Split("".join(kernel_parts), host, host_header,
                 {name for name, is_template in kernels.items() if is_template}, launch_lines)


def undefined_symbols(obj):
    """The demangled undefined symbols of an object file."""
    p = subprocess.run(["nm", "-C", "--undefined-only", "--format=posix", obj], capture_output=True, text=True)
    if p.returncode != 0:
        raise Declined("nm failed: %s" % p.stderr.strip()[-300:])
    # POSIX format: "name type [value size]"; an undefined symbol has only its name and type (U, w).
    return [line.rstrip().rsplit(" ", 1)[0] for line in p.stdout.splitlines() if line.strip()]


def instantiations(template_kernels, symbols):
    """Explicit instantiations, for the kernel file, of each template kernel specialisation that
    the host object uses (`symbols`: its demangled undefined symbols, `void k<float>(float*, int)`)."""
    lines = []
    for sym in symbols:
        m = re.match(r"void (\w+)<(.*)>\((.*)\)$", sym.strip())
        if m and m.group(1) in template_kernels:
            if "(anonymous namespace)" in sym:
                raise Declined("an instantiation with a type in an anonymous namespace")
            lines.append("template __global__ void %s<%s>(%s);" % m.groups())
    return "\n".join(sorted(set(lines))) + ("\n" if lines else "")
