package rewardkit

// The defaults point at the repository's header and release build; the
// user's CGO_CFLAGS and CGO_LDFLAGS come first on the command line, so they
// override both (see the package documentation).

/*
#cgo CFLAGS: -I${SRCDIR}/../../../include
#cgo LDFLAGS: -L${SRCDIR}/../../../target/release -lrewardkit -Wl,-rpath,${SRCDIR}/../../../target/release
*/
import "C"

// Version returns the version of the loaded rewardkit library, such as
// "0.1.0". It can differ from VersionMajor/Minor/Patch, which are those of
// the header this package was generated from.
func Version() string {
	return rkVersion()
}
