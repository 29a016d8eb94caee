#!/bin/sh
# Build an engine executable that speaks harness/qemu/PROTOCOL.md on
# stdin/stdout around QEMU's own vmstate code.
#
#   build.sh [--version 10.0.2|10.2.2] [--src DIR] [--sanitize]
#   build.sh --deb 11.1.3 [--binary PATH]
#   build.sh --version 10.0.2|10.2.2 --fetch-only   # only the sources; prints their path
#
# Source flavour (--version/--src): QEMU's migration + io + qemuutil built
# from source, linked as test-vmstate is, with driver.c + proto.c.
# Binary flavour (--deb 11.1.3): Debian's QEMU 11.1.3 executable (PATH inside
# the chroot of corpus/qemu/chroot-11.1.3.sh, default
# /usr/bin/qemu-system-x86_64; --binary alone implies --deb 11.1.3) running
# binary/preload.c + binary/driver-binary.c + proto.c; see binary/build.sh.
#
# The last line of stdout is the absolute path of the engine (for --deb, a
# launcher script); everything else goes to stderr. Results are cached under
# <repo>/target/qemu/, keyed by the version (or a hash of the source
# directory's path) and the sanitize flag.
#
# SPDX-License-Identifier: GPL-2.0-or-later
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TOP="$REPO/target/qemu"

VERSION=""
SRC=""
SANITIZE=0
DEB=""
BINARY=""
FETCH_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
    --version) VERSION=$2; shift 2 ;;
    --src) SRC=$2; shift 2 ;;
    --sanitize) SANITIZE=1; shift ;;
    --fetch-only) FETCH_ONLY=1; shift ;;
    --deb) DEB=$2; shift 2 ;;
    --binary) BINARY=$2; DEB=${DEB:-11.1.3}; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" >&2; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -n "$DEB" ]; then
    [ "$DEB" = 11.1.3 ] || { echo "build.sh: --deb knows 11.1.3 only" >&2; exit 2; }
    if [ -n "$VERSION$SRC" ] || [ "$SANITIZE" = 1 ]; then
        echo "build.sh: --deb/--binary do not combine with --version, --src or --sanitize" >&2
        exit 2
    fi
    exec "$HERE/binary/build.sh" --engine --binary "${BINARY:-/usr/bin/qemu-system-x86_64}"
fi
[ -n "$VERSION" ] || [ -n "$SRC" ] || VERSION=10.2.2
if [ -n "$VERSION" ] && [ -n "$SRC" ]; then
    echo "build.sh: give --version or --src, not both" >&2; exit 2
fi

exec 3>&1 1>&2   # keep stdout for the final path only

log() { echo "build.sh: $*"; }
now() { date +%s; }
T0=$(now)

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
PY=$(python3 -c "import sys; print(sys.executable)")

# ---- build dependencies (idempotent) ----------------------------------------
deps() {
    missing=""
    for p in ninja-build libglib2.0-dev pkg-config flex bison libpixman-1-dev \
             libfdt-dev device-tree-compiler python3-venv; do
        dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
            || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        log "installing$missing"
        # shellcheck disable=SC2086
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends $missing \
          || { $SUDO apt-get update -qq && \
               $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                   --no-install-recommends $missing; }
    fi
    if ! "$PY" - <<'EOF' 2>/dev/null
import importlib.metadata as m
v = tuple(int(x) for x in m.version("meson").split(".")[:2])
assert v >= (1, 5)
assert m.version("pycotap") == "1.3.1"
EOF
    then
        log "pip installing meson and pycotap into $PY"
        "$PY" -m pip install -q 'meson==1.8.5' 'pycotap==1.3.1'
    fi
}

