//! Per-field questions both save and load ask (migration/vmstate.c):
//! does the field exist, how many elements, how big is each.

use crate::dialect::{Dialect, Flag};
use crate::error::ErrorKind;
use crate::heap::{Addr, Heap, POINTER_SIZE};
use crate::vmsd::{Field, Indirect};

/// `vmstate_field_exists`: `field_exists` is the sole truth when present,
/// otherwise the field exists from its `version_id` on.
pub fn field_exists(
    field: &Field,
    heap: &Heap,
    opaque: Addr,
    version_id: i32,
) -> Result<bool, ErrorKind> {
    match &field.field_exists {
        Some(test) => test
            .eval(heap, opaque, version_id)
            .map_err(ErrorKind::Memory),
        None => Ok(field.version_id <= version_id),
    }
}

/// `vmstate_n_elems`: the element count, as C's `int`.
pub fn n_elems(d: Dialect, field: &Field, heap: &Heap, opaque: Addr) -> Result<i32, ErrorKind> {
    let f = field.flags;
    if d.has(f, Flag::MustExist) && d.has(f, Flag::NoState) {
        return Ok(0);
    }
    let count_at = opaque.wrapping_add(field.num_indirect.offset);
    let read = |width: u64| heap.read_uint(count_at, width).map_err(ErrorKind::Memory);
    let mut n = if d.has(f, Flag::Array) {
        field.num
    } else if d.has(f, Flag::Varray) {
        // qemu-11.1: vmstate_read_from_offset(opaque, &field->num_indirect)
        read_indirect(heap, opaque, field.num_indirect)? as i32
    } else if d.has(f, Flag::VarrayInt32) || d.has(f, Flag::VarrayUint32) {
        // *(int32_t *) and *(uint32_t *) give the same int
        read(4)? as u32 as i32
    } else if d.has(f, Flag::VarrayUint16) {
        read(2)? as i32
    } else if d.has(f, Flag::VarrayUint8) {
        read(1)? as i32
    } else {
        1
    };
    if d.has(f, Flag::MultiplyElements) {
        n = n.wrapping_mul(field.num);
    }
    Ok(n)
}

/// `vmstate_size`: the element stride and the size handed to `info`.
pub fn size(d: Dialect, field: &Field, heap: &Heap, opaque: Addr) -> Result<i32, ErrorKind> {
    let f = field.flags;
    if d.has(f, Flag::Vbuffer) {
        return match d {
            Dialect::Qemu11_1 => {
                // Harden vmstate_size: unsigned size member, checked multiply.
                let mut v = read_indirect(heap, opaque, field.size_indirect)?;
                if d.has(f, Flag::Multiply) {
                    v = v.checked_mul(field.size).ok_or(ErrorKind::SizeOverflow)?;
                }
                i32::try_from(v).map_err(|_| ErrorKind::SizeOverflow)
            }
            Dialect::Qemu10 | Dialect::AllocCombo => {
                let at = opaque.wrapping_add(field.size_indirect.offset);
                let v = heap.read_uint(at, 4).map_err(ErrorKind::Memory)? as u32 as i32;
                Ok(if d.has(f, Flag::Multiply) {
                    v.wrapping_mul(field.size as i32)
                } else {
                    v
                })
            }
        };
    }
    if d.has(f, Flag::ArrayOfPointer) && d != Dialect::Qemu10 {
        // "For an array of pointer, the each element is always size of a host pointer."
        return Ok(POINTER_SIZE as i32);
    }
    Ok(field.size as i32)
}

/// `vmstate_read_from_offset`: an unsigned member of width 1, 2, 4 or 8.
fn read_indirect(heap: &Heap, opaque: Addr, at: Indirect) -> Result<u64, ErrorKind> {
    if !matches!(at.size, 1 | 2 | 4 | 8) {
        return Err(ErrorKind::BadIndirectWidth(at.size));
    }
    heap.read_uint(opaque.wrapping_add(at.offset), at.size as u64)
        .map_err(ErrorKind::Memory)
}

/// Whether each element of this array of pointers carries a ptr marker and
/// is allocated by the loader: `use_dynamic_array` in `vmstate_save_vmsd_v`.
pub fn is_dynamic_array(d: Dialect, flags: u32) -> bool {
    match d {
        Dialect::Qemu10 => false,
        Dialect::Qemu11_1 => d.has(flags, Flag::ArrayOfPointerAutoAlloc),
        Dialect::AllocCombo => d.has(flags, Flag::ArrayOfPointer) && d.has(flags, Flag::Alloc),
    }
}

/// Whether the field is an array, so element paths carry an index.
pub fn is_array(d: Dialect, flags: u32) -> bool {
    [
        Flag::Array,
        Flag::Varray,
        Flag::VarrayInt32,
        Flag::VarrayUint32,
        Flag::VarrayUint16,
        Flag::VarrayUint8,
        Flag::MultiplyElements,
        Flag::ArrayOfPointer,
    ]
    .into_iter()
    .any(|flag| d.has(flags, flag))
}

/// The path of element `i` of the field at `field_path`.
pub fn element_path(field_path: &str, array: bool, i: i32) -> String {
    if array {
        format!("{field_path}[{i}]")
    } else {
        field_path.to_string()
    }
}

/// The path of a subsection: `p.s` + `s/extra` gives `p.s/extra`.
pub fn subsection_path(path: &str, parent: &str, sub: &str) -> String {
    match sub.strip_prefix(parent) {
        Some(rest) if rest.starts_with('/') => format!("{path}{rest}"),
        _ => format!("{path}/{sub}"),
    }
}

/// `first_elem` of the field loop: the field's own address, or with
/// `VMS_POINTER` the pointer stored there, which must not be NULL when
/// there are elements of non-zero size. The model also refuses a negative
/// size with elements (undefined behaviour in C).
pub fn first_elem(
    d: Dialect,
    field: &Field,
    heap: &Heap,
    slot: Addr,
    n_elems: i32,
    size: i32,
) -> Result<Addr, ErrorKind> {
    let mut first_elem = slot;
    if d.has(field.flags, Flag::Pointer) {
        first_elem = heap.read_ptr(slot).map_err(ErrorKind::Memory)?;
        // assert(first_elem || !n_elems || !size)
        if first_elem == 0 && n_elems > 0 && size != 0 {
            return Err(ErrorKind::NullPointerBase { n_elems });
        }
    }
    if size < 0 && n_elems > 0 {
        return Err(ErrorKind::NegativeSize(size as i64));
    }
    Ok(first_elem)
}

/// `first_elem + size * i` for a non-negative `size`.
pub fn element_addr(base: Addr, size: i32, i: i32) -> Addr {
    base.wrapping_add((size as u64).wrapping_mul(i as u64))
}
