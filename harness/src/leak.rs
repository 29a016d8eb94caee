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
//! each one with the C code responsible, and [`faithful`] attributes every
//! lost object to one of them or reports it as unexplained. A failed QEMU
//! load frees nothing, but what it allocated stays linked into the device
//! (spec 3.5): reachable, so not a leak by the rule above; it is reported as
//! the finding [`Finding::FailedLoadKeepsAllocations`] instead, because the
//! device is left half-loaded and owns memory it did not ask for.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write};
use vmstate_reference::{
    Addr, Allocation, Allocator, Dialect, Dynamic, Error, ErrorKind, Field, Flag, Heap, HeapError,
    Origin, UNINIT_BYTE, Vmsd, element_addr, is_dynamic_array, n_elems, size,
};

/// Elements a reachability walk may visit; keeps hostile counts finite.
const WALK_BUDGET: u64 = 1 << 22;

/// A declared pointer slot seen by a walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub value: Addr,
    /// Field path of the slot (`dev.arr[2]` once [`Reach::path`] renders it).
    pub path: PathId,
    /// The field's raw flags.
    pub flags: u32,
}

/// A field path in a walk's [`Paths`].
pub type PathId = u32;

/// One step of a field path.
#[derive(Debug, Clone, Copy)]
enum Seg<'v> {
    Root(&'v str),
    /// `.name`
    Field(&'v str),
    /// `[i]`
    Index(i64),
    /// A subsection: appended as is when it repeats the parent's name
    /// (`dev/sub` under `dev`: `/sub`), else after a `/`.
    Suffix(&'v str),
    Subsection(&'v str),
}

/// The field paths of one walk as (parent, step) nodes: recorded for
/// every field and element walked, rendered as text only when a report
/// names one.
#[derive(Debug, Default)]
pub struct Paths<'v> {
    nodes: Vec<(PathId, Seg<'v>)>,
}

impl<'v> Paths<'v> {
    fn push(&mut self, parent: PathId, seg: Seg<'v>) -> PathId {
        self.nodes.push((parent, seg));
        (self.nodes.len() - 1) as PathId
    }

    /// `dev.arr[2].p`
    pub fn render(&self, id: PathId) -> String {
        let mut chain = vec![];
        let mut at = id;
        while let Some(&(parent, seg)) = self.nodes.get(at as usize) {
            chain.push(seg);
            if matches!(seg, Seg::Root(_)) {
                break;
            }
            at = parent;
        }
        let mut out = String::new();
        for seg in chain.iter().rev() {
            match seg {
                Seg::Root(name) | Seg::Suffix(name) => out.push_str(name),
                Seg::Field(name) => {
                    out.push('.');
                    out.push_str(name);
                }
                Seg::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
                Seg::Subsection(name) => {
                    out.push('/');
                    out.push_str(name);
                }
            }
        }
        out
    }
}

/// What a walk of the destination found.
#[derive(Debug, Default)]
pub struct Reach<'v> {
    /// Bases of the live allocations reachable from the root.
    pub reachable: BTreeSet<Addr>,
    /// Every declared pointer slot, by its address.
    pub slots: BTreeMap<Addr, Slot>,
    /// Declared pointers into freed memory: (path, value).
    pub dangling: Vec<(PathId, Addr)>,
    pub paths: Paths<'v>,
}

impl Reach<'_> {
    /// The text of a path of this walk, `dev.arr[2]`.
    pub fn path(&self, id: PathId) -> String {
        self.paths.render(id)
    }
}

/// Walks the object at `opaque` as `vmsd` describes it.
pub fn reach<'v>(d: Dialect, vmsd: &'v Vmsd, heap: &Heap, opaque: Addr) -> Reach<'v> {
    let mut w = Walker {
        d,
        heap,
        out: Reach::default(),
        budget: WALK_BUDGET,
    };
    let root = w.out.paths.push(0, Seg::Root(&vmsd.name));
    w.mark(opaque, root);
    w.vmsd(vmsd, opaque, root);
    w.out
}

struct Walker<'h, 'v> {
    d: Dialect,
    heap: &'h Heap,
    out: Reach<'v>,
    budget: u64,
}

