package rewardkit_test

import (
	"errors"
	"fmt"
	"log"

	"rewardkit.dev/go/rewardkit"
)

// bundleDir is the bundle the examples load; the tests take it from
// RK_TEST_BUNDLE.
var bundleDir = bundle1

func Example() {
	scorer, err := rewardkit.Open(bundleDir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer scorer.Close()

	prompt := "What is the capital of France?"
	good, bad := "The capital of France is Paris.", "Lyon, probably."
	rewards, err := scorer.ScoreBatch([]string{prompt, prompt}, []string{good, bad})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("outputs:", scorer.OutputNames(), "rewards:", len(rewards))

	// The probability that one response is better than another.
	p, err := scorer.Compare(prompt, good, good)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("P(good beats itself) = %.2f\n", p)

	// Errors carry the library's code.
	_, err = scorer.ScoreBatch(nil, nil)
	fmt.Println(errors.Is(err, rewardkit.ErrEmptyBatch))
	// Output:
	// outputs: [reward] rewards: 2
	// P(good beats itself) = 0.50
	// true
}
