//! Save: `vmstate_save_vmsd_v` and `vmstate_subsection_save`
//! (migration/vmstate.c). Save only reads the heap.

use crate::Limits;
use crate::dialect::{Dialect, Flag, NullEntry};
use crate::error::{Error, ErrorKind};
use crate::field::{self, element_addr, is_array, is_dynamic_array};
use crate::heap::{Addr, Heap};
use crate::info;
use crate::path::Path;
use crate::qemu_file::QemuFileOut;
use crate::vmsd::{Field, Vmsd};

/// `vmstate_save_state`: saves the object at `opaque` with `vmsd`'s own
/// version; with `annotate`, also returns what each run of bytes is.
pub fn save_state(
    d: Dialect,
    vmsd: &Vmsd,
    heap: &Heap,
    opaque: Addr,
    limits: &Limits,
    annotate: bool,
) -> Result<(Vec<u8>, Vec<Span>), Error> {
    let mut saver = Saver {
        d,
        heap,
        f: QemuFileOut::new(limits.max_output),
        max_elements: limits.max_elements,
        elements: 0,
        spans: annotate.then(Vec::new),
    };
    saver.save_vmsd(vmsd, opaque, vmsd.version_id, &Path::Root(&vmsd.name))?;
    Ok((saver.f.buf, saver.spans.unwrap_or_default()))
}

/// A run of saved bytes and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub path: String,
    pub kind: SpanKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// A ptr marker or nullptr placeholder (0x30/0x31).
    Marker,
    /// One scalar or buffer element.
    Value,
    /// `05 len name version` of a subsection.
    SubsectionHeader,
}

struct Saver<'h> {
    d: Dialect,
    heap: &'h Heap,
    f: QemuFileOut,
    max_elements: u64,
    elements: u64,
    /// What each run of bytes is, when annotating (a path string per
    /// element, so only when asked).
    spans: Option<Vec<Span>>,
}

