//! A simulated C heap with an allocation ledger.
//!
//! Objects are byte images. Pointers are stored in memory as 8-byte
//! host-order (little-endian, as on x86_64 and aarch64) addresses; 0 is NULL.
//! An address may point anywhere inside an allocation (interior pointers).
//! Every allocation records its size, who made it and whether it was freed,
//! so that a leak oracle can reason about what a load did.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// A simulated host address. 0 is NULL.
pub type Addr = u64;

/// `sizeof(void *)` on the simulated 64-bit host.
pub const POINTER_SIZE: u64 = 8;

/// First address handed out; everything below it is "near NULL".
const HEAP_BASE: Addr = 0x1_0000;
/// Gap left between allocations so that running off the end of one object
/// never lands inside the next.
const GUARD: u64 = 64;
/// Byte pattern for memory that C would leave uninitialised (`g_malloc`).
/// Poison rather than zeros, so that code relying on zeroed memory shows up.
pub const UNINIT_BYTE: u8 = 0xa5;

/// Who created an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Prepared by the caller before save or load (the device's own memory).
    Prepared,
    /// Allocated by a load, for the field at `path`, by the named C allocator.
    Load { path: String, allocator: Allocator },
}

/// The glib allocator QEMU calls; they differ in zeroing and in failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Allocator {
    /// `g_malloc`: uninitialised memory, aborts on failure.
    GMalloc,
    /// `g_malloc0`: zeroed memory, aborts on failure.
    GMalloc0,
    /// `g_try_malloc`: uninitialised memory, returns NULL on failure.
    GTryMalloc,
}

impl Allocator {
    pub fn c_name(self) -> &'static str {
        match self {
            Allocator::GMalloc => "g_malloc",
            Allocator::GMalloc0 => "g_malloc0",
            Allocator::GTryMalloc => "g_try_malloc",
        }
    }
}

/// One entry of the allocation ledger, as the heap lends it out: the
/// bytes are a view into the heap's arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation<'h> {
    pub base: Addr,
    pub bytes: &'h [u8],
    pub origin: &'h Origin,
    pub freed: bool,
}

impl Allocation<'_> {
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    pub fn end(&self) -> Addr {
        self.base + self.size()
    }
}

/// A ledger entry: where its bytes sit in the arena.
#[derive(Debug, Clone)]
struct Entry {
    base: Addr,
    at: usize,
    size: usize,
    origin: Origin,
    freed: bool,
}

/// A memory access the C code would have turned into undefined behaviour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeapError {
    #[error("NULL pointer dereference at address {addr:#x}")]
    NullDeref { addr: Addr },
    #[error("access of {len} bytes at {addr:#x} is outside every allocation")]
    OutOfBounds { addr: Addr, len: u64 },
    #[error("access at {addr:#x} touches freed memory")]
    UseAfterFree { addr: Addr },
    #[error("free of {addr:#x}, which is not the start of a live allocation")]
    BadFree { addr: Addr },
    #[error("allocation of {size} bytes exceeds the heap limit")]
    OutOfMemory { size: u64 },
}

/// Resource limits of one heap. They keep any description or stream from
/// making the model allocate without bound; they are not QEMU behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapLimits {
    /// Total bytes that may be live at once.
    pub max_live_bytes: u64,
}

impl Default for HeapLimits {
    fn default() -> Self {
        HeapLimits {
            max_live_bytes: 256 << 20,
        }
    }
}

/// The simulated C heap.
///
/// Every object's bytes live in one arena, in creation order; the ledger is
/// a vector sorted by address (allocations are handed out upwards, only
/// [`Heap::place`] inserts lower). So a clone is two copies, not one per
/// object.
///
/// Equality compares the ledger (each allocation's bytes, origin and
/// state), the next address, the limits and the bad frees; not
/// [`Heap::peak_live_bytes`], which is a measurement.
pub struct Heap {
    entries: Vec<Entry>,
    arena: Vec<u8>,
    next_base: Addr,
    live_bytes: u64,
    /// The most bytes live at once since creation or [`Heap::reset_peak`].
    peak_live_bytes: u64,
    /// Every address handed to [`Heap::free`] that was not the base of a
    /// live allocation (a double or wild free), oldest first.
    bad_frees: Vec<Addr>,
    pub limits: HeapLimits,
    /// The entry the last lookup found: a load walks one table or object
    /// at a time, so most lookups hit it without a search. Only a hint;
    /// [`Heap::entry_index`] checks it.
    last_hit: Hint,
}

