//! The optimized codec as an engine (compiles the description on every call).

use super::{Engine, Run};
use crate::codec::{self, Compiled};
use vmstate_reference::{Addr, Dialect, Error, Heap, Vmsd};

/// The optimized codec of `harness/src/codec`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Optimized;

impl Engine for Optimized {
    fn name(&self) -> String {
        "optimized".into()
    }
    fn dialects(&self) -> Vec<Dialect> {
        Dialect::ALL.to_vec()
    }
    fn exact(&self) -> bool {
        true
    }
    fn check(&self, d: Dialect, vmsd: &Vmsd) -> Option<Result<(), Error>> {
        Some(codec::check::check(d, vmsd))
    }
    fn save(&self, d: Dialect, vmsd: &Vmsd, heap: &Heap, opaque: Addr) -> Run<Vec<u8>> {
        Ok(Compiled::new(d, vmsd).save(heap, opaque)?)
    }
    fn load(
        &self,
        d: Dialect,
        vmsd: &Vmsd,
        heap: &mut Heap,
        opaque: Addr,
        version: i32,
        stream: &[u8],
    ) -> Run<usize> {
        Ok(Compiled::new(d, vmsd).load(heap, opaque, version, stream)?)
    }
}
