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
use vmstate_reference::{Addr, Allocator, Heap, Origin};

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
                Origin::Load { allocator, .. } => Some((a.size(), c_name(*allocator), a.freed)),
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

fn c_name(a: Allocator) -> &'static str {
    a.c_name()
}
