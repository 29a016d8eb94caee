//! The leak report of one load: what a load from a walked destination
//! ([`Before`]) broke of the rules in the module documentation.

use super::Finding;
use super::finding::cause_of;
use super::reach::{Bases, PathId, Reach, Slot, reach, reach_bases};
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fmt;
use vmstate_reference::{
    Addr, Allocation, Allocator, Dialect, Error, ErrorKind, Heap, HeapError, Origin, Vmsd,
};

/// One broken rule of the leak oracle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// An allocation this load made is live and unreachable.
    Leaked {
        base: Addr,
        size: u64,
        /// Where the load made it (the ledger's `Origin::Load` path).
        made_for: String,
        allocator: Allocator,
        cause: Cause,
    },
    /// A caller-prepared allocation, reachable before, is live and unreachable.
    Overwritten {
        base: Addr,
        size: u64,
        /// The declared pointer that held it before the load.
        slot_path: String,
        cause: Cause,
    },
    /// A declared pointer points into freed memory.
    Dangling { path: String, addr: Addr },
    /// The loader freed something that was not a live allocation.
    DoubleFree { addr: Addr, path: String },
}

/// Why an object was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Its slot now holds another pointer, written by this finding's code.
    Finding(Finding),
    /// Its slot was overwritten by code no finding names.
    Overwrite,
    /// Its slot is itself no longer reachable (the container was lost).
    ContainerLost,
    /// No declared slot held it (e.g. a count shrank after it was loaded).
    Unattributed,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Leaked {
                base,
                size,
                made_for,
                allocator,
                cause,
            } => write!(
                f,
                "leaked: {size} bytes at {base:#x} made by {} for {made_for} ({cause:?})",
                allocator.c_name()
            ),
            Violation::Overwritten {
                base,
                size,
                slot_path,
                cause,
            } => write!(
                f,
                "overwritten: prepared {size} bytes at {base:#x}, held by {slot_path} ({cause:?})"
            ),
            Violation::Dangling { path, addr } => {
                write!(f, "dangling: {path} points into freed memory at {addr:#x}")
            }
            Violation::DoubleFree { addr, path } => {
                write!(f, "double free of {addr:#x} at {path}")
            }
        }
    }
}

/// The leak report of one load.
#[derive(Debug, Default)]
pub struct Report {
    pub violations: Vec<Violation>,
    /// Live allocations made by the load (reachable or not).
    pub made_live: Vec<Addr>,
    pub made_bytes: u64,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for v in &self.violations {
            writeln!(f, "{v}")?;
        }
        Ok(())
    }
}

/// The destination before a load, walked once, so that several loads from
/// it (the QEMU-faithful and the strict one) are checked against one walk.
pub struct Before<'a> {
    pub(super) d: Dialect,
    vmsd: &'a Vmsd,
    pub(super) heap: &'a Heap,
    opaque: Addr,
    bases: Bases,
    /// The whole walk (slots and paths), made when a report first names a
    /// slot.
    reach: OnceCell<Reach<'a>>,
    /// The first slot (in address order) that held each base; made when a
    /// report first needs it.
    holder: OnceCell<BTreeMap<Addr, (Addr, PathId)>>,
}

