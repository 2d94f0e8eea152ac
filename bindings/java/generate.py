#!/usr/bin/env python3
"""Generate the Java binding's low-level JNA layer from include/rewardkit.h.

The output, src/main/java/io/rewardkit/internal/RewardkitLibrary.java, holds
every RK_* constant, every struct, callback and function of the header, in
header order, with the header's comments as Javadoc. Nothing in it is listed
by hand: a declaration of a kind or a C type this script does not know makes
it fail, naming the declaration and the type.

    python3 bindings/java/generate.py            # (re)write the file
    python3 bindings/java/generate.py --check    # exit 1 with a diff if stale
    python3 bindings/java/generate.py --header H --out F

Standard library only; the output depends on the header alone.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_HEADER = HERE.parent.parent / "include" / "rewardkit.h"
DEFAULT_OUT = HERE / "src/main/java/io/rewardkit/internal/RewardkitLibrary.java"
PACKAGE = "io.rewardkit.internal"
CLASS = "RewardkitLibrary"


class GenError(Exception):
    """The header holds something this generator cannot map."""


# ---------------------------------------------------------------------------
# Parsing


@dataclass
class Constant:
    name: str
    value: int
    doc: list[str]


@dataclass
class Param:
    ctype: str  # normalised, e.g. "const char * const *"
    name: str
    doc: list[str] = field(default_factory=list)


@dataclass
class Struct:
    name: str
    fields: list[Param]
    doc: list[str]


@dataclass
class Opaque:
    name: str
    doc: list[str]


@dataclass
class Callback:
    name: str
    ret: str
    params: list[Param]
    doc: list[str]


@dataclass
class Function:
    name: str
    ret: str
    params: list[Param]
    doc: list[str]


def normalise_type(text: str) -> str:
    """Spell a C type with single spaces and `*` as its own token."""
    return " ".join(text.replace("*", " * ").split())


def split_decl(text: str, what: str) -> tuple[str, str]:
    """Split "TYPE NAME" (a parameter or a field) into (type, name)."""
    m = re.fullmatch(r"(.*?)([A-Za-z_]\w*)", text.strip(), re.S)
    if not m or not m.group(1).strip():
        raise GenError(f"cannot read {what}: {text.strip()!r}")
    return normalise_type(m.group(1)), m.group(2)


def parse_params(text: str, where: str) -> list[Param]:
    text = " ".join(text.split())
    if text in ("", "void"):
        return []
    return [Param(*split_decl(p, f"a parameter of {where}")) for p in text.split(",")]


def strip_block_comments(src: str) -> str:
    # Keep line numbers intact so that errors can point at the header.
    return re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), src, flags=re.S)


def parse_struct_body(body: str, name: str) -> list[Param]:
    fields: list[Param] = []
    doc: list[str] = []
    for raw in body.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("//"):
            doc.append(line[2:].strip())
            continue
        if not line.endswith(";"):
            raise GenError(f"struct {name}: cannot read field line {line!r}")
        ctype, fname = split_decl(line[:-1], f"a field of {name}")
        fields.append(Param(ctype, fname, doc))
        doc = []
    if not fields:
        raise GenError(f"struct {name} has no fields")
    return fields


RE_DEFINE = re.compile(r"#\s*define\s+(\w+)(?:\s+(.*))?$")
RE_OPAQUE = re.compile(r"typedef\s+struct\s+(\w+)\s+(\w+)\s*;", re.S)
RE_STRUCT = re.compile(r"typedef\s+struct\s*(?:\w+\s*)?\{(.*)\}\s*(\w+)\s*;", re.S)
RE_CALLBACK = re.compile(r"typedef\s+(.+?)\(\s*\*\s*(\w+)\s*\)\s*\((.*)\)\s*;", re.S)
RE_FUNCTION = re.compile(r"([^()]+?)\b(\w+)\s*\((.*)\)\s*;", re.S)


def parse_header(src: str) -> list[object]:
    """Read the header into declarations, in order. Fails on anything unknown."""
    lines = strip_block_comments(src).splitlines()
    decls: list[object] = []
    doc: list[str] = []
    stmt: list[str] = []
    stmt_line = 0
    depth = 0
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not stmt:
            if not line:
                doc = []
                continue
            if line.startswith("//"):
                doc.append(line[2:].strip())
                continue
            if line.startswith("#"):
                m = RE_DEFINE.match(line)
                if m and m.group(2) is not None:
                    name, value = m.group(1), m.group(2).strip()
                    try:
                        num = int(value, 0)
                    except ValueError:
                        raise GenError(
                            f"rewardkit.h:{lineno}: #define {name} has the value "
                            f"{value!r}, not an integer literal"
                        ) from None
                    decls.append(Constant(name, num, doc))
                # Guards, includes and #ifdef/#endif carry nothing to bind.
                doc = []
                continue
            if line in ('extern "C" {', "}") or line.startswith("} //") or line.startswith("}  //"):
                doc = []
                continue
            stmt_line = lineno
        stmt.append(raw)
        code = line.split("//", 1)[0]
        depth += code.count("{") - code.count("}")
        if depth == 0 and code.rstrip().endswith(";"):
            decls.append(parse_statement("\n".join(stmt), doc, stmt_line))
            stmt, doc = [], []
    if stmt:
        raise GenError(f"rewardkit.h:{stmt_line}: declaration never ends: {stmt[0].strip()!r}")
    return decls


def parse_statement(text: str, doc: list[str], lineno: int) -> object:
    flat = " ".join(text.split())
    m = RE_OPAQUE.fullmatch(flat)
    if m:
        if m.group(1) != m.group(2):
            raise GenError(f"rewardkit.h:{lineno}: typedef struct {m.group(1)} {m.group(2)} renames")
        return Opaque(m.group(2), doc)
    m = RE_STRUCT.fullmatch(text.strip())
    if m:
        return Struct(m.group(2), parse_struct_body(m.group(1), m.group(2)), doc)
    m = RE_CALLBACK.fullmatch(flat)
    if m:
        name = m.group(2)
        return Callback(name, normalise_type(m.group(1)), parse_params(m.group(3), name), doc)
    if flat.startswith("typedef"):
        raise GenError(f"rewardkit.h:{lineno}: unsupported typedef: {flat!r}")
    m = RE_FUNCTION.fullmatch(flat)
    if m:
        name = m.group(2)
        return Function(name, normalise_type(m.group(1)), parse_params(m.group(3), name), doc)
    raise GenError(f"rewardkit.h:{lineno}: unsupported declaration: {flat!r}")


# ---------------------------------------------------------------------------
# C types to JNA types


def camel(c_name: str) -> str:
    """rk_scorer_options -> RkScorerOptions."""
    return "".join(part[:1].upper() + part[1:] for part in c_name.split("_") if part)


class TypeMap:
    """Maps normalised C types to Java types, knowing the header's typedefs."""

    SCALARS = {
        "int": "int",
        "int32_t": "int",
        "uint32_t": "int",
        "int64_t": "long",
        "uint64_t": "long",
        "float": "float",
        "double": "double",
        "size_t": "SizeT",
    }

    def __init__(self, decls: list[object]) -> None:
        self.opaque = {d.name for d in decls if isinstance(d, Opaque)}
        self.structs = {d.name for d in decls if isinstance(d, Struct)}
        self.callbacks = {d.name for d in decls if isinstance(d, Callback)}

    def java(self, ctype: str, role: str, where: str) -> str:
        """role: "return", "param" or "field"."""
        t = ctype
        if role == "return" and t == "void":
            return "void"
        if t in self.SCALARS:
            return self.SCALARS[t]
        if role != "field":
            if t == "const char *":
                return "String"
            if t == "const char * const *":
                return "String[]"  # JNA passes a NUL-terminated char* array
            if t in ("float *", "const float *"):
                return "float[]"  # one out-value is a float[1]
            if t in ("void *", "const void *"):
                return "Pointer"
            for name in self.opaque:
                if t in (f"{name} *", f"const {name} *"):
                    return "Pointer"
                if t == f"{name} * *":
                    return "PointerByReference"
            for name in self.structs:
                if t == name:
                    return f"{camel(name)}.ByValue"
                if role == "param" and t in (f"{name} *", f"const {name} *"):
                    return camel(name)  # a Structure argument passes by reference
            if role == "param" and t in self.callbacks:
                return camel(t)
        raise GenError(f"{where}: unsupported C type {ctype!r} (as {role})")


