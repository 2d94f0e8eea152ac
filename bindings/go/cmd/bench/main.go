// Command bench times single-pair Scorer.Score calls, for comparing the Go
// binding's per-call cost with direct C calls.
//
//	go run ./cmd/bench -bundle path/to/bundle -n 2000
//
// It warms up, times each of n calls on its own and prints exactly one line:
//
//	median_us=<float> p99_us=<float>
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"rewardkit.dev/go/rewardkit"
)

func main() {
	bundle := flag.String("bundle", "", "bundle directory (required)")
	n := flag.Int("n", 1000, "timed Score calls")
	warmup := flag.Int("warmup", 50, "untimed Score calls first")
	threads := flag.Int("threads", 0, "intra-op threads (0 = the library's default)")
	flag.Parse()
	if *bundle == "" || *n < 1 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "usage: bench -bundle DIR [-n N] [-warmup W] [-threads T]")
		os.Exit(2)
	}

	s, err := rewardkit.Open(*bundle, &rewardkit.Options{Threads: *threads})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	defer s.Close()

	const prompt = "What is the capital of France?"
	const response = "The capital of France is Paris, a city on the Seine."
	for range *warmup {
		if _, err := s.Score(prompt, response); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	us := make([]float64, *n)
	for i := range us {
		start := time.Now()
		_, err := s.Score(prompt, response)
		us[i] = float64(time.Since(start).Nanoseconds()) / 1e3
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	slices.Sort(us)
	fmt.Printf("median_us=%.3f p99_us=%.3f\n", percentile(us, 50), percentile(us, 99))
}

// percentile returns the p-th percentile of sorted by linear interpolation
// between the closest ranks.
func percentile(sorted []float64, p float64) float64 {
	pos := p / 100 * float64(len(sorted)-1)
	lo := int(pos)
	if lo+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	frac := pos - float64(lo)
	return sorted[lo]*(1-frac) + sorted[lo+1]*frac
}