impl Saver<'_> {
    fn span(&mut self, start: usize, path: &Path, kind: SpanKind) {
        let end = self.f.pos();
        let Some(spans) = &mut self.spans else {
            return;
        };
        let path = path.to_string();
        spans.push(Span {
            start,
            end,
            path,
            kind,
        });
    }

    fn err(&self, kind: ErrorKind, path: &Path) -> Error {
        Error::new(kind, self.f.pos(), path)
    }

    /// `vmstate_save_vmsd_v`
    fn save_vmsd(
        &mut self,
        vmsd: &Vmsd,
        opaque: Addr,
        version_id: i32,
        path: &Path,
    ) -> Result<(), Error> {
        let d = self.d;
        for field in &vmsd.fields {
            let fpath = Path::Field(path, &field.name);
            let exists = field::field_exists(field, self.heap, opaque, version_id)
                .map_err(|k| self.err(k, &fpath))?;
            if !exists {
                if d.has(field.flags, Flag::MustExist) {
                    return Err(self.err(ErrorKind::MustExistOnSave, &fpath));
                }
                continue;
            }
            self.save_field_elements(field, opaque, &fpath)?;
        }
        if vmsd.terminator != d.end() {
            let kind = ErrorKind::TerminatorNotEnd {
                flags: vmsd.terminator,
            };
            return Err(self.err(kind, path));
        }
        self.save_subsections(vmsd, opaque, path)
    }

    /// The body of the field loop of `vmstate_save_vmsd_v`.
    fn save_field_elements(
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
        let first_elem = field::first_elem(d, field, self.heap, slot, n_elems, size)
            .map_err(|k| self.err(k, fpath))?;
        let array = is_array(d, field.flags);
        for i in 0..n_elems.max(0) {
            let epath = fpath.element(array, i);
            self.count_element(&epath)?;
            self.save_element(field, element_addr(first_elem, size, i), size, &epath)?;
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

    /// One iteration of the element loop: the NULL marker logic, then the element.
    fn save_element(
        &mut self,
        field: &Field,
        elem: Addr,
        size: i64,
        path: &Path,
    ) -> Result<(), Error> {
        let d = self.d;
        let aop = d.has(field.flags, Flag::ArrayOfPointer);
        let mut curr_elem = elem;
        if aop {
            curr_elem = self
                .heap
                .read_ptr(elem)
                .map_err(|e| self.err(ErrorKind::Memory(e), path))?;
        }
        if d.facts().null_entry == NullEntry::Nullptr {
            // if (!curr_elem && size): write the nullptr placeholder, do not follow
            if curr_elem == 0 && size != 0 {
                if !aop {
                    return Err(self.err(ErrorKind::NullElementNotArrayOfPointer, path));
                }
                let at = self.f.pos();
                info::put_marker(&mut self.f, false);
                self.span(at, path, SpanKind::Marker);
                return Ok(());
            }
            return self.save_field(field, curr_elem, size, path);
        }
        // ptr markers: use_marker_field = use_dynamic_array || is_null
        let dynamic = is_dynamic_array(d, field.flags);
        let is_null = aop && curr_elem == 0;
        if dynamic || is_null {
            let at = self.f.pos();
            info::put_marker(&mut self.f, curr_elem != 0);
            self.span(at, path, SpanKind::Marker);
        } else {
            self.save_field(field, curr_elem, size, path)?;
        }
        if dynamic && curr_elem != 0 {
            // "do not use vmstate_size() here because we want to save the real VMSD object"
            self.save_field(
                field,
                curr_elem,
                field.size.min(i64::MAX as u64) as i64,
                path,
            )?;
        }
        Ok(())
    }

    /// `vmstate_save_field`
    fn save_field(&mut self, field: &Field, pv: Addr, size: i64, path: &Path) -> Result<(), Error> {
        let d = self.d;
        if d.has(field.flags, Flag::Struct) {
            let vmsd = field
                .vmsd
                .as_deref()
                .ok_or_else(|| self.err(ErrorKind::MissingVmsd, path))?;
            self.save_vmsd(vmsd, pv, vmsd.version_id, path)
        } else if d.has(field.flags, Flag::Vstruct) {
            let vmsd = field
                .vmsd
                .as_deref()
                .ok_or_else(|| self.err(ErrorKind::MissingVmsd, path))?;
            self.save_vmsd(vmsd, pv, field.struct_version_id, path)
        } else {
            let info = field
                .info
                .ok_or_else(|| self.err(ErrorKind::MissingInfo, path))?;
            let at = self.f.pos();
            info::put(info, &mut self.f, self.heap, pv, size)
                .map_err(|k| Error::new(k, at, path))?;
            self.span(at, path, SpanKind::Value);
            Ok(())
        }
    }

    /// `vmstate_subsection_save`
    fn save_subsections(&mut self, vmsd: &Vmsd, opaque: Addr, path: &Path) -> Result<(), Error> {
        for sub in &vmsd.subsections {
            let spath = path.subsection(&vmsd.name, &sub.name);
            // vmstate_section_needed
            let needed = match &sub.needed {
                None => true,
                Some(test) => test
                    .eval(self.heap, opaque, sub.version_id)
                    .map_err(|e| self.err(ErrorKind::Memory(e), &spath))?,
            };
            if !needed {
                continue;
            }
            let name = sub.name.as_bytes();
            let len = name.len() as u8; // uint8_t len = strlen(vmsdsub->name)
            self.f
                .check_room(6 + len as u64)
                .map_err(|k| self.err(k, &spath))?;
            let at = self.f.pos();
            self.f.put_byte(crate::QEMU_VM_SUBSECTION);
            self.f.put_byte(len);
            self.f.put_buffer(&name[..len as usize]);
            self.f.put_be(sub.version_id as u32 as u64, 4);
            self.span(at, &spath, SpanKind::SubsectionHeader);
            self.save_vmsd(sub, opaque, sub.version_id, &spath)?;
        }
        Ok(())
    }
}
