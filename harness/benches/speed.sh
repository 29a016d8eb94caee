#!/usr/bin/env bash
# Every speed figure of the README's "Speed" table, each beside the
# baseline it is measured against in the same run:
#
#   harness/benches/speed.sh [--baseline REV] [--seconds N] [--cases N]
#
# - fuzz targets (libFuzzer exec/s, fuzz/run.sh's flags: committed seeds,
#   -max_len=512, -seed=1), the load and differential oracles replaying
#   2,000 fixed inputs, `check` (model-only cases/s, one worker): this
#   tree against REV (default: the commit before the speed work), both built
#   here, run one after the other on the same inputs;
# - sparse load: the optimized codec against the reference model (divan,
#   harness/benches/codec.rs), in this tree and in REV;
# - analyze: `vmstate-harness analyze` against QEMU 10.2.2's
#   analyze-migration.py on corpus/qemu/x86-pc.mig, whole process, median
#   of --runs; the script comes from Debian's source (harness/qemu/build.sh
#   --fetch-only).
#
# Needs the nightly toolchain and cargo-fuzz (installed if missing).
# Builds go to target/bench/ (REV's worktree and target directory too).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

BASE=639a561
SECS=30
CASES=3000
RUNS=30
while [ $# -gt 0 ]; do
    case "$1" in
    --baseline) BASE=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --cases) CASES=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

log() { echo "speed.sh: $*" >&2; }
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
OUT=$ROOT/target/bench
mkdir -p "$OUT"
TRIPLE=$(rustc -vV | awk '/^host:/{print $2}')

# ---- builds -------------------------------------------------------------
# build TREE TARGET_DIR: the CLI, the codec bench, the fuzz targets as
# fuzz/run.sh builds them (without comparison tracing, without a sanitizer
# and with ASan) and with cargo fuzz's default comparison tracing (stream's
# build, and the row that shows what dropping it is worth); separate target
# directories, since the flags differ.
build() {
    local tree=$1 dir=$2
    log "building $tree"
    (cd "$tree" &&
        CARGO_TARGET_DIR=$dir cargo build -q --release -p vmstate-harness &&
        CARGO_TARGET_DIR=$dir cargo build -q --release -p vmstate-fuzz --bin load --bin differential &&
        CARGO_TARGET_DIR=$dir cargo bench -q -p vmstate-harness --bench codec --no-run 2>/dev/null &&
        cargo +nightly fuzz build -O --fuzz-dir fuzz -s none --no-trace-compares --target-dir "$dir/fuzz-none" &&
        cargo +nightly fuzz build -O --fuzz-dir fuzz -s address --no-trace-compares --target-dir "$dir/fuzz-asan" &&
        cargo +nightly fuzz build -O --fuzz-dir fuzz -s none --target-dir "$dir/fuzz-cmp") >&2
}
NOW_DIR=$OUT/now-target
BASE_TREE=$OUT/base
BASE_DIR=$OUT/base-target
build "$ROOT" "$NOW_DIR"
want=$(git rev-parse "$BASE^{commit}")
if [ "$(git -C "$BASE_TREE" rev-parse HEAD 2>/dev/null)" != "$want" ]; then
    git worktree remove --force "$BASE_TREE" 2>/dev/null || rm -rf "$BASE_TREE"
    git worktree add -q --detach "$BASE_TREE" "$want"
fi
# The same benchmark source on both trees (REV's copy may predate a fix).
cp harness/benches/codec.rs "$BASE_TREE/harness/benches/codec.rs"
build "$BASE_TREE" "$BASE_DIR"

# ---- measurements ---------------------------------------------------------
# fuzz DIR none|asan|cmp TARGET [flags]: exec/s of one libFuzzer run on a fresh
# corpus seeded from this tree's corpus/TARGET (0 if it stopped early: the
# log is left in target/bench/TARGET-SAN.log).
fuzz() {
    local dir=$1 san=$2 target=$3
    shift 3
    local work
    work=$(mktemp -d)
    "$dir/fuzz-$san/$TRIPLE/release/$target" "$work" "$ROOT/corpus/$target" \
        -max_total_time="$SECS" -seed=1 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$work/" "$@" >"$OUT/$target-$san.log" 2>&1 || true
    awk '/stat::average_exec_per_sec/{print $2; found = 1} END {if (!found) print 0}' \
        "$OUT/$target-$san.log"
    rm -rf "$work"
}

# The fixed inputs of the replay rows: 2,000 seeded random inputs of 16 to
# 512 bytes, the same for both trees (libFuzzer's exec/s depends on where
# each run's search goes; these do not).
INPUTS=$OUT/replay-inputs
python3 - "$INPUTS" <<'EOF'
import os, random, sys
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
r = random.Random(1)
for i in range(2000):
    with open(os.path.join(d, f"{i:04}"), "wb") as f:
        f.write(bytes(r.getrandbits(8) for _ in range(r.randint(16, 512))))
EOF

# replay DIR TARGET: inputs/s of TARGET's oracle over the fixed inputs (the
# plain release build, no fuzzing engine), the median of three runs.
replay() {
    local t
    # A replay exits 1 if an oracle fails on an input; the time still counts.
    t=$(RUNS=3 median sh -c '"$0" "$1" || true' "$1/release/$2" "$INPUTS")
    python3 -c "import sys; print(round(2000 / float(sys.argv[1])))" "$t"
}