# ---------------------------------------------------------------------------
# Java output

JAVA_KEYWORDS = set(
    """abstract assert boolean break byte case catch char class const continue
    default do double else enum extends final finally float for goto if
    implements import instanceof int interface long native new package private
    protected public return short static strictfp super switch synchronized this
    throw throws transient try void volatile while true false null var record
    yield sealed permits""".split()
)


def java_ident(name: str) -> str:
    return name + "_" if name in JAVA_KEYWORDS else name


def doc_text(line: str) -> str:
    """A header comment line as Javadoc: HTML-escaped, `code` as {@code code}."""
    line = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    line = line.replace("*/", "*&#47;").replace("@", "&#64;")
    return re.sub(r"`([^`]+)`", r"{@code \1}", line)


def javadoc(lines: list[str], indent: str, extra: list[str] | None = None) -> list[str]:
    """A Javadoc block: the header's comment lines, then `extra` (already Javadoc)."""
    text = [doc_text(line) for line in lines] + (extra or [])
    if not text:
        return []
    out = [f"{indent}/**"]
    out.extend(f"{indent} * {line}".rstrip() for line in text)
    out.append(f"{indent} */")
    return out


def c_spelling(ctype: str, name: str = "") -> str:
    """The normalised type written back as C: "const char *const *name"."""
    t = re.sub(r"\* (?=\*|const\b)", "*", ctype)
    if not name:
        return t
    return t + name if t.endswith("*") else f"{t} {name}"


