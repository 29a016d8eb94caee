//! Optimized load: dense scalar arrays converted in bulk straight into the
//! heap, markers and allocation in one pass per slot, paths rendered only
//! on error. Reads past the end behave as `QEMUFile` does: zeros, and a
//! sticky error noticed after the element. The stretches done in one pass
//! (dense scalars, flat structs, runs of NULL entries) are in `bulk`.

mod bulk;

use super::plan::{Alloc, Elem, FieldPlan, OverNonNull, Slots, VmsdPlan, c_str};
use super::strict::{STRICT_SLACK, Strict, alloc_ratio};
use super::walk::{self, Path, Seg, stride_at};
use vmstate_reference::{
    Addr, Allocator, Error, ErrorKind, Heap, Info, Limits, MARKER_NULL, MARKER_VALID,
    QEMU_VM_SUBSECTION,
};

pub struct Loader<'p, 'h, 's> {
    heap: &'h mut Heap,
    input: &'s [u8],
    pos: usize,
    eof: bool,
    path: Path<'p>,
    elements: u64,
    limits: Limits,
    /// Strict mode (never leaks); None on the QEMU-faithful path.
    strict: Option<Strict>,
}

pub fn load(
    plan: &VmsdPlan,
    heap: &mut Heap,
    opaque: Addr,
    version_id: i32,
    input: &[u8],
    limits: &Limits,
) -> Result<usize, Error> {
    Loader::new(plan, heap, input, limits, None).run(plan, opaque, version_id)
}

/// [`load`] in strict mode: never leaks. `VMS_ALLOC` reuses an old buffer
/// of the same size or frees it once the load succeeded; an allocated
/// element reuses a non-NULL slot's object when it is large enough, else
/// frees it on success; new memory is zeroed; a failed load restores every
/// byte of pre-existing memory it wrote (pointers included) and frees all
/// it allocated. Allocation is capped at
/// `alloc_ratio(plan) * input.len() + STRICT_SLACK` bytes
/// (`AllocFailed` beyond).
pub fn load_strict(
    plan: &VmsdPlan,
    heap: &mut Heap,
    opaque: Addr,
    version_id: i32,
    input: &[u8],
    limits: &Limits,
) -> Result<usize, Error> {
    let watermark = heap
        .allocations()
        .last()
        .map_or(0, |a| a.end().max(a.base + 1));
    let budget = alloc_ratio(plan)
        .saturating_mul(input.len() as u64)
        .saturating_add(STRICT_SLACK);
    let mut l = Loader::new(
        plan,
        heap,
        input,
        limits,
        Some(Strict {
            undo: Vec::new(),
            replaced: Vec::new(),
            made: Vec::new(),
            watermark,
            allocated: 0,
            budget,
        }),
    );
    let result = l.run(plan, opaque, version_id);
    let Some(strict) = l.strict.take() else {
        return result;
    };
    let settled = match &result {
        Ok(_) => strict.commit(l.heap),
        Err(_) => strict.rollback(l.heap),
    };
    // A free that fails here is a bug in the bookkeeping: report it in place
    // of the load's own result (the heap has recorded it too).
    settled.map_err(|e| Error::new(ErrorKind::Memory(e), l.pos, plan.name.as_str()))?;
    result
}

impl<'p, 'h, 's> Loader<'p, 'h, 's> {
    fn new(
        plan: &'p VmsdPlan,
        heap: &'h mut Heap,
        input: &'s [u8],
        limits: &Limits,
        strict: Option<Strict>,
    ) -> Self {
        Loader {
            heap,
            input,
            pos: 0,
            eof: false,
            path: Path::new(&plan.name),
            elements: 0,
            limits: *limits,
            strict,
        }
    }

    /// `vmstate_load_state` plus the caller's `qemu_file_get_error` check.
    fn run(&mut self, plan: &'p VmsdPlan, opaque: Addr, version_id: i32) -> Result<usize, Error> {
        self.load_vmsd(plan, opaque, version_id)?;
        if self.eof {
            return Err(Error::new(
                ErrorKind::Eof,
                self.input.len(),
                plan.name.as_str(),
            ));
        }
        Ok(self.pos)
    }
}

