//! Per-field questions both save and load ask (migration/vmstate.c):
//! does the field exist, how many elements, how big is each.

use crate::dialect::{CountRead, Dialect, Dynamic, Flag, PointerStride, VbufferSize};
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

/// `vmstate_n_elems`: the element count. 10.x's C `int` is sign-extended;
/// the unsigned 64-bit count of later versions saturates at `i64::MAX`
/// (any count that large is past every limit anyway).
pub fn n_elems(d: Dialect, field: &Field, heap: &Heap, opaque: Addr) -> Result<i64, ErrorKind> {
    let f = field.flags;
    match d.facts().count {
        CountRead::CInt => {
            let count_at = opaque.wrapping_add(field.num_indirect.offset);
            let read = |width: u64| heap.read_uint(count_at, width).map_err(ErrorKind::Memory);
            let mut n: i32 = if d.has(f, Flag::Array) {
                field.num
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
            Ok(n as i64)
        }
        CountRead::MemberWidth => {
            // uint64_t n_elems
            let mut n: u64 = if d.has(f, Flag::Array) {
                field.num as i64 as u64
            } else if d.has_varray(f) {
                read_indirect(heap, opaque, field.num_indirect)?
            } else if d.has(f, Flag::MustExist) && d.has(f, Flag::NoState) {
                0
            } else {
                1
            };
            if d.has(f, Flag::MultiplyElements) {
                n = n.wrapping_mul(field.num as i64 as u64);
            }
            Ok(saturate(n))
        }
    }
}

fn saturate(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

/// `vmstate_size`: the element stride and the size handed to `info`. 10.x's
/// `int` is sign-extended; later versions' `uint64_t` saturates at
/// `i64::MAX`.
pub fn size(d: Dialect, field: &Field, heap: &Heap, opaque: Addr) -> Result<i64, ErrorKind> {
    let f = field.flags;
    let facts = d.facts();
    if d.has(f, Flag::Vbuffer) {
        let multiply = d.has(f, Flag::Multiply);
        return match facts.vbuffer_size {
            VbufferSize::Int32Wrapping => {
                let at = opaque.wrapping_add(field.size_indirect.offset);
                let v = heap.read_uint(at, 4).map_err(ErrorKind::Memory)? as u32 as i32;
                Ok(if multiply {
                    v.wrapping_mul(field.size as i32)
                } else {
                    v
                } as i64)
            }
            VbufferSize::UnsignedWrapping => {
                let v = read_indirect(heap, opaque, field.size_indirect)?;
                Ok(saturate(if multiply {
                    v.wrapping_mul(field.size)
                } else {
                    v
                }))
            }
            VbufferSize::UnsignedChecked => {
                // Harden vmstate_size: umul64_overflow fails the load.
                let v = read_indirect(heap, opaque, field.size_indirect)?;
                let v = if multiply {
                    v.checked_mul(field.size).ok_or(ErrorKind::SizeOverflow)?
                } else {
                    v
                };
                Ok(saturate(v))
            }
        };
    }
    if d.has(f, Flag::ArrayOfPointer) {
        match facts.pointer_stride {
            PointerStride::FieldSize => {}
            // "For an array of pointer, the each element is always size of a host pointer."
            PointerStride::HostPointer => return Ok(POINTER_SIZE as i64),
        }
    }
    // `int size = field->size` where sizes are C `int`, else `uint64_t`.
    Ok(match facts.vbuffer_size {
        VbufferSize::Int32Wrapping => field.size as i32 as i64,
        VbufferSize::UnsignedWrapping | VbufferSize::UnsignedChecked => saturate(field.size),
    })
}

/// `vmstate_read_from_offset`: an unsigned member of width 1, 2, 4 or 8;
/// any other width is `g_assert_not_reached()`.
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
    match d.facts().dynamic {
        Dynamic::None => false,
        Dynamic::AutoAllocFlag => d.has(flags, Flag::ArrayOfPointerAutoAlloc),
        Dynamic::ArrayOfPointerAlloc => {
            d.has(flags, Flag::ArrayOfPointer) && d.has(flags, Flag::Alloc)
        }
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

/// `first_elem` of the field loop: the field's own address, or with
/// `VMS_POINTER` the pointer stored there, which must not be NULL when
/// there are elements of non-zero size. A negative size (a C `int` in
/// qemu-10.x) is no error here: C goes on with it, see [`element_addr`].
pub fn first_elem(
    d: Dialect,
    field: &Field,
    heap: &Heap,
    slot: Addr,
    n_elems: i64,
    size: i64,
) -> Result<Addr, ErrorKind> {
    let mut first_elem = slot;
    if d.has(field.flags, Flag::Pointer) {
        first_elem = heap.read_ptr(slot).map_err(ErrorKind::Memory)?;
        // assert(first_elem || !n_elems || !size)
        if first_elem == 0 && n_elems != 0 && size != 0 {
            return Err(ErrorKind::NullPointerBase { n_elems });
        }
    }
    Ok(first_elem)
}

/// `first_elem + size * i`. A negative `size` steps backwards, as the C
/// pointer arithmetic does: element 0 is the field itself, the next ones
/// land before it, and the heap refuses what leaves the object.
pub fn element_addr(base: Addr, size: i64, i: i64) -> Addr {
    base.wrapping_add((size as u64).wrapping_mul(i as u64))
}
