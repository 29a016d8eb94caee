//! "Load never leaks" (issue 4). For generated devices and streams derived
//! from their saved bytes (the stream itself, truncations, single-byte
//! replacements, marker flips, hostile counts), every load returns Ok or
//! Err without panicking, and:
//! - QEMU-faithful (reference model): the leak oracle attributes whatever
//!   is lost to a named `leak::Finding`, nothing else;
//! - strict (optimized codec, `Compiled::load_strict`): nothing leaks,
//!   nothing dangles, a failed load leaves the destination exactly as it
//!   was, and the heap grows by at most `strict_alloc_ratio x len + slack`.
//!
//! `PROPTEST_CASES` scales the run (default 256 cases for the cheap
//! properties, a quarter of that for the per-offset one). Truncation "at
//! every offset" is sampled here (16 offsets per case, always including 0
//! and len-1); the `load` fuzz target and tests/corpus_replay.rs cover the
//! rest.

mod common;
use arbitrary::{Arbitrary, Unstructured};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::path::Path;
use vmstate_harness::case::{self, ctype::Types, run::prepare, spec::CaseFile, value};
use vmstate_harness::codec::{Compiled, STRICT_SLACK};
use vmstate_harness::fuzz::{self, load_never_leaks};
use vmstate_harness::generate::{GenCase, RoundTrip};
use vmstate_harness::leak::{self, Finding};
use vmstate_harness::oracle::{Built, Mutation, stream_of};
use vmstate_reference::{Dialect, QEMU_VM_EOF};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256)
}

fn arb_case() -> impl Strategy<Value = GenCase> {
    proptest::collection::vec(any::<u8>(), 0..4096)
        .prop_filter_map("arbitrary rejected the bytes", |bytes| {
            GenCase::arbitrary_take_rest(Unstructured::new(&bytes)).ok()
        })
}

/// Devices that round-trip (fresh or reset destination, nothing hostile).
fn arb_round_trip_case() -> impl Strategy<Value = GenCase> {
    proptest::collection::vec(any::<u8>(), 0..4096).prop_filter_map(
        "arbitrary rejected the bytes",
        |bytes| {
            RoundTrip::arbitrary_take_rest(Unstructured::new(&bytes))
                .ok()
                .map(|r| r.0)
        },
    )
}

fn saved_stream(b: &Built) -> Vec<u8> {
    let saved = b
        .reference_save()
        .map(|(bytes, _)| bytes)
        .unwrap_or_default();
    stream_of(&saved)
}

fn run(case: &GenCase, b: &Built, stream: &[u8], what: &str) -> Result<(), TestCaseError> {
    load_never_leaks(b, stream).map_err(|e| {
        TestCaseError::fail(format!(
            "{what}\n{e}\nstream {}\ncase file:\n{}",
            hex::encode(stream),
            case.to_json()
        ))
    })
}