impl<'a> Before<'a> {
    pub fn new(d: Dialect, vmsd: &'a Vmsd, heap: &'a Heap, opaque: Addr) -> Before<'a> {
        Before {
            d,
            vmsd,
            heap,
            opaque,
            bases: reach_bases(d, vmsd, heap, opaque),
            reach: OnceCell::new(),
            holder: OnceCell::new(),
        }
    }

    /// The whole walk of the destination before the load.
    fn walked(&self) -> &Reach<'a> {
        self.reach
            .get_or_init(|| reach(self.d, self.vmsd, self.heap, self.opaque))
    }

    /// The slot that held `base` before the load (the first in address
    /// order).
    fn holder(&self, base: Addr) -> Option<(Addr, PathId)> {
        let holder = self.holder.get_or_init(|| {
            let mut holder = BTreeMap::new();
            for (&at, s) in &self.walked().slots {
                if let Some(b) = self.heap.allocation_at(s.value) {
                    holder.entry(b.base).or_insert((at, s.path));
                }
            }
            holder
        });
        holder.get(&base).copied()
    }

    /// Whether an allocation at `base` existed before the load (the heap
    /// never hands an address out twice).
    fn existed(&self, base: Addr) -> bool {
        self.heap
            .allocation_at(base)
            .is_some_and(|a| a.base == base)
    }

    /// The leak oracle: compares the destination before the load with
    /// `after`, the same memory after a load whose result was `result`.
    ///
    /// Reachability comes from walks that record only bases; the whole
    /// walks, with slots and paths, are made when a violation needs them.
    pub fn check(&self, after: &Heap, result: &Result<usize, Error>) -> Report {
        let Before {
            d,
            vmsd,
            heap: before,
            opaque,
            bases: ref b0,
            ..
        } = *self;
        let b1 = reach_bases(d, vmsd, after, opaque);
        let walked_after = OnceCell::new();
        let r1 = || walked_after.get_or_init(|| reach(d, vmsd, after, opaque));
        let mut report = Report::default();
        // Made when a leak needs a cause: the allocations the load made that
        // a slot holds after it, by field with indexes dropped and in address
        // order (the last slot in address order holding each): what
        // overwrote a leaked allocation.
        let held = OnceCell::new();
        let held_by_field = || held.get_or_init(|| held_by_field_of(r1(), after));
        let slot_cause = |slot_at: Addr| -> Cause {
            match r1().slots.get(&slot_at) {
                None => Cause::ContainerLost,
                Some(s) => cause_of(d, s.flags),
            }
        };
        for a in after.allocations().filter(|a| !a.freed) {
            if b1.contains(a.base) {
                continue;
            }
            let made = !self.existed(a.base);
            match (&a.origin, made) {
                (Origin::Load { path, allocator }, true) => {
                    // Its slot was overwritten by a later allocation for the same
                    // field (the same element, or another element at the same
                    // address: a qemu-10.x array of pointers with `.size = 0`
                    // loads every element into slot 0).
                    let cause = held_by_field()
                        .get(&without_indexes(path))
                        .and_then(|held| held.iter().find(|(b, _)| *b != a.base))
                        .map_or(Cause::Unattributed, |(_, s)| cause_of(d, s.flags));
                    report.violations.push(Violation::Leaked {
                        base: a.base,
                        size: a.size(),
                        made_for: path.clone(),
                        allocator: *allocator,
                        cause,
                    });
                }
                _ if b0.contains(a.base) && a.base != opaque => {
                    let (slot_path, cause) = match self.holder(a.base) {
                        Some((at, path)) => (self.walked().path(path), slot_cause(at)),
                        None => (String::new(), Cause::Unattributed),
                    };
                    report.violations.push(Violation::Overwritten {
                        base: a.base,
                        size: a.size(),
                        slot_path,
                        cause,
                    });
                }
                _ => {}
            }
        }
        if b1.dangling {
            let r1 = r1();
            for &(path, addr) in &r1.dangling {
                let path = r1.path(path);
                report.violations.push(Violation::Dangling { path, addr });
            }
        }
        // Frees the heap refused during this load: the ledger records them even
        // when the loader ignored the error. A `BadFree` result names the path.
        let returned = match result {
            Err(Error {
                kind: ErrorKind::Memory(HeapError::BadFree { addr }),
                path,
                ..
            }) => Some((*addr, path)),
            _ => None,
        };
        let during = after
            .bad_frees()
            .strip_prefix(before.bad_frees())
            .unwrap_or(after.bad_frees());
        for &addr in during {
            let path = returned
                .filter(|(a, _)| *a == addr)
                .map_or_else(String::new, |(_, p)| p.clone());
            report.violations.push(Violation::DoubleFree { addr, path });
        }
        if let Some((addr, path)) = returned
            && !during.contains(&addr)
        {
            report.violations.push(Violation::DoubleFree {
                addr,
                path: path.clone(),
            });
        }
        for a in after.allocations() {
            if !a.freed && !self.existed(a.base) {
                report.made_live.push(a.base);
                report.made_bytes += a.size();
            }
        }
        report
    }
}

/// The allocations a load made that a slot of `r1` holds, by field with
/// indexes dropped, in address order; each with the last slot in address
/// order that holds it.
fn held_by_field_of<'r>(r1: &'r Reach, after: &Heap) -> BTreeMap<String, Vec<(Addr, &'r Slot)>> {
    let holder_after: BTreeMap<Addr, (&Slot, Allocation)> = r1
        .slots
        .values()
        .filter_map(|s| after.allocation_at(s.value).map(|a| (a.base, (s, a))))
        .collect();
    let mut held_by_field: BTreeMap<String, Vec<(Addr, &Slot)>> = BTreeMap::new();
    for (&base, &(s, a)) in &holder_after {
        if let Origin::Load { path, .. } = &a.origin {
            held_by_field
                .entry(without_indexes(path))
                .or_default()
                .push((base, s));
        }
    }
    held_by_field
}

/// A field path with its element indexes removed: `p.a[3].b` is `p.a[].b`.
fn without_indexes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}
