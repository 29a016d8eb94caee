//! Optimized save: one output buffer, dense scalar arrays converted in
//! bulk, pointer tables read once, paths rendered only on error.

use super::plan::{Elem, FieldPlan, Flat, Slots, VmsdPlan};
use super::walk::{self, Path, Seg, stride_at};
use vmstate_reference::{Addr, Error, ErrorKind, Heap, Info, Limits};

pub struct Saver<'p, 'h> {
    heap: &'h Heap,
    out: Vec<u8>,
    path: Path<'p>,
    elements: u64,
    limits: Limits,
}

/// Saves into `out` (cleared first; its capacity is reused).
pub fn save(
    plan: &VmsdPlan,
    heap: &Heap,
    opaque: Addr,
    limits: &Limits,
    mut out: Vec<u8>,
) -> Result<Vec<u8>, Error> {
    out.clear();
    let mut s = Saver {
        heap,
        out,
        path: Path::new(&plan.name),
        elements: 0,
        limits: *limits,
    };
    s.save_vmsd(plan, opaque, plan.version_id)?;
    Ok(s.out)
}

impl<'p> Saver<'p, '_> {
    fn err(&self, kind: ErrorKind) -> Error {
        self.path.error(kind, self.out.len())
    }

    fn save_vmsd(
        &mut self,
        plan: &'p VmsdPlan,
        opaque: Addr,
        version_id: i32,
    ) -> Result<(), Error> {
        for field in &plan.fields {
            self.path.push(Seg::Field(&field.name));
            let exists =
                walk::exists(field, self.heap, opaque, version_id).map_err(|k| self.err(k))?;
            if exists {
                self.save_field(field, opaque)?;
            } else if field.must_exist {
                return Err(self.err(ErrorKind::MustExistOnSave));
            }
            self.path.pop();
        }
        if let Some(flags) = plan.bad_terminator {
            return Err(self.err(ErrorKind::TerminatorNotEnd { flags }));
        }
        self.save_subsections(plan, opaque)
    }

    /// `vmstate_subsection_save`
    fn save_subsections(&mut self, plan: &'p VmsdPlan, opaque: Addr) -> Result<(), Error> {
        for sub in &plan.subsections {
            self.path.push(Seg::Suffix(&sub.path_suffix));
            let needed = match &sub.needed {
                None => true,
                Some(t) => t
                    .eval(self.heap, opaque, sub.plan.version_id)
                    .map_err(|e| self.err(ErrorKind::Memory(e)))?,
            };
            if needed {
                self.room(sub.header.len() as u64 + 4)?;
                self.out.extend_from_slice(&sub.header);
                self.out
                    .extend_from_slice(&(sub.plan.version_id as u32).to_be_bytes());
                self.save_vmsd(&sub.plan, opaque, sub.plan.version_id)?;
            }
            self.path.pop();
        }
        Ok(())
    }

    fn room(&self, n: u64) -> Result<(), Error> {
        if (self.out.len() as u64).saturating_add(n) > self.limits.max_output as u64 {
            return Err(self.err(ErrorKind::OutputLimit(self.limits.max_output)));
        }
        Ok(())
    }

    fn save_field(&mut self, field: &'p FieldPlan, opaque: Addr) -> Result<(), Error> {
        let n = walk::n_elems(field, self.heap, opaque).map_err(|k| self.err(k))?;
        let size = walk::size(field, self.heap, opaque).map_err(|k| self.err(k))?;
        let mut first = opaque.wrapping_add(field.offset);
        if field.pointer {
            first = self
                .heap
                .read_ptr(first)
                .map_err(|e| self.err(ErrorKind::Memory(e)))?;
            if first == 0 && n != 0 && size != 0 {
                return Err(self.err(ErrorKind::NullPointerBase { n_elems: n }));
            }
        }
        if n <= 0 {
            return Ok(());
        }
        if self.elements + n as u64 <= self.limits.max_elements
            && let (Slots::Direct { .. }, Elem::Info(info)) = (field.slots, &field.elem)
            && self.bulk_scalars(*info, first, n, size)
        {
            self.elements += n as u64;
            return Ok(());
        }
        let table = match field.slots {
            // A pointer table is read once, not slot by slot.
            Slots::NullptrPlaceholder | Slots::Marker { .. } if size == 8 => (n as u64)
                .checked_mul(8)
                .and_then(|len| self.heap.read(first, len).ok()),
            _ => None,
        };
        let slots = table.map(|t| t.as_chunks::<8>().0);
        let start = match (slots, field.slots, &field.elem) {
            (
                Some(slots),
                Slots::Marker { dynamic: true, .. },
                Elem::Struct {
                    flat: Some(flat),
                    plan,
                    ..
                },
            ) if plan.subsections.is_empty() => self.dynamic_flat_run(slots, flat),
            _ => 0,
        };
        if field.array {
            self.path.push(Seg::Index(start));
        }
        for i in start..n {
            if field.array {
                self.path.set_index(i);
            }
            self.elements += 1;
            if self.elements > self.limits.max_elements {
                return Err(self.err(ErrorKind::ElementLimit(self.limits.max_elements)));
            }
            let cached = slots.map(|s| u64::from_le_bytes(s[i as usize]));
            self.save_element(field, stride_at(first, size, i), cached, size)?;
        }
        if field.array {
            self.path.pop();
        }
        Ok(())
    }

    /// The tight loop of a dynamic array of pointers to flat structs: a
    /// marker per slot, the struct from one slice after each `31`. Returns
    /// how many slots it did; the rest (a slot whose memory or the element
    /// limit needs the precise path) go through `save_element`.
    fn dynamic_flat_run(&mut self, slots: &[[u8; 8]], flat: &Flat) -> i64 {
        for (i, slot) in slots.iter().enumerate() {
            let curr = u64::from_le_bytes(*slot);
            if self.elements + 1 + flat.elements > self.limits.max_elements {
                return i as i64;
            }
            if curr == 0 {
                self.out.push(marker(false));
            } else {
                let before = self.out.len();
                self.out.push(marker(true));
                if !self.save_flat(flat, curr) {
                    self.out.truncate(before);
                    return i as i64;
                }
            }
            self.elements += 1;
        }
        slots.len() as i64
    }

    /// A flat struct from one slice of memory; false (nothing written)
    /// when its memory or the element limit needs the precise path.
    fn save_flat(&mut self, flat: &Flat, pv: Addr) -> bool {
        if self.elements + flat.elements > self.limits.max_elements || pv == 0 {
            return false;
        }
        let Ok(src) = self.heap.read(pv, flat.extent) else {
            return false;
        };
        for run in &flat.runs {
            let bytes = &src[run.offset as usize..(run.offset + run.width * run.n) as usize];
            emit(&mut self.out, bytes, run.width, run.bool);
        }
        self.elements += flat.elements;
        true
    }

    /// A dense run of plain scalars, converted to big-endian in one pass.
    /// False (nothing written) when the fast path does not apply.
    fn bulk_scalars(&mut self, info: Info, first: Addr, n: i64, size: i64) -> bool {
        let Some(w) = info.scalar_width() else {
            return false;
        };
        if size as u64 != w || first == 0 {
            return false;
        }
        let Some(Ok(src)) = w
            .checked_mul(n as u64)
            .map(|len| self.heap.read(first, len))
        else {
            return false;
        };
        emit(&mut self.out, src, w, info == Info::Bool);
        true
    }

    fn save_element(
        &mut self,
        field: &'p FieldPlan,
        slot: Addr,
        cached: Option<u64>,
        size: i64,
    ) -> Result<(), Error> {
        let read_slot = |s: &Self| match cached {
            Some(p) => Ok(p),
            None => s
                .heap
                .read_ptr(slot)
                .map_err(|e| s.err(ErrorKind::Memory(e))),
        };
        match field.slots {
            Slots::Direct { null_check } => {
                if null_check && slot == 0 && size != 0 {
                    return Err(self.err(ErrorKind::NullElementNotArrayOfPointer));
                }
                self.save_value(field, slot, size)
            }
            Slots::NullptrPlaceholder => {
                let curr = read_slot(self)?;
                if curr == 0 && size != 0 {
                    self.out.push(vmstate_reference::MARKER_NULL);
                    Ok(())
                } else {
                    self.save_value(field, curr, size)
                }
            }
            Slots::Marker { dynamic, .. } => {
                let curr = read_slot(self)?;
                if dynamic || curr == 0 {
                    self.out.push(marker(curr != 0));
                } else {
                    self.save_value(field, curr, size)?;
                }
                if dynamic && curr != 0 {
                    self.save_value(field, curr, field.field_size.min(i64::MAX as u64) as i64)?;
                }
                Ok(())
            }
            Slots::DynamicDirect => {
                self.out.push(marker(slot != 0));
                if slot != 0 {
                    self.save_value(field, slot, field.field_size.min(i64::MAX as u64) as i64)?;
                }
                Ok(())
            }
        }
    }

    fn save_value(&mut self, field: &'p FieldPlan, pv: Addr, size: i64) -> Result<(), Error> {
        match &field.elem {
            Elem::Struct {
                plan,
                version,
                flat,
            } => {
                if let Some(flat) = flat
                    && self.save_flat(flat, pv)
                {
                    return self.save_subsections(plan, pv);
                }
                self.save_vmsd(plan, pv, *version)
            }
            Elem::Info(info) => self.put(*info, pv, size),
            Elem::MissingVmsd => Err(self.err(ErrorKind::MissingVmsd)),
            Elem::MissingInfo => Err(self.err(ErrorKind::MissingInfo)),
        }
    }

    /// `info->put` for one element.
    fn put(&mut self, info: Info, pv: Addr, size: i64) -> Result<(), Error> {
        let mem = |s: &Self, e| s.err(ErrorKind::Memory(e));
        if let Some(w) = info.scalar_width() {
            let src = self.heap.read(pv, w).map_err(|e| mem(self, e))?;
            if info == Info::Bool {
                self.out.push((src[0] != 0) as u8);
            } else {
                self.out.extend(src.iter().rev());
            }
            return Ok(());
        }
        // size_t: a negative qemu-10.x int is nearly 2^64.
        let size = size as u64;
        if info == Info::Buffer {
            // qemu_put_buffer reads pv before the stream grows.
            let src = self.heap.read(pv, size).map_err(|e| mem(self, e))?;
            self.room(size)?;
            self.out.extend_from_slice(src);
        } else {
            self.room(size)?;
            self.out.resize(self.out.len() + size as usize, 0);
        }
        Ok(())
    }
}