# ---- sources ----------------------------------------------------------------
fetch() {   # fetch VERSION -> sets SRC
    v=$1
    case "$v" in
    10.0.2) suite=bookworm-backports
            sum=0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1 ;;
    10.2.2) suite=sid
            sum=be05230fe47a6937cd29f28f562932c8125f9c93c2a82c625198f7a4aa601dfb ;;
    *) echo "build.sh: unknown version $v (10.0.2 or 10.2.2; use --src for others)"; exit 2 ;;
    esac
    SRC="$TOP/src-$v"
    [ -f "$SRC/VERSION" ] && return 0
    tarball="$TOP/dl/qemu_$v+ds.orig.tar.xz"
    if ! echo "$sum  $tarball" | sha256sum -c --status 2>/dev/null; then
        apt="$TOP/apt-$suite"
        mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$TOP/dl"
        m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
        echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $m $suite main" \
            > "$apt/sources.list"
        set -- -o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
            -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" \
            -o Acquire::Check-Valid-Until=false
        log "apt-get update ($suite deb-src, private lists)"
        apt-get "$@" -qq update
        ver=$(apt-cache "$@" showsrc qemu | awk '/^Version:/{print $2}' \
              | grep -F ":$v+ds-" | head -1)
        [ -n "$ver" ] || { echo "build.sh: qemu $v not in $suite's Sources"; exit 1; }
        url=$(apt-get "$@" source --print-uris "qemu=$ver" \
              | awk -v f="qemu_$v+ds.orig.tar.xz" '$2 == f {gsub("\047", "", $1); print $1}')
        [ -n "$url" ] || { echo "build.sh: no orig tarball URI for qemu=$ver"; exit 1; }
        log "downloading $url"
        curl -fsSL -o "$tarball.part" "$url"
        mv "$tarball.part" "$tarball"
        echo "$sum  $tarball" | sha256sum -c --status \
            || { echo "build.sh: sha256 mismatch for $tarball"; rm -f "$tarball"; exit 1; }
    fi
    log "unpacking into $SRC"
    rm -rf "$SRC.part"; mkdir -p "$SRC.part"
    tar -xJf "$tarball" -C "$SRC.part" --strip-components=1
    mv "$SRC.part" "$SRC"
}

if [ -n "$VERSION" ] && [ "$FETCH_ONLY" = 1 ]; then
    mkdir -p "$TOP"
    fetch "$VERSION"
    echo "$SRC" >&3
    exit 0
fi
if [ -n "$VERSION" ]; then
    mkdir -p "$TOP"
    deps
    fetch "$VERSION"
    KEY="$VERSION"
else
    SRC=$(cd "$SRC" && pwd)
    [ -f "$SRC/include/migration/vmstate.h" ] || { echo "build.sh: $SRC is not a QEMU tree"; exit 2; }
    mkdir -p "$TOP"
    deps
    KEY="src-$(printf %s "$SRC" | sha256sum | cut -c1-12)"
fi
[ "$SANITIZE" = 1 ] && KEY="$KEY-asan"
B="$TOP/build-$KEY"
ENGINE="$B/vmstate-engine"

# ---- dialect and API of the tree (from its headers) --------------------------
VH="$SRC/include/migration/vmstate.h"
if grep -q 'num_indirect' "$VH" && ! grep -q 'VMS_VARRAY_INT32' "$VH"; then
    DIALECT=qemu-master; DEFS="-DVMSH_STRUCT_MEMBER=1 -DVMSH_DIALECT_ID=2"
elif grep -q 'num_indirect' "$VH"; then
    DIALECT=qemu-11.1; DEFS="-DVMSH_STRUCT_MEMBER=1 -DVMSH_DIALECT_ID=1"
else
    DIALECT=qemu-10.x; DEFS="-DVMSH_STRUCT_MEMBER=0 -DVMSH_DIALECT_ID=0"
fi
# vmstate_save_state / vmstate_load_state: with or without Error **errp.
if grep -A2 '^int vmstate_load_state(' "$VH" | tr -d '\n' | grep -q 'Error \*\*errp'; then
    DEFS="$DEFS -DVMSH_LOAD_ERRP=1"
else
    DEFS="$DEFS -DVMSH_LOAD_ERRP=0"
fi
if grep -A2 '^int vmstate_save_state(' "$VH" | tr -d '\n' | grep -q 'Error \*\*errp'; then
    DEFS="$DEFS -DVMSH_SAVE_ERRP=1"
else
    DEFS="$DEFS -DVMSH_SAVE_ERRP=0"
fi
# 10.0 has the errp variant under another name.
if grep -q '^int vmstate_save_state_with_err(' "$VH"; then
    DEFS="$DEFS -DVMSH_SAVE_WITH_ERR=1"
