#!/usr/bin/env python3
"""Tests of generate.py (stdlib unittest): run `python3 bindings/java/test_generate.py`."""

import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True
import generate  # noqa: E402

HEADER = generate.DEFAULT_HEADER.read_text(encoding="utf-8")


def with_decl(decl: str) -> str:
    """The real header with `decl` added before the closing extern "C" block."""
    marker = "#ifdef __cplusplus\n}"
    assert marker in HEADER
    return HEADER.replace(marker, decl + "\n\n" + marker)


class GenerateTest(unittest.TestCase):
    def gen(self, src: str) -> str:
        return generate.emit(generate.parse_header(src), "rewardkit.h")

    def test_every_function_and_constant_of_the_header_is_bound(self):
        out = self.gen(HEADER)
        for decl in generate.parse_header(HEADER):
            if isinstance(decl, generate.Function):
                self.assertIn(f" {decl.name}(", out)
            if isinstance(decl, generate.Constant):
                self.assertIn(f"int {decl.name} = {decl.value};", out)

    def test_a_new_function_shows_up(self):
        out = self.gen(with_decl(
            "// Frobnicate.\nrk_error *rk_scorer_frob(const rk_scorer *scorer,\n"
            "                          size_t n,\n                          float *out);"))
        self.assertIn("Pointer rk_scorer_frob(Pointer scorer, SizeT n, float[] out);", out)
        self.assertIn("Frobnicate.", out)

    def test_a_new_constant_shows_up(self):
        out = self.gen(HEADER.replace("#define RK_ERR_PANIC 900", "#define RK_ERR_NEW 402\n\n#define RK_ERR_PANIC 900"))
        self.assertIn("int RK_ERR_NEW = 402;", out)

    def test_an_unsupported_type_fails_naming_it(self):
        with self.assertRaises(generate.GenError) as ctx:
            self.gen(with_decl("void rk_frob(struct timeval *when);"))
        self.assertIn("struct timeval *", str(ctx.exception))
        self.assertIn("rk_frob", str(ctx.exception))

    def test_an_unsupported_struct_field_fails_naming_it(self):
        with self.assertRaises(generate.GenError) as ctx:
            self.gen(HEADER.replace("  size_t max_sessions;", "  size_t max_sessions;\n  const char *label;"))
        self.assertIn("rk_scorer_options.label", str(ctx.exception))

    def test_output_is_deterministic(self):
        self.assertEqual(self.gen(HEADER), self.gen(HEADER))

    def test_check_fails_with_a_diff_when_stale(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "RewardkitLibrary.java"
            out.write_text("stale\n", encoding="utf-8")
            run = subprocess.run(
                [sys.executable, str(HERE / "generate.py"), "--check", "--out", str(out)],
                capture_output=True, text=True)
            self.assertEqual(run.returncode, 1)
            self.assertIn("-stale", run.stdout)
            self.assertIn("+package io.rewardkit.internal;", run.stdout)


if __name__ == "__main__":
    unittest.main()
