#!/bin/sh
# Install QEMU 10.0.2 (Debian bookworm-backports) and capture deterministic
# migration streams.
#
#   capture.sh DIR        install if needed, capture every stream into DIR
#   capture.sh --verify   capture into a temp dir and compare with SHA256SUMS
#   capture.sh --install  only install QEMU
#   capture.sh --commit   capture into this directory, gzip the mapped-ram
#                         stream and rewrite SHA256SUMS
#
# Installation follows /work/shared/spec/qemu-streams.md: the backports entry
# is built from the mirror the machine already uses. Idempotent: nothing is
# installed when the right version is present.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
WANT="1:10.0.2+ds-2+deb13u1~bpo12+1"
PKGS="qemu-system-x86 qemu-system-arm qemu-system-s390x"

have_qemu() {
    for p in $PKGS; do
        v=$(dpkg-query -W -f '${Version}' "$p" 2>/dev/null || true)
        [ "$v" = "$WANT" ] || return 1
    done
    return 0
}

install_qemu() {
    if have_qemu; then
        return 0
    fi
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    M=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    echo "deb $M bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/backports.list >/dev/null
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -t bookworm-backports $(for p in $PKGS; do printf '%s=%s ' "$p" "$WANT"; done)
    have_qemu
}

# run_hmp OUT BINARY ARGS... -- extra HMP lines before migrate
R="-rtc base=2020-01-01T00:00:00,clock=vm"
C="-nodefaults -display none -S -accel tcg -monitor stdio"

capture_one() {
    out=$1; shift
    pre=$1; shift
    rm -f "$out"
    # shellcheck disable=SC2086
    printf "${pre}migrate file:%s\nquit\n" "$out" | "$@" $R $C >/dev/null 2>&1
    [ -s "$out" ] || { echo "capture failed: $out" >&2; exit 1; }
    chmod 644 "$out"
}

capture_all() {
    d=$1
    mkdir -p "$d"
    d=$(cd "$d" && pwd)
    capture_one "$d/x86-pc.mig" "" qemu-system-x86_64 -M pc -m 32
    capture_one "$d/x86-q35.mig" "" qemu-system-x86_64 -M q35 -m 32
    capture_one "$d/arm64-virt.mig" "" qemu-system-aarch64 -M virt,dtb-randomness=off -cpu cortex-a57 -m 32
    capture_one "$d/s390x-ccw.mig" "" qemu-system-s390x -M s390-ccw-virtio -m 32
    capture_one "$d/arm-lm3s6965evb.mig" "" qemu-system-arm -M lm3s6965evb
    capture_one "$d/x86-pc-mapped-ram.mig" "migrate_set_capability mapped-ram on\n" \
        qemu-system-x86_64 -M pc -m 32
}

# The committed copy of the sparse mapped-ram stream is gzipped; SHA256SUMS
# always names the uncompressed bytes.
commit_all() {
    d=$(cd "$1" && pwd)
    gzip -9 -n -f "$d/x86-pc-mapped-ram.mig"
    (cd "$d" && for f in *.mig; do sha256sum "$f"; done
        zcat x86-pc-mapped-ram.mig.gz | sha256sum | sed 's/-$/x86-pc-mapped-ram.mig/') \
        | LC_ALL=C sort -k2 > "$d/SHA256SUMS"
}

case "${1:-}" in
--install)
    install_qemu
    ;;
--verify)
    install_qemu
    T=$(mktemp -d)
    trap 'rm -rf "$T"' EXIT
    capture_all "$T/fresh"
    echo "fresh capture against SHA256SUMS:"
    (cd "$T/fresh" && sha256sum -c "$HERE/SHA256SUMS")
    echo "committed files against SHA256SUMS:"
    mkdir -p "$T/committed"
    cp "$HERE"/*.mig "$T/committed/"
    zcat "$HERE/x86-pc-mapped-ram.mig.gz" > "$T/committed/x86-pc-mapped-ram.mig"
    (cd "$T/committed" && sha256sum -c "$HERE/SHA256SUMS")
    ;;
--commit)
    install_qemu
    capture_all "$HERE"
    commit_all "$HERE"
    ;;
""|-h|--help)
    sed -n '2,13p' "$0"
    [ -n "${1:-}" ] || exit 2
    ;;
*)
    install_qemu
    capture_all "$1"
    ;;
esac