/// `PROPTEST_CASES / div` cases, failures persisted for replay.
fn config(div: u32) -> ProptestConfig {
    ProptestConfig {
        cases: (cases() / div).max(1),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/leaks.txt",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(4))]
    /// One mutation of each kind per case (the kinds of `oracle::Mutation`).
    #[test]
    fn load_never_leaks_under_mutations(case in arb_case(), at in any::<u16>(), byte in any::<u8>()) {
        let Some(b) = fuzz::build(&case) else { return Ok(()) };
        let stream = saved_stream(&b);
        for m in [
            Mutation::None,
            Mutation::Truncate(at),
            Mutation::Replace(at, byte),
            Mutation::Marker(at, false, false),
            Mutation::Marker(at, true, false),
            Mutation::Marker(at, true, true),
            Mutation::HostileCount(at),
        ] {
            run(&case, &b, &m.apply(&stream), &format!("{m:?}"))?;
        }
    }

}

proptest! {
    #![proptest_config(config(8))]
    /// Truncations at 16 offsets of each stream (0 and len-1 always), and a
    /// hostile 0xffffffff at 4 offsets followed by only 3 bytes.
    #[test]
    fn load_never_leaks_truncated(case in arb_case(), offsets in proptest::collection::vec(any::<u16>(), 14)) {
        let Some(b) = fuzz::build(&case) else { return Ok(()) };
        let stream = saved_stream(&b);
        let len = stream.len();
        let mut cuts: Vec<usize> = offsets.iter().map(|&o| o as usize % len.max(1)).collect();
        cuts.extend([0, len.saturating_sub(1)]);
        for cut in cuts {
            run(&case, &b, &stream[..cut], &format!("truncated at {cut}"))?;
        }
        for &o in offsets.iter().take(4) {
            let at = o as usize % len.max(1);
            let mut hostile = stream[..at].to_vec();
            hostile.extend([0xff, 0xff, 0xff, 0xff, 0x31, 0x00, 0x01]);
            run(&case, &b, &hostile, &format!("0xffffffff at {at}, 3 bytes after"))?;
        }
    }

}

proptest! {
    #![proptest_config(config(1))]
    /// Strict mode loads what the source saved: load_strict(save(x)) == x.
    #[test]
    fn strict_load_of_save_gives_back_the_state(case in arb_round_trip_case()) {
        let Some(b) = fuzz::build(&case) else { return Ok(()) };
        let Ok((saved, _)) = b.reference_save() else { return Ok(()) };
        let stream = stream_of(&saved);
        let mut heap = b.dest.heap.clone();
        let version = b.src.vmsd.version_id;
        let consumed = Compiled::new(b.d, &b.dest.vmsd)
            .load_strict(&mut heap, b.dest.opaque, version, &stream)
            .map_err(|e| TestCaseError::fail(format!("strict load failed: {e}\n{}", case.to_json())))?;
        prop_assert_eq!(consumed, saved.len());
        let want = case.state();
        let got = value::read(&heap, &b.types, &b.dest.ty, b.dest.opaque, Some(want))
            .map_err(TestCaseError::fail)?;
        prop_assert_eq!(&got, want, "{}", case.to_json());
    }
}

/// A case file from corpus/findings, prepared for one dialect.
fn finding_case(
    file: &str,
    d: Dialect,
) -> (
    CaseFile,
    Types,
    vmstate_harness::case::run::Prepared,
    Vec<u8>,
) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus/findings")
        .join(file);
    let file: CaseFile = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let types = Types::new(&file.structs).unwrap();
    let spec = &file.cases[0];
    let dst = prepare(&file, &types, spec, d, spec.dest.as_ref().unwrap()).unwrap();
    let mut stream = value::parse_hex(spec.wire.as_deref().unwrap()).unwrap();
    stream.push(QEMU_VM_EOF);
    (file, types, dst, stream)
}

#[test]
fn every_finding_reproduces() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/findings");
    let files = case::case_files(&dir).expect("corpus/findings is readable");
    let results: Vec<_> = files
        .iter()
        .flat_map(|f| vmstate_harness::cli::findings::run_file(f))
        .collect();
    let failures: Vec<String> = results
        .iter()
        .filter(|r| r.failure.is_some())
        .map(|r| r.to_string())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for r in &results {
        let want = r.expected.expect("every finding case names its finding");
        assert!(
            r.found.contains(&want),
            "{r}: the replay found {:?}",
            r.found
        );
    }
    for f in Finding::ALL {
        assert!(
            results.iter().any(|r| r.expected == Some(f)),
            "no reproducer for {f:?}"
        );
    }
    // The finding files are ordinary case files too.
    let plain: Vec<_> = files
        .iter()
        .flat_map(|f| case::run_file(f, &vmstate_harness::engine::Reference))
        .filter(|r| r.failure.is_some())
        .collect();
    assert!(plain.is_empty(), "{plain:#?}");
}