# check DIR: model-only cases/s with one worker.
check() {
    "$1/release/vmstate-harness" check --jobs 1 --cases "$CASES" |
        sed -n 's/.*: \([0-9]*\) cases\/s.*/\1/p'
}

# sparse DIR TREE: median microseconds of the reference and the optimized
# load of the sparse workload (divan's table: name and fastest, slowest,
# median, ...), as "load_reference US" and "load_optimized US" lines.
sparse() {
    (cd "$2" && CARGO_TARGET_DIR=$1 cargo bench -q -p vmstate-harness --bench codec -- load_ 2>/dev/null) |
        python3 -c '
import sys
unit = {"s": 1e6, "ms": 1e3, "µs": 1.0, "ns": 1e-3}
bench = None
for line in sys.stdin:
    cols = [c.strip() for c in line.split("│")]
    for c in cols:
        if "load_" in c:
            bench = c.split()[-1]
    i = next((k for k, c in enumerate(cols) if "sparse" in c), None)
    if bench and i is not None:
        value, u = cols[i + 2].split()
        print(bench, float(value) * unit[u])
'
}

# median COMMAND...: median wall seconds of $RUNS runs, output discarded.
median() {
    python3 - "$RUNS" "$@" <<'EOF'
import statistics, subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
t = []
for _ in range(runs):
    s = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    t.append(time.perf_counter() - s)
print(f"{statistics.median(t):.6f}")
EOF
}

row() { printf '| %s | %s | %s | %s | %s |\n' "$@"; }
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.1f}x' if b else 'n/a')" "$1" "$2"; }

echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores; this tree ($(git rev-parse --short HEAD)) against $BASE (baseline)."
echo
row figure "baseline ($BASE)" "now" "now / baseline" target
row --- --- --- --- ---
for spec in "load none 10,000" "load asan 2,000" "differential none 5,000" "stream cmp 20,000"; do
    set -- $spec
    b=$(fuzz "$BASE_DIR" "$2" "$1" -max_len=512)
    n=$(fuzz "$NOW_DIR" "$2" "$1" -max_len=512)
    san=$([ "$2" = asan ] && echo ASan || echo "-s none")
    row "\`$1\` fuzz target, $san, exec/s" "$b" "$n" "$(ratio "$n" "$b")" "≥ $3"
done
b=$(fuzz "$BASE_DIR" cmp load -max_len=512)
n=$(fuzz "$NOW_DIR" cmp load -max_len=512)
row "\`load\` fuzz target, -s none, with comparison tracing (cargo fuzz's default), exec/s" "$b" "$n" "$(ratio "$n" "$b")" ""
for spec in "load 10,000" "differential 5,000"; do
    set -- $spec
    b=$(replay "$BASE_DIR" "$1")
    n=$(replay "$NOW_DIR" "$1")
    row "\`$1\` oracle, the 2,000 fixed inputs replayed, inputs/s" "$b" "$n" "$(ratio "$n" "$b")" "(≥ $2 as a fuzz target)"
done
b=$(fuzz "$BASE_DIR" cmp stream)
n=$(fuzz "$NOW_DIR" cmp stream)
row "\`stream\` fuzz target, -s none, whole seeds (to 177 KB), exec/s" "$b" "$n" "$(ratio "$n" "$b")" "≥ 20,000"
b=$(check "$BASE_DIR")
n=$(check "$NOW_DIR")
row "\`check\`, model-only properties, cases/s on one core" "$b" "$n" "$(ratio "$n" "$b")" "≥ 20,000"

read -r _ bref < <(sparse "$BASE_DIR" "$BASE_TREE" | grep load_reference)
read -r _ bopt < <(sparse "$BASE_DIR" "$BASE_TREE" | grep load_optimized)
read -r _ nref < <(sparse "$NOW_DIR" "$ROOT" | grep load_reference)
read -r _ nopt < <(sparse "$NOW_DIR" "$ROOT" | grep load_optimized)
row "sparse load (65,536 pointers), reference µs / optimized µs" \
    "$bref / $bopt = $(ratio "$bref" "$bopt")" "$nref / $nopt = $(ratio "$nref" "$nopt")" "" "≥ 20x"

SRC=$(harness/qemu/build.sh --version 10.2.2 --fetch-only | tail -n 1)
S=$SRC/scripts/analyze-migration.py
F=corpus/qemu/x86-pc.mig
PY=$(python3 -c "import sys; print(sys.executable)")
tb=$(median "$BASE_DIR/release/vmstate-harness" analyze "$F")
tn=$(median "$NOW_DIR/release/vmstate-harness" analyze "$F")
ts=$(median "$PY" "$S" -f "$F")
ms() { python3 -c "import sys; print(f'{float(sys.argv[1]) * 1000:.2f} ms')" "$1"; }
row "\`analyze\` x86-pc.mig, whole process: script / analyze" \
    "$(ms "$ts") / $(ms "$tb") = $(ratio "$ts" "$tb")" "$(ms "$ts") / $(ms "$tn") = $(ratio "$ts" "$tn")" "" "≥ 100x"
