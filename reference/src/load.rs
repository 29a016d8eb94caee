//! Load: `vmstate_load_vmsd`, `vmstate_handle_alloc`, `vmstate_load_next`
//! and `vmstate_subsection_load` (migration/vmstate.c). Load writes the
//! heap and allocates only through it.

use crate::dialect::{Dialect, Dynamic, Flag, NullEntry, VmsAlloc};
use crate::error::{Error, ErrorKind};
use crate::field::{self, element_addr, is_array, is_dynamic_array};
use crate::heap::{Addr, Allocator, Heap, HeapError};
use crate::info::{self, MARKER_NULL, MARKER_VALID};
use crate::path::Path;
use crate::qemu_file::QemuFileIn;
use crate::vmsd::{Field, Vmsd};
use crate::{Limits, QEMU_VM_SUBSECTION};

/// `vmstate_load_state` followed by the `qemu_file_get_error` check every
/// QEMU caller makes. Returns the bytes consumed.
///
/// As in QEMU, a stream that ends exactly where the payload ends fails: the
/// loader peeks one byte past the payload for a subsection and that peek
/// sets the file error. Follow the payload with what comes next on a real
/// stream (0x00 `QEMU_VM_EOF`, 0x7e footer).
pub fn load_state(
    d: Dialect,
    vmsd: &Vmsd,
    heap: &mut Heap,
    opaque: Addr,
    version_id: i32,
    stream: &[u8],
    limits: &Limits,
) -> Result<usize, Error> {
    let mut loader = Loader {
        d,
        heap,
        f: QemuFileIn::new(stream),
        max_elements: limits.max_elements,
        elements: 0,
    };
    loader.load_vmsd(vmsd, opaque, version_id, &Path::Root(&vmsd.name))?;
    if let Some(at) = loader.f.error() {
        return Err(Error::new(ErrorKind::Eof, at, vmsd.name.as_str()));
    }
    Ok(loader.f.pos())
}

struct Loader<'h, 's> {
    d: Dialect,
    heap: &'h mut Heap,
    f: QemuFileIn<'s>,
    max_elements: u64,
    elements: u64,
}

impl Loader<'_, '_> {
    fn err(&self, kind: ErrorKind, path: &Path) -> Error {
        Error::new(kind, self.f.pos(), path)
    }

    fn mem(&self, e: HeapError, path: &Path) -> Error {
        self.err(ErrorKind::Memory(e), path)
    }

    /// `vmstate_load_vmsd`
    fn load_vmsd(
        &mut self,
        vmsd: &Vmsd,
        opaque: Addr,
        version_id: i32,
        path: &Path,
    ) -> Result<(), Error> {
        let d = self.d;
        if version_id > vmsd.version_id {
            let kind = ErrorKind::VersionTooNew {
                incoming: version_id,
                local: vmsd.version_id,
            };
            return Err(self.err(kind, path));
        }
        if version_id < vmsd.minimum_version_id {
            let kind = ErrorKind::VersionTooOld {
                incoming: version_id,
                minimum: vmsd.minimum_version_id,
            };
            return Err(self.err(kind, path));
        }
        for field in &vmsd.fields {
            let fpath = Path::Field(path, &field.name);
            let exists = field::field_exists(field, self.heap, opaque, version_id)
                .map_err(|k| self.err(k, &fpath))?;
            if exists {
                self.load_field_elements(field, opaque, &fpath)?;
            } else if d.has(field.flags, Flag::MustExist) {
                return Err(self.err(ErrorKind::InputValidationFailed, &fpath));
            }
        }
        if vmsd.terminator != d.end() {
            let kind = ErrorKind::TerminatorNotEnd {
                flags: vmsd.terminator,
            };
            return Err(self.err(kind, path));
        }
        self.load_subsections(vmsd, opaque, path)
    }

    /// The body of the field loop of `vmstate_load_vmsd`.
    fn load_field_elements(
        &mut self,
        field: &Field,
        opaque: Addr,
        fpath: &Path,
    ) -> Result<(), Error> {
        let d = self.d;
        let n_elems =
            field::n_elems(d, field, self.heap, opaque).map_err(|k| self.err(k, fpath))?;
        let size = field::size(d, field, self.heap, opaque).map_err(|k| self.err(k, fpath))?;
        let slot = opaque.wrapping_add(field.offset);
        self.handle_alloc(field, slot, size, n_elems, fpath)?;
        let first_elem = field::first_elem(d, field, self.heap, slot, n_elems, size)
            .map_err(|k| self.err(k, fpath))?;
        let array = is_array(d, field.flags);
        for i in 0..n_elems.max(0) {
            let epath = fpath.element(array, i);
            self.count_element(&epath)?;
            let ptr = element_addr(first_elem, size, i);
            let Some(curr_elem) = self.load_next(field, ptr, size, &epath)? else {
                continue; // implies a skip
            };
            self.load_field(field, curr_elem, size, &epath)?;
            if let Some(at) = self.f.error() {
                return Err(Error::new(ErrorKind::Eof, at, epath));
            }
        }
        Ok(())
    }

