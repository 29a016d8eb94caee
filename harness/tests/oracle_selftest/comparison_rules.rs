//! The engine-comparison oracles (`oracle::save_agrees_with`,
//! `load_agrees_with`, `round_trip_with`) report an engine that lies: a
//! wrapper around the reference model that changes one thing, next to the
//! honest pair that must pass. The liar is not exact (like QEMU's engine:
//! its failures carry a class, not the model's kind, offset and path), so
//! it also shows which of its failures `round_trip_with` leaves to other
//! properties.

use arbitrary::Unstructured;
use vmstate_harness::case::spec::CaseFile;
use vmstate_harness::engine::{Engine, Failed, Reference, Run};
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
    /// Its save fails as QEMU's would (`ret < 0`).
    SaveFails,
    /// Its load gives no verdict (a lost driver, a timeout).
    LoadLost,
    /// Its load fails as QEMU's would.
    LoadFails,
    /// Its save gives no bytes, but succeeds, whatever the reference does.
    SavesNothing,
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
        match self.0 {
            Lie::SaveFails => {
                return Err(Failed::Qemu {
                    ret: -22,
                    message: "made up".into(),
                });
            }
            Lie::SavesNothing => return Ok(vec![]),
            _ => {}
        }
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
        match self.0 {
            Lie::LoadLost => return Err(Failed::Lost("made up".into())),
            Lie::LoadFails => {
                return Err(Failed::Qemu {
                    ret: -22,
                    message: "made up".into(),
                });
            }
            _ => {}
        }
        let n = Reference.load(d, vmsd, heap, opaque, version, stream)?;
        Ok(match self.0 {
            Lie::Consumed => n + 1,
            _ => n,
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

/// What `round_trip_with` leaves to other properties for an engine that is
/// not exact: a failed save (the save property compares it), a load with no
/// verdict, and any device the reference cannot save. A failed load is a
/// failure, and so is an exact engine's failed save.
#[test]
fn round_trip_leaves_a_qemu_save_failure_and_a_lost_load_to_others() {
    let case = device();
    oracle::round_trip_with(&case, &[&Liar(Lie::SaveFails)]).expect("the save property's");
    oracle::round_trip_with(&case, &[&Liar(Lie::LoadLost)]).expect("no verdict");
    let err = oracle::round_trip_with(&case, &[&Liar(Lie::LoadFails)]).unwrap_err();
    assert!(err.report.contains("load failed"), "{err}");
    // The reference cannot save this device (a NULL VMS_POINTER base with
    // two elements): the liar's empty save is not round-tripped.
    let file: CaseFile = serde_json::from_str(
        r#"{"structs": {"NP": "uint8_t n; uint32_t *p;"},
            "vmsds": [{"name": "np", "struct": "NP", "version_id": 1, "minimum_version_id": 1,
              "fields": [{"member": "n", "info": "uint8"},
                         {"member": "p", "info": "uint32", "count": "n", "flags": "POINTER|VARRAY"}]}],
            "cases": [{"name": "null base", "dialects": ["qemu-master"], "state": {"n": 2, "p": null},
                       "dest": {"n": 0, "p": null}}]}"#,
    )
    .unwrap();
    let unsaveable = GenCase::from_file(Dialect::QemuMaster, file);
    let b = Built::new(&unsaveable, Dialect::QemuMaster).unwrap();
    assert!(b.reference_bytes().is_err());
    oracle::round_trip_with(&unsaveable, &[&Liar(Lie::SavesNothing)]).expect("nothing to compare");
    let err = oracle::round_trip_with(&unsaveable, &[&Reference]).unwrap_err();
    assert!(err.report.contains("save failed"), "{err}");
    // The same empty save of a device the reference can save is a failure.
    let err = oracle::round_trip_with(&case, &[&Liar(Lie::SavesNothing)]).unwrap_err();
    assert!(err.report.starts_with("liar:"), "{err}");
}
