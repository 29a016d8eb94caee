//! Reachability: every declared pointer slot a walk of the description
//! finds from the destination root, the way the loader walks it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use vmstate_reference::{Addr, Dialect, Field, Flag, Heap, Vmsd, element_addr, n_elems, size};

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

/// Walks the object at `opaque` as `vmsd` describes it, recording every
/// slot and path.
pub fn reach<'v>(d: Dialect, vmsd: &'v Vmsd, heap: &Heap, opaque: Addr) -> Reach<'v> {
    walk(d, vmsd, heap, opaque, Reach::default())
}

/// The reachable bases of a walk, and whether it met a dangling pointer:
/// all a clean load's check needs. A walk that records only these skips
/// the slot map and the path nodes; [`reach`] walks the same way.
#[derive(Debug, Default)]
pub struct Bases {
    /// Sorted, without repeats (after [`reach_bases`] returns).
    bases: Vec<Addr>,
    pub dangling: bool,
}

impl Bases {
    /// Whether the live allocation at `base` is reachable.
    pub fn contains(&self, base: Addr) -> bool {
        self.bases.binary_search(&base).is_ok()
    }
}

/// [`reach`], recording only the reachable bases and whether any declared
/// pointer dangles.
pub fn reach_bases(d: Dialect, vmsd: &Vmsd, heap: &Heap, opaque: Addr) -> Bases {
    let mut out = walk(d, vmsd, heap, opaque, Bases::default());
    // A walk meets bases mostly in address order: the sort is one pass.
    out.bases.sort_unstable();
    out.bases.dedup();
    out
}

/// What a walk keeps of what it meets.
trait Record<'v> {
    /// A path node; its id names the node in later calls.
    fn path(&mut self, parent: PathId, seg: Seg<'v>) -> PathId;
    fn slot(&mut self, at: Addr, slot: Slot);
    fn reachable(&mut self, base: Addr);
    fn dangling(&mut self, path: PathId, value: Addr);
}

impl<'v> Record<'v> for Reach<'v> {
    fn path(&mut self, parent: PathId, seg: Seg<'v>) -> PathId {
        self.paths.push(parent, seg)
    }
    fn slot(&mut self, at: Addr, slot: Slot) {
        self.slots.insert(at, slot);
    }
    fn reachable(&mut self, base: Addr) {
        self.reachable.insert(base);
    }
    fn dangling(&mut self, path: PathId, value: Addr) {
        self.dangling.push((path, value));
    }
}

impl<'v> Record<'v> for Bases {
    fn path(&mut self, _: PathId, _: Seg<'v>) -> PathId {
        0
    }
    fn slot(&mut self, _: Addr, _: Slot) {}
    fn reachable(&mut self, base: Addr) {
        self.bases.push(base);
    }
    fn dangling(&mut self, _: PathId, _: Addr) {
        self.dangling = true;
    }
}

fn walk<'v, R: Record<'v>>(d: Dialect, vmsd: &'v Vmsd, heap: &Heap, opaque: Addr, out: R) -> R {
    let mut w = Walker {
        d,
        heap,
        out,
        budget: WALK_BUDGET,
    };
    let root = w.out.path(0, Seg::Root(&vmsd.name));
    w.mark(opaque, root);
    w.vmsd(vmsd, opaque, root);
    w.out
}

struct Walker<'h, R> {
    d: Dialect,
    heap: &'h Heap,
    out: R,
    budget: u64,
}

impl<'v, R: Record<'v>> Walker<'_, R> {
    /// Records `value` as reachable; false if it points at nothing live.
    fn mark(&mut self, value: Addr, path: PathId) -> bool {
        if value == 0 {
            return false;
        }
        match self.heap.allocation_at(value) {
            Some(a) if a.freed => {
                self.out.dangling(path, value);
                false
            }
            Some(a) => {
                self.out.reachable(a.base);
                true
            }
            None => false,
        }
    }

    fn slot(&mut self, at: Addr, path: PathId, flags: u32) -> Option<Addr> {
        let value = self.heap.read_ptr(at).ok()?;
        self.out.slot(at, Slot { value, path, flags });
        self.mark(value, path).then_some(value)
    }

    fn vmsd(&mut self, vmsd: &'v Vmsd, opaque: Addr, path: PathId) {
        for field in &vmsd.fields {
            let fpath = self.out.path(path, Seg::Field(&field.name));
            self.field(field, opaque, fpath);
        }
        for sub in &vmsd.subsections {
            let seg = match sub.name.strip_prefix(vmsd.name.as_str()) {
                Some(rest) if rest.starts_with('/') => Seg::Suffix(rest),
                _ => Seg::Subsection(&sub.name),
            };
            let spath = self.out.path(path, seg);
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
                let epath = self.out.path(fpath, Seg::Index(i));
                if let (Some(elem), Some(v)) = (self.slot(at, epath, field.flags), nested) {
                    self.vmsd(v, elem, epath);
                }
            } else if let Some(v) = nested {
                let epath = self.out.path(fpath, Seg::Index(i));
                self.vmsd(v, at, epath);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::load_input;
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    /// The bases-only walk finds what the whole walk finds: the same
    /// reachable set and a dangling pointer exactly when it finds one, on
    /// generated destinations before and after a load, and after freeing
    /// one of their allocations (which makes declared pointers dangle).
    #[test]
    fn a_bases_only_walk_finds_what_the_whole_walk_finds() {
        let mut rng = StdRng::seed_from_u64(0x1eaf);
        let (mut compared, mut dangled) = (0, 0);
        for _ in 0..400 {
            let bytes: Vec<u8> = (0..512).map(|_| rng.random()).collect();
            let Some(input) = load_input(&bytes) else {
                continue;
            };
            let b = &input.built;
            let (vmsd, opaque) = (&b.dest.vmsd, b.dest.opaque);
            let mut loaded = b.dest.heap.clone();
            let _ = vmstate_reference::load_state(
                b.d,
                vmsd,
                &mut loaded,
                opaque,
                vmsd.version_id,
                &input.stream,
            );
            let mut freed = loaded.clone();
            let victim = loaded
                .allocations()
                .filter(|a| !a.freed && a.base != opaque)
                .map(|a| a.base)
                .nth(bytes[0] as usize % 4);
            if let Some(base) = victim {
                freed.free(base).unwrap();
            }
            for heap in [&b.dest.heap, &loaded, &freed] {
                let whole = reach(b.d, vmsd, heap, opaque);
                let bases = reach_bases(b.d, vmsd, heap, opaque);
                let listed: Vec<Addr> = whole.reachable.iter().copied().collect();
                assert_eq!(bases.bases, listed, "{}", input.case.to_json());
                assert_eq!(bases.dangling, !whole.dangling.is_empty());
                compared += 1;
                dangled += bases.dangling as usize;
            }
        }
        assert!(
            compared > 600 && dangled > 20,
            "{compared} walks, {dangled} dangling"
        );
    }
}
