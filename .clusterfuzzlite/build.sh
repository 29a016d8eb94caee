#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build script, written the way OSS-Fuzz's Rust
# projects are: `cargo fuzz build -O` over the fuzz/ workspace member, then
# every target binary into $OUT with its seed corpus as a zip.
#
# OSS-Fuzz sets SRC, OUT and SANITIZER (address, undefined, memory, none,
# coverage); its Rust toolchain is nightly. .ci/run runs this script the
# same way, with no Docker, and checks that every target lands in $OUT.
cd "$SRC/vmstate-harness"

case "${SANITIZER:-address}" in
address | memory | thread | leak) sanitizer="$SANITIZER" ;;
*) sanitizer=none ;; # undefined, coverage, none: no Rust sanitizer flag
esac

# The model targets build without comparison tracing and stream with it, in
# a target directory of its own (fuzz/run.sh says why).
cargo fuzz build -O --fuzz-dir fuzz --sanitizer "$sanitizer" --no-trace-compares
cargo fuzz build -O --fuzz-dir fuzz --sanitizer "$sanitizer" --target-dir fuzz/target-cmp stream

triple="${CARGO_BUILD_TARGET:-x86_64-unknown-linux-gnu}"
for src in fuzz/fuzz_targets/*.rs; do
    target=$(basename "$src" .rs)
    case "$target" in
    stream) built="fuzz/target-cmp/$triple/release" ;;
    *) built="fuzz/target/$triple/release" ;;
    esac
    cp "$built/$target" "$OUT/"
    # Seeds: corpus/<target> for the three classic targets; `all` takes
    # every one of them (its first byte picks the oracle anyway).
    # (`all` keeps the folder names: seeds of different targets share names.)
    if [ "$target" = all ]; then
        find corpus/load corpus/differential corpus/stream -type f |
            zip -q "$OUT/${target}_seed_corpus.zip" -@
    elif [ -d "corpus/$target" ]; then
        find "corpus/$target" -type f | zip -q -j "$OUT/${target}_seed_corpus.zip" -@
    fi
done
