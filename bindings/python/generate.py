#!/usr/bin/env python3
"""Generate rewardkit/_ffi.py, the ctypes layer, from include/rewardkit.h.

    python3 bindings/python/generate.py           # rewrite rewardkit/_ffi.py
    python3 bindings/python/generate.py --check   # exit 1 with a diff if stale

The header is cbindgen's output and keeps to a small C subset, which this
script reads strictly: `#define RK_* <integer>`, opaque `typedef struct x x;`,
`typedef struct { ... } x;`, function-pointer typedefs and function
prototypes, each with the `//` comment block above it. Anything else, or a
C type with no ctypes mapping here, is an error naming the declaration, so a
header change either shows up in the output or stops the build. The output
depends only on the header: no dates, no paths.

Standard library only.
"""

import argparse
import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_HEADER = HERE.parent.parent / "include" / "rewardkit.h"
DEFAULT_OUT = HERE / "rewardkit" / "_ffi.py"

# C scalar types and their ctypes names.
SCALARS = {
    "char": "c_char",
    "int": "c_int",
    "unsigned": "c_uint",
    "int8_t": "c_int8",
    "uint8_t": "c_uint8",
    "int16_t": "c_int16",
    "uint16_t": "c_uint16",
    "int32_t": "c_int32",
    "uint32_t": "c_uint32",
    "int64_t": "c_int64",
    "uint64_t": "c_uint64",
    "size_t": "c_size_t",
    "float": "c_float",
    "double": "c_double",
    "bool": "c_bool",
}

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


class HeaderError(Exception):
    """The header uses something this generator does not understand."""


@dataclass
class Constant:
    name: str
    value: int
    doc: list


@dataclass
class Param:
    name: str
    ctype: str  # the C type as written, whitespace normalised


@dataclass
class Struct:
    name: str
    doc: list
    fields: list = field(default_factory=list)  # (Param, doc lines)


@dataclass
class Opaque:
    name: str
    doc: list


@dataclass
class Callback:
    name: str
    ret: str
    params: list
    doc: list


@dataclass
class Function:
    name: str
    ret: str
    params: list
    doc: list


def normalise(ctype):
    """Spell a C type one way: 'const char* const  *' -> 'const char *const *'."""
    ctype = re.sub(r"\s*\*\s*", " *", ctype.strip())
    return re.sub(r"\s+", " ", ctype).replace("* ", "*").strip()


def split_param(text, where):
    """'const char *const *prompts' -> Param('prompts', 'const char *const *')."""
    m = re.fullmatch(rf"(.*?[\s*])({IDENT})", text.strip())
    if not m or not m.group(1).strip():
        raise HeaderError(f"{where}: cannot read parameter {text.strip()!r}")
    return Param(m.group(2), normalise(m.group(1)))


def split_params(text, where):
    text = text.strip()
    if text == "void":
        return []
    if not text:
        raise HeaderError(f"{where}: write (void) for no parameters")
    return [split_param(p, where) for p in text.split(",")]


def parse(header_text):
    """Return the header's items, in order, as Constant/Opaque/Struct/Callback/Function."""
    items = []
    doc = []  # the // comment block waiting for its declaration
    pending = []  # lines of a declaration not yet ended by ';'
    in_block_comment = False
    for lineno, raw in enumerate(header_text.splitlines(), 1):
        line = raw.strip()
        if in_block_comment:
            if "*/" in line:
                in_block_comment = False
            continue
        if line.startswith("/*"):
            in_block_comment = "*/" not in line
            continue
        if line.startswith("//"):
            doc.append(line[2:].strip())
            continue
        if not line:
            if not pending:
                doc = []
            continue
        if line.startswith("#"):
            m = re.fullmatch(r"#define\s+(RK_[A-Za-z0-9_]+)\s+(.+?)\s*(//.*)?", line)
            if m:
                try:
                    value = int(m.group(2), 0)
                except ValueError:
                    raise HeaderError(
                        f"line {lineno}: {m.group(1)} is not an integer constant: {m.group(2)!r}"
                    ) from None
                items.append(Constant(m.group(1), value, doc))
            elif not re.fullmatch(rf"#(ifndef|ifdef|endif|include|define\s+{IDENT}\s*$).*", line):
                raise HeaderError(f"line {lineno}: unsupported preprocessor line {line!r}")
            doc = []
            continue
        code = re.sub(r"\s*//.*", "", line)
        if code in ('extern "C" {', "}") and not pending:
            doc = []
            continue
        pending.append((code, doc))  # each line keeps the comment above it
        doc = []
        if not code.endswith(";"):
            continue
        # A struct body ends with '} name;', its fields with ';' too: wait for
        # the closing brace before reading the declaration.
        opened = sum(c.count("{") - c.count("}") for c, _ in pending)
        if opened:
            continue
        items.append(parse_declaration(pending, lineno))
        pending = []
    if pending:
        raise HeaderError(f"unterminated declaration at end of header: {pending[0][0]!r}")
    return items