impl<'v> Walker<'_, 'v> {
    /// Records `value` as reachable; false if it points at nothing live.
    fn mark(&mut self, value: Addr, path: PathId) -> bool {
        if value == 0 {
            return false;
        }
        match self.heap.allocation_at(value) {
            Some(a) if a.freed => {
                self.out.dangling.push((path, value));
                false
            }
            Some(a) => {
                self.out.reachable.insert(a.base);
                true
            }
            None => false,
        }
    }

    fn slot(&mut self, at: Addr, path: PathId, flags: u32) -> Option<Addr> {
        let value = self.heap.read_ptr(at).ok()?;
        self.out.slots.insert(at, Slot { value, path, flags });
        self.mark(value, path).then_some(value)
    }

    fn vmsd(&mut self, vmsd: &'v Vmsd, opaque: Addr, path: PathId) {
        for field in &vmsd.fields {
            let fpath = self.out.paths.push(path, Seg::Field(&field.name));
            self.field(field, opaque, fpath);
        }
        for sub in &vmsd.subsections {
            let seg = match sub.name.strip_prefix(vmsd.name.as_str()) {
                Some(rest) if rest.starts_with('/') => Seg::Suffix(rest),
                _ => Seg::Subsection(&sub.name),
            };
            let spath = self.out.paths.push(path, seg);
            self.vmsd(sub, opaque, spath);
        }
    }

    fn field(&mut self, field: &'v Field, opaque: Addr, fpath: PathId) {
        let d = self.d;
        let slot = opaque.wrapping_add(field.offset);
        let mut base = slot;
        // The pointer is declared whatever the count and size members now
        // hold (a hostile size makes `vmstate_size` fail, not the pointer).
        if d.has(field.flags, Flag::Pointer) {
            match self.slot(slot, fpath, field.flags) {
                Some(v) => base = v,
                None => return,
            }
        }
        let (Ok(n), Ok(size)) = (
            n_elems(d, field, self.heap, opaque),
            size(d, field, self.heap, opaque),
        ) else {
            return;
        };
        let aop = d.has(field.flags, Flag::ArrayOfPointer);
        let nested = if d.has(field.flags, Flag::Struct) || d.has(field.flags, Flag::Vstruct) {
            field.vmsd.as_deref()
        } else {
            None
        };
        if (!aop && nested.is_none()) || size < 0 {
            return;
        }
        // The count member may be stale: a load reads it from the stream
        // before it uses it, and a destination's count is often 0 while its
        // table is full. Behind a VMS_POINTER, every whole element that fits
        // in the pointed-to allocation belongs to the device, as
        // LeakSanitizer would see it.
        let n = match self.heap.allocation_at(base) {
            Some(a) if d.has(field.flags, Flag::Pointer) && size > 0 && !a.freed => {
                n.max(((a.end() - base) / size as u64) as i64)
            }
            _ => n,
        };
        if n <= 0 {
            return;
        }
        for i in 0..n {
            if self.budget == 0 {
                return;
            }
            self.budget -= 1;
            let at = element_addr(base, size, i);
            if aop {
                if self.heap.read_ptr(at).is_err() {
                    return; // past the table: the count no longer matches it
                }
                let epath = self.out.paths.push(fpath, Seg::Index(i));
                if let (Some(elem), Some(v)) = (self.slot(at, epath, field.flags), nested) {
                    self.vmsd(v, elem, epath);
                }
            } else if let Some(v) = nested {
                let epath = self.out.paths.push(fpath, Seg::Index(i));
                self.vmsd(v, at, epath);
            }
        }
    }
}

/// A way QEMU's load leaks or trips over its own allocations, with the C
/// code responsible. Line numbers are given only where a diff in the
/// sources showed them (the RFC 13/17 hunks of seed 001); otherwise the
/// statement is quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Finding {
    /// `VMS_POINTER|VMS_ALLOC` overwrites a non-NULL pointer without freeing
    /// it (all dialects; spec 3.2).
    VmsAllocOverwrite,
    /// alloc-combo `vmstate_next`: `if (!next || field->flags & VMS_ALLOC)`
    /// allocates a new element over a non-NULL slot (spec 3.4, seed 001).
    ComboAllocOverNonNull,
    /// A load that fails midway frees nothing: auto-allocated elements and
    /// `VMS_ALLOC` buffers stay attached to the device (spec 3.5).
    FailedLoadKeepsAllocations,
    /// qemu-11.1 `VMS_ALLOC` with AUTO_ALLOC: the pointer table comes from
    /// `g_try_malloc` (not zeroed), and the NULL-slot assertion sees poison
    /// (spec 3.6; `ErrorKind::AutoAllocSlotNotNull`).
    AllocAutoAllocUnzeroedTable,
}

