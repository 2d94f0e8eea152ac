package rewardkit

/*
#include <rewardkit.h>
*/
import "C"

import "fmt"

// Device selects where a Scorer runs: DeviceCPU or DeviceCUDA.
type Device int32

// InitKind says what a trainer starts from (InitBackbone or InitBundle).
// Training is not wrapped by this package yet; the constants mirror the header.
type InitKind int32

// Options tune Open. They mirror the C rk_scorer_options. A zero field keeps
// the library's default (see DefaultOptions), so set only what you need:
//
//	rewardkit.Open(dir, &rewardkit.Options{MaxSessions: 4})
type Options struct {
	// Threads is the intra-op thread count per session; 0 = one per core.
	Threads int
	// MaxBatch is the most pairs run through the model at once (default 32).
	MaxBatch int
	// MaxLength is the longest encoded pair in tokens; 0 = the bundle's
	// max_length. It may only lower the bundle's value.
	MaxLength int
	// Device is DeviceCPU (the default) or DeviceCUDA.
	Device Device
	// DeviceID is the GPU ordinal when Device is DeviceCUDA.
	DeviceID int
	// MaxSessions is how many calls may run at once when goroutines share
	// the Scorer (default 1: calls are serialised). Each extra session holds
	// another copy of the weights.
	MaxSessions int
}

// DefaultOptions returns the library's defaults (rk_scorer_options_default):
// all cores, batches of 32, the bundle's max length, CPU, one session.
func DefaultOptions() Options {
	c := rkScorerOptionsDefault()
	return Options{
		Threads:     int(c.threads),
		MaxBatch:    int(c.max_batch),
		MaxLength:   int(c.max_length),
		Device:      Device(c.device),
		DeviceID:    int(c.device_id),
		MaxSessions: int(c.max_sessions),
	}
}

// toC starts from rk_scorer_options_default() and copies in the non-zero
// fields of o. Negative sizes are rejected here, since C takes size_t.
func (o *Options) toC() (C.rk_scorer_options, error) {
	c := rkScorerOptionsDefault()
	if o == nil {
		return c, nil
	}
	sizes := []struct {
		name string
		v    int
		dst  *C.size_t
	}{
		{"Threads", o.Threads, &c.threads},
		{"MaxBatch", o.MaxBatch, &c.max_batch},
		{"MaxLength", o.MaxLength, &c.max_length},
		{"MaxSessions", o.MaxSessions, &c.max_sessions},
	}
	for _, f := range sizes {
		if f.v < 0 {
			return c, newError(CodeInvalidArgument, fmt.Sprintf("Options.%s = %d: must be >= 0", f.name, f.v))
		}
		if f.v != 0 {
			*f.dst = C.size_t(f.v)
		}
	}
	if o.Device != 0 {
		c.device = C.int32_t(o.Device)
	}
	if o.DeviceID != 0 {
		if int(int32(o.DeviceID)) != o.DeviceID {
			return c, newError(CodeInvalidArgument, fmt.Sprintf("Options.DeviceID = %d: out of range", o.DeviceID))
		}
		c.device_id = C.int32_t(o.DeviceID)
	}
	return c, nil
}
