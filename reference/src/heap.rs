//! A simulated C heap with an allocation ledger.
//!
//! Objects are byte images. Pointers are stored in memory as 8-byte
//! host-order (little-endian, as on x86_64 and aarch64) addresses; 0 is NULL.
//! An address may point anywhere inside an allocation (interior pointers).
//! Every allocation records its size, who made it and whether it was freed,
//! so that a leak oracle can reason about what a load did.

use std::collections::BTreeMap;
use std::fmt;

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

/// One entry of the allocation ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub base: Addr,
    pub bytes: Vec<u8>,
    pub origin: Origin,
    pub freed: bool,
}

impl Allocation {
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    pub fn end(&self) -> Addr {
        self.base + self.size()
    }
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
/// Equality compares the ledger, the next address, the limits and the
/// bad frees; not [`Heap::peak_live_bytes`], which is a measurement.
#[derive(Clone)]
pub struct Heap {
    allocations: BTreeMap<Addr, Allocation>,
    next_base: Addr,
    live_bytes: u64,
    /// The most bytes live at once since creation or [`Heap::reset_peak`].
    peak_live_bytes: u64,
    /// Every address handed to [`Heap::free`] that was not the base of a
    /// live allocation (a double or wild free), oldest first.
    bad_frees: Vec<Addr>,
    pub limits: HeapLimits,
}

impl PartialEq for Heap {
    fn eq(&self, other: &Heap) -> bool {
        self.allocations == other.allocations
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
        f.debug_list().entries(self.allocations.values()).finish()
    }
}

impl Heap {
    pub fn new(limits: HeapLimits) -> Heap {
        Heap {
            allocations: BTreeMap::new(),
            next_base: HEAP_BASE,
            live_bytes: 0,
            peak_live_bytes: 0,
            bad_frees: Vec::new(),
            limits,
        }
    }

    /// Places caller-prepared bytes on the heap and returns their address.
    /// Like `g_memdup`; an empty object still gets a distinct address.
    pub fn alloc_prepared(&mut self, bytes: Vec<u8>) -> Result<Addr, HeapError> {
        self.insert(bytes, Origin::Prepared)
    }

    /// `g_malloc`/`g_malloc0`/`g_try_malloc`: glib returns NULL for size 0.
    pub fn malloc(
        &mut self,
        size: u64,
        allocator: Allocator,
        path: &str,
    ) -> Result<Addr, HeapError> {
        if size == 0 {
            return Ok(0);
        }
        let fill = match allocator {
            Allocator::GMalloc0 => 0,
            Allocator::GMalloc | Allocator::GTryMalloc => UNINIT_BYTE,
        };
        self.check_room(size)?;
        let origin = Origin::Load {
            path: path.to_string(),
            allocator,
        };
        self.insert(vec![fill; size as usize], origin)
    }

