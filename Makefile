# The README's two commands are `make demo` and `make test`; both run setup first.
SHELL := /bin/bash
CARGO ?= cargo

PREFIX ?= /usr/local

.PHONY: setup build demo test test-rust test-c test-asan test-fuzz test-python test-bindings test-install install bindings header bench bench-bindings

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

## Hostile input to every C function, under AddressSanitizer and valgrind.
test-asan: build
	bash scripts/test-asan.sh

## Every fuzz target under AddressSanitizer: seeds and regressions, then FUZZ_SECONDS (default 20) each.
test-fuzz: setup
	bash scripts/test-fuzz.sh

test-python: setup
	bash scripts/test-python.sh

## Go, Java and Python bindings (generated layers checked against the header) and the install test.
test-bindings: setup
	bash scripts/test-bindings.sh

test-install: build
	bash scripts/test-install.sh

## Install the header, libraries, rewardkit.pc and ONNX Runtime into $(PREFIX) (honours DESTDIR).
## Build first (`make build`); install itself never runs cargo, so `sudo make install` is safe.
install:
	bash scripts/install.sh $(PREFIX)

## Regenerate every binding's low-level layer from include/rewardkit.h.
bindings:
	bash scripts/gen-bindings.sh

## Regenerate include/rewardkit.h from src/ffi.
header:
	RK_BLESS=1 $(CARGO) test --test header

bench: setup
	$(CARGO) bench --bench scoring

## Per-call latency of C, Python, Go and Java on a tiny bundle, side by side.
bench-bindings: build
	@d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; \
	target/release/rewardkit dev tiny-backbone "$$d/tiny" >/dev/null && \
	target/release/rewardkit init --backbone "$$d/tiny" --out "$$d/bundle" --seed 3 >/dev/null && \
	bash bindings/bench/compare.sh "$$d/bundle" 2000
