#!/usr/bin/env bash
# Fuzz smoke test (cargo-fuzz / libFuzzer): build every target in fuzz/,
# replay the committed seeds and regressions, then fuzz each target for a
# bounded time. Fails on any crash, panic, sanitizer report, timeout or
# broken invariant, and lists the inputs libFuzzer saved.
#
#   scripts/test-fuzz.sh                      # every target, 20 s each
#   scripts/test-fuzz.sh manifest onnx_model  # some targets
#   FUZZ_SECONDS=600 scripts/test-fuzz.sh convert
#   FUZZ_SECONDS=0 scripts/test-fuzz.sh       # replay seeds and regressions only
#
# Environment:
#   FUZZ_SECONDS    fuzzing time per target (default 20; 0 = replay only)
#   FUZZ_SANITIZER  address (default) or none
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 25)
#   FUZZ_CODEGEN_UNITS  codegen units of the fuzz build (default 16)
#
# Stable Rust is enough: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags.
# cargo-fuzz is installed into ~/.cargo/bin when missing (cache that folder
# in CI: the install takes about three minutes on two cores).
#
# Layout: fuzz/seeds/<target>/ and fuzz/regressions/<target>/ are committed;
# fuzz/corpus/<target>/ (what a run adds), fuzz/artifacts/ (crashes) and
# fuzz/target/ are not. A crash found here is minimized with
#   RUSTC_BOOTSTRAP=1 cargo fuzz tmin -O -a --codegen-units 16 TARGET fuzz/artifacts/TARGET/crash-...
# and committed under fuzz/regressions/TARGET/ once understood.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
fuzz="$root/fuzz"

CARGO_FUZZ_VERSION=0.13.2
seconds=${FUZZ_SECONDS:-20}
sanitizer=${FUZZ_SANITIZER:-address}
timeout=${FUZZ_TIMEOUT:-25}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# Release code with debug assertions and overflow checks on; the same flags
# for build and run, so run does not rebuild.
# 16 codegen units (cargo-fuzz's default is 1) let both cores of a small CI
# runner work on the large crates.
flags=(-O --debug-assertions --sanitizer "$sanitizer"
    --codegen-units "${FUZZ_CODEGEN_UNITS:-16}")

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${#targets[@]} fuzz targets (sanitizer: $sanitizer)"
start=$SECONDS
cargo fuzz build "${flags[@]}"
echo "   built in $((SECONDS - start)) s"

# The readers take paths: each target writes its input to a scratch folder
# under $TMPDIR, kept inside fuzz/target and removed after each target.
logs="$fuzz/target/fuzz-logs"
mkdir -p "$logs"

failed=()
for t in "${targets[@]}"; do
    dirs=()
    for d in "$fuzz/corpus/$t" "$fuzz/seeds/$t" "$fuzz/regressions/$t"; do
        [ "$d" = "$fuzz/corpus/$t" ] && mkdir -p "$d"
        [ -d "$d" ] && dirs+=("$d")
    done
    if [ "$seconds" -gt 0 ]; then
        run=(-max_total_time="$seconds")
        echo "== $t: replaying seeds and regressions, then fuzzing for $seconds s"
    else
        run=(-runs=0)
        echo "== $t: replaying seeds and regressions"
    fi
    case $t in
        jsonl_pairs | jsonl_ratings | convert) run+=(-dict="$fuzz/dicts/jsonl.dict") ;;
        manifest) run+=(-dict="$fuzz/dicts/manifest.dict") ;;
    esac
    export TMPDIR="$fuzz/target/fuzz-tmp/$t"
    rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"
    log="$logs/$t.log"
    if cargo fuzz run "${flags[@]}" "$t" "${dirs[@]}" -- \
        "${run[@]}" -timeout="$timeout" -print_final_stats=1 >"$log" 2>&1; then
        # The last status line: executions, coverage, features, corpus.
        grep -E '^#[0-9]+' "$log" | tail -n 1 | sed 's/^/   /'
        grep -E '^Done [0-9]+ runs' "$log" | sed 's/^/   /' || true
    else
        failed+=("$t")
        echo "!! $t FAILED (full log: $log):"
        # The panic or sanitizer report, else the end of the log.
        if grep -qE 'panicked at|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' "$log"; then
            grep -E -A4 'panicked at|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' "$log" |
                head -n 30 | sed 's/^/   /'
        else
            tail -n 30 "$log" | sed 's/^/   /'
        fi
        ls "$fuzz/artifacts/$t" 2>/dev/null | sed "s|^|   saved: fuzz/artifacts/$t/|" || true
    fi
    rm -rf "$TMPDIR"
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "== fuzzing FAILED: ${failed[*]}"
    exit 1
fi
echo "== fuzzing passed: ${targets[*]}"
