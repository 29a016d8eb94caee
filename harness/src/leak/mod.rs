//! The leak oracle: what a load did to the destination's memory, read from
//! the heap's allocation ledger.
//!
//! After any load, successful or not:
//! - every allocation the load made is reachable from the destination root
//!   through pointers the description declares, or was freed;
//! - no caller-prepared allocation that was reachable before the load became
//!   unreachable (an overwritten pointer);
//! - nothing was freed twice: no free the heap refused during the load
//!   ([`Heap::bad_frees`]), no `Memory(BadFree)` result;
//! - no declared pointer points into freed memory.
//!
//! Reachability walks the [`Vmsd`] the way the loader does (`VMS_POINTER`
//! fields, arrays of pointers, nested structs, subsections) with the
//! reference crate's `n_elems`, `size` and `element_addr`.
//!
//! QEMU breaks the first rule on purpose in a few places; [`Finding`] names
//! each one with the C code responsible, and [`Before::faithful`] attributes every
//! lost object to one of them or reports it as unexplained. A failed QEMU
//! load frees nothing, but what it allocated stays linked into the device
//! (spec 3.5): reachable, so not a leak by the rule above; it is reported as
//! the finding [`Finding::FailedLoadKeepsAllocations`] instead, because the
//! device is left half-loaded and owns memory it did not ask for.

mod finding;
mod reach;
mod report;

pub use finding::Finding;
pub use reach::{PathId, Paths, Reach, Slot, reach};
pub use report::{Before, Cause, Report, Violation};

use std::collections::BTreeSet;
use vmstate_reference::{Dynamic, Error, ErrorKind, Heap, UNINIT_BYTE};

/// The strict-mode allocation cap: the most bytes live at once during the
/// load, beyond what was live before it, is at most `cap`. `after` must be
/// a clone of `before` on which [`Heap::reset_peak`] was called before the
/// load (the bytes live at the end are not enough: a failed strict load
/// frees everything it made). Returns the growth.
pub fn within_cap(before: &Heap, after: &Heap, cap: u64) -> Result<u64, String> {
    let growth = after.peak_live_bytes().saturating_sub(before.live_bytes());
    if growth > cap {
        return Err(format!(
            "the load had {growth} bytes more live at its peak than before, more than the cap {cap}"
        ));
    }
    Ok(growth)
}

impl Before<'_> {
    /// The findings a QEMU-faithful load shows, or a description of what no
    /// finding explains.
    pub fn faithful(
        &self,
        after: &Heap,
        result: &Result<usize, Error>,
    ) -> Result<BTreeSet<Finding>, String> {
        let d = self.d;
        let report = self.check(after, result);
        let mut found = BTreeSet::new();
        let mut unexplained = Vec::new();
        let mut cascades = 0;
        for v in &report.violations {
            match v {
                Violation::Leaked { cause, .. } | Violation::Overwritten { cause, .. } => {
                    match cause {
                        Cause::Finding(f) => {
                            found.insert(*f);
                        }
                        Cause::ContainerLost | Cause::Unattributed => cascades += 1,
                        Cause::Overwrite => unexplained.push(v.to_string()),
                    }
                }
                Violation::Dangling { .. } | Violation::DoubleFree { .. } => {
                    unexplained.push(v.to_string())
                }
            }
        }
        // A lost container explains what hangs below it, but only if something
        // named lost the container.
        if cascades > 0 && found.is_empty() {
            unexplained.extend(
                report
                    .violations
                    .iter()
                    .filter(|v| {
                        matches!(
                            v,
                            Violation::Leaked {
                                cause: Cause::ContainerLost | Cause::Unattributed,
                                ..
                            } | Violation::Overwritten {
                                cause: Cause::ContainerLost | Cause::Unattributed,
                                ..
                            }
                        )
                    })
                    .map(|v| v.to_string()),
            );
        }
        if result.is_err() && !report.made_live.is_empty() {
            found.insert(Finding::FailedLoadKeepsAllocations);
        }
        if let Err(Error {
            kind: ErrorKind::AutoAllocSlotNotNull { slot },
            ..
        }) = result
            && d.facts().dynamic == Dynamic::AutoAllocFlag
            && *slot == u64::from_le_bytes([UNINIT_BYTE; 8])
        {
            found.insert(Finding::AllocAutoAllocUnzeroedTable);
        }
        if unexplained.is_empty() {
            Ok(found)
        } else {
            Err(format!(
                "leaks no finding explains:\n{}\nfull report:\n{report}",
                unexplained.join("\n")
            ))
        }
    }

    /// The strict-mode contract: after `Ok` the report is clean; after `Err`
    /// every allocation that existed before is byte-for-byte as it was (same
    /// freed flag) and everything the load made is freed.
    pub fn strict(&self, after: &Heap, result: &Result<usize, Error>) -> Result<(), String> {
        let before = self.heap;
        let report = self.check(after, result);
        if !report.is_clean() {
            return Err(format!("strict load ({result:?}) leaks:\n{report}"));
        }
        if result.is_err() {
            if !report.made_live.is_empty() {
                return Err(format!(
                    "failed strict load ({result:?}) left {} bytes allocated at {:x?}",
                    report.made_bytes, report.made_live
                ));
            }
            for a in before.allocations() {
                let now = after.allocation_at(a.base).filter(|b| b.base == a.base);
                if now.is_none_or(|b| b.bytes != a.bytes || b.freed != a.freed) {
                    return Err(format!(
                        "failed strict load ({result:?}) did not restore the allocation at {:#x} ({:?})",
                        a.base, a.origin
                    ));
                }
            }
        }
        Ok(())
    }
}