/// An entry index remembered across lookups through `&Heap` (atomic only
/// so that a heap stays `Sync`; a relaxed load is a plain load).
#[derive(Default)]
struct Hint(AtomicUsize);

/// A clone keeps room to grow: a load's allocations append to the arena
/// and the ledger, and growing an exact-size copy would copy it again.
impl Clone for Heap {
    fn clone(&self) -> Heap {
        fn roomy<T: Clone>(v: &[T]) -> Vec<T> {
            let mut out = Vec::with_capacity(v.len() + v.len() / 2 + 64);
            out.extend_from_slice(v);
            out
        }
        Heap {
            entries: roomy(&self.entries),
            arena: roomy(&self.arena),
            next_base: self.next_base,
            live_bytes: self.live_bytes,
            peak_live_bytes: self.peak_live_bytes,
            bad_frees: self.bad_frees.clone(),
            limits: self.limits,
            last_hit: Hint::default(),
        }
    }
}

impl PartialEq for Heap {
    fn eq(&self, other: &Heap) -> bool {
        self.allocations().eq(other.allocations())
            && self.next_base == other.next_base
            && self.live_bytes == other.live_bytes
            && self.bad_frees == other.bad_frees
            && self.limits == other.limits
    }
}

impl Eq for Heap {}

impl Default for Heap {
    fn default() -> Self {
        Heap::new(HeapLimits::default())
    }
}

impl fmt::Debug for Heap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.allocations()).finish()
    }
}

impl Heap {
    pub fn new(limits: HeapLimits) -> Heap {
        Heap {
            entries: Vec::new(),
            arena: Vec::new(),
            next_base: HEAP_BASE,
            live_bytes: 0,
            peak_live_bytes: 0,
            bad_frees: Vec::new(),
            limits,
            last_hit: Hint::default(),
        }
    }

    /// Places caller-prepared bytes on the heap and returns their address.
    /// Like `g_memdup`; an empty object still gets a distinct address.
    pub fn alloc_prepared(&mut self, bytes: impl AsRef<[u8]>) -> Result<Addr, HeapError> {
        let bytes = bytes.as_ref();
        self.insert(bytes.len() as u64, Origin::Prepared, |b| {
            b.copy_from_slice(bytes)
        })
    }

    /// `g_malloc`/`g_malloc0`/`g_try_malloc`: glib returns NULL for size 0.
    pub fn malloc(
        &mut self,
        size: u64,
        allocator: Allocator,
        path: impl Into<String>,
    ) -> Result<Addr, HeapError> {
        if size == 0 {
            return Ok(0);
        }
        let fill = match allocator {
            Allocator::GMalloc0 => 0,
            Allocator::GMalloc | Allocator::GTryMalloc => UNINIT_BYTE,
        };
        let origin = Origin::Load {
            path: path.into(),
            allocator,
        };
        self.insert(size, origin, |b| b.fill(fill))
    }

    /// `g_free`: NULL is a no-op; anything but a live allocation's base is
    /// an error, and is recorded in [`Heap::bad_frees`] (C would corrupt the
    /// heap; a caller that ignores the error cannot hide it from an oracle).
    pub fn free(&mut self, addr: Addr) -> Result<(), HeapError> {
        if addr == 0 {
            return Ok(());
        }
        let found = self
            .entry_index(addr)
            .filter(|&i| self.entries[i].base == addr);
        match found.map(|i| &mut self.entries[i]) {
            Some(e) if !e.freed => {
                e.freed = true;
                self.live_bytes -= e.size as u64;
                Ok(())
            }
            _ => {
                self.bad_frees.push(addr);
                Err(HeapError::BadFree { addr })
            }
        }
    }

