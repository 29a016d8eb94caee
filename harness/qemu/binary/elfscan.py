#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Read VMStateDescription / VMStateField tables out of a PIE QEMU binary.

Pointers in .data.rel.ro are zero in the file and filled in by R_X86_64_RELATIVE
(or R_X86_64_64 against a symbol) relocations, so this applies .rela.dyn to get
the values a running process sees.  Used to verify abi-11.1.3.h.

  elfscan.py BIN vmsd SYMBOL       dump a VMSD (0x70 bytes) and its fields
  elfscan.py BIN scan              list VMStateField tables (terminator 0x20000)
  elfscan.py BIN flags MASK        fields whose flags contain MASK
"""
import struct, sys

class Elf:
    def __init__(self, path):
        self.d = open(path, 'rb').read()
        d = self.d
        shoff, = struct.unpack_from('<Q', d, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from('<HHH', d, 0x3a)
        secs = []
        for i in range(shnum):
            secs.append(struct.unpack_from('<IIQQQQIIQQ', d, shoff + i * shentsize))
        strtab = secs[shstrndx]
        def nm(off):
            s = strtab[4] + off
            return d[s:d.index(b'\0', s)].decode()
        self.sec = {nm(s[0]): s for s in secs}
        # dynamic symbols
        ds = self.sec['.dynsym']; dstr = self.sec['.dynstr']
        self.syms = []
        self.byname = {}
        for off in range(ds[4], ds[4] + ds[5], 24):
            st_name, info, other, shndx, value, size = struct.unpack_from('<IBBHQQ', d, off)
            s = dstr[4] + st_name
            name = d[s:d.index(b'\0', s)].decode()
            self.syms.append((name, value, size))
            if name:
                self.byname[name] = (value, size)
        self.byaddr = {v: n for n, v, s in self.syms if v}
        # relocations
        self.rel = {}
        rd = self.sec['.rela.dyn']
        for off in range(rd[4], rd[4] + rd[5], 24):
            r_off, r_info, r_add = struct.unpack_from('<QQq', d, off)
            typ = r_info & 0xffffffff; sym = r_info >> 32
            if typ == 8:      # RELATIVE
                self.rel[r_off] = r_add
            elif typ == 1:    # 64
                self.rel[r_off] = ('sym', self.syms[sym][0], r_add)
        # address -> file offset via sections
        self.maps = [(s[3], s[5], s[4], s[1]) for s in secs if s[3]]

    def foff(self, addr):
        for a, sz, o, t in self.maps:
            if a <= addr < a + sz:
                return None if t == 8 else o + addr - a   # NOBITS
        raise KeyError(hex(addr))

    def u64(self, addr):
        if addr in self.rel:
            return self.rel[addr]
        o = self.foff(addr)
        return 0 if o is None else struct.unpack_from('<Q', self.d, o)[0]

    def raw(self, addr, n):
        o = self.foff(addr)
        return bytes(n) if o is None else self.d[o:o + n]

    def cstr(self, addr):
        if not isinstance(addr, int) or not addr:
            return repr(addr)
        o = self.foff(addr)
        return self.d[o:self.d.index(b'\0', o)].decode(errors='replace')

    def name(self, v):
        if isinstance(v, tuple):
            return v[1] + ('+%d' % v[2] if v[2] else '')
        if v == 0:
            return '0'
        return self.byaddr.get(v, hex(v))

def dump_field(e, a):
    name = e.u64(a)
    off = e.u64(a + 8); size = e.u64(a + 0x10)
    si_off, si_sz = struct.unpack('<IB', e.raw(a + 0x18, 5))
    ni_off, ni_sz = struct.unpack('<IB', e.raw(a + 0x20, 5))
    start = e.u64(a + 0x28)
    num, = struct.unpack('<i', e.raw(a + 0x30, 4))
    info = e.u64(a + 0x38)
    flags, = struct.unpack('<I', e.raw(a + 0x40, 4))
    vmsd = e.u64(a + 0x48)
    ver, sver = struct.unpack('<ii', e.raw(a + 0x50, 8))
    fe = e.u64(a + 0x58)
    return flags, ('  %-28s off=%#x size=%#x size_ind={%#x,%d} num_ind={%#x,%d} start=%d num=%d '
                   'info=%s flags=%#x vmsd=%s ver=%d sver=%d exists=%s' % (
                       e.cstr(name) if name else '(null)', off, size, si_off, si_sz, ni_off, ni_sz,
                       start, num, e.name(info), flags, e.name(vmsd), ver, sver, e.name(fe)))

def dump_vmsd(e, a):
    b = e.raw(a, 0x70)
    print('%s @%#x' % (e.name(a), a))
    print('  name@0=%s unmigratable@8=%d early_setup@9=%d @0xa=%d @0xb=%d version_id@0xc=%d '
          'minimum_version_id@0x10=%d priority@0x14=%d' % ((e.cstr(e.u64(a)),) + tuple(b[8:12]) +
                                                          struct.unpack_from('<iii', b, 0xc)))
    for o, n in [(0x18, 'pre_load'), (0x20, 'pre_load_errp'), (0x28, 'post_load'), (0x30, 'post_load_errp'),
                 (0x38, 'pre_save'), (0x40, 'pre_save_errp'), (0x48, 'post_save'), (0x50, 'needed'),
                 (0x58, 'dev_unplug_pending'), (0x60, 'fields'), (0x68, 'subsections')]:
        print('  %s@%#x=%s' % (n, o, e.name(e.u64(a + o))))
    f = e.u64(a + 0x60)
    while isinstance(f, int) and f:
        flags, s = dump_field(e, f)
        print(s)
        if flags & 0x20000:
            break
        f += 0x60
    s = e.u64(a + 0x68)
    while isinstance(s, int) and s:
        p = e.u64(s)
        if not p:
            break
        print('  subsection %s (%s)' % (e.name(p), e.cstr(e.u64(p))))
        s += 8

def scan(e, mask=None):
    sec = e.sec['.data.rel.ro']
    base, size = sec[3], sec[5]
    ntab = 0
    a = base
    # a field table ends with a record whose flags == VMS_END and name == NULL
    ends = []
    for a in range(base, base + size - 0x60, 8):
        if struct.unpack('<I', e.raw(a + 0x40, 4))[0] == 0x20000 and e.u64(a) == 0 and a not in e.rel:
            ends.append(a)
    for end in ends:
        ntab += 1
        a = end - 0x60
        while a >= base and isinstance(e.u64(a), int) and e.u64(a) and a in e.rel:
            flags, s = dump_field(e, a)
            if mask is not None and flags & mask == mask:
                print(s)
            a -= 0x60
    return ntab

if __name__ == '__main__':
    e = Elf(sys.argv[1])
    if sys.argv[2] == 'vmsd':
        dump_vmsd(e, e.byname[sys.argv[3]][0] if not sys.argv[3].startswith('0x') else int(sys.argv[3], 16))
    elif sys.argv[2] == 'scan':
        print('tables (terminator flags 0x20000, name NULL):', scan(e))
    elif sys.argv[2] == 'flags':
        n = scan(e, int(sys.argv[3], 0))
        print('tables:', n)
