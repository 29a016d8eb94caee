#!/usr/bin/env bash
# Runs .clusterfuzzlite/build.sh as OSS-Fuzz would, without Docker: SRC
# holds the tree as $SRC/vmstate-harness, OUT collects the binaries,
# SANITIZER=address, nightly Rust. Fails unless every fuzz target is built,
# and built with the sanitizer's allocator.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/out"
ln -s "$root" "$work/src/vmstate-harness"
SRC="$work/src" OUT="$work/out" SANITIZER=address RUSTUP_TOOLCHAIN=nightly \
    CARGO_TARGET_DIR="$root/fuzz/target" bash "$root/.clusterfuzzlite/build.sh"
failed=0
for src in "$root"/fuzz/fuzz_targets/*.rs; do
    t=$(basename "$src" .rs)
    if [ -x "$work/out/$t" ]; then
        echo "built $t ($(stat -c %s "$work/out/$t") bytes), seeds: $(unzip -l "$work/out/${t}_seed_corpus.zip" 2>/dev/null | tail -1 | awk '{print $2}')"
        # ASan must see every allocation: fuzz/build.rs keeps mimalloc out.
        if nm "$work/out/$t" | grep -q ' mi_malloc_aligned$'; then
            echo "$t: mimalloc linked into a sanitizer build" >&2
            failed=1
        fi
    else
        echo "MISSING $t" >&2
        failed=1
    fi
done
exit "$failed"
