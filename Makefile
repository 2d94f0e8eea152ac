# The README's two commands are `make demo` and `make test`; both run setup first.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: setup build demo test test-rust test-c test-python header bench

## Fetch ONNX Runtime and the default backbone into .rewardkit/ (idempotent).
setup:
	bash scripts/setup.sh

build: setup
	$(CARGO) build --release

## Set up, then run the demo.
demo: setup
	bash scripts/demo.sh

## Set up, then run every test: Rust, C (under valgrind) and Python interop.
test: setup
	bash scripts/test.sh

test-rust: setup
	$(CARGO) test --all-targets

test-c: setup
	bash scripts/test-c.sh

test-python: setup
	bash scripts/test-python.sh

## Regenerate include/rewardkit.h from src/ffi.
header:
	RK_BLESS=1 $(CARGO) test --test header

bench: setup
	$(CARGO) bench --bench scoring