fn marker(valid: bool) -> u8 {
    if valid {
        vmstate_reference::MARKER_VALID
    } else {
        vmstate_reference::MARKER_NULL
    }
}

/// Appends host-order (little-endian) scalars of `width` bytes as
/// big-endian; bools as 0/1. One pass over fixed-size chunks, which the
/// compiler turns into vector byte shuffles.
fn emit(out: &mut Vec<u8>, src: &[u8], width: u64, bool: bool) {
    let start = out.len();
    out.resize(start + src.len(), 0);
    let dst = &mut out[start..];
    match width {
        1 if bool => dst
            .iter_mut()
            .zip(src)
            .for_each(|(d, s)| *d = (*s != 0) as u8),
        1 => dst.copy_from_slice(src),
        2 => swap::<2>(dst, src, |c| u16::from_le_bytes(c).to_be_bytes()),
        4 => swap::<4>(dst, src, |c| u32::from_le_bytes(c).to_be_bytes()),
        _ => swap::<8>(dst, src, |c| u64::from_le_bytes(c).to_be_bytes()),
    }
}

fn swap<const W: usize>(dst: &mut [u8], src: &[u8], f: impl Fn([u8; W]) -> [u8; W]) {
    for (d, s) in dst
        .as_chunks_mut::<W>()
        .0
        .iter_mut()
        .zip(src.as_chunks::<W>().0)
    {
        *d = f(*s);
    }
}