    /// Every bad free so far (see [`Heap::free`]), oldest first.
    pub fn bad_frees(&self) -> &[Addr] {
        &self.bad_frees
    }

    fn check_room(&self, size: u64) -> Result<(), HeapError> {
        if self.live_bytes.saturating_add(size) > self.limits.max_live_bytes {
            return Err(HeapError::OutOfMemory { size });
        }
        Ok(())
    }

    /// Appends `size` bytes to the arena, set by `init`, as a new entry at
    /// `base`, and keeps the ledger sorted.
    fn push(
        &mut self,
        base: Addr,
        size: u64,
        origin: Origin,
        init: impl FnOnce(&mut [u8]),
    ) -> Result<(), HeapError> {
        self.check_room(size)?;
        let size = usize::try_from(size).map_err(|_| HeapError::OutOfMemory { size })?;
        let at = self.arena.len();
        self.arena.resize(at + size, 0);
        init(&mut self.arena[at..]);
        self.live_bytes += size as u64;
        self.peak_live_bytes = self.peak_live_bytes.max(self.live_bytes);
        let entry = Entry {
            base,
            at,
            size,
            origin,
            freed: false,
        };
        match self.entries.last() {
            Some(last) if last.base > base => {
                let i = self.entries.partition_point(|e| e.base < base);
                self.entries.insert(i, entry);
            }
            _ => self.entries.push(entry),
        }
        Ok(())
    }

    fn insert(
        &mut self,
        size: u64,
        origin: Origin,
        init: impl FnOnce(&mut [u8]),
    ) -> Result<Addr, HeapError> {
        let base = self.next_base;
        self.push(base, size, origin, init)?;
        self.next_base = (base + size.max(1) + GUARD).next_multiple_of(16);
        Ok(base)
    }

    /// Places `bytes` at a given `base` (an address taken from a real
    /// process), if the range overlaps no allocation and stays clear of
    /// NULL. Later allocations are handed out above it.
    pub fn place(
        &mut self,
        base: Addr,
        bytes: impl AsRef<[u8]>,
        origin: Origin,
    ) -> Result<(), HeapError> {
        let bytes = bytes.as_ref();
        let size = bytes.len() as u64;
        let end = base
            .checked_add(size.max(1))
            .ok_or(HeapError::OutOfBounds {
                addr: base,
                len: size,
            })?;
        if base < HEAP_BASE {
            return Err(HeapError::NullDeref { addr: base });
        }
        let below = self.entries.partition_point(|e| e.base < end);
        let clash = below > 0 && {
            let e = &self.entries[below - 1];
            e.base.saturating_add((e.size as u64).max(1)) > base
        };
        if clash {
            return Err(HeapError::OutOfBounds {
                addr: base,
                len: size,
            });
        }
        self.push(base, size, origin, |b| b.copy_from_slice(bytes))?;
        self.next_base = self.next_base.max((end + GUARD).next_multiple_of(16));
        Ok(())
    }

    /// The index of the entry whose range holds `addr` (its base for an
    /// empty one), if any.
    fn entry_index(&self, addr: Addr) -> Option<usize> {
        let holds = |e: &Entry| addr.wrapping_sub(e.base) < e.size as u64 || addr == e.base;
        let hint = self.last_hit.0.load(Relaxed);
        if self.entries.get(hint).is_some_and(holds) {
            return Some(hint);
        }
        // The newest allocation, which a load fills right after making it
        // (without moving the hint off the table it came from).
        let top = self.entries.len().checked_sub(1)?;
        if self.entries[top].base <= addr {
            return holds(&self.entries[top]).then_some(top);
        }
        let i = self
            .entries
            .partition_point(|e| e.base <= addr)
            .checked_sub(1)?;
        holds(&self.entries[i]).then(|| {
            self.last_hit.0.store(i, Relaxed);
            i
        })
    }