impl<'p> Loader<'p, '_, '_> {
    /// Strict mode: remembers `len` bytes at `addr` before they are
    /// written, if that memory existed before the load.
    fn before_write(&mut self, addr: Addr, len: u64) {
        let Some(s) = &mut self.strict else {
            return;
        };
        if addr < s.watermark
            && let Ok(old) = self.heap.read(addr, len)
        {
            s.undo.push((addr, old.to_vec()));
        }
    }

    /// Strict mode: charges `size` bytes to the budget; an error past it.
    fn charge(&mut self, size: u64) -> Result<(), Error> {
        let Some(s) = &mut self.strict else {
            return Ok(());
        };
        match s.allocated.checked_add(size) {
            Some(total) if total <= s.budget => {
                s.allocated = total;
                Ok(())
            }
            _ => Err(self.err(ErrorKind::AllocFailed { size })),
        }
    }

    /// Strict mode: whether `old` is the start of a live allocation of at
    /// least `min` bytes (exactly `min` if `exact`), which can be reused.
    fn reusable(&self, old: Addr, min: u64, exact: bool) -> bool {
        self.strict.is_some()
            && old != 0
            && self.heap.allocation_at(old).is_some_and(|a| {
                a.base == old && !a.freed && (a.size() == min || (!exact && a.size() >= min))
            })
    }

    /// Strict mode: `new` was allocated for the pointer at `slot`.
    fn made(&mut self, slot: Addr, new: Addr) {
        if let Some(s) = &mut self.strict
            && new != 0
        {
            let old = self.heap.read_ptr(slot).unwrap_or(0);
            s.replaced.push((slot, old));
            s.made.push(new);
        }
    }

    /// The allocator of a load-made buffer: strict mode always zeroes.
    fn allocator(&self, faithful: Allocator) -> Allocator {
        if self.strict.is_some() {
            Allocator::GMalloc0
        } else {
            faithful
        }
    }

    fn err(&self, kind: ErrorKind) -> Error {
        self.path.error(kind, self.pos)
    }

    fn err_at(&self, kind: ErrorKind, at: usize) -> Error {
        self.path.error(kind, at)
    }

