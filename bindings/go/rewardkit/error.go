package rewardkit

/*
#include <rewardkit.h>
*/
import "C"

import "strconv"

// ErrorCode is one of the library's stable numeric error codes: the RK_ERR_*
// values of the C header, available here as the Code* constants.
type ErrorCode uint32

// Error is the error type of every failing call in this package.
//
// Code is the library's code; errors found in Go before reaching the library
// (mismatched lengths, an empty batch, a NUL byte in a string, a closed
// scorer) get the code the library would give or the closest one. Message
// says what went wrong, in the library's words where it came from C.
type Error struct {
	Code    ErrorCode
	Message string
}

// Error formats the error as "rewardkit: <message> (RK_ERR_<NAME> <code>)".
func (e *Error) Error() string {
	code := e.Code.String() + " " + strconv.FormatUint(uint64(e.Code), 10)
	if e.Message == "" {
		return "rewardkit: " + code
	}
	return "rewardkit: " + e.Message + " (" + code + ")"
}

// Is reports whether target is a sentinel for e's code: errors.Is(err,
// ErrEmptyBatch) holds for every *Error with Code == CodeEmptyBatch. Only the
// code sentinels (Err* values with no Message) match by code; ErrClosed
// matches only itself.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Code == e.Code
}

// ErrClosed is returned by every call on a Scorer after Close. Its code is
// CodeNullArgument (the C call would have had no scorer to work on), so
// errors.Is(err, ErrNullArgument) holds for it too.
var ErrClosed error = &Error{Code: CodeNullArgument, Message: "scorer is closed"}

// errorFromC turns an rk_error returned by the library into an *Error and
// releases it. NULL (success) gives a nil error. Generated wrappers call it
// for every function returning rk_error*, so no rk_error outlives its call.
func errorFromC(e *C.rk_error) error {
	if e == nil {
		return nil
	}
	err := &Error{Code: ErrorCode(rkErrorCode(e)), Message: rkErrorMessage(e)}
	rkErrorFree(e)
	return err
}

// newError makes an *Error for a problem found on the Go side.
func newError(code ErrorCode, msg string) error {
	return &Error{Code: code, Message: msg}
}
