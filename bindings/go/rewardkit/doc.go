// Package rewardkit scores (prompt, response) pairs with a rewardkit reward
// model bundle, through the library's C ABI (include/rewardkit.h).
//
// Open a bundle directory to get a [Scorer], score with it from as many
// goroutines as you like, and Close it when done:
//
//	s, err := rewardkit.Open("path/to/bundle", nil)
//	if err != nil {
//		return err
//	}
//	defer s.Close()
//	r, err := s.Score("What is 2+2?", "4")
//
// Every failure is an [*Error] carrying one of the library's stable codes
// ([ErrorCode], the RK_ERR_* values). Test for a code with errors.Is and the
// matching sentinel (errors.Is(err, rewardkit.ErrEmptyBatch)), or read it with
// errors.As into an *Error.
//
// # Building
//
// The package links librewardkit with cgo. By default it looks for the header
// in the repository's include/ and the library in target/release/ (the output
// of cargo build --release), with an rpath to that directory. To use another
// copy, put its flags in CGO_CFLAGS and CGO_LDFLAGS: they come before the
// defaults, so their -I and -L win. For an installed library:
//
//	CGO_CFLAGS="$(pkg-config --cflags rewardkit)" CGO_LDFLAGS="$(pkg-config --libs rewardkit)" go build
//
// The library loads ONNX Runtime itself at run time (REWARDKIT_ORT_LIB, else
// .rewardkit/ort/ in the working directory or a parent, else beside
// librewardkit.so).
//
// The constants, the sentinels and the unexported rk* wrappers in
// zz_generated.go are generated from the header by ../generate.py.
package rewardkit
