#!/bin/sh
# Mutation testing of one module with only the test binaries that matter
# for it (see mutants.md for scores and the habit of testing the diff).
#
#   .ci/mutants.sh leak|codec-load|reference-load [cargo-mutants options]
#
# e.g. .ci/mutants.sh codec-load -j 2 --shard 0/4
# Shared settings (timeouts, lints) are in .cargo/mutants.toml.
set -eu
module=${1:?usage: .ci/mutants.sh leak|codec-load|reference-load [options]}
shift
# Cheaper mutants: no debug info to link, and a failing property test
# fails at once instead of shrinking its input (a slow shrink ends in a
# TIMEOUT where a plain failure was meant).
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-0}"
export CARGO_PROFILE_TEST_DEBUG="${CARGO_PROFILE_TEST_DEBUG:-0}"
export PROPTEST_MAX_SHRINK_ITERS="${PROPTEST_MAX_SHRINK_ITERS:-0}"
# leak/ has no unit tests; `--lib` would compile the harness crate a
# second time (as a test) for every mutant, doubling the cost.
case $module in
leak)
    exec cargo mutants --file "harness/src/leak/*.rs" "$@" -- \
        --test leaks --test oracle_selftest --test strict_cap
    ;;
codec-load)
    exec cargo mutants --file harness/src/codec/load.rs --file "harness/src/codec/load/*.rs" \
        --file harness/src/codec/strict.rs "$@" -- \
        --test vectors --test properties --test leaks --test strict_cap --test strict_load \
        --test load_semantics --test oracle_selftest
    ;;
reference-load)
    # The model's semantics are tested from harness. cargo-mutants 27.1
    # runs its baseline on the mutated package (vmstate-reference) whatever
    # --test-package says (sourcefrog/cargo-mutants#154; the mutants
    # themselves do get --package=vmstate-harness), and vmstate-reference
    # has no test named `vectors`: so the baseline is run here, by hand,
    # and skipped there. Pass --timeout and --build-timeout (without a
    # baseline to measure, cargo-mutants falls back to 300 s for each).
    tests="--test vectors --test properties --test load_semantics"
    # shellcheck disable=SC2086
    cargo test -q -p vmstate-harness $tests >/dev/null
    # shellcheck disable=SC2086
    exec cargo mutants --file reference/src/load.rs \
        --test-package vmstate-harness --baseline=skip "$@" -- $tests
    ;;
*)
    echo "unknown module $module" >&2
    exit 2
    ;;
esac