def parse_declaration(lines, lineno):
    """Read one declaration: `lines` is [(code, comment lines above it)]."""
    text = " ".join(c for c, _ in lines)
    doc = lines[0][1]
    where = f"declaration ending on line {lineno}"
    m = re.fullmatch(rf"typedef struct ({IDENT}) ({IDENT});", text)
    if m:
        if m.group(1) != m.group(2):
            raise HeaderError(f"{where}: opaque typedef {text!r} renames its struct")
        return Opaque(m.group(2), doc)
    if text.startswith("typedef struct {"):
        close = lines[-1][0]
        m = re.fullmatch(rf"\}}\s*({IDENT});", close)
        if not m:
            raise HeaderError(f"{where}: cannot read struct end {close!r}")
        struct = Struct(m.group(1), doc)
        for code, fdoc in lines[1:-1]:
            if not code.endswith(";"):
                raise HeaderError(f"{where}: cannot read field {code!r} of {struct.name}")
            struct.fields.append((split_param(code[:-1], f"struct {struct.name}"), fdoc))
        return struct
    m = re.fullmatch(rf"typedef (.+?)\(\s*\*\s*({IDENT})\s*\)\s*\((.*)\);", text)
    if m:
        name = m.group(2)
        return Callback(name, normalise(m.group(1)), split_params(m.group(3), name), doc)
    m = re.fullmatch(rf"(.+?[\s*])({IDENT})\s*\((.*)\);", text)
    if m and not text.startswith("typedef"):
        name = m.group(2)
        return Function(name, normalise(m.group(1)), split_params(m.group(3), name), doc)
    raise HeaderError(f"{where}: unsupported declaration {text!r}")


class TypeMapper:
    """Map C types of the header to ctypes expressions."""

    def __init__(self, items):
        self.records = {i.name for i in items if isinstance(i, (Struct, Opaque))}
        self.opaque = {i.name for i in items if isinstance(i, Opaque)}
        self.callbacks = {i.name for i in items if isinstance(i, Callback)}
        self.used = set()  # names to import from ctypes

    def wrap(self, name, stars):
        if name != "None" and name not in self.records and name not in self.callbacks:
            self.used.add(name)
        if stars:
            self.used.add("POINTER")
        for _ in range(stars):
            name = f"POINTER({name})"
        return name

    def map(self, ctype, where, returned=False):
        base = " ".join(t for t in ctype.replace("*", " ").split() if t != "const")
        stars = ctype.count("*")
        if base == "void":
            if stars == 0:
                if returned:
                    return "None"
                raise HeaderError(f"{where}: a void parameter")
            return self.wrap("c_void_p", stars - 1)
        if base == "char" and stars >= 1:
            # Only borrowed strings may come back as c_char_p: ctypes copies
            # them into bytes and forgets the pointer, which would leak an
            # owned `char *`.
            if returned and stars == 1 and not ctype.startswith("const"):
                raise HeaderError(
                    f"{where}: returns an owned 'char *'; "
                    "the generator only supports borrowed 'const char *' results"
                )
            return self.wrap("c_char_p", stars - 1)
        if base in SCALARS:
            return self.wrap(SCALARS[base], stars)
        if base in self.records:
            if stars == 0 and base in self.opaque:
                raise HeaderError(f"{where}: opaque type {base} used by value")
            return self.wrap(base, stars)
        if base in self.callbacks:
            return self.wrap(base, stars)
        raise HeaderError(f"{where}: unsupported C type {ctype!r}")


def comment(lines, indent=""):
    return [f"{indent}# {line}".rstrip() for line in lines]


def prototype(item):
    params = ", ".join(
        f"{p.ctype}{'' if p.ctype.endswith('*') else ' '}{p.name}" for p in item.params
    )
    ret = item.ret if item.ret.endswith("*") else item.ret + " "
    return f"{ret}{item.name}({params or 'void'});"


