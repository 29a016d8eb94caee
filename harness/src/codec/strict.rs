//! Strict-mode bookkeeping of the optimized load: what a failed load must
//! undo, what a successful one must free, and how much it may allocate.

use super::plan::{Alloc, Elem, SizeRule, Slots, VmsdPlan};
use vmstate_reference::{Addr, Heap, HeapError};

/// Strict-mode bookkeeping: what to undo if the load fails, what to free
/// if it succeeds, and the allocation budget.
pub(super) struct Strict {
    /// Bytes of memory that existed before the load, as they were before
    /// the load first wrote them (oldest first).
    pub(super) undo: Vec<(Addr, Vec<u8>)>,
    /// Pointer slots that received a new allocation: (slot, old value).
    pub(super) replaced: Vec<(Addr, Addr)>,
    /// Allocations this load made.
    pub(super) made: Vec<Addr>,
    /// Everything at or above this address was allocated by this load.
    pub(super) watermark: Addr,
    /// Bytes allocated by this load so far, and the most it may allocate.
    pub(super) allocated: u64,
    pub(super) budget: u64,
}

/// Strict mode allocates at most `alloc_ratio(plan) * input.len()` plus
/// this many bytes per load.
pub const STRICT_SLACK: u64 = 16 << 10;

/// Bytes strict mode may allocate per input byte for this plan: the sum,
/// over every allocating field of the description tree, of the bytes one
/// wire byte can make it allocate on a well-formed stream:
/// - a dynamic element (AUTO_ALLOC, ARRAY_OF_POINTER|ALLOC) allocates
///   `field->size` bytes for at least one byte (its 0x31 marker);
/// - a `VMS_ALLOC` buffer of scalars or buffers allocates exactly the
///   bytes its elements occupy on the wire (ratio 1);
/// - a `VMS_ALLOC` buffer of structs or pointers allocates `size` bytes
///   per element, and an element takes at least one byte on the wire when
///   it has anything to load (a marker, a scalar); elements with nothing on
///   the wire are covered only by [`STRICT_SLACK`].
///
/// Nested allocating fields add up, so the sum bounds any nesting. The
/// result is capped at 2^16 to keep the budget arithmetic finite.
pub fn alloc_ratio(plan: &VmsdPlan) -> u64 {
    fn walk(plan: &VmsdPlan) -> u64 {
        let mut k = 0u64;
        for f in &plan.fields {
            if matches!(f.slots, Slots::Marker { dynamic: true, .. }) {
                k = k.saturating_add(f.field_size.max(1));
            }
            if f.alloc != Alloc::None {
                let per = match (&f.elem, f.slots, f.size) {
                    (Elem::Info(_), Slots::Direct { .. } | Slots::DynamicDirect, _) => 1,
                    (_, _, SizeRule::Fixed(s)) => (s.max(1)) as u64,
                    _ => f.field_size.max(1),
                };
                k = k.saturating_add(per);
            }
            if let Elem::Struct { plan, .. } = &f.elem {
                k = k.saturating_add(walk(plan));
            }
        }
        for s in &plan.subsections {
            k = k.saturating_add(walk(&s.plan));
        }
        k
    }
    walk(plan).clamp(1, 1 << 16)
}

impl Strict {
    /// Frees every old pointer value a slot lost, unless some replaced
    /// slot still holds it. Returns the first free that failed.
    pub(super) fn commit(self, heap: &mut Heap) -> Result<(), HeapError> {
        let finals: std::collections::BTreeSet<Addr> = self
            .replaced
            .iter()
            .filter_map(|&(slot, _)| heap.read_ptr(slot).ok())
            .collect();
        let mut freed = std::collections::BTreeSet::new();
        let mut first = Ok(());
        for &(_, old) in &self.replaced {
            let live_base = heap
                .allocation_at(old)
                .is_some_and(|a| a.base == old && !a.freed);
            if old != 0 && live_base && !finals.contains(&old) && freed.insert(old) {
                first = first.and(heap.free(old));
            }
        }
        first
    }

    /// Puts back every byte the load wrote into pre-existing memory and
    /// frees everything it allocated. Does all of it even when a step
    /// fails, and returns the first failure.
    pub(super) fn rollback(self, heap: &mut Heap) -> Result<(), HeapError> {
        let mut first = Ok(());
        for (addr, bytes) in self.undo.iter().rev() {
            first = first.and(heap.write(*addr, bytes));
        }
        for &a in &self.made {
            first = first.and(heap.free(a));
        }
        first
    }
}
