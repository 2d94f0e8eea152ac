#!/usr/bin/env python3
"""Tests of generate.py: run with `python3 bindings/go/generate_test.py`."""

import contextlib
import io
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate  # noqa: E402

HEADER = generate.DEFAULT_HEADER.read_text(encoding="utf-8")


def with_extra(text: str, where: str = "function") -> str:
    """The header with `text` added to its function block or its defines."""
    if where == "function":
        anchor = "#ifdef __cplusplus\n}"
    else:
        anchor = "#define RK_VERSION_MAJOR"
    assert anchor in HEADER, anchor
    return HEADER.replace(anchor, text + "\n" + anchor, 1)


class GenerateTest(unittest.TestCase):
    def generate(self, text: str) -> str:
        with tempfile.TemporaryDirectory() as d:
            h = Path(d) / "rewardkit.h"
            h.write_text(text, encoding="utf-8")
            return generate.generate(h)

    def test_deterministic_and_complete(self):
        a, b = self.generate(HEADER), self.generate(HEADER)
        self.assertEqual(a, b)
        for c_name in ("rk_scorer_score_outputs", "rk_trainer_step", "rk_version"):
            self.assertIn(f"C.{c_name}(", a)
        self.assertIn("CodeInvalidUTF8 ErrorCode = 101", a)
        self.assertIn("DeviceCUDA Device = 1", a)

    def test_new_function_shows_up(self):
        out = self.generate(with_extra(
            "// Warm the scorer up.\n"
            "rk_error *rk_scorer_warm_up(const rk_scorer *scorer, size_t rounds, double *out_ms);\n"))
        self.assertIn(
            "func rkScorerWarmUp(scorer *C.rk_scorer, rounds C.size_t, outMs *C.double) error {", out)
        self.assertIn("// Warm the scorer up.", out)

    def test_unsupported_function_fails_loudly(self):
        for decl in (
            "bool rk_scorer_ready(const rk_scorer *scorer);",
            "void rk_log(const char *fmt, ...);",
            "char *rk_scorer_describe(const rk_scorer *scorer);",
            "rk_error *rk_scorer_on(rk_scorer *s, void (*cb)(int));",
        ):
            name = decl.split("(")[0].split()[-1].lstrip("*")
            with self.subTest(decl=decl):
                with self.assertRaisesRegex(generate.GenerateError, f"unsupported signature for {name}"):
                    self.generate(with_extra(decl))

    def test_unknown_constant_group_fails(self):
        with self.assertRaisesRegex(generate.GenerateError, "RK_LOG_DEBUG"):
            self.generate(with_extra("#define RK_LOG_DEBUG 7\n", where="define"))

    def test_check_reports_a_stale_file(self):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "zz_generated.go"
            out.write_text(generate.generate(generate.DEFAULT_HEADER) + "// stale\n")
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
                rc = generate.main(["--check", "--out", str(out)])
            self.assertEqual(rc, 1)
            self.assertIn("-// stale", buf.getvalue())
            self.assertEqual(generate.main(["--out", str(out)]), 0)
            self.assertEqual(generate.main(["--check", "--out", str(out)]), 0)


if __name__ == "__main__":
    unittest.main(verbosity=1)