def emit(decls: list[object], header_name: str) -> str:
    types = TypeMap(decls)
    out: list[str] = []
    w = out.append
    w("// Generated by bindings/java/generate.py from include/" + header_name + "; do not edit.")
    w("// Regenerate with `python3 bindings/java/generate.py`.")
    w("")
    w(f"package {PACKAGE};")
    w("")
    w("import com.sun.jna.Callback;")
    w("import com.sun.jna.IntegerType;")
    w("import com.sun.jna.Library;")
    w("import com.sun.jna.Native;")
    w("import com.sun.jna.Pointer;")
    w("import com.sun.jna.Structure;")
    w("import com.sun.jna.ptr.PointerByReference;")
    w("")
    w("/**")
    w(" * The C API of rewardkit as a JNA interface, one method per function of")
    w(" * {@code rewardkit.h}, named as in C. Low level: handles are raw pointers and")
    w(" * every returned {@code rk_error} must be freed by the caller. Use the")
    w(" * {@code io.rewardkit} classes instead.")
    w(" *")
    w(" * <p>Type mapping: opaque handles are {@link Pointer}; {@code size_t} is")
    w(" * {@link SizeT}; {@code uint32_t}/{@code uint64_t} are {@code int}/{@code long}")
    w(" * (read them unsigned); {@code const char *} is {@link String} (UTF-8 when the")
    w(" * library is loaded with that string encoding); {@code const char *const *} is")
    w(" * {@code String[]}; {@code float *} is {@code float[]} (a single out-value")
    w(" * is a {@code float[1]}); structs passed by pointer are {@link Structure}s.")
    w(" */")
    w(f"public interface {CLASS} extends Library {{")

    def section(title: str) -> None:
        w("")
        w(f"    // ---- {title} " + "-" * max(0, 66 - len(title)))

    section("size_t")
    w("")
    w("    /** C {@code size_t}: unsigned, as wide as a pointer. */")
    w("    final class SizeT extends IntegerType {")
    w("        private static final long serialVersionUID = 1L;")
    w("")
    w("        public SizeT() {")
    w("            this(0);")
    w("        }")
    w("")
    w("        public SizeT(long value) {")
    w("            super(Native.SIZE_T_SIZE, value, true);")
    w("        }")
    w("    }")

    consts = [d for d in decls if isinstance(d, Constant)]
    if consts:
        section("constants")
        for c in consts:
            if not (-(2**31) <= c.value < 2**31):
                raise GenError(f"#define {c.name} {c.value} does not fit a Java int")
            w("")
            out.extend(javadoc(c.doc, "    "))
            w(f"    int {c.name} = {c.value};")

    for d in decls:
        if isinstance(d, Opaque):
            section(f"{d.name} (opaque; a Pointer)")
            if d.doc:
                w("")
                out.extend("    // " + line if line else "    //" for line in d.doc)
        elif isinstance(d, Struct):
            cls = camel(d.name)
            section(f"{d.name}")
            w("")
            out.extend(javadoc(d.doc, "    ", ["", f"<p>C struct {{@code {d.name}}}; fields in header order."]))
            order = ", ".join(f'"{java_ident(f.name)}"' for f in d.fields)
            w(f"    @Structure.FieldOrder({{{order}}})")
            w(f"    class {cls} extends Structure {{")
            for f in d.fields:
                jt = types.java(f.ctype, "field", f"field {d.name}.{f.name}")
                w("")
                out.extend(javadoc(f.doc, "        ", [f"<p>C type {{@code {c_spelling(f.ctype)}}}."]))
                init = " = new SizeT()" if jt == "SizeT" else ""
                w(f"        public {jt} {java_ident(f.name)}{init};")
            w("")
            w(f"        public {cls}() {{")
            w("            super();")
            w("        }")
            w("")
            w(f"        /** A {{@code {d.name}}} passed or returned by value. */")
            w(f"        public static class ByValue extends {cls} implements Structure.ByValue {{}}")
            w("")
            w(f"        /** A pointer to a {{@code {d.name}}}. */")
            w(f"        public static class ByReference extends {cls} implements Structure.ByReference {{}}")
            w("    }")
        elif isinstance(d, Callback):
            section(f"{d.name}")
            w("")
            out.extend(javadoc(d.doc, "    "))
            ret = types.java(d.ret, "return", f"callback {d.name}")
            args = ", ".join(
                f"{types.java(p.ctype, 'param', f'parameter {p.name} of callback {d.name}')} {java_ident(p.name)}"
                for p in d.params
            )
            w(f"    interface {camel(d.name)} extends Callback {{")
            w(f"        {ret} invoke({args});")
            w("    }")

    funcs = [d for d in decls if isinstance(d, Function)]
    section("functions")
    for f in funcs:
        ret = types.java(f.ret, "return", f"return type of {f.name}")
        args = []
        for p in f.params:
            jt = types.java(p.ctype, "param", f"parameter {p.name} of {f.name}")
            args.append(f"{jt} {java_ident(p.name)}")
        sig = ", ".join(c_spelling(p.ctype, p.name) for p in f.params) or "void"
        w("")
        out.extend(javadoc(f.doc, "    ", ["", f"<p>C: {{@code {c_spelling(f.ret, f.name)}({sig})}}"]))
        w(f"    {ret} {f.name}({', '.join(args)});")

    w("}")
    return "\n".join(out) + "\n"


def generate(header: Path) -> str:
    return emit(parse_header(header.read_text(encoding="utf-8")), header.name)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--header", type=Path, default=DEFAULT_HEADER)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="fail with a diff if --out is not up to date")
    args = ap.parse_args(argv)
    try:
        text = generate(args.header)
    except GenError as e:
        print(f"generate.py: {e}", file=sys.stderr)
        return 2
    if args.check:
        old = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if old == text:
            return 0
        diff = difflib.unified_diff(
            old.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=f"{args.out} (committed)",
            tofile=f"{args.out} (from {args.header})",
        )
        sys.stdout.writelines(diff)
        print(f"generate.py: {args.out} is stale; run python3 bindings/java/generate.py", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
