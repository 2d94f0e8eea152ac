#!/usr/bin/env python3
"""Generate the Go binding's low-level layer from include/rewardkit.h.

    python3 bindings/go/generate.py            # write rewardkit/zz_generated.go
    python3 bindings/go/generate.py --check    # exit 1 and print a diff if it is stale

The output holds:

- every `#define RK_*` integer constant, as a Go constant (error codes typed
  ErrorCode, devices typed Device, init kinds typed InitKind, versions untyped),
  with the header's comment as its doc comment;
- ErrorCode.String() and one sentinel *Error per error code;
- one unexported cgo wrapper per function declared in the header, named by
  camel-casing the C name (rk_scorer_score -> rkScorerScore).

A wrapper keeps the C parameter types and makes only two conversions:
a returned `rk_error *` becomes a Go `error` (through errorFromC in error.go,
which copies the code and message and frees the rk_error), and a returned
`const char *` becomes a Go string copy (NULL becomes "").

The generator knows a fixed set of C types (see BASE_TYPES plus every typedef
the header declares). A declaration it cannot map, or a constant group it has
no Go type for, stops it with an error that names the declaration: the output
never silently drops part of the header.

Python 3 standard library only. The output does not depend on the cwd, the
time or the environment, and is already gofmt-formatted.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_HEADER = HERE.parent.parent / "include" / "rewardkit.h"
DEFAULT_OUT = HERE / "rewardkit" / "zz_generated.go"

# C scalar types the generator can pass through cgo, and their cgo spelling.
BASE_TYPES = {
    "char": "C.char",
    "int": "C.int",
    "float": "C.float",
    "double": "C.double",
    "size_t": "C.size_t",
    "int32_t": "C.int32_t",
    "uint32_t": "C.uint32_t",
    "int64_t": "C.int64_t",
    "uint64_t": "C.uint64_t",
}

# `#define` groups: C prefix -> (Go type or None for untyped, Go name prefix).
CONST_GROUPS = {
    "RK_ERR_": ("ErrorCode", "Code"),
    "RK_DEVICE_": ("Device", "Device"),
    "RK_INIT_": ("InitKind", "Init"),
    "RK_VERSION_": (None, "Version"),
}

# Words kept upper case in Go names (Go's initialism convention).
INITIALISMS = {"CPU", "CUDA", "GPU", "ID", "IO", "JSON", "ONNX", "TOML", "URL", "UTF8"}

GO_KEYWORDS = {
    "break", "case", "chan", "const", "continue", "default", "defer", "else",
    "fallthrough", "for", "func", "go", "goto", "if", "import", "interface",
    "map", "package", "range", "return", "select", "struct", "switch", "type",
    "var",
}


class GenerateError(Exception):
    """The header holds something this generator cannot translate."""


@dataclass
class Constant:
    c_name: str
    value: int
    doc: list[str]


@dataclass
class Param:
    c_decl: str
    name: str
    go_type: str


@dataclass
class Function:
    c_name: str
    c_decl: str
    doc: list[str]
    ret: str  # "void", "error", "string" or a cgo type
    params: list[Param]


# --------------------------------------------------------------------------
# Parsing


def comment_text(line: str) -> str | None:
    """The text of a `//` comment line, or None if the line is not one."""
    s = line.strip()
    if s.startswith("//"):
        return s[2:].removeprefix(" ")
    return None


def parse_constants(lines: list[str]) -> list[Constant]:
    consts = []
    doc: list[str] = []
    for line in lines:
        text = comment_text(line)
        if text is not None:
            doc.append(text)
            continue
        m = re.match(r"\s*#define\s+(RK_\w+)\s+(.*?)\s*$", line)
        if m:
            name, raw = m.groups()
            try:
                value = int(raw, 0)
            except ValueError:
                raise GenerateError(
                    f"#define {name} {raw}: only integer constants are supported"
                ) from None
            consts.append(Constant(name, value, doc))
        doc = []
    return consts


def parse_typedefs(text: str) -> dict[str, str]:
    """Typedef names declared by the header -> their cgo spelling."""
    names = set(re.findall(r"typedef\s+struct\s+\w+\s+(\w+)\s*;", text))
    names |= set(re.findall(r"typedef\s+struct\s*\{[^}]*\}\s*(\w+)\s*;", text))
    names |= set(re.findall(r"typedef\s+[^;()]*\(\s*\*\s*(\w+)\s*\)\s*\([^;]*\)\s*;", text))
    return {n: f"C.{n}" for n in sorted(names)}


def function_block(lines: list[str]) -> list[str]:
    """The lines between `extern "C" {` and its closing `}`."""
    start = end = None
    for i, line in enumerate(lines):
        if start is None and re.match(r'\s*extern\s+"C"\s*\{', line):
            start = i + 1
        elif start is not None and re.match(r"\s*\}\s*//\s*extern", line):
            end = i
            break
    if start is None or end is None:
        raise GenerateError('no `extern "C" { ... }` block found in the header')
    # Drop the #ifdef __cplusplus / #endif lines that wrap the braces.
    return [l for l in lines[start:end] if not l.lstrip().startswith("#")]


def parse_functions(lines: list[str], types: dict[str, str]) -> list[Function]:
    funcs = []
    doc: list[str] = []
    decl: list[str] = []
    for line in function_block(lines):
        text = comment_text(line)
        if text is not None and not decl:
            doc.append(text)
            continue
        if not line.strip():
            if not decl:
                doc = []
            continue
        decl.append(line.strip())
        if line.rstrip().endswith(";"):
            c_decl = re.sub(r"\s+", " ", " ".join(decl))
            c_decl = re.sub(r"\(\s+", "(", c_decl)
            funcs.append(parse_function(c_decl, doc, types))
            doc, decl = [], []
    if decl:
        raise GenerateError(f"unterminated declaration: {' '.join(decl)}")
    return funcs


def split_type(decl: str) -> tuple[list[str], int, str | None]:
    """Split `const char *const *name` into (["char"], 2, "name").

    Returns the base type words (without `const`), the pointer depth and the
    trailing identifier if the declaration has one after its type.
    """
    tokens = decl.replace("*", " * ").split()
    words = [t for t in tokens if t not in ("const", "*")]
    depth = tokens.count("*")
    name = None
    # The name is the last token when it follows the type (not `char *`).
    if len(words) >= 2 and tokens[-1] not in ("*", "const"):
        name = words.pop()
    return words, depth, name


def cgo_type(words: list[str], depth: int, types: dict[str, str]) -> str | None:
    if len(words) != 1:
        return None
    base = words[0]
    if base == "void":
        if depth == 0:
            return None
        return "*" * (depth - 1) + "unsafe.Pointer"
    go = BASE_TYPES.get(base) or types.get(base)
    if go is None:
        return None
    return "*" * depth + go


def parse_function(c_decl: str, doc: list[str], types: dict[str, str]) -> Function:
    m = re.fullmatch(r"(.+?)\b(rk_\w+)\s*\((.*)\)\s*;", c_decl)
    if not m:
        raise GenerateError(f"cannot parse declaration: {c_decl}")
    ret_decl, c_name, params_decl = m.group(1).strip(), m.group(2), m.group(3).strip()

    def unsupported(why: str) -> GenerateError:
        return GenerateError(
            f"unsupported signature for {c_name}: {why}\n  {c_decl}\n"
            "Teach bindings/go/generate.py this type (BASE_TYPES or the return "
            "conversions in parse_function) or wrap the function by hand."
        )

    # Parse the return type as if it declared a variable named `x`.
    words, depth, _ = split_type(ret_decl + " x")
    if words == ["void"] and depth == 0:
        ret = "void"
    elif words == ["rk_error"] and depth == 1:
        ret = "error"
    elif words == ["char"] and depth == 1:
        if not ret_decl.startswith("const"):
            raise unsupported(f"returns `{ret_decl}` (a mutable char *: who frees it?)")
        ret = "string"
    else:
        ret = cgo_type(words, depth, types)
        if ret is None:
            raise unsupported(f"return type `{ret_decl}`")

    params: list[Param] = []
    if params_decl not in ("", "void"):
        for p in params_decl.split(","):
            p = p.strip()
            if p == "..." or "(" in p or "[" in p:
                raise unsupported(f"parameter `{p}`")
            pwords, pdepth, pname = split_type(p)
            if pname is None:
                raise unsupported(f"parameter `{p}` has no name")
            go = cgo_type(pwords, pdepth, types)
            if go is None:
                raise unsupported(f"parameter `{p}`")
            params.append(Param(p, go_param_name(pname), go))
    return Function(c_name, c_decl, doc, ret, params)


# --------------------------------------------------------------------------
# Naming


def go_words(parts: list[str]) -> str:
    out = []
    for w in parts:
        up = w.upper()
        out.append(up if up in INITIALISMS else w[:1].upper() + w[1:].lower())
    return "".join(out)


def go_func_name(c_name: str) -> str:
    parts = c_name.split("_")
    return parts[0] + go_words(parts[1:])


def go_param_name(c_name: str) -> str:
    parts = c_name.split("_")
    name = parts[0] + go_words(parts[1:])
    return name + "_" if name in GO_KEYWORDS or name == "C" else name


def go_const(c: Constant) -> tuple[str | None, str]:
    for prefix, (gotype, goprefix) in CONST_GROUPS.items():
        if c.c_name.startswith(prefix):
            rest = c.c_name[len(prefix):].split("_")
            return gotype, goprefix + go_words(rest)
    raise GenerateError(
        f"#define {c.c_name}: no Go type for this constant group; "
        "add its prefix to CONST_GROUPS in bindings/go/generate.py"
    )


# --------------------------------------------------------------------------
# Output


def go_doc(lines: list[str], indent: str = "") -> list[str]:
    return [f"{indent}//" + (f" {l}" if l else "") for l in lines]


def sentence(doc: list[str]) -> list[str]:
    """The header comment with its first letter lowered, to follow a name."""
    if not doc:
        return []
    first = doc[0]
    word = first.split(" ", 1)[0]
    if not (len(word) > 1 and word.isupper()):  # keep acronyms such as ONNX
        first = first[:1].lower() + first[1:]
    return [first] + doc[1:]


def render(header_rel: str, consts: list[Constant], funcs: list[Function]) -> str:
    out: list[str] = []
    w = out.append
    w(f"// Code generated by bindings/go/generate.py from {header_rel}. DO NOT EDIT.")
    w("")
    w("package rewardkit")
    w("")
    w("/*")
    w("#include <rewardkit.h>")
    w("*/")
    w('import "C"')
    w("")
    imports = []
    if any(c.c_name.startswith("RK_ERR_") for c in consts):
        imports.append("strconv")
    if any("unsafe.Pointer" in t for f in funcs for t in [f.ret] + [p.go_type for p in f.params]):
        imports.append("unsafe")
    if imports:
        w("import (")
        for imp in imports:
            w(f'\t"{imp}"')
        w(")")
        w("")

    by_group: dict[str, list[tuple[Constant, str | None, str]]] = {}
    for c in consts:
        gotype, goname = go_const(c)
        prefix = next(p for p in CONST_GROUPS if c.c_name.startswith(p))
        by_group.setdefault(prefix, []).append((c, gotype, goname))

    for prefix in CONST_GROUPS:
        group = by_group.get(prefix)
        if not group:
            continue
        w("const (")
        for i, (c, gotype, goname) in enumerate(group):
            if i:
                w("")
            out.extend(go_doc([f"{goname} is {c.c_name}: " + (sentence(c.doc) or [""])[0]]
                              + sentence(c.doc)[1:], "\t"))
            typ = f" {gotype}" if gotype else ""
            w(f"\t{goname}{typ} = {c.value}")
        w(")")
        w("")

    errors = by_group.get("RK_ERR_", [])
    if errors:
        w("// String returns the code's C name, such as \"RK_ERR_EMPTY_BATCH\", or")
        w("// \"RK_ERR_<n>\" for a code this version of the binding does not know.")
        w("func (c ErrorCode) String() string {")
        w("\tswitch c {")
        for c, _, goname in errors:
            w(f"\tcase {goname}:")
            w(f'\t\treturn "{c.c_name}"')
        w("\t}")
        w('\treturn "RK_ERR_" + strconv.FormatUint(uint64(c), 10)')
        w("}")
        w("")
        w("// Sentinel errors, one per code, for errors.Is: an *Error matches the")
        w("// sentinel with the same Code whatever its message.")
        w("var (")
        for i, (c, _, goname) in enumerate(errors):
            if i:
                w("")
            errname = "Err" + goname.removeprefix("Code")
            out.extend(go_doc([f"{errname} matches errors with code {goname} ({c.c_name})."], "\t"))
            w(f"\t{errname} error = &Error{{Code: {goname}}}")
        w(")")
        w("")

    for f in funcs:
        name = go_func_name(f.c_name)
        out.extend(go_doc([f"{name} calls {f.c_name}, declared as", ""]))
        out.append("//\t" + f.c_decl)
        if f.doc:
            out.append("//")
            out.extend(go_doc(f.doc))
        params = ", ".join(f"{p.name} {p.go_type}" for p in f.params)
        args = ", ".join(p.name for p in f.params)
        call = f"C.{f.c_name}({args})"
        if f.ret == "void":
            w(f"func {name}({params}) {{")
            w(f"\t{call}")
        elif f.ret == "error":
            w(f"func {name}({params}) error {{")
            w(f"\treturn errorFromC({call})")
        elif f.ret == "string":
            w(f"func {name}({params}) string {{")
            w(f"\treturn C.GoString({call})")
        else:
            w(f"func {name}({params}) {f.ret} {{")
            w(f"\treturn {call}")
        w("}")
        w("")

    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def generate(header: Path) -> str:
    text = header.read_text(encoding="utf-8")
    lines = text.splitlines()
    types = parse_typedefs(text)
    consts = parse_constants(lines)
    funcs = parse_functions(lines, types)
    if not funcs:
        raise GenerateError(f"{header}: no rk_* functions found")
    try:
        rel = header.resolve().relative_to(HERE.parent.parent).as_posix()
    except ValueError:
        rel = header.name
    return render(rel, consts, funcs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--header", type=Path, default=DEFAULT_HEADER)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 with a diff if --out is stale")
    args = ap.parse_args(argv)

    try:
        text = generate(args.header)
    except GenerateError as e:
        print(f"generate.py: error: {e}", file=sys.stderr)
        return 2

    if args.check:
        try:
            current = args.out.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = ""
        if current == text:
            return 0
        sys.stdout.writelines(difflib.unified_diff(
            current.splitlines(keepends=True), text.splitlines(keepends=True),
            f"{args.out} (on disk)", f"{args.out} (generated)"))
        print(f"generate.py: {args.out} is stale; run python3 bindings/go/generate.py "
              "to regenerate it", file=sys.stderr)
        return 1

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
