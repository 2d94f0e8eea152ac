package rewardkit

/*
#include <stdlib.h>
#include <rewardkit.h>
*/
import "C"

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// Scorer is a loaded reward model (a C rk_scorer).
//
// A Scorer is safe for concurrent use by many goroutines. Calls beyond
// Options.MaxSessions wait for a free session inside the library.
//
// Close releases the model. It waits for calls already running, and every
// call that starts after it returns ErrClosed. Close a Scorer when done with
// it: a Scorer that becomes unreachable unclosed is released by the garbage
// collector eventually, but the model's memory is large and the collector
// does not see it.
type Scorer struct {
	// mu is held for reading by every call into the library and for
	// writing by Close, so Close never frees the scorer under a call.
	mu      sync.RWMutex
	ptr     *C.rk_scorer // nil once closed
	names   []string
	cleanup runtime.Cleanup
}

// Open loads the bundle in the directory bundleDir. opts may be nil for the
// library's defaults; zero fields of opts keep their defaults too.
//
// A missing or unreadable directory gives CodeIO or CodeInvalidBundle, a
// bundle with a missing or damaged file CodeInvalidBundle, CodeInvalidModel,
// CodeTokenizer or CodeUnsupportedVersion, and a missing ONNX Runtime
// CodeRuntimeNotFound.
func Open(bundleDir string, opts *Options) (*Scorer, error) {
	copts, err := opts.toC()
	if err != nil {
		return nil, err
	}
	if err := checkString("bundleDir", bundleDir); err != nil {
		return nil, err
	}
	dir := C.CString(bundleDir)
	defer C.free(unsafe.Pointer(dir))

	var ptr *C.rk_scorer
	if err := rkScorerOpen(dir, &copts, &ptr); err != nil {
		return nil, err
	}

	k := int(rkScorerNumOutputs(ptr))
	names := make([]string, k)
	for i := range names {
		names[i] = rkScorerOutputName(ptr, C.size_t(i))
	}
	if k == 0 {
		rkScorerFree(ptr)
		return nil, newError(CodeInternal, fmt.Sprintf("bundle %q opened with no outputs", bundleDir))
	}

	s := &Scorer{ptr: ptr, names: names}
	// A safety net only: Close is the way to release a scorer.
	s.cleanup = runtime.AddCleanup(s, func(p *C.rk_scorer) { rkScorerFree(p) }, ptr)
	return s, nil
}

// Close releases the model. It waits for calls in progress on other
// goroutines to finish. Calling Close again does nothing and returns nil.
func (s *Scorer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ptr == nil {
		return nil
	}
	s.cleanup.Stop()
	rkScorerFree(s.ptr)
	s.ptr = nil
	return nil
}

