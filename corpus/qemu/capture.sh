#!/bin/sh
# Install QEMU and capture deterministic migration streams: QEMU 10.0.2
# (Debian bookworm-backports, on the host) into this directory, QEMU 11.1.3
# (Debian trixie-backports, in a trixie chroot made by chroot-11.1.3.sh) into
# 11.1.3/.
#
#   capture.sh DIR        install if needed, capture every 10.0.2 stream into DIR
#   capture.sh --verify   capture into a temp dir and compare with SHA256SUMS
#                         (10.0.2: SHA256SUMS, 11.1.3: 11.1.3/SHA256SUMS)
#   capture.sh --install  only install QEMU
#   capture.sh --commit   capture into this directory (and 11.1.3/), gzip the
#                         mapped-ram stream and rewrite both SHA256SUMS
#   --version 10.0.2|11.1.3 before any of these limits it to one version
#                         (both by default; DIR alone means 10.0.2)
#
# 10.0.2 installation follows /work/shared/spec/qemu-streams.md: the backports
# entry is built from the mirror the machine already uses. Idempotent: nothing
# is installed when the right version is present.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
H11="$HERE/11.1.3"
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
    # shellcheck disable=SC2046,SC2086
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

# ---- QEMU 11.1.3, run from the trixie chroot --------------------------------

CH=""
install_qemu11() {
    [ -n "$CH" ] || CH=$(sh "$HERE/chroot-11.1.3.sh")
}

# run11 ARGS...: run ARGS inside the chroot, /proc mounted for the run only
run11() {
    sh "$HERE/chroot-11.1.3.sh" --run "$@"
}

# capture11 NAME ARGS...: migrate a paused QEMU 11.1.3 to $W/NAME
capture11() {
    name=$1; shift
    rm -f "$CH/tmp/$W/$name"
    # shellcheck disable=SC2086
    printf 'migrate file:/tmp/%s/%s\nquit\n' "$W" "$name" | run11 "$@" $R $C >/dev/null 2>&1
    [ -s "$CH/tmp/$W/$name" ] || { echo "capture failed: 11.1.3 $name" >&2; exit 1; }
}

capture_all11() {
    d=$1
    mkdir -p "$d"
    d=$(cd "$d" && pwd)
    install_qemu11
    W=$(basename "$(mktemp -d "$CH/tmp/capture.XXXXXX")")
    # a 1 MiB all-zero raw image behind the NVMe namespace (its path is not
    # in the stream)
    dd if=/dev/zero of="$CH/tmp/$W/nvme.img" bs=1024 count=1024 2>/dev/null
    NVME="-drive file=/tmp/$W/nvme.img,if=none,id=d0,format=raw -device nvme,drive=d0,serial=deadbeef"
    capture11 x86-pc.mig qemu-system-x86_64 -M pc -m 32
    capture11 x86-q35.mig qemu-system-x86_64 -M q35 -m 32
    capture11 s390x-ccw.mig qemu-system-s390x -M s390-ccw-virtio -m 32
    # shellcheck disable=SC2086
    capture11 x86-pc-nvme.mig qemu-system-x86_64 -M pc -m 32 $NVME
    # the same with the controller enabled over qtest (guest still paused)
    # shellcheck disable=SC2086
    python3 "$HERE/nvme_qtest.py" --hmp "migrate file:/tmp/$W/x86-pc-nvme-qtest.mig" \
        "$CH/tmp/$W/qtest.sock" -- sh "$HERE/chroot-11.1.3.sh" --run \
        qemu-system-x86_64 -M pc -m 32 $R $C $NVME \
        -qtest "unix:/tmp/$W/qtest.sock" -qtest-log /dev/null >/dev/null 2>&1 ||
        { echo "capture failed: 11.1.3 x86-pc-nvme-qtest.mig" >&2; exit 1; }
    [ -s "$CH/tmp/$W/x86-pc-nvme-qtest.mig" ] ||
        { echo "capture failed: 11.1.3 x86-pc-nvme-qtest.mig" >&2; exit 1; }
    for f in "$CH/tmp/$W"/*.mig; do
        cp "$f" "$d/"
        chmod 644 "$d/$(basename "$f")"
    done
    rm -rf "${CH:?}/tmp/$W"
}

commit_all11() {
    d=$(cd "$1" && pwd)
    (cd "$d" && for f in *.mig; do sha256sum "$f"; done) \
        | LC_ALL=C sort -k2 > "$d/SHA256SUMS"
}

verify10() {
    capture_all "$T/fresh"
    echo "fresh capture against SHA256SUMS:"
    (cd "$T/fresh" && sha256sum -c "$HERE/SHA256SUMS")
    echo "committed files against SHA256SUMS:"
    mkdir -p "$T/committed"
    cp "$HERE"/*.mig "$T/committed/"
    zcat "$HERE/x86-pc-mapped-ram.mig.gz" > "$T/committed/x86-pc-mapped-ram.mig"
    (cd "$T/committed" && sha256sum -c "$HERE/SHA256SUMS")
}

verify11() {
    capture_all11 "$T/fresh11"
    echo "fresh 11.1.3 capture against 11.1.3/SHA256SUMS:"
    (cd "$T/fresh11" && sha256sum -c "$H11/SHA256SUMS")
    echo "committed 11.1.3 files against 11.1.3/SHA256SUMS:"
    (cd "$H11" && sha256sum -c SHA256SUMS)
}

V10=1
V11=1
if [ "${1:-}" = --version ]; then
    case "${2:-}" in
    10.0.2) V11="" ;;
    11.1.3) V10="" ;;
    *) echo "capture.sh: --version 10.0.2|11.1.3" >&2; exit 2 ;;
    esac
    shift 2
fi

case "${1:-}" in
--install)
    [ -z "$V10" ] || install_qemu
    [ -z "$V11" ] || install_qemu11
    ;;
--verify)
    [ -z "$V10" ] || install_qemu
    [ -z "$V11" ] || install_qemu11
    T=$(mktemp -d)
    trap 'rm -rf "$T"' EXIT
    [ -z "$V10" ] || verify10
    [ -z "$V11" ] || verify11
    ;;
--commit)
    if [ -n "$V10" ]; then
        install_qemu
        capture_all "$HERE"
        commit_all "$HERE"
    fi
    if [ -n "$V11" ]; then
        capture_all11 "$H11"
        commit_all11 "$H11"
    fi
    ;;
""|-h|--help)
    sed -n '2,18p' "$0"
    [ -n "${1:-}" ] || exit 2
    ;;
*)
    if [ -n "$V10" ] && [ -n "$V11" ]; then
        V11=""
    fi
    if [ -n "$V10" ]; then
        install_qemu
        capture_all "$1"
    else
        capture_all11 "$1"
    fi
    ;;
esac
