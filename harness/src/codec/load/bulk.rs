//! The loader's fast paths: stretches of a load that are proven to do
//! exactly what the element-by-element path would, done in one pass (dense
//! scalar arrays, flat structs, runs of NULL entries). Each declines, with
//! nothing touched, where it cannot prove that.

use super::Loader;
use crate::codec::plan::{FieldPlan, Flat, Slots, compares_with_memory};
use crate::codec::walk::{Seg, stride_at};
use vmstate_reference::{Addr, Error, ErrorKind, Info, MARKER_NULL, POINTER_SIZE};

impl Loader<'_, '_, '_> {
    /// How many elements from `i` on are NULL slots with a 0x30 marker (a
    /// nullptr placeholder or a NULL ptr marker), consumed here in one scan:
    /// each is one byte of stream and changes nothing else, in every slot
    /// kind that reads markers. 0 when the next element needs the precise
    /// path (a non-NULL slot, another byte, slots that are not one table of
    /// host pointers, or the element limit).
    pub(super) fn null_run(
        &mut self,
        field: &FieldPlan,
        first: Addr,
        size: i64,
        i: i64,
        n: i64,
    ) -> i64 {
        let markers = matches!(
            field.slots,
            Slots::NullptrPlaceholder | Slots::Marker { .. }
        );
        if !markers || size != POINTER_SIZE as i64 {
            return 0;
        }
        let at = stride_at(first, size, i);
        let Some(table) = self.heap.allocation_at(at).filter(|a| !a.freed) else {
            return 0;
        };
        // `allocation_at` found `at` inside the table (or at its base).
        let slots = &table.bytes[(at - table.base) as usize..];
        let room = self.limits.max_elements.saturating_sub(self.elements);
        let run = slots
            .chunks_exact(POINTER_SIZE as usize)
            .zip(&self.input[self.pos..])
            .take(((n - i) as u64).min(room) as usize)
            .take_while(|(slot, b)| **b == MARKER_NULL && slot.iter().all(|&x| x == 0))
            .count();
        self.pos += run;
        self.elements += run as u64;
        run as i64
    }

    /// A flat struct into one slice of memory; false (nothing touched)
    /// when the stream is short, memory needs the precise path, or an info
    /// compares against memory.
    pub(super) fn load_flat(&mut self, flat: &Flat, pv: Addr) -> bool {
        let need: u64 = flat.runs.iter().map(|r| r.width * r.n).sum();
        if !flat.plain
            || pv == 0
            || self.elements + flat.elements > self.limits.max_elements
            || ((self.input.len() - self.pos) as u64) < need
        {
            return false;
        }
        self.before_write(pv, flat.extent);
        let Ok(dst) = self.heap.slice_mut(pv, flat.extent) else {
            return false;
        };
        let mut at = self.pos;
        for run in &flat.runs {
            let len = (run.width * run.n) as usize;
            let d = &mut dst[run.offset as usize..run.offset as usize + len];
            let src = &self.input[at..at + len];
            match run.width {
                1 if run.bool => d
                    .iter_mut()
                    .zip(src)
                    .for_each(|(d, s)| *d = (*s != 0) as u8),
                1 => d.copy_from_slice(src),
                2 => swap::<2>(d, src),
                4 => swap::<4>(d, src),
                _ => swap::<8>(d, src),
            }
            at += len;
        }
        self.pos = at;
        self.elements += flat.elements;
        true
    }

    /// A dense run of plain scalars converted from big-endian in one pass.
    /// None when the fast path does not apply (nothing was touched).
    pub(super) fn bulk_scalars(
        &mut self,
        field: &FieldPlan,
        info: Info,
        first: Addr,
        n: i64,
        size: i64,
    ) -> Option<Result<(), Error>> {
        let w = info.scalar_width()?;
        if compares_with_memory(info) || size as u64 != w || first == 0 {
            return None;
        }
        let w = w as usize;
        let n = usize::try_from(n).ok()?;
        let total = w.checked_mul(n)? as u64;
        self.heap.read(first, total).ok()?;
        let avail = ((self.input.len() - self.pos) / w).min(n);
        self.before_write(first, total);
        let src = &self.input[self.pos..];
        let dst = self.heap.slice_mut(first, total).ok()?;
        let whole = avail * w;
        match w {
            1 if info == Info::Bool => dst[..whole]
                .iter_mut()
                .zip(src)
                .for_each(|(d, s)| *d = (*s != 0) as u8),
            1 => dst[..whole].copy_from_slice(&src[..whole]),
            2 => swap::<2>(&mut dst[..whole], &src[..whole]),
            4 => swap::<4>(&mut dst[..whole], &src[..whole]),
            _ => swap::<8>(&mut dst[..whole], &src[..whole]),
        }
        self.pos += whole;
        if avail == n {
            return Some(Ok(()));
        }
        // The first incomplete element reads its bytes then zeros, is stored,
        // and only then is the sticky error noticed.
        let v = self.be(w);
        let bytes = if info == Info::Bool {
            [(v != 0) as u8, 0, 0, 0, 0, 0, 0, 0]
        } else {
            v.to_le_bytes()
        };
        let elem_at = first + whole as u64;
        self.heap
            .write(elem_at, &bytes[..w])
            .expect("inside the range checked above");
        if field.array {
            self.path.push(Seg::Index(avail as i64));
        }
        Some(Err(self.err_at(ErrorKind::Eof, self.input.len())))
    }
}

/// Big-endian elements of `W` bytes to host order (little-endian).
fn swap<const W: usize>(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst
        .as_chunks_mut::<W>()
        .0
        .iter_mut()
        .zip(src.as_chunks::<W>().0)
    {
        let mut v = *s;
        v.reverse();
        *d = v;
    }
}
