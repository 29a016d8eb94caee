#!/usr/bin/env python3
"""Enable a QEMU NVMe controller over qtest, then run HMP commands.

    nvme_qtest.py [--hmp CMD]... SOCKET -- QEMU-COMMAND...

SOCKET is the host path of the qtest socket; this script listens on it and
QEMU-COMMAND must connect to it (`-qtest unix:PATH`, PATH as QEMU sees it, e.g.
inside a chroot) and must read HMP on stdin (`-monitor stdio`). The guest
stays paused (-S): the controller is driven by qtest alone.

Through the qtest text protocol: find the NVMe function (1b36:0010) on bus 0,
set BAR0 and the command register, write AQA/ASQ/ACQ, enable with
CC=0x00460001, submit Create I/O CQ (0x05), Create I/O SQ (0x01) and
Asynchronous Event Request (0x0c) on the admin queue, wait for the two
completions in guest memory, ring the admin CQ head doorbell. Then each --hmp
line is written to the monitor, followed by `quit`; QEMU's exit status is
returned. Every step is deterministic, so a `migrate file:` after this gives
the same bytes on every run.
"""

import os
import signal
import socket
import subprocess
import sys
import time

BAR0 = 0xFE000000
ASQ = 0x100000
ACQ = 0x200000
IOSQ = 0x300000
IOCQ = 0x400000
QDEPTH = 64  # admin queue entries (AQA 0x003f003f)
IODEPTH = 256


class QTest:
    def __init__(self, conn):
        self.conn = conn
        self.buf = b""

    def cmd(self, line):
        self.conn.sendall(line.encode() + b"\n")
        while True:
            while b"\n" not in self.buf:
                chunk = self.conn.recv(65536)
                if not chunk:
                    raise SystemExit("qtest: connection closed after %r" % line)
                self.buf += chunk
            resp, self.buf = self.buf.split(b"\n", 1)
            resp = resp.decode()
            if resp.startswith("IRQ"):
                continue
            if not resp.startswith("OK"):
                raise SystemExit("qtest: %r -> %r" % (line, resp))
            return resp[2:].strip()

    def out(self, width, port, val):
        self.cmd("out%s 0x%x 0x%x" % (width, port, val))

    def inl(self, port):
        return int(self.cmd("inl 0x%x" % port), 16)

    def writel(self, addr, val):
        self.cmd("writel 0x%x 0x%x" % (addr, val))

    def writeq(self, addr, val):
        self.cmd("writeq 0x%x 0x%x" % (addr, val))

    def readl(self, addr):
        return int(self.cmd("readl 0x%x" % addr), 16)

    def readw(self, addr):
        return int(self.cmd("readw 0x%x" % addr), 16)

    def memwrite(self, addr, data):
        self.cmd("write 0x%x 0x%x 0x%s" % (addr, len(data), data.hex()))

    # PCI configuration mechanism #1 (ports 0xcf8/0xcfc), bus 0.
    def cfg_addr(self, dev, reg):
        self.out("l", 0xCF8, 0x80000000 | (dev << 11) | (reg & 0xFC))

    def cfg_readl(self, dev, reg):
        self.cfg_addr(dev, reg)
        return self.inl(0xCFC)

    def cfg_writel(self, dev, reg, val):
        self.cfg_addr(dev, reg)
        self.out("l", 0xCFC, val)

    def cfg_writew(self, dev, reg, val):
        self.cfg_addr(dev, reg)
        self.out("w", 0xCFC + (reg & 2), val)


def sqe(opcode, cid, prp1=0, cdw10=0, cdw11=0):
    e = bytearray(64)
    e[0] = opcode
    e[2:4] = cid.to_bytes(2, "little")
    e[24:32] = prp1.to_bytes(8, "little")
    e[40:44] = cdw10.to_bytes(4, "little")
    e[44:48] = cdw11.to_bytes(4, "little")
    return bytes(e)


def enable_nvme(q):
    dev = None
    for d in range(32):
        if q.cfg_readl(d, 0) == 0x00101B36:
            dev = d
            break
    if dev is None:
        raise SystemExit("qtest: no NVMe function (1b36:0010) on bus 0")
    q.cfg_writel(dev, 0x10, BAR0)  # BAR0 low (64-bit memory BAR)
    q.cfg_writel(dev, 0x14, 0)  # BAR0 high
    q.cfg_writew(dev, 0x04, 0x0006)  # memory space + bus master

    q.writel(BAR0 + 0x24, ((QDEPTH - 1) << 16) | (QDEPTH - 1))  # AQA
    q.writeq(BAR0 + 0x28, ASQ)
    q.writeq(BAR0 + 0x30, ACQ)
    q.writel(BAR0 + 0x14, 0x00460001)  # CC: IOCQES 4, IOSQES 6, EN
    deadline = time.monotonic() + 10
    while not q.readl(BAR0 + 0x1C) & 1:  # CSTS.RDY
        if time.monotonic() > deadline:
            raise SystemExit("qtest: CSTS.RDY never set")
        time.sleep(0.001)

    cmds = [
        # Create I/O CQ 1: QSIZE-1 | QID, PC=1 (interrupts off)
        sqe(0x05, 1, IOCQ, ((IODEPTH - 1) << 16) | 1, 0x1),
        # Create I/O SQ 1 on CQ 1: CQID << 16 | PC=1
        sqe(0x01, 2, IOSQ, ((IODEPTH - 1) << 16) | 1, (1 << 16) | 0x1),
        # Asynchronous Event Request: stays outstanding
        sqe(0x0C, 3),
    ]
    for i, c in enumerate(cmds):
        q.memwrite(ASQ + 64 * i, c)
        q.writel(BAR0 + 0x1000, i + 1)  # admin SQ tail doorbell
        if c[0] == 0x0C:
            break
        # wait for completion i: phase bit (bit 0 of DW3's status half) = 1
        deadline = time.monotonic() + 10
        while not q.readw(ACQ + 16 * i + 14) & 1:
            if time.monotonic() > deadline:
                raise SystemExit("qtest: no completion for command %d" % i)
            time.sleep(0.001)
        status = q.readw(ACQ + 16 * i + 14) >> 1
        if status:
            raise SystemExit("qtest: command %d failed, status 0x%x" % (i, status))
    q.writel(BAR0 + 0x1004, 2)  # admin CQ head doorbell: both consumed
    # let the AER reach the controller's outstanding list
    q.readl(BAR0 + 0x1C)
    time.sleep(0.1)


def main(argv):
    hmp = []
    while argv and argv[0] == "--hmp":
        hmp.append(argv[1])
        argv = argv[2:]
    if len(argv) < 3 or argv[1] != "--":
        sys.exit(__doc__)
    path, qemu = argv[0], argv[2:]
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # bind by a relative name: a deep checkout can exceed sun_path's 108 bytes
    cwd = os.getcwd()
    os.chdir(os.path.dirname(os.path.abspath(path)))
    try:
        srv.bind(os.path.basename(path))
    finally:
        os.chdir(cwd)
    srv.listen(1)
    srv.settimeout(30)
    # own process group, so a failure can stop the wrapper and QEMU together
    proc = subprocess.Popen(qemu, stdin=subprocess.PIPE, start_new_session=True)
    try:
        conn, _ = srv.accept()
        enable_nvme(QTest(conn))
        lines = "".join(h + "\n" for h in hmp) + "quit\n"
        proc.stdin.write(lines.encode())
        proc.stdin.close()
        rc = proc.wait(timeout=120)
        conn.close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        srv.close()
        os.unlink(path)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