    fn byte(&mut self) -> u8 {
        match self.input.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => {
                self.eof = true;
                0
            }
        }
    }

    /// Up to 8 bytes big-endian; missing bytes are zeros.
    fn be(&mut self, w: usize) -> u64 {
        let avail = (self.input.len() - self.pos).min(w);
        let mut v = 0u64;
        for &b in &self.input[self.pos..self.pos + avail] {
            v = (v << 8) | b as u64;
        }
        self.pos += avail;
        if avail < w {
            self.eof = true;
            v = v.checked_shl(8 * (w - avail) as u32).unwrap_or(0);
        }
        v
    }

    fn load_vmsd(
        &mut self,
        plan: &'p VmsdPlan,
        opaque: Addr,
        version_id: i32,
    ) -> Result<(), Error> {
        if version_id > plan.version_id {
            return Err(self.err(ErrorKind::VersionTooNew {
                incoming: version_id,
                local: plan.version_id,
            }));
        }
        if version_id < plan.minimum_version_id {
            let kind = ErrorKind::VersionTooOld {
                incoming: version_id,
                minimum: plan.minimum_version_id,
            };
            return Err(self.err(kind));
        }
        for field in &plan.fields {
            self.path.push(Seg::Field(&field.name));
            let exists =
                walk::exists(field, self.heap, opaque, version_id).map_err(|k| self.err(k))?;
            if exists {
                self.load_field(field, opaque)?;
            } else if field.must_exist {
                return Err(self.err(ErrorKind::InputValidationFailed));
            }
            self.path.pop();
        }
        if let Some(flags) = plan.bad_terminator {
            return Err(self.err(ErrorKind::TerminatorNotEnd { flags }));
        }
        self.load_subsections(plan, opaque)
    }

    fn load_field(&mut self, field: &'p FieldPlan, opaque: Addr) -> Result<(), Error> {
        let n = walk::n_elems(field, self.heap, opaque).map_err(|k| self.err(k))?;
        let size = walk::size(field, self.heap, opaque).map_err(|k| self.err(k))?;
        let slot = opaque.wrapping_add(field.offset);
        self.handle_alloc(field, slot, size, n)?;
        let mut first = slot;
        if field.pointer {
            first = self
                .heap
                .read_ptr(slot)
                .map_err(|e| self.err(ErrorKind::Memory(e)))?;
            if first == 0 && n != 0 && size != 0 {
                return Err(self.err(ErrorKind::NullPointerBase { n_elems: n }));
            }
        }
        if n <= 0 {
            return Ok(());
        }
        if self.elements + n as u64 <= self.limits.max_elements
            && let (Slots::Direct { .. } | Slots::DynamicDirect, Elem::Info(info)) =
                (field.slots, &field.elem)
            && let Some(done) = self.bulk_scalars(field, *info, first, n, size)
        {
            self.elements += n as u64;
            return done;
        }
        let mut i = 0;
        while i < n {
            if let skipped @ 1.. = self.null_run(field, first, size, i, n) {
                i += skipped;
                continue;
            }
            if field.array {
                self.path.push(Seg::Index(i));
            }
            self.elements += 1;
            if self.elements > self.limits.max_elements {
                return Err(self.err(ErrorKind::ElementLimit(self.limits.max_elements)));
            }
            if let Some(curr) = self.next_elem(field, stride_at(first, size, i), size)? {
                self.load_value(field, curr, size)?;
                if self.eof {
                    return Err(self.err_at(ErrorKind::Eof, self.input.len()));
                }
            }
            if field.array {
                self.path.pop();
            }
            i += 1;
        }
        Ok(())
    }

    /// `vmstate_handle_alloc` as each dialect has it.
    fn handle_alloc(
        &mut self,
        field: &FieldPlan,
        slot: Addr,
        size: i64,
        n: i64,
    ) -> Result<(), Error> {
        let (size, n) = (size as u64, n as u64);
        let new = match field.alloc {
            Alloc::None => return Ok(()),
            Alloc::GMalloc => {
                let total = size.wrapping_mul(n);
                if total == 0 || self.keep_old(slot, total) {
                    return Ok(());
                }
                self.charge(total)?;
                let path = self.path.render();
                self.heap
                    .malloc(total, self.allocator(Allocator::GMalloc), &path)
                    .map_err(|_| self.err(ErrorKind::GMallocAbort { size: total }))?
            }
            Alloc::GTryMalloc => {
                if size == 0 || n == 0 {
                    return Ok(());
                }
                let total = size
                    .checked_mul(n)
                    .ok_or_else(|| self.err(ErrorKind::AllocFailed { size: u64::MAX }))?;
                if self.keep_old(slot, total) {
                    return Ok(());
                }
                self.charge(total)?;
                let path = self.path.render();
                self.heap
                    .malloc(total, self.allocator(Allocator::GTryMalloc), &path)
                    .map_err(|_| self.err(ErrorKind::AllocFailed { size: total }))?
            }
        };
        self.made(slot, new);
        self.before_write(slot, 8);
        self.heap
            .write_ptr(slot, new)
            .map_err(|e| self.err(ErrorKind::Memory(e)))
    }

    /// Strict mode: `VMS_ALLOC` reuses the old buffer when it has exactly
    /// the size wanted (zeroed, as strict allocations are).
    fn keep_old(&mut self, slot: Addr, total: u64) -> bool {
        if self.strict.is_none() {
            return false;
        }
        let old = self.heap.read_ptr(slot).unwrap_or(0);
        if !self.reusable(old, total, true) {
            return false;
        }
        self.before_write(old, total);
        match self.heap.slice_mut(old, total) {
            Ok(b) => {
                b.fill(0);
                true
            }
            Err(_) => false,
        }
    }

    /// The object element `ptr` loads into, or None to skip it.
    fn next_elem(
        &mut self,
        field: &FieldPlan,
        ptr: Addr,
        size: i64,
    ) -> Result<Option<Addr>, Error> {
        let read_ptr = |s: &Self, at| s.heap.read_ptr(at).map_err(|e| s.err(ErrorKind::Memory(e)));
        match field.slots {
            Slots::Direct { null_check } => {
                if null_check && ptr == 0 && size != 0 {
                    return Err(self.err(ErrorKind::NullElementNotArrayOfPointer));
                }
                Ok(Some(ptr))
            }
            Slots::DynamicDirect => Ok(Some(ptr)),
            Slots::NullptrPlaceholder => {
                let curr = read_ptr(self, ptr)?;
                if curr == 0 && size != 0 {
                    let at = self.pos;
                    let b = self.byte();
                    if b != MARKER_NULL {
                        return Err(self.err_at(ErrorKind::NullptrMarkerExpected(b), at));
                    }
                    return Ok(None);
                }
                Ok(Some(curr))
            }
            Slots::Marker {
                dynamic,
                over_non_null: OverNonNull::Assert,
            } => {
                let slot = read_ptr(self, ptr)?;
                if dynamic && slot != 0 {
                    return Err(self.err(ErrorKind::AutoAllocSlotNotNull { slot }));
                }
                if slot != 0 {
                    return Ok(Some(slot));
                }
                if !self.marker(dynamic)? {
                    return Ok(None);
                }
                let new = self.alloc_element(field, ptr)?;
                Ok((new != 0).then_some(new))
            }
            Slots::Marker {
                dynamic,
                over_non_null: OverNonNull::Allocate,
            } => {
                let slot = read_ptr(self, ptr)?;
                if !dynamic && slot != 0 {
                    return Ok(Some(slot));
                }
                if !self.marker(dynamic)? {
                    return Ok(None);
                }
                if self.reusable(slot, field.field_size, false) {
                    // Strict: load into the old object instead of leaking it.
                    self.before_write(slot, field.field_size);
                    if let Ok(b) = self.heap.slice_mut(slot, field.field_size) {
                        b.fill(0);
                    }
                    return Ok(Some(slot));
                }
                let new = self.alloc_element(field, ptr)?;
                Ok((new != 0).then_some(new))
            }
        }
    }

    /// A ptr marker: true for 0x31 (allocate and load the element), false
    /// for 0x30; 0x31 without automatic allocation is QEMU's assertion,
    /// anything else "Unexpected ptr marker". Errors name the marker's offset.
    fn marker(&mut self, dynamic: bool) -> Result<bool, Error> {
        let at = self.pos;
        match self.byte() {
            MARKER_NULL => Ok(false),
            MARKER_VALID if dynamic => Ok(true),
            MARKER_VALID => Err(self.err_at(ErrorKind::ValidMarkerWithoutAutoAlloc, at)),
            b => Err(self.err_at(ErrorKind::UnexpectedPtrMarker(b), at)),
        }
    }

    /// A zeroed object of `field->size`, stored in the slot.
    fn alloc_element(&mut self, field: &FieldPlan, pptr: Addr) -> Result<Addr, Error> {
        self.charge(field.field_size)?;
        let path = self.path.render();
        let new = self
            .heap
            .malloc(field.field_size, Allocator::GMalloc0, &path)
            .map_err(|_| {
                self.err(ErrorKind::GMallocAbort {
                    size: field.field_size,
                })
            })?;
        self.made(pptr, new);
        self.before_write(pptr, 8);
        self.heap
            .write_ptr(pptr, new)
            .map_err(|e| self.err(ErrorKind::Memory(e)))?;
        Ok(new)
    }

    fn load_value(&mut self, field: &'p FieldPlan, pv: Addr, size: i64) -> Result<(), Error> {
        match &field.elem {
            Elem::Struct {
                plan,
                version,
                flat,
            } => {
                if let Some(flat) = flat
                    && self.load_flat(flat, pv)
                {
                    // QEMU still peeks for subsections after the fields.
                    return self.load_subsections(plan, pv);
                }
                self.load_vmsd(plan, pv, *version)
            }
            Elem::Info(info) => self.get(*info, pv, size),
            Elem::MissingVmsd => Err(self.err(ErrorKind::MissingVmsd)),
            Elem::MissingInfo => Err(self.err(ErrorKind::MissingInfo)),
        }
    }

    /// `info->get` for one element.
    fn get(&mut self, info: Info, pv: Addr, size: i64) -> Result<(), Error> {
        let at = self.pos;
        let mem = |s: &Self, e| s.err_at(ErrorKind::Memory(e), at);
        let Some(w) = info.scalar_width() else {
            // size_t: a negative qemu-10.x int asks for nearly 2^64 bytes.
            let size = size as u64;
            let take = usize::try_from(size)
                .unwrap_or(usize::MAX)
                .min(self.input.len() - self.pos);
            if info == Info::Buffer {
                // qemu_get_buffer writes only the bytes the stream holds.
                self.before_write(pv, take as u64);
                let input = &self.input[self.pos..self.pos + take];
                let path = &self.path;
                let dst = self
                    .heap
                    .slice_mut(pv, take as u64)
                    .map_err(|e| path.error(ErrorKind::Memory(e), at))?;
                dst.copy_from_slice(input);
            }
            self.pos += take;
            if (take as u64) < size {
                self.eof = true;
            }
            return Ok(());
        };
        let v = self.be(w as usize);
        self.before_write(pv, w);
        let local = || -> Result<u64, vmstate_reference::HeapError> { self.heap.read_uint(pv, w) };
        match info {
            Info::Bool => self
                .heap
                .write(pv, &[(v != 0) as u8])
                .map_err(|e| mem(self, e)),
            Info::Int32Equal
            | Info::Uint8Equal
            | Info::Uint16Equal
            | Info::Uint32Equal
            | Info::Uint64Equal => {
                let local = local().map_err(|e| mem(self, e))?;
                if local == v {
                    Ok(())
                } else {
                    Err(self.err_at(
                        ErrorKind::NotEqual {
                            info: info.name(),
                            local,
                            incoming: v,
                        },
                        at,
                    ))
                }
            }
            Info::Int32Le => {
                let local = local().map_err(|e| mem(self, e))? as u32 as i32;
                let incoming = v as u32 as i32;
                if incoming >= 0 && incoming <= local {
                    self.heap
                        .write(pv, &incoming.to_le_bytes())
                        .map_err(|e| mem(self, e))
                } else {
                    Err(self.err_at(ErrorKind::Int32LeOutOfRange { incoming, local }, at))
                }
            }
            _ => self
                .heap
                .write(pv, &v.to_le_bytes()[..w as usize])
                .map_err(|e| mem(self, e)),
        }
    }

    /// `vmstate_subsection_load`: subsections are found by peeking.
    fn load_subsections(&mut self, plan: &'p VmsdPlan, opaque: Addr) -> Result<(), Error> {
        loop {
            let rest = &self.input[self.pos..];
            let Some(&first) = rest.first() else {
                self.eof = true; // the peek itself sets the file error
                return Ok(());
            };
            if first != QEMU_VM_SUBSECTION {
                return Ok(());
            }
            let Some(&len) = rest.get(1) else {
                self.eof = true;
                return Ok(());
            };
            let len = len as usize;
            if len < plan.c_name.len() + 1 {
                return Ok(());
            }
            let Some(idstr) = rest.get(2..2 + len) else {
                self.eof = true;
                return Ok(());
            };
            let idstr = c_str(idstr);
            if !idstr.starts_with(&plan.c_name) {
                return Ok(());
            }
            let Some(sub) = plan.subsections.iter().find(|s| s.plan.c_name == idstr) else {
                let name = String::from_utf8_lossy(idstr).into_owned();
                return Err(self.err(ErrorKind::SubsectionNotFound { name }));
            };
            self.pos += 2 + len;
            let version = self.be(4) as u8 as i32;
            self.path.push(Seg::Suffix(&sub.path_suffix));
            self.load_vmsd(&sub.plan, opaque, version)?;
            self.path.pop();
        }
    }
}
