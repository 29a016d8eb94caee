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
# leak.rs has no unit tests; `--lib` would compile the harness crate a
# second time (as a test) for every mutant, doubling the cost.
case $module in
leak)
    exec cargo mutants --file harness/src/leak.rs "$@" -- \
        --test leaks --test oracle_selftest --test strict_cap
    ;;
codec-load)
    exec cargo mutants --file harness/src/codec/load.rs --file harness/src/codec/strict.rs "$@" -- \
        --test vectors --test properties --test leaks --test strict_cap --test strict_load \
        --test oracle_selftest
    ;;
reference-load)
    # The model's semantics are tested from harness (vectors, properties).
    exec cargo mutants --file reference/src/load.rs \
        --test-package vmstate-harness "$@" -- \
        --test vectors --test properties
    ;;
*)
    echo "unknown module $module" >&2
    exit 2
    ;;
esac
