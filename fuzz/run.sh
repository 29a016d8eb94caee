#!/usr/bin/env bash
# Fuzz one target with AddressSanitizer on the nightly toolchain.
#
#   fuzz/run.sh TARGET SECONDS [libFuzzer flags...]
#
# TARGET is load, differential, stream or all. SANITIZER=none runs
# without ASan (about ten times more inputs per second; for long
# campaigns). SECONDS 0 means no time limit (bound it with -runs=N).
# Seeds are read from
# corpus/TARGET (committed, never written); new interesting inputs go to
# fuzz/corpus/TARGET and crashes to fuzz/artifacts/TARGET (both ignored by
# git). Installs cargo-fuzz if it is missing. Inputs are capped at 512
# bytes by default (a later -max_len=N overrides it): generated devices stay
# small, which runs about ten times more inputs per second under ASan than
# the 4096-byte default.
#
# The model targets (load, differential, all) build without libFuzzer's
# comparison tracing (cargo fuzz --no-trace-compares): in five minutes from
# the committed seeds, `load` ran 2.3 times the inputs and reached more
# coverage without it (README, "Fuzzing"). `stream` keeps it: its parser
# compares names and magic numbers, which is what that feedback finds. The
# two builds keep separate target directories so that neither rebuilds the
# other.
set -euo pipefail
usage="usage: fuzz/run.sh TARGET SECONDS [libFuzzer flags...]"
target="${1:?$usage}"
secs="${2:?$usage}"
shift 2
case "$target" in load | differential | stream | all) ;; *)
    echo "unknown target $target (load, differential, stream, all)" >&2
    exit 2
    ;;
esac
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p "$here/corpus/$target" "$here/artifacts/$target"
cd "$root"
case "$target" in
stream) build=(--target-dir "$root/target/fuzz-cmp") ;;
*) build=(--no-trace-compares) ;;
esac
exec cargo +nightly fuzz run --fuzz-dir "$here" --sanitizer "${SANITIZER:-address}" -O "${build[@]}" "$target" \
    "$here/corpus/$target" $([ -d "$root/corpus/$target" ] && echo "$root/corpus/$target") -- \
    -max_total_time="$secs" -artifact_prefix="$here/artifacts/$target/" \
    -rss_limit_mb=4096 -print_final_stats=1 -max_len=512 "$@"
