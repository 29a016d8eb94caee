#!/bin/sh
# Build (once) a Debian trixie chroot holding QEMU 11.1.3 from trixie-backports
# and print its path on stdout. Everything else goes to stderr.
#
#   chroot-11.1.3.sh              ensure the chroot, print its path
#   chroot-11.1.3.sh --run CMD..  ensure the chroot, then run CMD inside it
#                                 with /proc mounted for the run only (debootstrap
#                                 made the /dev nodes; stdin/stdout/stderr and
#                                 the exit status pass through)
#
# The chroot is ${VMSTATE_CHROOT:-<repo>/target/qemu/trixie-11.1.3}. The host
# only gains the debootstrap package; QEMU 11.1.3 needs trixie's glibc, so it
# lives in the chroot. Idempotent: a stamp file records the installed version
# and is written only after every package is verified at that version.
# Recipe: /work/shared/spec/qemu-streams.md, "QEMU 11.1.3". Needs root.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CHROOT=${VMSTATE_CHROOT:-$REPO/target/qemu/trixie-11.1.3}
WANT="1:11.1.3+ds-1~bpo13+1"
PKGS="qemu-system-x86 qemu-system-s390x qemu-system-arm qemu-utils"
STAMP="$CHROOT/.vmstate-qemu-version"
PATH_IN="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

log() { echo "chroot-11.1.3: $*" >&2; }

mirror() {
    awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources
}

is_mounted() {
    # $1: absolute path; /proc/self/mounts escapes spaces, which we never use.
    awk -v p="$1" '$2 == p {f = 1} END {exit !f}' /proc/self/mounts
}

# Mount points this process mounted, unmounted by cleanup (innermost first).
MOUNTED=""
mount_run() {
    if ! is_mounted "$CHROOT/proc"; then
        mount -t proc proc "$CHROOT/proc"
        MOUNTED="$CHROOT/proc $MOUNTED"
    fi
}
cleanup() {
    for m in $MOUNTED; do
        umount "$m" || umount -l "$m" || true
    done
    MOUNTED=""
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

in_chroot() {
    chroot "$CHROOT" env -i PATH="$PATH_IN" HOME=/root LC_ALL=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@"
}

have_qemu() {
    [ -x "$CHROOT/usr/bin/dpkg-query" ] || return 1
    for p in $PKGS; do
        # shellcheck disable=SC2016
        v=$(in_chroot dpkg-query -W -f '${Version}' "$p" 2>/dev/null || true)
        [ "$v" = "$WANT" ] || return 1
    done
    return 0
}

ensure_debootstrap() {
    command -v debootstrap >/dev/null 2>&1 && return 0
    log "installing debootstrap on the host"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        debootstrap >&2
}

ensure_chroot() {
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
        return 0
    fi
    [ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
    M=$(mirror)
    # A finished debootstrap removes $CHROOT/debootstrap; anything else is a
    # half-built tree: start again (never while something is mounted in it).
    if [ -e "$CHROOT" ] && { [ -d "$CHROOT/debootstrap" ] || [ ! -x "$CHROOT/usr/bin/apt-get" ]; }; then
        if grep -q " $CHROOT/" /proc/self/mounts; then
            log "refusing to remove $CHROOT: something is mounted in it"
            exit 1
        fi
        log "removing incomplete $CHROOT"
        rm -rf "$CHROOT"
    fi
    if [ ! -e "$CHROOT" ]; then
        ensure_debootstrap
        mkdir -p "$(dirname "$CHROOT")"
        log "debootstrap trixie into $CHROOT"
        debootstrap --variant=minbase trixie "$CHROOT" "$M" >&2
    fi
    printf '%s\n' "deb $M trixie main" "deb $M trixie-backports main" \
        > "$CHROOT/etc/apt/sources.list"
    if ! have_qemu; then
        mount_run
        log "installing QEMU $WANT"
        in_chroot apt-get update -qq >&2
        # shellcheck disable=SC2046
        in_chroot apt-get install -y -qq --no-install-recommends -t trixie-backports \
            $(for p in $PKGS; do printf '%s=%s ' "$p" "$WANT"; done) >&2
        in_chroot apt-get clean >&2
        cleanup
        have_qemu || { log "QEMU $WANT not installed"; exit 1; }
    fi
    echo "$WANT" > "$STAMP"
    log "$(in_chroot qemu-system-x86_64 --version | head -n 1)"
}

case "${1:-}" in
--run)
    shift
    ensure_chroot
    mount_run
    set +e
    in_chroot "$@"
    rc=$?
    set -e
    cleanup
    exit "$rc"
    ;;
"")
    ensure_chroot
    echo "$CHROOT"
    ;;
*)
    sed -n '2,15p' "$0" >&2
    exit 2
    ;;
esac