    fn count_element(&mut self, path: &Path) -> Result<(), Error> {
        self.elements += 1;
        if self.elements > self.max_elements {
            return Err(self.err(ErrorKind::ElementLimit(self.max_elements), path));
        }
        Ok(())
    }

    /// `vmstate_handle_alloc` and the allocating half of alloc-combo's
    /// `vmstate_first`. Never frees the old pointer, never zeroes the new
    /// buffer.
    fn handle_alloc(
        &mut self,
        field: &Field,
        slot: Addr,
        size: i64,
        n_elems: i64,
        path: &Path,
    ) -> Result<(), Error> {
        let d = self.d;
        let facts = d.facts();
        if !(d.has(field.flags, Flag::Pointer) && d.has(field.flags, Flag::Alloc)) {
            return Ok(());
        }
        // alloc-combo: vmstate_first(..., alloc = !(flags & VMS_ARRAY_OF_POINTER))
        if facts.dynamic == Dynamic::ArrayOfPointerAlloc && d.has(field.flags, Flag::ArrayOfPointer)
        {
            return Ok(());
        }
        // C int to gsize/uint64_t: sign-extended.
        let (size, n) = (size as u64, n_elems as u64);
        let new = match facts.vms_alloc {
            VmsAlloc::GMalloc => {
                // gsize size = vmstate_size(); size *= n_elems; if (size) g_malloc(size)
                let total = size.wrapping_mul(n);
                if total == 0 {
                    return Ok(());
                }
                self.heap
                    .malloc(total, Allocator::GMalloc, path)
                    .map_err(|_| self.err(ErrorKind::GMallocAbort { size: total }, path))?
            }
            VmsAlloc::GTryMallocChecked => {
                if size == 0 || n == 0 {
                    return Ok(());
                }
                let total = size
                    .checked_mul(n)
                    .ok_or_else(|| self.err(ErrorKind::AllocFailed { size: u64::MAX }, path))?;
                self.heap
                    .malloc(total, Allocator::GTryMalloc, path)
                    .map_err(|_| self.err(ErrorKind::AllocFailed { size: total }, path))?
            }
        };
        self.heap
            .write_ptr(slot, new)
            .map_err(|e| self.mem(e, path))
    }

    /// Which object element `i` loads into, or None to skip it: the marker
    /// logic of each dialect (`vmstate_load_next` in qemu-11.1,
    /// `vmstate_next` in alloc-combo, the inline NULL check in qemu-10.x).
    fn load_next(
        &mut self,
        field: &Field,
        ptr: Addr,
        size: i64,
        path: &Path,
    ) -> Result<Option<Addr>, Error> {
        let d = self.d;
        let aop = d.has(field.flags, Flag::ArrayOfPointer);
        let facts = d.facts();
        match (facts.null_entry, facts.dynamic) {
            (NullEntry::Nullptr, _) => {
                let mut curr_elem = ptr;
                if aop {
                    curr_elem = self.heap.read_ptr(ptr).map_err(|e| self.mem(e, path))?;
                }
                if curr_elem == 0 && size != 0 {
                    if !aop {
                        return Err(self.err(ErrorKind::NullElementNotArrayOfPointer, path));
                    }
                    // vmstate_info_nullptr.get: only VMS_NULLPTR_MARKER is accepted
                    let at = self.f.pos();
                    let byte = self.f.get_byte();
                    if byte != MARKER_NULL {
                        return Err(Error::new(ErrorKind::NullptrMarkerExpected(byte), at, path));
                    }
                    return Ok(None);
                }
                Ok(Some(curr_elem))
            }
            (NullEntry::PtrMarker, Dynamic::None | Dynamic::AutoAllocFlag) => {
                if !aop {
                    return Ok(Some(ptr));
                }
                let auto_alloc = is_dynamic_array(d, field.flags);
                let slot = self.heap.read_ptr(ptr).map_err(|e| self.mem(e, path))?;
                if auto_alloc && slot != 0 {
                    return Err(self.err(ErrorKind::AutoAllocSlotNotNull { slot }, path));
                }
                let marker_at = self.f.pos();
                if slot == 0 && self.ptr_marker_load(path)? {
                    if !auto_alloc {
                        let kind = ErrorKind::ValidMarkerWithoutAutoAlloc;
                        return Err(Error::new(kind, marker_at, path));
                    }
                    self.alloc_element(field, ptr, path)?;
                }
                let next = self.heap.read_ptr(ptr).map_err(|e| self.mem(e, path))?;
                Ok((next != 0).then_some(next))
            }
            (NullEntry::PtrMarker, Dynamic::ArrayOfPointerAlloc) => {
                if !aop {
                    return Ok(Some(ptr));
                }
                let dynamic = is_dynamic_array(d, field.flags);
                let next = self.heap.read_ptr(ptr).map_err(|e| self.mem(e, path))?;
                if !dynamic && next != 0 {
                    return Ok(Some(next)); // old semantics: load in place, no marker
                }
                let marker_at = self.f.pos();
                if !self.ptr_marker_load(path)? {
                    return Ok(None);
                }
                if !dynamic {
                    let kind = ErrorKind::ValidMarkerWithoutAutoAlloc;
                    return Err(Error::new(kind, marker_at, path));
                }
                // `if (!next || field->flags & VMS_ALLOC)`: allocates even over a
                // non-NULL slot, whose old object is then unreachable.
                let new = self.alloc_element(field, ptr, path)?;
                Ok((new != 0).then_some(new))
            }
        }
    }

