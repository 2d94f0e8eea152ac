"""Pairs the tests score."""

PROMPTS = [
    "What is the capital of France?",
    "What is the capital of France?",
    "Write a haiku about rain.",
    "Explain recursion in one sentence.",
]
RESPONSES = [
    "The capital of France is Paris.",
    "I think it might be Lyon.",
    "Soft rain on the roof / the garden drinks in silence / puddles hold the sky",
    "Recursion is when a function calls itself on a smaller problem until it reaches a base case.",
]
