#!/bin/sh
# Confirm on real QEMU 11.1.3 (trixie chroot, chroot-11.1.3.sh) the behaviours
# recorded in 11.1.3/README.md. Not part of CI; rerun by hand:
#
#   sh corpus/qemu/confirm-11.1.3.sh
#
#   a. 11.1.3/x86-pc-nvme-qtest.mig loads into a fresh destination
#   b. s390x css[0] marker 0x30 -> 0x31: Assertion 'auto_alloc' (exit 134);
#      0x30 -> 0x32: "Unexpected ptr marker: 50" (exit 1)
#   c. savevm + loadvm with an outstanding NVMe AER aborts (exit 134)
#   d. the 10.0.2 s390x-ccw.mig loads into 11.1.3 -M s390-ccw-virtio-10.0
#
# Each case prints the destination's exit status and its stderr lines.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
CH=$(sh "$HERE/chroot-11.1.3.sh")
R="-rtc base=2020-01-01T00:00:00,clock=vm"
C="-nodefaults -display none -S -accel tcg -monitor stdio"
W=$(basename "$(mktemp -d "$CH/tmp/confirm.XXXXXX")")
T="$CH/tmp/$W"
trap 'rm -rf "$T"' EXIT
NVME="-drive file=/tmp/$W/nvme.img,if=none,id=d0,format=raw -device nvme,drive=d0,serial=deadbeef"
dd if=/dev/zero of="$T/nvme.img" bs=1024 count=1024 2>/dev/null

# load NAME ARGS...: QEMU ARGS -incoming file:/tmp/$W/NAME; a destination that
# loads waits for HMP, which asks for the migration status after 3 s.
load() {
    name=$1; shift
    set +e
    # shellcheck disable=SC2086
    { sleep 3; printf 'info migrate\ninfo status\nquit\n'; } 2>/dev/null |
        sh "$HERE/chroot-11.1.3.sh" --run "$@" $R $C -incoming "file:/tmp/$W/$name" \
        >"$T/out" 2>"$T/err"
    rc=$?
    set -e
    echo "  exit $rc"
    sed 's/^/  stderr: /' "$T/err"
    tr -d '\033' <"$T/out" | grep -a -E '^(Status|Migration status|VM status)' | sed 's/^/  hmp: /' || true
}

# css[0]: the first of the 254 0x30 markers before the one valid css entry
css0() {
    python3 - "$1" <<'EOF'
import re, sys
b = open(sys.argv[1], "rb").read()
runs = [m.start() for m in re.finditer(rb"(?<!0)0{254}(?!0)", b)]
assert len(runs) == 1, runs
print(runs[0])
EOF
}

# poke FILE OFFSET BYTE (hex)
poke() {
    printf '%b' "$(printf '\\0%03o' "0x$3")" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

echo "a. 11.1.3/x86-pc-nvme-qtest.mig into a fresh 11.1.3 destination:"
cp "$HERE/11.1.3/x86-pc-nvme-qtest.mig" "$T/"
# shellcheck disable=SC2086
load x86-pc-nvme-qtest.mig qemu-system-x86_64 -M pc -m 32 $NVME

OFF=$(css0 "$HERE/11.1.3/s390x-ccw.mig")
echo "b. 11.1.3/s390x-ccw.mig, css[0] marker at file offset $OFF:"
for v in 31 32; do
    cp "$HERE/11.1.3/s390x-ccw.mig" "$T/css-$v.mig"
    poke "$T/css-$v.mig" "$OFF" "$v"
    echo " 0x30 -> 0x$v:"
    load "css-$v.mig" qemu-system-s390x -M s390-ccw-virtio -m 32
done

echo "c. savevm s1 + loadvm s1, NVMe enabled over qtest with one AER outstanding (qcow2):"
sh "$HERE/chroot-11.1.3.sh" --run qemu-img create -q -f qcow2 "/tmp/$W/nvme.qcow2" 1M
set +e
# shellcheck disable=SC2086
python3 "$HERE/nvme_qtest.py" --hmp "savevm s1" --hmp "loadvm s1" "$T/qtest.sock" -- \
    sh "$HERE/chroot-11.1.3.sh" --run qemu-system-x86_64 -M pc -m 32 $R $C \
    -drive "file=/tmp/$W/nvme.qcow2,if=none,id=d0,format=qcow2" \
    -device nvme,drive=d0,serial=deadbeef \
    -qtest "unix:/tmp/$W/qtest.sock" -qtest-log /dev/null >"$T/out" 2>"$T/err"
rc=$?
set -e
echo "  exit $rc"
sed 's/^/  stderr: /' "$T/err"

echo "d. 10.0.2 s390x-ccw.mig into 11.1.3 -M s390-ccw-virtio-10.0:"
cp "$HERE/s390x-ccw.mig" "$T/s390x-10.0.2.mig"
load s390x-10.0.2.mig qemu-system-s390x -M s390-ccw-virtio-10.0 -m 32