impl Finding {
    pub const ALL: [Finding; 4] = [
        Finding::VmsAllocOverwrite,
        Finding::ComboAllocOverNonNull,
        Finding::FailedLoadKeepsAllocations,
        Finding::AllocAutoAllocUnzeroedTable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Finding::VmsAllocOverwrite => "VmsAllocOverwrite",
            Finding::ComboAllocOverNonNull => "ComboAllocOverNonNull",
            Finding::FailedLoadKeepsAllocations => "FailedLoadKeepsAllocations",
            Finding::AllocAutoAllocUnzeroedTable => "AllocAutoAllocUnzeroedTable",
        }
    }

    pub fn from_name(s: &str) -> Option<Finding> {
        Finding::ALL.into_iter().find(|f| f.name() == s)
    }

    /// The QEMU file, function and statement (or line) responsible.
    pub fn qemu_site(self) -> &'static str {
        match self {
            Finding::VmsAllocOverwrite => {
                "migration/vmstate.c vmstate_handle_alloc: `*base = g_malloc(size * n)` \
                 (qemu-10.x; qemu-11.1 after c3b99f30: `*base = g_try_malloc(bytes)`; \
                 alloc-combo: reached from vmstate_first, RFC 13/17 line 118 \
                 `if (alloc && field->flags & VMS_ALLOC)`): the old pointer is not freed"
            }
            Finding::ComboAllocOverNonNull => {
                "migration/vmstate.c vmstate_next (RFC 13/17, line 145): \
                 `if (!next || field->flags & VMS_ALLOC)` then \
                 `*array_elem = g_malloc0(field->size)`: the old element is not freed"
            }
            Finding::FailedLoadKeepsAllocations => {
                "migration/vmstate.c vmstate_load_vmsd: on a field error \
                 `qemu_file_set_error(f, ret); return false;` with no g_free of what \
                 vmstate_handle_alloc / vmstate_load_next allocated"
            }
            Finding::AllocAutoAllocUnzeroedTable => {
                "migration/vmstate.c vmstate_handle_alloc: `g_malloc` (11.1.3) or \
                 `g_try_malloc` (master), not g_malloc0, \
                 for the pointer table, then vmstate_load_next: \
                 `assert(!auto_alloc || *pptr == NULL)` reads the uninitialised slot"
            }
        }
    }

    /// The dialects whose code has this finding, read from their facts.
    pub fn dialects(self) -> Vec<Dialect> {
        match self {
            Finding::VmsAllocOverwrite | Finding::FailedLoadKeepsAllocations => {
                Dialect::ALL.to_vec()
            }
            Finding::ComboAllocOverNonNull => with_dynamic(Dynamic::ArrayOfPointerAlloc),
            Finding::AllocAutoAllocUnzeroedTable => with_dynamic(Dynamic::AutoAllocFlag),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.qemu_site())
    }
}

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

/// The leak oracle: compares the destination before (`before`) and after
/// (`after`) a load whose result was `result`.
pub fn check(
    d: Dialect,
    vmsd: &Vmsd,
    before: &Heap,
    after: &Heap,
    opaque: Addr,
    result: &Result<usize, Error>,
) -> Report {
    Before::new(d, vmsd, before, opaque).check(after, result)
}

/// The destination before a load, walked once, so that several loads from
/// it (the QEMU-faithful and the strict one) are checked against one walk.
pub struct Before<'a> {
    d: Dialect,
    vmsd: &'a Vmsd,
    heap: &'a Heap,
    opaque: Addr,
    reach: Reach<'a>,
    existed: BTreeSet<Addr>,
    /// The first slot (in address order) that held each base.
    holder: BTreeMap<Addr, (Addr, PathId)>,
}

