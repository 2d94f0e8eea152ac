"""generate.py: the committed _ffi.py is current, and header changes show up or fail."""

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
GENERATE = HERE.parent / "generate.py"
HEADER = HERE.parents[2] / "include" / "rewardkit.h"


def run(*args):
    return subprocess.run(
        [sys.executable, str(GENERATE), *args], capture_output=True, text=True, check=False
    )


def test_committed_ffi_is_current():
    r = run("--check")
    assert r.returncode == 0, r.stderr


def test_output_is_deterministic(tmp_path):
    for name in ("a.py", "b.py"):
        assert run("--out", str(tmp_path / name)).returncode == 0
    assert (tmp_path / "a.py").read_text() == (tmp_path / "b.py").read_text()


def with_extra(tmp_path, decl):
    text = HEADER.read_text().replace("#ifdef __cplusplus\n}", decl + "\n\n#ifdef __cplusplus\n}")
    assert decl in text
    header = tmp_path / "rewardkit.h"
    header.write_text(text)
    return header


def test_new_function_appears(tmp_path):
    header = with_extra(
        tmp_path,
        "// A new call.\nrk_error *rk_scorer_new_thing(const rk_scorer *scorer,\n"
        "                              uint64_t seed,\n                              double *out);",
    )
    out = tmp_path / "ffi.py"
    r = run("--header", str(header), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert (
        '"rk_scorer_new_thing": (POINTER(rk_error), [POINTER(rk_scorer), c_uint64, POINTER(c_double)]),'
        in out.read_text()
    )
    r = run("--header", str(header), "--check")
    assert r.returncode == 1 and "rk_scorer_new_thing" in r.stderr


@pytest.mark.parametrize(
    "decl, named",
    [
        (
            "rk_error *rk_scorer_weird(const rk_scorer *scorer, struct timeval *tv);",
            "struct timeval",
        ),
        ("long double rk_scorer_long(const rk_scorer *scorer);", "long double"),
        ("char *rk_owned_string(void);", "owned"),
    ],
)
def test_unsupported_type_fails_naming_it(tmp_path, decl, named):
    r = run("--header", str(with_extra(tmp_path, decl)), "--out", str(tmp_path / "ffi.py"))
    assert r.returncode != 0
    assert named in r.stderr and decl.split("(")[0].split()[-1].lstrip("*") in r.stderr


def test_bindings_match_header_functions():
    import re

    from rewardkit import _ffi

    code = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.DOTALL)
    code = re.sub(r"//[^\n]*", "", code)
    declared = re.findall(r"\b(rk_\w+)\(", code)
    assert declared and list(_ffi.FUNCTIONS) == declared