def render(items, header_name):
    mapper = TypeMapper(items)
    consts = [i for i in items if isinstance(i, Constant)]
    values = {c.name: c.value for c in consts}
    for part in ("MAJOR", "MINOR", "PATCH"):
        if f"RK_VERSION_{part}" not in values:
            raise HeaderError(f"the header defines no RK_VERSION_{part}")
    version = "{}.{}.{}".format(
        values["RK_VERSION_MAJOR"], values["RK_VERSION_MINOR"], values["RK_VERSION_PATCH"]
    )
    errors = [c for c in consts if c.name.startswith("RK_ERR_")]
    functions = [i for i in items if isinstance(i, Function)]
    if not functions:
        raise HeaderError("the header declares no functions")

    head = [
        f"# Generated by bindings/python/generate.py from {header_name}. Do not edit:",
        "# change the header and run `python3 bindings/python/generate.py`.",
        '"""ctypes declarations for the rewardkit C ABI, one for one with the header.',
        "",
        "The safe API is in rewardkit.scorer; use this module only through it.",
        '"""',
        "",
        "import ctypes",
        "import enum",
    ]
    out = ["", "# Constants", ""]
    for c in consts:
        out += comment(c.doc) + [f"{c.name} = {c.value}", ""]
    out += [
        "# The version the header declares, as rk_version() spells it.",
        f'VERSION = "{version}"',
        "",
        "",
        "class ErrorCode(enum.IntEnum):",
        '    """The stable error codes (RK_ERR_*) carried by an rk_error."""',
        "",
    ]
    for c in errors:
        out += comment(c.doc, "    ") + [f"    {c.name[len('RK_ERR_') :]} = {c.value}"]
    out += ["", "", "# Types"]
    for item in items:
        if isinstance(item, Opaque):
            out += ["", ""] + comment(item.doc)
            out += [
                f"class {item.name}(ctypes.Structure):",
                "    pass  # opaque: used only through pointers",
            ]
        elif isinstance(item, Struct):
            out += ["", ""] + comment(item.doc)
            out += [f"class {item.name}(ctypes.Structure):", "    _fields_ = ["]
            for p, fdoc in item.fields:
                out += comment(fdoc, "        ")
                out.append(
                    f'        ("{p.name}", {mapper.map(p.ctype, f"field {item.name}.{p.name}")}),'
                )
            out.append("    ]")
        elif isinstance(item, Callback):
            ret = mapper.map(item.ret, f"callback {item.name}", returned=True)
            args = [
                mapper.map(p.ctype, f"parameter {p.name!r} of {item.name}") for p in item.params
            ]
            out += ["", ""] + comment(item.doc)
            out.append(f"{item.name} = ctypes.CFUNCTYPE({', '.join([ret] + args)})")
    out += [
        "",
        "",
        "# Functions: name -> (restype, argtypes), in header order.",
        "FUNCTIONS = {",
    ]
    for fn in functions:
        ret = mapper.map(fn.ret, f"return type of {fn.name}", returned=True)
        args = [mapper.map(p.ctype, f"parameter {p.name!r} of {fn.name}") for p in fn.params]
        out += comment(fn.doc, "    ") + comment([prototype(fn)], "    ")
        out.append(f'    "{fn.name}": ({ret}, [{", ".join(args)}]),')
    out += [
        "}",
        "",
        "",
        "def bind(lib):",
        '    """Set restype and argtypes on every function of the ctypes library `lib`.',
        "",
        "    Returns the names of the functions `lib` does not export (an older",
        "    library than this header); the caller decides what to do about them.",
        '    """',
        "    missing = []",
        "    for name, (restype, argtypes) in FUNCTIONS.items():",
        "        try:",
        "            fn = getattr(lib, name)",
        "        except AttributeError:",
        "            missing.append(name)",
        "            continue",
        "        fn.restype = restype",
        "        fn.argtypes = argtypes",
        "    return missing",
        "",
    ]
    imports = ["from ctypes import ("] + [f"    {n}," for n in sorted(mapper.used)] + [")"]
    return "\n".join(head + imports + out)


def generate(header_path):
    text = Path(header_path).read_text(encoding="utf-8")
    return render(parse(text), "include/" + Path(header_path).name)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--header", default=str(DEFAULT_HEADER), help="the C header to read")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="the Python module to write")
    ap.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    args = ap.parse_args(argv)
    try:
        text = generate(args.header)
    except HeaderError as e:
        print(f"generate.py: {args.header}: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if args.check:
        old = out.read_text(encoding="utf-8") if out.exists() else ""
        if old == text:
            return 0
        diff = difflib.unified_diff(
            old.splitlines(True),
            text.splitlines(True),
            f"{out} (committed)",
            f"{out} (from header)",
        )
        sys.stderr.writelines(diff)
        print(
            f"generate.py: {out} is stale; run python3 bindings/python/generate.py", file=sys.stderr
        )
        return 1
    out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