// acquire returns the C scorer, with s.mu held for reading, or ErrClosed.
// Every successful acquire must be followed by release.
func (s *Scorer) acquire() (*C.rk_scorer, error) {
	s.mu.RLock()
	if s.ptr == nil {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	return s.ptr, nil
}

func (s *Scorer) release() {
	s.mu.RUnlock()
	runtime.KeepAlive(s)
}

// OutputNames returns the names of the model's outputs, in the order of
// ScoreOutputs' columns: ["reward"] for a scalar model, for example, or the
// five HelpSteer2 attributes. It still works after Close.
func (s *Scorer) OutputNames() []string {
	return append([]string(nil), s.names...)
}

// NumOutputs returns len(OutputNames()).
func (s *Scorer) NumOutputs() int {
	return len(s.names)
}

// Score returns the reward of response to prompt.
func (s *Scorer) Score(prompt, response string) (float32, error) {
	if err := checkString("prompt", prompt); err != nil {
		return 0, err
	}
	if err := checkString("response", response); err != nil {
		return 0, err
	}
	cp, cr := C.CString(prompt), C.CString(response)
	defer C.free(unsafe.Pointer(cp))
	defer C.free(unsafe.Pointer(cr))

	ptr, err := s.acquire()
	if err != nil {
		return 0, err
	}
	defer s.release()
	var out C.float
	if err := rkScorerScore(ptr, cp, cr, &out); err != nil {
		return 0, err
	}
	return float32(out), nil
}

// ScoreBatch returns the rewards of responses[i] to prompts[i], in order.
// The slices must have the same, non-zero length (else CodeLengthMismatch
// or CodeEmptyBatch). Results equal those of Score pair by pair.
func (s *Scorer) ScoreBatch(prompts, responses []string) ([]float32, error) {
	in, err := newPairs(prompts, responses)
	if err != nil {
		return nil, err
	}
	defer in.free()

	ptr, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.release()
	out := make([]float32, in.n)
	if err := rkScorerScoreBatch(ptr, C.size_t(in.n), in.prompts, in.responses, (*C.float)(&out[0])); err != nil {
		return nil, err
	}
	return out, nil
}

// ScoreOutputs returns every output of the model for each pair: row i holds
// the NumOutputs() outputs of responses[i] to prompts[i], in OutputNames()
// order, after the bundle's normalisation (but not combined into a reward:
// use ScoreBatch for that). The rows share one backing array.
func (s *Scorer) ScoreOutputs(prompts, responses []string) ([][]float32, error) {
	in, err := newPairs(prompts, responses)
	if err != nil {
		return nil, err
	}
	defer in.free()

	ptr, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.release()
	k := len(s.names)
	flat := make([]float32, in.n*k)
	if err := rkScorerScoreOutputs(ptr, C.size_t(in.n), in.prompts, in.responses, (*C.float)(&flat[0])); err != nil {
		return nil, err
	}
	rows := make([][]float32, in.n)
	for i := range rows {
		rows[i] = flat[i*k : (i+1)*k : (i+1)*k]
	}
	return rows, nil
}

// Compare returns the probability that responseA is a better answer to
// prompt than responseB: sigmoid(Score(prompt, responseA) - Score(prompt,
// responseB)).
func (s *Scorer) Compare(prompt, responseA, responseB string) (float32, error) {
	for _, a := range []struct{ name, v string }{
		{"prompt", prompt}, {"responseA", responseA}, {"responseB", responseB},
	} {
		if err := checkString(a.name, a.v); err != nil {
			return 0, err
		}
	}
	cp, ca, cb := C.CString(prompt), C.CString(responseA), C.CString(responseB)
	defer C.free(unsafe.Pointer(cp))
	defer C.free(unsafe.Pointer(ca))
	defer C.free(unsafe.Pointer(cb))

	ptr, err := s.acquire()
	if err != nil {
		return 0, err
	}
	defer s.release()
	var out C.float
	if err := rkScorerCompare(ptr, cp, ca, cb, &out); err != nil {
		return 0, err
	}
	return float32(out), nil
}

// checkString rejects strings the C side cannot see whole: C strings end at
// the first NUL byte. Invalid UTF-8 is left for the library to report
// (CodeInvalidUTF8).
func checkString(name, v string) error {
	if i := strings.IndexByte(v, 0); i >= 0 {
		return newError(CodeInvalidArgument, fmt.Sprintf(
			"%s contains a NUL byte at offset %d; strings passed to rewardkit cannot contain NUL", name, i))
	}
	return nil
}

// pairs holds prompts and responses copied into C memory as two arrays of
// n C strings.
type pairs struct {
	n                  int
	prompts, responses **C.char
}

// newPairs checks the inputs (equal, non-zero lengths, no NUL bytes) and
// copies them to C. The caller must call free.
func newPairs(prompts, responses []string) (*pairs, error) {
	if len(prompts) != len(responses) {
		return nil, newError(CodeLengthMismatch, fmt.Sprintf(
			"%d prompts but %d responses; they must pair up one to one", len(prompts), len(responses)))
	}
	if len(prompts) == 0 {
		return nil, newError(CodeEmptyBatch, "the batch is empty; give at least one pair")
	}
	for i := range prompts {
		if strings.IndexByte(prompts[i], 0) >= 0 {
			return nil, checkString(fmt.Sprintf("prompts[%d]", i), prompts[i])
		}
		if strings.IndexByte(responses[i], 0) >= 0 {
			return nil, checkString(fmt.Sprintf("responses[%d]", i), responses[i])
		}
	}
	return &pairs{n: len(prompts), prompts: cStrings(prompts), responses: cStrings(responses)}, nil
}

func (p *pairs) free() {
	freeCStrings(p.prompts, p.n)
	freeCStrings(p.responses, p.n)
}

// cStrings copies ss into a C array of C strings, freed by freeCStrings.
func cStrings(ss []string) **C.char {
	arr := (**C.char)(C.malloc(C.size_t(len(ss)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	for i, p := range ss {
		unsafe.Slice(arr, len(ss))[i] = C.CString(p)
	}
	return arr
}

func freeCStrings(arr **C.char, n int) {
	for _, p := range unsafe.Slice(arr, n) {
		C.free(unsafe.Pointer(p))
	}
	C.free(unsafe.Pointer(arr))
}
