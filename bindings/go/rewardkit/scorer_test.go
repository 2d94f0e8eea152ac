package rewardkit_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"rewardkit.dev/go/rewardkit"
)

// The tests need two bundles, made by test.sh with the rewardkit CLI:
// RK_TEST_BUNDLE (one output) and RK_TEST_BUNDLE5 (the five HelpSteer2
// outputs). They fail, rather than skip, without them.
var (
	bundle1 = os.Getenv("RK_TEST_BUNDLE")
	bundle5 = os.Getenv("RK_TEST_BUNDLE5")
)

func TestMain(m *testing.M) {
	if bundle1 == "" || bundle5 == "" {
		fmt.Fprintln(os.Stderr, "RK_TEST_BUNDLE and RK_TEST_BUNDLE5 must name test bundles; "+
			"run bindings/go/test.sh, which makes them")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

var (
	prompts = []string{
		"What is the capital of France?",
		"What is the capital of France?",
		"Write a haiku about rain.",
		"Explain recursion in one sentence.",
		"¿Cuál es la capital de España? 東京は日本の首都です。",
	}
	responses = []string{
		"The capital of France is Paris.",
		"I think it might be Lyon, or maybe Marseille.",
		"Soft rain on the roof / the garden drinks in silence / puddles hold the sky",
		"A function that calls itself on a smaller input until it reaches a base case.",
		"Madrid. 🙂",
	}
)

func open(t *testing.T, dir string, opts *rewardkit.Options) *rewardkit.Scorer {
	t.Helper()
	s, err := rewardkit.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// wantCode checks that err is an *Error with the given code, that errors.Is
// matches the code's sentinel, and that the message mentions each needle.
func wantCode(t *testing.T, what string, err error, code rewardkit.ErrorCode, needles ...string) {
	t.Helper()
	var rkErr *rewardkit.Error
	if !errors.As(err, &rkErr) {
		t.Errorf("%s: got error %v (%T), want *rewardkit.Error with %v", what, err, err, code)
		return
	}
	if rkErr.Code != code {
		t.Errorf("%s: code %v, want %v (%v)", what, rkErr.Code, code, err)
	}
	if !errors.Is(err, &rewardkit.Error{Code: code}) {
		t.Errorf("%s: errors.Is does not match the %v sentinel", what, code)
	}
	for _, n := range needles {
		if !strings.Contains(rkErr.Message, n) {
			t.Errorf("%s: message %q does not mention %q", what, rkErr.Message, n)
		}
	}
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestVersion(t *testing.T) {
	want := fmt.Sprintf("%d.%d.%d", rewardkit.VersionMajor, rewardkit.VersionMinor, rewardkit.VersionPatch)
	if got := rewardkit.Version(); got != want {
		t.Errorf("Version() = %q, header says %q", got, want)
	}
}

func TestDefaultOptions(t *testing.T) {
	want := rewardkit.Options{MaxBatch: 32, Device: rewardkit.DeviceCPU, MaxSessions: 1}
	if got := rewardkit.DefaultOptions(); got != want {
		t.Errorf("DefaultOptions() = %+v, want %+v", got, want)
	}
}

func TestOutputNames(t *testing.T) {
	s := open(t, bundle1, nil)
	if got := s.OutputNames(); len(got) != 1 || got[0] != "reward" || s.NumOutputs() != 1 {
		t.Errorf("OutputNames() = %q, NumOutputs() = %d; want [reward], 1", got, s.NumOutputs())
	}
	s5 := open(t, bundle5, nil)
	want := []string{"helpfulness", "correctness", "coherence", "complexity", "verbosity"}
	got := s5.OutputNames()
	if strings.Join(got, ",") != strings.Join(want, ",") || s5.NumOutputs() != 5 {
		t.Errorf("OutputNames() = %q, want %q", got, want)
	}
	got[0] = "changed" // a copy: the scorer's names stay as they are
	if s5.OutputNames()[0] != "helpfulness" {
		t.Error("OutputNames() returned the scorer's own slice")
	}
}

func TestScoreDeterministicAndFinite(t *testing.T) {
	s := open(t, bundle1, nil)
	r1, err := s.Score(prompts[0], responses[0])
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Score(prompts[0], responses[0])
	if err != nil {
		t.Fatal(err)
	}
	if r1 != r2 || math.IsNaN(float64(r1)) || math.IsInf(float64(r1), 0) {
		t.Errorf("Score twice: %v, %v; want the same finite number", r1, r2)
	}
	// Empty strings are valid input.
	if _, err := s.Score("", ""); err != nil {
		t.Errorf("Score of empty strings: %v", err)
	}
}

func TestBatchEqualsSingle(t *testing.T) {
	// MaxBatch 2 makes the library split the five pairs into chunks too.
	for _, opts := range []*rewardkit.Options{nil, {MaxBatch: 2}} {
		s := open(t, bundle1, opts)
		batch, err := s.ScoreBatch(prompts, responses)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) != len(prompts) {
			t.Fatalf("ScoreBatch gave %d rewards for %d pairs", len(batch), len(prompts))
		}
		for i := range prompts {
			one, err := s.Score(prompts[i], responses[i])
			if err != nil {
				t.Fatal(err)
			}
			if !near(float64(batch[i]), float64(one), 1e-5) {
				t.Errorf("opts %+v: pair %d: batch %v, single %v", opts, i, batch[i], one)
			}
		}
	}
}

func TestScoreOutputs(t *testing.T) {
	s := open(t, bundle5, nil)
	rows, err := s.ScoreOutputs(prompts, responses)
	if err != nil {
		t.Fatal(err)
	}
	rewards, err := s.ScoreBatch(prompts, responses)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(prompts) {
		t.Fatalf("%d rows for %d pairs", len(rows), len(prompts))
	}
	for i, row := range rows {
		if len(row) != 5 || cap(row) != 5 {
			t.Fatalf("row %d has len %d cap %d, want 5", i, len(row), cap(row))
		}
		one, err := s.Score(prompts[i], responses[i])
		if err != nil {
			t.Fatal(err)
		}
		// The bundle's reward is its first output, helpfulness.
		if !near(float64(row[0]), float64(one), 1e-5) || !near(float64(row[0]), float64(rewards[i]), 1e-5) {
			t.Errorf("pair %d: outputs[0] = %v, Score = %v, ScoreBatch = %v", i, row[0], one, rewards[i])
		}
	}
	if rows[0][1] == rows[0][0] && rows[0][2] == rows[0][0] {
		t.Errorf("row 0 = %v: the outputs should differ", rows[0])
	}

	// A one-output model gives one column equal to the reward.
	s1 := open(t, bundle1, nil)
	rows1, err := s1.ScoreOutputs(prompts[:2], responses[:2])
	if err != nil {
		t.Fatal(err)
	}
	r, _ := s1.Score(prompts[1], responses[1])
	if len(rows1[1]) != 1 || !near(float64(rows1[1][0]), float64(r), 1e-5) {
		t.Errorf("one-output ScoreOutputs row = %v, Score = %v", rows1[1], r)
	}
}

func TestCompare(t *testing.T) {
	s := open(t, bundle1, nil)
	p, a, b := prompts[0], responses[0], responses[1]
	ra, _ := s.Score(p, a)
	rb, _ := s.Score(p, b)
	ab, err := s.Compare(p, a, b)
	if err != nil {
		t.Fatal(err)
	}
	ba, err := s.Compare(p, b, a)
	if err != nil {
		t.Fatal(err)
	}
	if ab <= 0 || ab >= 1 {
		t.Errorf("Compare = %v, want a probability in (0, 1)", ab)
	}
	if want := sigmoid(float64(ra) - float64(rb)); !near(float64(ab), want, 1e-5) {
		t.Errorf("Compare = %v, sigmoid(ra - rb) = %v", ab, want)
	}
	if !near(float64(ab+ba), 1, 1e-5) {
		t.Errorf("Compare(a, b) + Compare(b, a) = %v, want 1", ab+ba)
	}
	same, err := s.Compare(p, a, a)
	if err != nil || !near(float64(same), 0.5, 1e-6) {
		t.Errorf("Compare(a, a) = %v, %v; want 0.5", same, err)
	}
}

func TestInputErrors(t *testing.T) {
	s := open(t, bundle5, nil)
	bad := "caf\xe9 au lait" // Latin-1, not UTF-8
	nul := "before\x00after"

	_, err := s.ScoreBatch(nil, nil)
	wantCode(t, "ScoreBatch(nil, nil)", err, rewardkit.CodeEmptyBatch)
	_, err = s.ScoreBatch([]string{}, []string{})
	wantCode(t, "ScoreBatch(empty)", err, rewardkit.CodeEmptyBatch)
	_, err = s.ScoreOutputs(nil, nil)
	wantCode(t, "ScoreOutputs(nil, nil)", err, rewardkit.CodeEmptyBatch)

	_, err = s.ScoreBatch(prompts, responses[:3])
	wantCode(t, "ScoreBatch(5, 3)", err, rewardkit.CodeLengthMismatch, "5 prompts", "3 responses")
	_, err = s.ScoreOutputs(prompts[:1], nil)
	wantCode(t, "ScoreOutputs(1, 0)", err, rewardkit.CodeLengthMismatch)

	// Invalid UTF-8 goes through to the library, which reports it.
	_, err = s.Score(bad, "x")
	wantCode(t, "Score(invalid UTF-8 prompt)", err, rewardkit.CodeInvalidUTF8)
	_, err = s.Score("x", bad)
	wantCode(t, "Score(invalid UTF-8 response)", err, rewardkit.CodeInvalidUTF8)
	_, err = s.ScoreBatch([]string{"a", "b"}, []string{"ok", bad})
	wantCode(t, "ScoreBatch(invalid UTF-8)", err, rewardkit.CodeInvalidUTF8)
	_, err = s.ScoreOutputs([]string{bad}, []string{"ok"})
	wantCode(t, "ScoreOutputs(invalid UTF-8)", err, rewardkit.CodeInvalidUTF8)
	_, err = s.Compare("p", "a", bad)
	wantCode(t, "Compare(invalid UTF-8)", err, rewardkit.CodeInvalidUTF8)

	// A NUL byte cannot cross into C: it is stopped in Go and named.
	_, err = s.Score(nul, "x")
	wantCode(t, "Score(NUL)", err, rewardkit.CodeInvalidArgument, "prompt", "NUL", "offset 6")
	_, err = s.Score("x", nul)
	wantCode(t, "Score(NUL response)", err, rewardkit.CodeInvalidArgument, "response")
	_, err = s.ScoreBatch([]string{"a", "b"}, []string{"ok", nul})
	wantCode(t, "ScoreBatch(NUL)", err, rewardkit.CodeInvalidArgument, "responses[1]")
	_, err = s.ScoreOutputs([]string{"a", nul}, []string{"ok", "ok"})
	wantCode(t, "ScoreOutputs(NUL)", err, rewardkit.CodeInvalidArgument, "prompts[1]")
	_, err = s.Compare("p", nul, "b")
	wantCode(t, "Compare(NUL)", err, rewardkit.CodeInvalidArgument, "responseA")

	// The scorer is still fine afterwards.
	if _, err := s.Score("p", "r"); err != nil {
		t.Errorf("Score after errors: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-bundle")
	_, err := rewardkit.Open(missing, nil)
	var rkErr *rewardkit.Error
	if !errors.As(err, &rkErr) || (rkErr.Code != rewardkit.CodeIO && rkErr.Code != rewardkit.CodeInvalidBundle) {
		t.Errorf("Open(missing dir) = %v, want CodeIO or CodeInvalidBundle", err)
	}

	_, err = rewardkit.Open("bad\x00dir", nil)
	wantCode(t, "Open(NUL)", err, rewardkit.CodeInvalidArgument, "bundleDir")
	_, err = rewardkit.Open(bundle1, &rewardkit.Options{MaxSessions: -1})
	wantCode(t, "Open(MaxSessions -1)", err, rewardkit.CodeInvalidArgument, "MaxSessions")

	// Options reach the library, which checks them.
	_, err = rewardkit.Open(bundle1, &rewardkit.Options{MaxLength: 100000})
	wantCode(t, "Open(MaxLength 100000)", err, rewardkit.CodeInvalidArgument, "max_length")
	_, err = rewardkit.Open(bundle1, &rewardkit.Options{Device: 7})
	wantCode(t, "Open(Device 7)", err, rewardkit.CodeInvalidArgument, "device")
	s, err := rewardkit.Open(bundle1, &rewardkit.Options{MaxLength: 8, MaxBatch: 1, Threads: 1})
	if err != nil {
		t.Fatalf("Open(MaxLength 8): %v", err)
	}
	defer s.Close()
	short, err := s.Score(prompts[3], responses[3])
	if err != nil {
		t.Fatal(err)
	}
	full, err := open(t, bundle1, nil).Score(prompts[3], responses[3])
	if err != nil {
		t.Fatal(err)
	}
	if short == full {
		t.Errorf("MaxLength 8 gave the full-length reward %v: the option did not reach the library", full)
	}

	// CUDA is refused by the CPU-only ONNX
	// Runtime the tests use (and accepted where CUDA works).
	if s, err := rewardkit.Open(bundle1, &rewardkit.Options{Device: rewardkit.DeviceCUDA}); err == nil {
		s.Close()
	} else {
		wantCode(t, "Open(CUDA)", err, rewardkit.CodeProviderUnavailable)
	}
}

// copyBundle copies the bundle at src into a new temporary directory.
func copyBundle(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "bundle")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestBrokenBundles(t *testing.T) {
	cases := []struct {
		name   string
		breakc func(dir string) error
		code   rewardkit.ErrorCode
		needle string
	}{
		{"no model", func(d string) error { return os.Remove(filepath.Join(d, "model.onnx")) },
			rewardkit.CodeInvalidBundle, "model.onnx"},
		{"truncated model", func(d string) error {
			p := filepath.Join(d, "model.onnx")
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, fi.Size()/2)
		}, rewardkit.CodeInvalidModel, "model.onnx"},
		{"bad manifest", func(d string) error {
			return os.WriteFile(filepath.Join(d, "rewardkit.json"), []byte(`{"format": "rewardkit-bundle", `), 0o644)
		}, rewardkit.CodeInvalidBundle, "rewardkit.json"},
		{"no tokenizer", func(d string) error { return os.Remove(filepath.Join(d, "tokenizer.json")) },
			rewardkit.CodeInvalidBundle, "tokenizer.json"},
		{"newer format", func(d string) error {
			p := filepath.Join(d, "rewardkit.json")
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b = []byte(strings.Replace(string(b), `"format_version": 1`, `"format_version": 99`, 1))
			return os.WriteFile(p, b, 0o644)
		}, rewardkit.CodeUnsupportedVersion, "99"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyBundle(t, bundle1)
			if err := c.breakc(dir); err != nil {
				t.Fatal(err)
			}
			s, err := rewardkit.Open(dir, nil)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded", c.name)
			}
			wantCode(t, "Open("+c.name+")", err, c.code, c.needle)
		})
	}
}

func TestClose(t *testing.T) {
	s, err := rewardkit.Open(bundle5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	calls := map[string]error{}
	_, calls["Score"] = s.Score("p", "r")
	_, calls["ScoreBatch"] = s.ScoreBatch([]string{"p"}, []string{"r"})
	_, calls["ScoreOutputs"] = s.ScoreOutputs([]string{"p"}, []string{"r"})
	_, calls["Compare"] = s.Compare("p", "a", "b")
	for name, err := range calls {
		if !errors.Is(err, rewardkit.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
		wantCode(t, name+" after Close", err, rewardkit.CodeNullArgument, "closed")
	}
	if n := len(s.OutputNames()); n != 5 {
		t.Errorf("OutputNames after Close has %d names, want 5", n)
	}
	// ErrClosed is not matched by other errors with its code.
	if errors.Is(&rewardkit.Error{Code: rewardkit.CodeNullArgument, Message: "x"}, rewardkit.ErrClosed) {
		t.Error("an unrelated CodeNullArgument error matches ErrClosed")
	}
}

func TestErrorFormatting(t *testing.T) {
	err := &rewardkit.Error{Code: rewardkit.CodeEmptyBatch, Message: "nothing to do"}
	if got, want := err.Error(), "rewardkit: nothing to do (RK_ERR_EMPTY_BATCH 102)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := rewardkit.ErrTokenizer.Error(), "rewardkit: RK_ERR_TOKENIZER 203"; got != want {
		t.Errorf("sentinel Error() = %q, want %q", got, want)
	}
	if got := rewardkit.ErrorCode(555).String(); got != "RK_ERR_555" {
		t.Errorf("unknown code String() = %q", got)
	}
	if errors.Is(err, rewardkit.ErrTokenizer) || !errors.Is(err, rewardkit.ErrEmptyBatch) {
		t.Error("errors.Is does not compare by code")
	}
	if errors.Is(fmt.Errorf("wrapped: %w", err), rewardkit.ErrEmptyBatch) == false {
		t.Error("errors.Is does not see through wrapping")
	}
}

// TestConcurrent scores from 16 goroutines at once on one scorer with two
// sessions; every result must be bitwise what sequential scoring gives.
func TestConcurrent(t *testing.T) {
	s := open(t, bundle1, &rewardkit.Options{MaxSessions: 2, Threads: 1})
	want := make([]float32, len(prompts))
	for i := range prompts {
		r, err := s.Score(prompts[i], responses[i])
		if err != nil {
			t.Fatal(err)
		}
		want[i] = r
	}

	const goroutines, calls = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*calls)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range calls {
				i := (g + c) % len(prompts)
				r, err := s.Score(prompts[i], responses[i])
				if err != nil {
					errs <- err
				} else if math.Float32bits(r) != math.Float32bits(want[i]) {
					errs <- fmt.Errorf("goroutine %d call %d pair %d: %v, sequential %v", g, c, i, r, want[i])
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestCloseWhileScoring closes a scorer while goroutines use it: each call
// either succeeds or returns ErrClosed, and nothing crashes.
func TestCloseWhileScoring(t *testing.T) {
	s, err := rewardkit.Open(bundle1, &rewardkit.Options{MaxSessions: 2, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	started := make(chan struct{}, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				_, err := s.ScoreBatch(prompts, responses)
				if i == 0 {
					started <- struct{}{}
				}
				if errors.Is(err, rewardkit.ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 8 {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	wg.Wait()
}
