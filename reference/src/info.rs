//! The `VMStateInfo` get/put callbacks of migration/vmstate-types.c, plus
//! the NULL markers (`vmstate_info_nullptr`, `vmstate_info_ptr_marker`).

use crate::error::ErrorKind;
use crate::heap::{Addr, Heap, HeapError};
use crate::qemu_file::{QemuFileIn, QemuFileOut};
use crate::vmsd::Info;

/// `VMS_NULLPTR_MARKER` (qemu-10.x) / `VMS_MARKER_PTR_NULL` (qemu-11.1).
pub const MARKER_NULL: u8 = 0x30;
/// `VMS_MARKER_PTR_VALID` (qemu-11.1).
pub const MARKER_VALID: u8 = 0x31;

/// Chunk size `get_unused_buffer` reads with (a 1024-byte stack buffer).
const UNUSED_CHUNK: usize = 1024;

/// `info->put(f, pv, size, field, vmdesc)`.
pub fn put(
    info: Info,
    f: &mut QemuFileOut,
    heap: &Heap,
    pv: Addr,
    size: i64,
) -> Result<(), ErrorKind> {
    let mem = ErrorKind::Memory;
    match info.scalar_width() {
        // put_bool: qemu_put_byte(f, *v) with `bool *v`: any non-zero byte is true.
        Some(_) if info == Info::Bool => {
            let v = heap.read(pv, 1).map_err(mem)?[0];
            f.put_byte((v != 0) as u8);
        }
        // put_int8 .. put_uint64 and the equal/le variants: qemu_put_beNN(f, *v)
        Some(w) => f.put_be(heap.read_uint(pv, w).map_err(mem)?, w as usize),
        None => {
            let size = size_t(size);
            match info {
                // put_buffer: qemu_put_buffer(f, pv, size) reads pv first,
                // so a size past the object is a read overrun before it is
                // a long stream.
                Info::Buffer => {
                    let src = heap.read(pv, size).map_err(mem)?;
                    f.check_room(size)?;
                    f.put_buffer(src)
                }
                // put_unused_buffer: writes `size` zero bytes, never reads pv
                _ => {
                    f.check_room(size)?;
                    f.put_buffer(&vec![0; size as usize])
                }
            }
        }
    }
    Ok(())
}

/// `info->get(f, pv, size, field)`. A read past the end is not an error
/// here: the sticky file error is checked by the caller.
pub fn get(
    info: Info,
    f: &mut QemuFileIn,
    heap: &mut Heap,
    pv: Addr,
    size: i64,
) -> Result<(), ErrorKind> {
    let mem = ErrorKind::Memory;
    let Some(w) = info.scalar_width() else {
        let size = size_t(size);
        return match info {
            Info::Buffer => get_buffer(f, heap, pv, size).map_err(mem),
            _ => {
                get_unused_buffer(f, size);
                Ok(())
            }
        };
    };
    // Every scalar getter reads its bytes first (qemu_get_byte / qemu_get_beNN).
    let incoming = f.get_be(w as usize);
    match info {
        // get_bool: *v = qemu_get_byte(f): C's int-to-bool conversion.
        Info::Bool => heap.write(pv, &[(incoming != 0) as u8]).map_err(mem),
        Info::Int32Equal
        | Info::Uint8Equal
        | Info::Uint16Equal
        | Info::Uint32Equal
        | Info::Uint64Equal => {
            // get_*_equal: compare with the current value, never store.
            let local = heap.read_uint(pv, w).map_err(mem)?;
            if local == incoming {
                Ok(())
            } else {
                Err(ErrorKind::NotEqual {
                    info: info.name(),
                    local,
                    incoming,
                })
            }
        }
        Info::Int32Le => {
            // get_int32_le: accept 0 <= loaded <= *cur, then store.
            let local = heap.read_uint(pv, 4).map_err(mem)? as u32 as i32;
            let incoming = incoming as u32 as i32;
            if (0..=local).contains(&incoming) {
                heap.write(pv, &incoming.to_le_bytes()).map_err(mem)
            } else {
                Err(ErrorKind::Int32LeOutOfRange { incoming, local })
            }
        }
        _ => heap
            .write(pv, &incoming.to_le_bytes()[..w as usize])
            .map_err(mem),
    }
}

/// The `size_t size` a buffer info receives: qemu-10.x's negative `int`
/// sign-extends to nearly 2^64, so get_buffer copies whatever the stream
/// still holds and get_unused_buffer drains it, both ending in EOF.
fn size_t(size: i64) -> u64 {
    size as u64
}

/// get_buffer: qemu_get_buffer(f, pv, size) copies only what the stream
/// still holds, so a short stream writes (and a size larger than the buffer
/// overruns) only that many bytes; the tail is left as it was.
fn get_buffer(f: &mut QemuFileIn, heap: &mut Heap, pv: Addr, size: u64) -> Result<(), HeapError> {
    let avail = f.peek_buffer(usize::try_from(size).unwrap_or(usize::MAX), 0);
    heap.write(pv, avail)?;
    f.skip(avail.len());
    Ok(())
}

/// get_unused_buffer: reads and drops `size` bytes, 1024 at a time.
fn get_unused_buffer(f: &mut QemuFileIn, size: u64) {
    let mut left = size;
    let mut scratch = [0u8; UNUSED_CHUNK];
    while left > 0 {
        let block = left.min(UNUSED_CHUNK as u64) as usize;
        if f.get_buffer(&mut scratch[..block]) < block {
            return; // the stream is dry; further chunks would read nothing
        }
        left -= block as u64;
    }
}

/// `vmstate_info_nullptr.put` / `vmstate_info_ptr_marker.put`.
pub fn put_marker(f: &mut QemuFileOut, valid: bool) {
    f.put_byte(if valid { MARKER_VALID } else { MARKER_NULL });
}