    fn view<'h>(&'h self, e: &'h Entry) -> Allocation<'h> {
        Allocation {
            base: e.base,
            bytes: &self.arena[e.at..e.at + e.size],
            origin: &e.origin,
            freed: e.freed,
        }
    }

    /// The allocation containing `addr` (freed or not), if any.
    pub fn allocation_at(&self, addr: Addr) -> Option<Allocation<'_>> {
        self.entry_index(addr).map(|i| self.view(&self.entries[i]))
    }

    /// Every allocation, in address order (which is also creation order).
    pub fn allocations(&self) -> impl Iterator<Item = Allocation<'_>> {
        self.entries.iter().map(|e| self.view(e))
    }

    /// The arena range of `len` bytes at `addr`, inside one live allocation.
    fn locate(&self, addr: Addr, len: u64) -> Result<std::ops::Range<usize>, HeapError> {
        if addr < HEAP_BASE {
            return Err(HeapError::NullDeref { addr });
        }
        let e = &self.entries[self
            .entry_index(addr)
            .ok_or(HeapError::OutOfBounds { addr, len })?];
        if e.freed {
            return Err(HeapError::UseAfterFree { addr });
        }
        let start = addr - e.base;
        if start.checked_add(len).is_none_or(|end| end > e.size as u64) {
            return Err(HeapError::OutOfBounds { addr, len });
        }
        let at = e.at + start as usize;
        Ok(at..at + len as usize)
    }

    /// Reads `len` bytes at `addr`; the range must lie inside one live allocation.
    pub fn read(&self, addr: Addr, len: u64) -> Result<&[u8], HeapError> {
        if len == 0 {
            return Ok(&[]);
        }
        Ok(&self.arena[self.locate(addr, len)?])
    }

    /// Writes `data` at `addr`; the range must lie inside one live allocation.
    pub fn write(&mut self, addr: Addr, data: &[u8]) -> Result<(), HeapError> {
        self.slice_mut(addr, data.len() as u64)?
            .copy_from_slice(data);
        Ok(())
    }

    /// Mutable access to `len` bytes at `addr` inside one live allocation.
    pub fn slice_mut(&mut self, addr: Addr, len: u64) -> Result<&mut [u8], HeapError> {
        if len == 0 {
            return Ok(&mut []);
        }
        let range = self.locate(addr, len)?;
        Ok(&mut self.arena[range])
    }

    /// Reads an unsigned host-order integer of `width` bytes (1, 2, 4 or 8).
    pub fn read_uint(&self, addr: Addr, width: u64) -> Result<u64, HeapError> {
        let bytes = self.read(addr, width)?;
        let mut buf = [0u8; 8];
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(u64::from_le_bytes(buf))
    }

    /// `*(void **)addr`
    pub fn read_ptr(&self, addr: Addr) -> Result<Addr, HeapError> {
        self.read_uint(addr, POINTER_SIZE)
    }

    /// `*(void **)addr = value`
    pub fn write_ptr(&mut self, addr: Addr, value: Addr) -> Result<(), HeapError> {
        self.write(addr, &value.to_le_bytes())
    }

    /// Bytes currently allocated and not freed.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// The most bytes that were live at once since the heap was made or
    /// [`Heap::reset_peak`] was last called.
    pub fn peak_live_bytes(&self) -> u64 {
        self.peak_live_bytes
    }

    /// Starts a new peak measurement at the bytes live now.
    pub fn reset_peak(&mut self) {
        self.peak_live_bytes = self.live_bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interior_pointers_and_bounds() {
        let mut h = Heap::default();
        let a = h.alloc_prepared([1, 2, 3, 4]).unwrap();
        assert_eq!(h.read(a + 2, 2).unwrap(), &[3, 4]);
        assert!(matches!(
            h.read(a + 3, 2),
            Err(HeapError::OutOfBounds { .. })
        ));
        assert!(matches!(h.read(8, 1), Err(HeapError::NullDeref { .. })));
        h.write_ptr(a, 0).unwrap_err();
    }

    #[test]
    fn malloc_zero_is_null_and_fill_follows_allocator() {
        let mut h = Heap::default();
        assert_eq!(h.malloc(0, Allocator::GMalloc0, "p").unwrap(), 0);
        let z = h.malloc(3, Allocator::GMalloc0, "p").unwrap();
        let u = h.malloc(3, Allocator::GMalloc, "p").unwrap();
        assert_eq!(h.read(z, 3).unwrap(), &[0, 0, 0]);
        assert_eq!(h.read(u, 3).unwrap(), &[UNINIT_BYTE; 3]);
    }

    #[test]
    fn free_and_limits() {
        let mut h = Heap::new(HeapLimits { max_live_bytes: 10 });
        let a = h.malloc(8, Allocator::GMalloc, "p").unwrap();
        assert!(matches!(
            h.malloc(8, Allocator::GMalloc, "p"),
            Err(HeapError::OutOfMemory { .. })
        ));
        h.free(a).unwrap();
        assert!(h.bad_frees().is_empty());
        assert!(matches!(h.free(a), Err(HeapError::BadFree { .. })));
        assert!(matches!(h.read(a, 1), Err(HeapError::UseAfterFree { .. })));
        h.malloc(8, Allocator::GMalloc, "p").unwrap();
        assert!(matches!(h.free(a + 1), Err(HeapError::BadFree { .. })));
        h.free(0).unwrap();
        assert_eq!(h.bad_frees(), &[a, a + 1]);
    }

    #[test]
    fn peak_counts_the_most_live_at_once() {
        let mut h = Heap::default();
        let p = h.alloc_prepared([0; 5]).unwrap();
        assert_eq!((h.live_bytes(), h.peak_live_bytes()), (5, 5));
        h.reset_peak();
        let a = h.malloc(7, Allocator::GMalloc, "p").unwrap();
        let b = h.malloc(3, Allocator::GMalloc, "p").unwrap();
        h.free(a).unwrap();
        h.free(b).unwrap();
        let c = h.malloc(9, Allocator::GMalloc, "p").unwrap();
        assert_eq!((h.live_bytes(), h.peak_live_bytes()), (14, 15));
        h.free(c).unwrap();
        h.reset_peak();
        assert_eq!(h.peak_live_bytes(), 5);
        h.free(p).unwrap();
        assert_eq!(h.peak_live_bytes(), 5);
        // The peak is a measurement: heaps differing only there are equal.
        let mut g = h.clone();
        g.reset_peak();
        assert_eq!(g, h);
        assert_ne!(g.peak_live_bytes(), h.peak_live_bytes());
        g.free(p).unwrap_err();
        assert_ne!(g, h, "a bad free makes heaps differ");
    }

    #[test]
    fn place_at_a_given_base() {
        let mut h = Heap::default();
        let a = h.alloc_prepared([0; 16]).unwrap();
        assert!(h.place(a + 8, [1], Origin::Prepared).is_err());
        assert!(h.place(8, [1], Origin::Prepared).is_err());
        h.place(0x7000_0000, [1, 2], Origin::Prepared).unwrap();
        assert_eq!(h.read(0x7000_0001, 1).unwrap(), &[2]);
        assert!(h.place(0x6fff_ffff, [0; 2], Origin::Prepared).is_err());
        assert!(h.alloc_prepared([0; 4]).unwrap() > 0x7000_0002);
    }

    #[test]
    fn place_below_and_between_keeps_the_ledger_in_address_order() {
        let mut h = Heap::default();
        h.place(0x7000_0000, [7], Origin::Prepared).unwrap();
        h.place(0x2000_0000, [2], Origin::Prepared).unwrap(); // below every allocation
        h.place(0x5000_0000, [5], Origin::Prepared).unwrap(); // between two
        let top = h.alloc_prepared([9]).unwrap();
        let bases: Vec<Addr> = h.allocations().map(|a| a.base).collect();
        assert_eq!(bases, [0x2000_0000, 0x5000_0000, 0x7000_0000, top]);
        for (addr, v) in [
            (0x2000_0000, 2),
            (0x5000_0000, 5),
            (0x7000_0000, 7),
            (top, 9),
        ] {
            assert_eq!(h.read(addr, 1).unwrap(), &[v]);
            assert_eq!(h.allocation_at(addr).unwrap().base, addr);
        }
        assert!(format!("{h:?}").contains("Prepared"));
    }

    #[test]
    fn place_touching_an_allocation_but_not_over_it() {
        let mut h = Heap::default();
        h.place(0x7000_0000, [0; 16], Origin::Prepared).unwrap();
        // Ending where it starts, and starting where it ends.
        h.place(0x7000_0000 - 8, [1; 8], Origin::Prepared).unwrap();
        h.place(0x7000_0010, [2; 8], Origin::Prepared).unwrap();
        // One byte over either edge.
        assert!(h.place(0x6fff_fff0, [0; 9], Origin::Prepared).is_err());
        assert!(h.place(0x7000_0017, [0], Origin::Prepared).is_err());
    }

    #[test]
    fn objects_lie_a_guard_apart_and_their_ends_are_outside() {
        let mut h = Heap::default();
        let a = h.alloc_prepared([0; 100]).unwrap();
        let b = h.malloc(1, Allocator::GMalloc, "p").unwrap();
        assert!(
            (a + 100 + GUARD..a + 100 + GUARD + 16).contains(&b),
            "{a:#x} {b:#x}"
        );
        assert_eq!(b % 16, 0);
        assert!(h.allocation_at(a + 99).is_some());
        assert!(h.allocation_at(a + 100).is_none());
        assert!(h.read(a + 100, 1).is_err());
        let empty = h.alloc_prepared([]).unwrap();
        assert_eq!(h.allocation_at(empty).unwrap().size(), 0);
        h.place(0x7000_0000, [1, 2], Origin::Prepared).unwrap();
        let c = h.alloc_prepared([0]).unwrap();
        let end = 0x7000_0002;
        assert!((end + GUARD..end + GUARD + 16).contains(&c), "{c:#x}");
    }

    /// Lookups remember the last entry they found and try the newest one
    /// before searching; neither shortcut may answer for an address outside
    /// it, nor survive a `place` that shifts the ledger's indices.
    #[test]
    fn remembered_lookups_answer_only_for_their_own_entry() {
        let mut h = Heap::default();
        let (a, b) = (0x5000_0000, 0x6000_0000);
        h.place(a, [1; 32], Origin::Prepared).unwrap();
        h.place(b, [2; 8], Origin::Prepared).unwrap();
        let top = h.alloc_prepared([3; 4]).unwrap();
        assert_eq!(h.read(a + 8, 1).unwrap(), &[1]); // remembers a
        assert!(h.read(a + 32, 1).is_err(), "just past a");
        assert_eq!(h.read(b, 1).unwrap(), &[2]);
        assert!(h.read(top + 4, 1).is_err(), "just past the newest");
        assert!(h.read(top + 4096, 1).is_err(), "far above the newest");
        assert_eq!(h.read(a, 1).unwrap(), &[1]);
        // a moves from index 0 to 1; the remembered index now names another.
        h.place(0x2000_0000, [9; 64], Origin::Prepared).unwrap();
        assert_eq!(h.read(a + 31, 1).unwrap(), &[1]);
        assert!(h.read(a + 32, 1).is_err(), "just past a, after the shift");
        assert_eq!(h.read(0x2000_0000 + 40, 1).unwrap(), &[9]);
        assert_eq!(h.read(b + 7, 1).unwrap(), &[2]);
        assert_eq!(h.read(top + 3, 1).unwrap(), &[3]);
        let c = h.clone();
        assert_eq!(c.read(a + 1, 1).unwrap(), &[1]);
        assert_eq!(c.allocation_at(0x2000_0000).unwrap().size(), 64);
    }
}