impl<'a> Before<'a> {
    pub fn new(d: Dialect, vmsd: &'a Vmsd, heap: &'a Heap, opaque: Addr) -> Before<'a> {
        let reach = reach(d, vmsd, heap, opaque);
        let existed = heap.allocations().map(|a| a.base).collect();
        let mut holder = BTreeMap::new();
        for (&at, s) in &reach.slots {
            if let Some(b) = heap.allocation_at(s.value) {
                holder.entry(b.base).or_insert((at, s.path));
            }
        }
        Before {
            d,
            vmsd,
            heap,
            opaque,
            reach,
            existed,
            holder,
        }
    }

    /// [`check`] of a load from this destination.
    pub fn check(&self, after: &Heap, result: &Result<usize, Error>) -> Report {
        let Before {
            d,
            vmsd,
            heap: before,
            opaque,
            reach: ref r0,
            ref existed,
            holder: ref holder_before,
        } = *self;
        let r1 = reach(d, vmsd, after, opaque);
        let mut report = Report::default();
        // Which slot holds each base after the load (the last in address
        // order), then those the load made, by field with indexes dropped and
        // in address order: what overwrote a leaked allocation.
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
        let slot_cause = |slot_at: Addr| -> Cause {
            match r1.slots.get(&slot_at) {
                None => Cause::ContainerLost,
                Some(s) => cause_of(d, s.flags),
            }
        };
        for a in after.allocations().filter(|a| !a.freed) {
            if r1.reachable.contains(&a.base) {
                continue;
            }
            let made = !existed.contains(&a.base);
            match (&a.origin, made) {
                (Origin::Load { path, allocator }, true) => {
                    // Its slot was overwritten by a later allocation for the same
                    // field (the same element, or another element at the same
                    // address: a qemu-10.x array of pointers with `.size = 0`
                    // loads every element into slot 0).
                    let cause = held_by_field
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
                _ if r0.reachable.contains(&a.base) && a.base != opaque => {
                    let (slot_path, cause) = match holder_before.get(&a.base) {
                        Some(&(at, path)) => (r0.path(path), slot_cause(at)),
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
        for &(path, addr) in &r1.dangling {
            let path = r1.path(path);
            report.violations.push(Violation::Dangling { path, addr });
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
            if !a.freed && !existed.contains(&a.base) {
                report.made_live.push(a.base);
                report.made_bytes += a.size();
            }
        }
        report
    }
}

fn with_dynamic(dynamic: Dynamic) -> Vec<Dialect> {
    Dialect::ALL
        .into_iter()
        .filter(|d| d.facts().dynamic == dynamic)
        .collect()
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

/// Which finding's code overwrites a slot of a field with these flags.
fn cause_of(d: Dialect, flags: u32) -> Cause {
    if d.facts().dynamic == Dynamic::ArrayOfPointerAlloc && is_dynamic_array(d, flags) {
        Cause::Finding(Finding::ComboAllocOverNonNull)
    } else if d.has(flags, Flag::Pointer) && d.has(flags, Flag::Alloc) {
        Cause::Finding(Finding::VmsAllocOverwrite)
    } else {
        Cause::Overwrite
    }
}

/// The findings a QEMU-faithful load shows, or a description of what no
/// finding explains.
pub fn faithful(
    d: Dialect,
    vmsd: &Vmsd,
    before: &Heap,
    after: &Heap,
    opaque: Addr,
    result: &Result<usize, Error>,
) -> Result<BTreeSet<Finding>, String> {
    Before::new(d, vmsd, before, opaque).faithful(after, result)
}

impl Before<'_> {
    /// [`faithful`] of a load from this destination.
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
}

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

/// The strict-mode contract: after `Ok` the report is clean; after `Err`
/// every allocation that existed before is byte-for-byte as it was (same
/// freed flag) and everything the load made is freed.
pub fn strict(
    d: Dialect,
    vmsd: &Vmsd,
    before: &Heap,
    after: &Heap,
    opaque: Addr,
    result: &Result<usize, Error>,
) -> Result<(), String> {
    Before::new(d, vmsd, before, opaque).strict(after, result)
}

impl Before<'_> {
    /// [`strict`] of a load from this destination.
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
