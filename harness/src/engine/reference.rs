//! The reference model as an engine.

use super::{Engine, Run};
use vmstate_reference::{Addr, Dialect, Error, Heap, Vmsd};

/// vmstate-reference: the executable spec.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reference;

impl Engine for Reference {
    fn name(&self) -> String {
        "reference".into()
    }
    fn dialects(&self) -> Vec<Dialect> {
        Dialect::ALL.to_vec()
    }
    fn exact(&self) -> bool {
        true
    }
    fn check(&self, d: Dialect, vmsd: &Vmsd) -> Option<Result<(), Error>> {
        Some(vmstate_reference::check(d, vmsd))
    }
    fn save(&self, d: Dialect, vmsd: &Vmsd, heap: &Heap, opaque: Addr) -> Run<Vec<u8>> {
        Ok(vmstate_reference::save_state(d, vmsd, heap, opaque)?)
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
        Ok(vmstate_reference::load_state(
            d, vmsd, heap, opaque, version, stream,
        )?)
    }
}
