//! vmstate-reference: an executable spec of QEMU's vmstate save and load.
//!
//! Read it beside migration/vmstate.c: each function names the QEMU function
//! it mirrors, and it is written to be obvious rather than fast. Four
//! dialects ([`Dialect`], one row of [`Facts`] each) share one description model ([`Vmsd`]) and one
//! simulated C heap ([`Heap`]):
//!
//! - [`check`] mirrors `vmstate_check` (migration/savevm.c),
//! - [`save_state`] mirrors `vmstate_save_state`,
//! - [`load_state`] mirrors `vmstate_load_state` plus the caller's
//!   `qemu_file_get_error` check.
//!
//! Nothing here panics, loops forever or allocates without bound on any
//! description or stream: QEMU's assertions and undefined behaviour become
//! distinct [`ErrorKind`]s, and [`Limits`] and [`HeapLimits`] cap the work.

mod check;
mod dialect;
mod error;
mod field;
mod heap;
mod info;
mod load;
mod path;
mod qemu_file;
mod save;
mod vmsd;

pub use check::check;
pub use dialect::{
    CheckRules, CountRead, Dialect, Dynamic, Facts, Flag, NullEntry, PointerStride, VbufferSize,
    VmsAlloc,
};
pub use error::{CheckRule, Error, ErrorKind, Outcome};
pub use field::{element_addr, is_array, is_dynamic_array, n_elems, size};
pub use heap::{
    Addr, Allocation, Allocator, Heap, HeapError, HeapLimits, Origin, POINTER_SIZE, UNINIT_BYTE,
};
pub use info::{MARKER_NULL, MARKER_VALID};
pub use path::Path;
pub use save::{Span, SpanKind};
pub use vmsd::{Field, Indirect, Info, Test, Vmsd};

/// `QEMU_VM_SUBSECTION` (migration/savevm.h).
pub const QEMU_VM_SUBSECTION: u8 = 0x05;
/// `QEMU_VM_EOF` (migration/savevm.h).
pub const QEMU_VM_EOF: u8 = 0x00;

/// Work limits of one save or load. They are not QEMU behaviour: they keep
/// hostile descriptions (a count of 2^31 zero-sized elements) finite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Elements visited, across all fields and nesting levels.
    pub max_elements: u64,
    /// Bytes a save may write.
    pub max_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_elements: 1 << 22,
            max_output: 64 << 20,
        }
    }
}

/// `vmstate_save_state`: the bytes of the object at `opaque` described by
/// `vmsd`, saved with the VMSD's own version.
pub fn save_state(d: Dialect, vmsd: &Vmsd, heap: &Heap, opaque: Addr) -> Result<Vec<u8>, Error> {
    save_state_with(d, vmsd, heap, opaque, &Limits::default())
}

/// [`save_state`] with explicit limits.
pub fn save_state_with(
    d: Dialect,
    vmsd: &Vmsd,
    heap: &Heap,
    opaque: Addr,
    limits: &Limits,
) -> Result<Vec<u8>, Error> {
    save::save_state(d, vmsd, heap, opaque, limits, false).map(|(bytes, _)| bytes)
}

/// [`save_state`], also saying what each run of bytes is (offset, field
/// path, marker or value), for annotated hex dumps.
pub fn save_state_annotated(
    d: Dialect,
    vmsd: &Vmsd,
    heap: &Heap,
    opaque: Addr,
) -> Result<(Vec<u8>, Vec<Span>), Error> {
    save::save_state(d, vmsd, heap, opaque, &Limits::default(), true)
}

/// `vmstate_load_state(f, vmsd, opaque, version_id)` on `stream`, then the
/// caller's `qemu_file_get_error` check; returns the bytes consumed.
pub fn load_state(
    d: Dialect,
    vmsd: &Vmsd,
    heap: &mut Heap,
    opaque: Addr,
    version_id: i32,
    stream: &[u8],
) -> Result<usize, Error> {
    load::load_state(
        d,
        vmsd,
        heap,
        opaque,
        version_id,
        stream,
        &Limits::default(),
    )
}

/// [`load_state`] with explicit limits.
pub fn load_state_with(
    d: Dialect,
    vmsd: &Vmsd,
    heap: &mut Heap,
    opaque: Addr,
    version_id: i32,
    stream: &[u8],
    limits: &Limits,
) -> Result<usize, Error> {
    load::load_state(d, vmsd, heap, opaque, version_id, stream, limits)
}
