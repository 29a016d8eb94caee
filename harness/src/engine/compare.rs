//! Comparing what two engines left in memory after a load.
//!
//! Two tiers:
//! - model engines share the simulated heap, so their heaps must be equal
//!   byte for byte, addresses and allocation paths included;
//! - any engine against any other (QEMU's real memory included) is
//!   compared canonically: the destination read as typed values from the
//!   root (pointers followed, so addresses do not matter), and the
//!   allocations the load made as a multiset of (size, allocator, freed).

use crate::case::ctype::{CType, Types};
use crate::case::value;
use serde_json::Value;
use vmstate_reference::{Addr, Heap, Origin};

/// A heap as any engine can be compared on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    /// The destination object read from its root through its C type.
    pub state: Value,
    /// What the load allocated: (size, allocator, freed), sorted.
    pub allocations: Vec<(u64, &'static str, bool)>,
}

impl Canonical {
    /// Reads `heap` from the object of type `ty` at `root`; `hint` gives
    /// the lengths of arrays behind pointers (the case's source state).
    pub fn of(
        heap: &Heap,
        types: &Types,
        ty: &CType,
        root: Addr,
        hint: Option<&Value>,
    ) -> Canonical {
        let state = value::read(heap, types, ty, root, hint)
            .unwrap_or_else(|e| Value::String(format!("unreadable: {e}")));
        let mut allocations: Vec<(u64, &'static str, bool)> = heap
            .allocations()
            .filter_map(|a| match &a.origin {
                Origin::Load { allocator, .. } => Some((a.size(), allocator.c_name(), a.freed)),
                Origin::Prepared => None,
            })
            .collect();
        allocations.sort();
        Canonical { state, allocations }
    }

    /// A one-line-per-difference description, or None when equal.
    pub fn diff(&self, other: &Canonical) -> Option<String> {
        let mut out = vec![];
        if self.state != other.state {
            out.push(crate::oracle::text_diff(
                &serde_json::to_string_pretty(&self.state).unwrap_or_default(),
                &serde_json::to_string_pretty(&other.state).unwrap_or_default(),
            ));
        }
        if self.allocations != other.allocations {
            out.push(format!(
                "allocations made by the load: {:?} vs {:?}",
                self.allocations, other.allocations
            ));
        }
        (!out.is_empty()).then(|| out.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmstate_reference::Allocator;

    /// `struct { uint8_t *p; }` with `p` pointing at `bytes`, made by the
    /// load with `allocator` (or prepared).
    fn heap(bytes: &[u8], allocator: Option<Allocator>) -> (Heap, Addr) {
        let mut h = Heap::default();
        let root = h.alloc_prepared(vec![0; 8]).unwrap();
        let p = match allocator {
            Some(a) => {
                let p = h.malloc(bytes.len() as u64, a, "dev.p").unwrap();
                h.write(p, bytes).unwrap();
                p
            }
            None => h.alloc_prepared(bytes).unwrap(),
        };
        h.write_ptr(root, p).unwrap();
        (h, root)
    }

    fn canonical(h: &Heap, root: Addr) -> Canonical {
        let types = Types::new(&[("S".to_string(), "uint8_t *p;".to_string())].into()).unwrap();
        let hint = serde_json::json!({"p": "000000"});
        Canonical::of(h, &types, &CType::Struct("S".into()), root, Some(&hint))
    }

    #[test]
    fn addresses_do_not_matter_state_and_allocations_do() {
        let (a, ra) = heap(&[1, 2, 3], Some(Allocator::GMalloc));
        let (mut b, _) = heap(&[9], None); // shifts every later address
        let rb = b.alloc_prepared(vec![0; 8]).unwrap();
        let p = b.malloc(3, Allocator::GMalloc, "elsewhere").unwrap();
        b.write(p, &[1, 2, 3]).unwrap();
        b.write_ptr(rb, p).unwrap();
        assert_eq!(canonical(&a, ra).diff(&canonical(&b, rb)), None);

        let (c, rc) = heap(&[1, 2, 4], Some(Allocator::GMalloc));
        assert!(
            canonical(&a, ra).diff(&canonical(&c, rc)).is_some(),
            "state"
        );
        let (d, rd) = heap(&[1, 2, 3], Some(Allocator::GMalloc0));
        assert!(
            canonical(&a, ra).diff(&canonical(&d, rd)).is_some(),
            "allocator"
        );
        let (e, re) = heap(&[1, 2, 3], None);
        assert!(
            canonical(&a, ra).diff(&canonical(&e, re)).is_some(),
            "made by the load"
        );
    }
}
