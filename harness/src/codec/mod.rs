//! The optimized codec: the same semantics as vmstate-reference, written
//! independently for speed. A description is compiled once into a
//! [`plan::VmsdPlan`]; save and load then follow the plan.

pub mod check;
mod load;
pub mod plan;
mod save;
mod strict;
mod walk;

use std::sync::atomic::{AtomicUsize, Ordering};
pub use strict::STRICT_SLACK;
use vmstate_reference::{Addr, Dialect, Error, Heap, Limits, Vmsd};

/// A description compiled for one dialect.
#[derive(Debug)]
pub struct Compiled {
    pub dialect: Dialect,
    plan: plan::VmsdPlan,
    limits: Limits,
    /// The last save's size: the next save's buffer is allocated once.
    last_size: AtomicUsize,
}

impl Compiled {
    pub fn new(d: Dialect, vmsd: &Vmsd) -> Compiled {
        Compiled::with_limits(d, vmsd, Limits::default())
    }

    pub fn with_limits(d: Dialect, vmsd: &Vmsd, limits: Limits) -> Compiled {
        Compiled {
            dialect: d,
            plan: plan::compile(d, vmsd),
            limits,
            last_size: AtomicUsize::new(0),
        }
    }

    /// `vmstate_save_state`
    pub fn save(&self, heap: &Heap, opaque: Addr) -> Result<Vec<u8>, Error> {
        let hint = self.last_size.load(Ordering::Relaxed);
        let out = save::save(
            &self.plan,
            heap,
            opaque,
            &self.limits,
            Vec::with_capacity(hint),
        )?;
        self.last_size.store(out.len(), Ordering::Relaxed);
        Ok(out)
    }

    /// [`Compiled::save`] into a caller's buffer, reusing its capacity:
    /// repeated saves allocate nothing. On error `out` is left empty.
    pub fn save_into(&self, heap: &Heap, opaque: Addr, out: &mut Vec<u8>) -> Result<(), Error> {
        *out = save::save(&self.plan, heap, opaque, &self.limits, std::mem::take(out))?;
        Ok(())
    }

    /// `vmstate_load_state` plus the caller's file-error check.
    pub fn load(
        &self,
        heap: &mut Heap,
        opaque: Addr,
        version_id: i32,
        stream: &[u8],
    ) -> Result<usize, Error> {
        load::load(&self.plan, heap, opaque, version_id, stream, &self.limits)
    }

    /// [`Compiled::load`] in strict mode, which never leaks: see
    /// `load_strict` in load.rs. The QEMU-faithful [`Compiled::load`] is untouched.
    pub fn load_strict(
        &self,
        heap: &mut Heap,
        opaque: Addr,
        version_id: i32,
        stream: &[u8],
    ) -> Result<usize, Error> {
        load::load_strict(&self.plan, heap, opaque, version_id, stream, &self.limits)
    }

    /// Bytes a strict load may allocate per input byte (see
    /// `alloc_ratio` in strict.rs); the cap is this times the input length plus
    /// [`STRICT_SLACK`].
    pub fn strict_alloc_ratio(&self) -> u64 {
        strict::alloc_ratio(&self.plan)
    }
}