    /// `g_free`: NULL is a no-op; anything but a live allocation's base is
    /// an error, and is recorded in [`Heap::bad_frees`] (C would corrupt the
    /// heap; a caller that ignores the error cannot hide it from an oracle).
    pub fn free(&mut self, addr: Addr) -> Result<(), HeapError> {
        if addr == 0 {
            return Ok(());
        }
        match self.allocations.get_mut(&addr) {
            Some(a) if !a.freed => {
                a.freed = true;
                self.live_bytes -= a.size();
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

    fn insert(&mut self, bytes: Vec<u8>, origin: Origin) -> Result<Addr, HeapError> {
        let size = bytes.len() as u64;
        self.check_room(size)?;
        let base = self.next_base;
        self.next_base = (base + size.max(1) + GUARD).next_multiple_of(16);
        self.live_bytes += size;
        self.peak_live_bytes = self.peak_live_bytes.max(self.live_bytes);
        self.allocations.insert(
            base,
            Allocation {
                base,
                bytes,
                origin,
                freed: false,
            },
        );
        Ok(base)
    }

    /// Places `bytes` at a given `base` (an address taken from a real
    /// process), if the range overlaps no allocation and stays clear of
    /// NULL. Later allocations are handed out above it.
    pub fn place(&mut self, base: Addr, bytes: Vec<u8>, origin: Origin) -> Result<(), HeapError> {
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
        let clash = self
            .allocations
            .range(..end)
            .next_back()
            .is_some_and(|(_, a)| a.base.saturating_add(a.size().max(1)) > base);
        if clash {
            return Err(HeapError::OutOfBounds {
                addr: base,
                len: size,
            });
        }
        self.check_room(size)?;
        self.live_bytes += size;
        self.next_base = self.next_base.max((end + GUARD).next_multiple_of(16));
        self.allocations.insert(
            base,
            Allocation {
                base,
                bytes,
                origin,
                freed: false,
            },
        );
        Ok(())
    }

    /// The allocation containing `addr` (freed or not), if any.
    pub fn allocation_at(&self, addr: Addr) -> Option<&Allocation> {
        let (_, a) = self.allocations.range(..=addr).next_back()?;
        (addr < a.end() || (addr == a.base)).then_some(a)
    }

    /// Every allocation, in address order (which is also creation order).
    pub fn allocations(&self) -> impl Iterator<Item = &Allocation> {
        self.allocations.values()
    }

    fn locate(&self, addr: Addr, len: u64) -> Result<(Addr, usize), HeapError> {
        if addr < HEAP_BASE {
            return Err(HeapError::NullDeref { addr });
        }
        let a = self
            .allocation_at(addr)
            .ok_or(HeapError::OutOfBounds { addr, len })?;
        if a.freed {
            return Err(HeapError::UseAfterFree { addr });
        }
        let start = addr - a.base;
        if start.checked_add(len).is_none_or(|end| end > a.size()) {
            return Err(HeapError::OutOfBounds { addr, len });
        }
        Ok((a.base, start as usize))
    }

    /// Reads `len` bytes at `addr`; the range must lie inside one live allocation.
    pub fn read(&self, addr: Addr, len: u64) -> Result<&[u8], HeapError> {
        if len == 0 {
            return Ok(&[]);
        }
        let (base, start) = self.locate(addr, len)?;
        Ok(&self.allocations[&base].bytes[start..start + len as usize])
    }

    /// Writes `data` at `addr`; the range must lie inside one live allocation.
    pub fn write(&mut self, addr: Addr, data: &[u8]) -> Result<(), HeapError> {
        if data.is_empty() {
            return Ok(());
        }
        let (base, start) = self.locate(addr, data.len() as u64)?;
        let a = self.allocations.get_mut(&base).expect("located allocation");
        a.bytes[start..start + data.len()].copy_from_slice(data);
        Ok(())
    }

    /// Mutable access to `len` bytes at `addr` inside one live allocation.
    pub fn slice_mut(&mut self, addr: Addr, len: u64) -> Result<&mut [u8], HeapError> {
        if len == 0 {
            return Ok(&mut []);
        }
        let (base, start) = self.locate(addr, len)?;
        let a = self.allocations.get_mut(&base).expect("located allocation");
        Ok(&mut a.bytes[start..start + len as usize])
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
        let a = h.alloc_prepared(vec![1, 2, 3, 4]).unwrap();
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
        let p = h.alloc_prepared(vec![0; 5]).unwrap();
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
        let a = h.alloc_prepared(vec![0; 16]).unwrap();
        assert!(h.place(a + 8, vec![1], Origin::Prepared).is_err());
        assert!(h.place(8, vec![1], Origin::Prepared).is_err());
        h.place(0x7000_0000, vec![1, 2], Origin::Prepared).unwrap();
        assert_eq!(h.read(0x7000_0001, 1).unwrap(), &[2]);
        assert!(h.place(0x6fff_ffff, vec![0; 2], Origin::Prepared).is_err());
        assert!(h.alloc_prepared(vec![0; 4]).unwrap() > 0x7000_0002);
    }
}