fi
DEFS="$DEFS -DVMSH_SANITIZE=$SANITIZE"
log "tree $SRC: dialect $DIALECT; $DEFS"

# ---- QEMU's libraries --------------------------------------------------------
if [ ! -f "$B/.qemu-built" ]; then
    deps
    mkdir -p "$B"
    extra=""
    [ "$SANITIZE" = 1 ] && extra="--enable-asan --enable-ubsan"
    t=$(now)
    log "configuring in $B"
    # shellcheck disable=SC2086
    (cd "$B" && "$SRC/configure" --python="$PY" --target-list=m68k-softmmu \
        --without-default-features --disable-docs --disable-download \
        --disable-install-blobs $extra) >"$B/configure.log" 2>&1 \
        || { tail -30 "$B/configure.log"; exit 1; }
    log "configure: $(( $(now) - t )) s"
    t=$(now)
    log "ninja tests/unit/test-vmstate"
    ninja -C "$B" tests/unit/test-vmstate >"$B/ninja.log" 2>&1 \
        || { tail -30 "$B/ninja.log"; exit 1; }
    log "qemu libraries: $(( $(now) - t )) s"
    touch "$B/.qemu-built"
fi

# ---- the driver --------------------------------------------------------------
DRV_SRCS="$HERE/driver.c $HERE/proto.c $HERE/rules.c"
DRV_HDRS="$HERE/proto.h $HERE/abi.h"
fresh=1
[ -x "$ENGINE" ] || fresh=0
for f in $DRV_SRCS $DRV_HDRS "$0"; do
    [ "$fresh" = 1 ] && [ "$f" -nt "$ENGINE" ] && fresh=0
done
if [ "$fresh" = 0 ]; then
    t=$(now)
    # Compile exactly like test-vmstate.c (its compile_commands.json entry),
    # plus -Wall -Werror; link with test-vmstate's link line.
    cc_cmd=$("$PY" - "$B" <<'EOF'
import json, shlex, sys
b = sys.argv[1]
for e in json.load(open(b + "/compile_commands.json")):
    if e["file"].endswith("tests/unit/test-vmstate.c"):
        args = e.get("arguments") or shlex.split(e["command"])
        out = []
        skip = False
        for a in args:
            if skip:
                skip = False
                continue
            if a in ("-o", "-c", "-MF", "-MQ"):
                skip = True
                continue
            if a.endswith("test-vmstate.c") or a in ("-MD",):
                continue
            out.append(a)
        print(shlex.join(out))
        break
else:
    sys.exit("test-vmstate.c not in compile_commands.json")
EOF
)
    link_cmd=$(ninja -C "$B" -t commands tests/unit/test-vmstate | tail -1)
    objs=""
    for s in $DRV_SRCS; do
        o="$B/vmsh-$(basename "$s" .c).o"
        # shellcheck disable=SC2086
        (cd "$B" && eval "$cc_cmd" -I"$HERE" $DEFS -Wall -Werror -c "$s" -o "$o")
        objs="$objs $o"
    done
    wrap="-Wl,--wrap=g_malloc,--wrap=g_malloc0,--wrap=g_try_malloc,--wrap=g_try_malloc0,--wrap=g_malloc_n,--wrap=g_malloc0_n,--wrap=g_realloc,--wrap=g_free"
    # Replace test-vmstate's own object and output with ours.
    link=$(printf '%s\n' "$link_cmd" | sed \
        -e "s# -o tests/unit/test-vmstate # -o $ENGINE.tmp #" \
        -e "s# tests/unit/test-vmstate.p/test-vmstate.c.o # $objs $wrap #")
    case "$link" in *"$ENGINE.tmp"*"--wrap"*|*"--wrap"*"$ENGINE.tmp"*) ;;
        *) echo "build.sh: could not adapt the link line: $link_cmd"; exit 1 ;; esac
    (cd "$B" && eval "$link")
    mv "$ENGINE.tmp" "$ENGINE"
    log "driver: $(( $(now) - t )) s"
fi
log "done in $(( $(now) - T0 )) s"
echo "$ENGINE" >&3
