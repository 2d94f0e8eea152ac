// Command score-pairs scores a few (prompt, response) pairs with a rewardkit
// bundle and prints them as a table, with every output of the model.
//
//	go run ./cmd/score-pairs path/to/bundle
package main

import (
	"fmt"
	"os"
	"strings"

	"rewardkit.dev/go/rewardkit"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: %s BUNDLE_DIR\n", os.Args[0])
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "score-pairs:", err)
		os.Exit(1)
	}
}

func run(bundle string) error {
	scorer, err := rewardkit.Open(bundle, nil)
	if err != nil {
		return err
	}
	defer scorer.Close()

	prompts := []string{
		"What is the capital of France?",
		"What is the capital of France?",
		"Write a haiku about rain.",
	}
	responses := []string{
		"The capital of France is Paris.",
		"I think it might be Lyon, or maybe Marseille.",
		"Soft rain on the roof / the garden drinks in silence / puddles hold the sky",
	}
	rewards, err := scorer.ScoreBatch(prompts, responses)
	if err != nil {
		return err
	}
	outputs, err := scorer.ScoreOutputs(prompts, responses)
	if err != nil {
		return err
	}

	fmt.Printf("rewardkit %s, outputs: %s\n\n", rewardkit.Version(), strings.Join(scorer.OutputNames(), ", "))
	fmt.Printf("%-8s  %-32s  %-40s  %s\n", "reward", "prompt", "response", "outputs")
	for i := range prompts {
		cols := make([]string, len(outputs[i]))
		for j, v := range outputs[i] {
			cols[j] = fmt.Sprintf("%.4f", v)
		}
		fmt.Printf("%8.4f  %-32.32s  %-40.40s  %s\n", rewards[i], prompts[i], responses[i], strings.Join(cols, " "))
	}

	p, err := scorer.Compare(prompts[0], responses[0], responses[1])
	if err != nil {
		return err
	}
	fmt.Printf("\nP(response 1 is better than response 2) = %.4f\n", p)
	return nil
}
