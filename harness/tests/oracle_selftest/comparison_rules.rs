//! The engine-comparison oracles (`oracle::save_agrees_with`,
//! `load_agrees_with`, `round_trip_with`) report an engine that lies: a
//! wrapper around the reference model that changes one thing, next to the
//! honest pair that must pass.

use arbitrary::Unstructured;
use vmstate_harness::engine::{Engine, Reference, Run};
use vmstate_harness::generate::{GenCase, generate_round_trip};
use vmstate_harness::oracle::{self, Built, Mutation};
use vmstate_reference::{Addr, Dialect, Error, Heap, Vmsd};

/// What the lying engine gets wrong.
#[derive(Clone, Copy)]
enum Lie {
    /// Its save flips the last byte.
    SaveByte,
    /// Its load says it consumed one byte more.
    Consumed,
}

struct Liar(Lie);

impl Engine for Liar {
    fn name(&self) -> String {
        "liar".into()
    }
    fn dialects(&self) -> Vec<Dialect> {
        Reference.dialects()
    }
    fn check(&self, d: Dialect, vmsd: &Vmsd) -> Option<Result<(), Error>> {
        Reference.check(d, vmsd)
    }
    fn save(&self, d: Dialect, vmsd: &Vmsd, heap: &Heap, opaque: Addr) -> Run<Vec<u8>> {
        let mut bytes = Reference.save(d, vmsd, heap, opaque)?;
        if let (Lie::SaveByte, Some(last)) = (self.0, bytes.last_mut()) {
            *last ^= 0xff;
        }
        Ok(bytes)
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
        let n = Reference.load(d, vmsd, heap, opaque, version, stream)?;
        Ok(match self.0 {
            Lie::Consumed => n + 1,
            Lie::SaveByte => n,
        })
    }
}

/// A generated device (qemu-master) whose reference save succeeds with at
/// least one byte.
fn device() -> GenCase {
    for seed in 0u32..1000 {
        let bytes: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) as u8)
            .collect();
        let Ok(case) = generate_round_trip(&mut Unstructured::new(&bytes), Dialect::QemuMaster)
        else {
            continue;
        };
        let saved = Built::new(&case, case.dialect)
            .ok()
            .and_then(|b| b.reference_bytes().ok());
        if saved.is_some_and(|s| !s.is_empty()) {
            return case;
        }
    }
    panic!("no device with a non-empty save in 1000 seeds");
}

#[test]
fn save_agreement_reports_a_changed_byte() {
    let case = device();
    oracle::save_agrees_with(&case, &[&Reference, &Reference]).expect("honest pair");
    let err = oracle::save_agrees_with(&case, &[&Reference, &Liar(Lie::SaveByte)]).unwrap_err();
    assert!(err.report.contains("bytes differ"), "{err}");
}

#[test]
fn load_agreement_reports_a_different_result() {
    let case = device();
    oracle::load_agrees_with(&case, &Mutation::None, &[&Reference, &Reference])
        .expect("honest pair");
    let err = oracle::load_agrees_with(&case, &Mutation::None, &[&Reference, &Liar(Lie::Consumed)])
        .unwrap_err();
    assert!(err.report.contains("liar"), "{err}");
}

#[test]
fn round_trip_reports_a_short_consume_and_a_wrong_state() {
    let case = device();
    oracle::round_trip_with(&case, &[&Reference]).expect("honest engine");
    for lie in [Lie::Consumed, Lie::SaveByte] {
        let err = oracle::round_trip_with(&case, &[&Liar(lie)]).unwrap_err();
        assert!(err.report.starts_with("liar:"), "{err}");
    }
}