/// The oracle can fail: the QEMU-faithful result of a finding breaks the
/// strict contract, and naming nothing leaves it unexplained.
#[test]
fn the_leak_oracle_sees_the_overwritten_buffer() {
    for d in Dialect::ALL {
        let (_, _, dst, stream) = finding_case("vms_alloc_overwrite.json", d);
        let mut heap = dst.heap.clone();
        let r = vmstate_reference::load_state(d, &dst.vmsd, &mut heap, dst.opaque, 1, &stream);
        assert!(r.is_ok());
        let report = leak::Before::new(d, &dst.vmsd, &dst.heap, dst.opaque).check(&heap, &r);
        assert_eq!(report.violations.len(), 1, "{report}");
        assert!(
            leak::Before::new(d, &dst.vmsd, &dst.heap, dst.opaque)
                .strict(&heap, &r)
                .is_err()
        );
        let found = leak::Before::new(d, &dst.vmsd, &dst.heap, dst.opaque)
            .faithful(&heap, &r)
            .unwrap();
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            [Finding::VmsAllocOverwrite]
        );
        // The same leak made by an unnamed pointer write is unexplained.
        let mut vmsd = dst.vmsd.clone();
        vmsd.fields[1].flags &= !d.bit(vmstate_reference::Flag::Alloc).unwrap();
        let mut heap2 = dst.heap.clone();
        let buf = heap2.read_ptr(dst.opaque + 8).unwrap();
        let other = heap2.alloc_prepared(vec![1, 2, 3]).unwrap();
        heap2.write_ptr(dst.opaque + 8, other).unwrap();
        let err = leak::Before::new(d, &vmsd, &dst.heap, dst.opaque)
            .faithful(&heap2, &Ok(0))
            .unwrap_err();
        assert!(err.contains(&format!("{buf:#x}")), "{err}");
    }
}

/// A failed strict load restores pointers and bytes and frees what it made.
#[test]
fn a_failed_strict_load_restores_the_destination() {
    let (_, _, dst, stream) = finding_case("vms_alloc_overwrite.json", Dialect::Qemu11_1);
    let codec = Compiled::new(Dialect::Qemu11_1, &dst.vmsd);
    for cut in 0..stream.len() - 1 {
        let mut heap = dst.heap.clone();
        let r = codec.load_strict(&mut heap, dst.opaque, 1, &stream[..cut]);
        assert!(r.is_err(), "cut {cut}");
        leak::Before::new(Dialect::Qemu11_1, &dst.vmsd, &dst.heap, dst.opaque)
            .strict(&heap, &r)
            .unwrap();
        assert_eq!(heap.live_bytes(), dst.heap.live_bytes());
    }
}

/// Hostile counts: a uint32 VARRAY count of 2^32-1 (and 2^31-1, 0xffff)
/// with a few bytes after it, on VMS_ALLOC and auto-allocated arrays.
#[test]
fn hostile_counts_allocate_boundedly() {
    let text = common::HOSTILE_COUNTS;
    let file: CaseFile = serde_json::from_str(text).unwrap();
    for d in [Dialect::Qemu11_1, Dialect::AllocCombo, Dialect::Qemu10] {
        let mut file = file.clone();
        if d == Dialect::Qemu10 {
            file.vmsds[0].fields.truncate(2); // no AUTO_ALLOC in qemu-10.x
        }
        let case = GenCase::from_file(d, file);
        let b = fuzz::build(&case).unwrap();
        for head in [
            &[0xff, 0xff, 0xff, 0xff][..],
            &[0x7f, 0xff, 0xff, 0xff],
            &[0x00, 0x00, 0xff, 0xff],
            &[0x00, 0x00, 0x00, 0x00, 0xff, 0xff],
        ] {
            for tail in [&[][..], &[1, 2, 3], &[0x31, 0, 0, 0, 1, 0x31]] {
                let mut stream = head.to_vec();
                stream.extend_from_slice(tail);
                load_never_leaks(&b, &stream).unwrap_or_else(|e| panic!("{d} {stream:x?}: {e}"));
                let mut heap = b.dest.heap.clone();
                heap.reset_peak();
                let codec = Compiled::new(d, &b.dest.vmsd);
                let _ = codec.load_strict(&mut heap, b.dest.opaque, 1, &stream);
                // The peak: a failed strict load frees all it made.
                let growth = heap.peak_live_bytes() - b.dest.heap.live_bytes();
                assert!(growth <= codec.strict_alloc_ratio() * stream.len() as u64 + STRICT_SLACK);
            }
        }
    }
}