    /// `vmstate_ptr_marker_load`: true for 0x31, false for 0x30.
    fn ptr_marker_load(&mut self, path: &Path) -> Result<bool, Error> {
        let at = self.f.pos();
        match self.f.get_byte() {
            MARKER_NULL => Ok(false),
            MARKER_VALID => Ok(true),
            byte => Err(Error::new(ErrorKind::UnexpectedPtrMarker(byte), at, path)),
        }
    }

    /// `*pptr = g_malloc0(field->size)`: the object size, not the stride.
    fn alloc_element(&mut self, field: &Field, pptr: Addr, path: &Path) -> Result<Addr, Error> {
        let new = self
            .heap
            .malloc(field.size, Allocator::GMalloc0, path)
            .map_err(|_| self.err(ErrorKind::GMallocAbort { size: field.size }, path))?;
        self.heap
            .write_ptr(pptr, new)
            .map_err(|e| self.mem(e, path))?;
        Ok(new)
    }

    /// `vmstate_load_field`
    fn load_field(&mut self, field: &Field, pv: Addr, size: i64, path: &Path) -> Result<(), Error> {
        let d = self.d;
        if d.has(field.flags, Flag::Struct) {
            let vmsd = field
                .vmsd
                .as_deref()
                .ok_or_else(|| self.err(ErrorKind::MissingVmsd, path))?;
            self.load_vmsd(vmsd, pv, vmsd.version_id, path)
        } else if d.has(field.flags, Flag::Vstruct) {
            let vmsd = field
                .vmsd
                .as_deref()
                .ok_or_else(|| self.err(ErrorKind::MissingVmsd, path))?;
            self.load_vmsd(vmsd, pv, field.struct_version_id, path)
        } else {
            let info = field
                .info
                .ok_or_else(|| self.err(ErrorKind::MissingInfo, path))?;
            let at = self.f.pos();
            info::get(info, &mut self.f, self.heap, pv, size).map_err(|k| Error::new(k, at, path))
        }
    }

    /// `vmstate_subsection_load`: peeks for 0x05 + name; stops quietly at
    /// anything that is not a subsection of this VMSD.
    fn load_subsections(&mut self, vmsd: &Vmsd, opaque: Addr, path: &Path) -> Result<(), Error> {
        let name = c_str(vmsd.name.as_bytes());
        while self.f.peek_byte(0) == QEMU_VM_SUBSECTION {
            let len = self.f.peek_byte(1) as usize;
            if len < name.len() + 1 {
                return Ok(()); // subsection name has to be "section_name/a"
            }
            let idstr = self.f.peek_buffer(len, 2);
            if idstr.len() != len {
                return Ok(()); // peek fail
            }
            let idstr = c_str(idstr);
            // strncmp(vmsd->name, idstr, strlen(vmsd->name))
            if !idstr.starts_with(name) {
                return Ok(());
            }
            let Some(sub) = vmsd
                .subsections
                .iter()
                .find(|s| c_str(s.name.as_bytes()) == idstr)
            else {
                let kind = ErrorKind::SubsectionNotFound {
                    name: String::from_utf8_lossy(idstr).into_owned(),
                };
                return Err(self.err(kind, path));
            };
            self.f.skip(1); // subsection
            self.f.skip(1); // len
            self.f.skip(len); // idstr
            let version_id = self.f.get_be(4) as u8; // stored in a uint8_t
            let spath = path.subsection(&vmsd.name, &sub.name);
            self.load_vmsd(sub, opaque, version_id as i32, &spath)?;
        }
        Ok(())
    }
}

/// A C string's bytes: up to the first NUL.
fn c_str(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or(bytes)
}
