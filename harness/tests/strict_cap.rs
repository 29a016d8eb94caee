//! The strict-mode allocation cap, checked against bounds this file derives
//! from the description and the stream length by its own rules (never
//! `Compiled::strict_alloc_ratio` or `STRICT_SLACK`), on the most bytes
//! live at once during the load (the heap's peak), not only on what is
//! live at the end: a failed strict load frees everything it made, so the
//! end alone would hide any overshoot.

mod common;
use arbitrary::{Arbitrary, Unstructured};
use proptest::prelude::*;
use vmstate_harness::case::spec::CaseFile;
use vmstate_harness::codec::Compiled;
use vmstate_harness::fuzz;
use vmstate_harness::generate::GenCase;
use vmstate_harness::oracle::{Built, Mutation, stream_of};
use vmstate_reference::{Dialect, ErrorKind, Flag, Heap, Vmsd, is_dynamic_array};

/// Bytes the contract lets a strict load allocate for descriptions where
/// some allocated element has nothing on the wire (an empty struct): a
/// fixed 16 KiB per load, as the codec's documentation promises.
const SLACK: u64 = 16 * 1024;

/// Strict-loads `stream` into a clone of `before`; returns the result, the
/// growth at the peak and the growth at the end.
fn strict_load(
    d: Dialect,
    vmsd: &Vmsd,
    before: &Heap,
    opaque: u64,
    stream: &[u8],
) -> (Result<usize, vmstate_reference::Error>, u64, u64) {
    let mut heap = before.clone();
    heap.reset_peak();
    let r = Compiled::new(d, vmsd).load_strict(&mut heap, opaque, vmsd.version_id, stream);
    let peak = heap.peak_live_bytes() - before.live_bytes();
    let end = heap.live_bytes().saturating_sub(before.live_bytes());
    (r, peak, end)
}

use common::HOSTILE_COUNTS as HOSTILE;

/// The hostile-count device in `d` (no AUTO_ALLOC array in qemu-10.x),
/// with its bytes-per-wire-byte worked out by hand:
/// - `v`: 4 bytes allocated per uint32 element, which is 4 wire bytes: 1;
/// - `arr`: one 4-byte `S` per element, which takes at least its 0x31
///   marker byte on the wire: 4.
fn hostile(d: Dialect) -> (Built, u64) {
    let mut file: CaseFile = serde_json::from_str(HOSTILE).unwrap();
    let ratio = if d == Dialect::Qemu10 {
        file.vmsds[0].fields.truncate(2);
        1
    } else {
        1 + 4
    };
    (fuzz::build(&GenCase::from_file(d, file)).unwrap(), ratio)
}

#[test]
fn hostile_counts_peak_within_a_hand_derived_bound() {
    for d in [Dialect::Qemu11_1, Dialect::AllocCombo, Dialect::Qemu10] {
        let (b, ratio) = hostile(d);
        let (vmsd, before, o) = (&b.dest.vmsd, &b.dest.heap, b.dest.opaque);
        for head in [
            &[0xff, 0xff, 0xff, 0xff][..],
            &[0x7f, 0xff, 0xff, 0xff],
            &[0x00, 0x00, 0xff, 0xff],
            &[0x00, 0x00, 0x00, 0x00, 0xff, 0xff],
            &[0x00, 0x00, 0x00, 0x00, 0x00, 0x02],
        ] {
            for tail in [&[][..], &[1, 2, 3], &[0x31, 0, 0, 0, 1, 0x31, 0, 0, 0, 2]] {
                let mut stream = head.to_vec();
                stream.extend_from_slice(tail);
                let bound = ratio * stream.len() as u64 + SLACK;
                let (r, peak, _) = strict_load(d, vmsd, before, o, &stream);
                assert!(
                    peak <= bound,
                    "{d} {stream:x?}: {r:?} peak {peak} > {bound}"
                );
            }
        }
    }
}

/// At the edge of the bound: a count whose buffer just fits is allocated
/// (and freed again when the stream ends early, so only the peak shows
/// it); one more element is refused before anything is allocated.
#[test]
fn the_cap_is_the_hand_derived_bound_exactly_and_the_peak_sees_it() {
    for d in [Dialect::Qemu11_1, Dialect::AllocCombo, Dialect::Qemu10] {
        let (b, ratio) = hostile(d);
        let (vmsd, before, o) = (&b.dest.vmsd, &b.dest.heap, b.dest.opaque);
        let len = 7u64; // the count, then 3 bytes of the first element
        let fits = (ratio * len + SLACK) / 4;
        for (n, ok) in [(fits, true), (fits + 1, false)] {
            let mut stream = (n as u32).to_be_bytes().to_vec();
            stream.extend([1, 2, 3]);
            let (r, peak, end) = strict_load(d, vmsd, before, o, &stream);
            assert_eq!(end, 0, "{d}: a failed strict load frees all it made");
            if ok {
                assert_eq!(peak, 4 * n, "{d} n={n}: {r:?}");
                assert!(matches!(r, Err(ref e) if e.kind == ErrorKind::Eof), "{r:?}");
            } else {
                assert_eq!(peak, 0, "{d} n={n}");
                assert!(
                    matches!(r, Err(ref e) if matches!(e.kind, ErrorKind::AllocFailed { .. })),
                    "{d} n={n}: {r:?}"
                );
            }
        }
    }
}

/// An upper bound on the bytes any load may allocate per wire byte,
/// from the description by this file's own (looser) rules: every
/// allocating field, at any depth, counts its element size and at least
/// one wire byte per element:
/// - an auto-allocated element (`is_dynamic_array`): `size` bytes;
/// - a `VMS_POINTER|VMS_ALLOC` buffer: `size` bytes per element, at least
///   a pointer's 8 (a table of pointers), at least 1 (scalars and buffers
///   take as many wire bytes as they allocate).
fn generous_ratio(d: Dialect, vmsd: &Vmsd) -> u64 {
    per_byte(d, vmsd).max(1)
}

fn per_byte(d: Dialect, vmsd: &Vmsd) -> u64 {
    let mut k = 0u64;
    for f in &vmsd.fields {
        if is_dynamic_array(d, f.flags) {
            k = k.saturating_add(f.size.max(1));
        }
        if d.has(f.flags, Flag::Pointer) && d.has(f.flags, Flag::Alloc) {
            k = k.saturating_add(f.size.max(8));
        }
        if let Some(v) = &f.vmsd {
            k = k.saturating_add(per_byte(d, v));
        }
    }
    for s in &vmsd.subsections {
        k = k.saturating_add(per_byte(d, s));
    }
    k
}

#[test]
fn the_generous_ratio_of_the_hostile_device() {
    for d in [Dialect::Qemu11_1, Dialect::AllocCombo, Dialect::Qemu10] {
        let (b, ratio) = hostile(d);
        // v counts 8 (a pointer) instead of 1; arr counts its S, and in
        // alloc-combo (AUTO_ALLOC is ARRAY_OF_POINTER|ALLOC there) also a
        // pointer table, which vmstate_first does not allocate
        // (`alloc = !(flags & VMS_ARRAY_OF_POINTER)`): generous, not wrong.
        let table = if d == Dialect::AllocCombo { 8 } else { 0 };
        assert_eq!(generous_ratio(d, &b.dest.vmsd), ratio + 7 + table, "{d}");
    }
}

fn arb_case() -> impl Strategy<Value = GenCase> {
    proptest::collection::vec(any::<u8>(), 0..4096)
        .prop_filter_map("arbitrary rejected the bytes", |bytes| {
            GenCase::arbitrary_take_rest(Unstructured::new(&bytes)).ok()
        })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(128)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    /// On generated devices and mutated streams, the peak of a strict load
    /// stays within the generous bound.
    #[test]
    fn strict_peak_within_the_generous_bound(case in arb_case(), at in any::<u16>(), byte in any::<u8>()) {
        let Some(b) = fuzz::build(&case) else { return Ok(()) };
        let saved = b.reference_save().map(|(bytes, _)| bytes).unwrap_or_default();
        let stream = stream_of(&saved);
        let vmsd = &b.dest.vmsd;
        let ratio = generous_ratio(b.d, vmsd);
        for m in [
            Mutation::None,
            Mutation::Truncate(at),
            Mutation::Replace(at, byte),
            Mutation::HostileCount(at),
        ] {
            let stream = m.apply(&stream);
            let bound = ratio.saturating_mul(stream.len() as u64).saturating_add(SLACK);
            let (r, peak, _) = strict_load(b.d, vmsd, &b.dest.heap, b.dest.opaque, &stream);
            prop_assert!(peak <= bound, "{m:?}: {r:?} peak {peak} > {bound}\n{}", case.to_json());
        }
    }
}

/// The `load` fuzz target's cap admits a legitimate load that allocates far
/// more than one byte per wire byte: 8 AUTO_ALLOC elements of a 4,097-byte
/// struct with two bytes on the wire each (its 0x31 marker and `a`): 32,776
/// bytes for an 18-byte save, 276 bytes with the trailer `stream_of` adds,
/// so above 276 + 16 KiB.
#[test]
fn the_load_targets_cap_admits_large_elements_with_few_wire_bytes() {
    let file: CaseFile = serde_json::from_str(
        r#"{"structs": {"S": "uint8_t a; uint8_t pad[4096];", "P": "uint16_t m; S **arr;"},
            "vmsds": [
              {"name": "p", "struct": "P", "fields": [
                {"member": "m", "info": "uint16"},
                {"member": "arr", "vmsd": "s", "count": "m",
                 "flags": "POINTER|VARRAY|ARRAY_OF_POINTER|STRUCT|AUTO_ALLOC"}]},
              {"name": "s", "struct": "S", "fields": [{"member": "a", "info": "uint8"}]}],
            "cases": [{"name": "big", "dialects": ["qemu-11.1"],
                       "state": {"m": 8, "arr": [{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4},
                                                 {"a": 5}, {"a": 6}, {"a": 7}, {"a": 8}]},
                       "dest": {"m": 0, "arr": [null, null, null, null, null, null, null, null]}}]}"#,
    )
    .unwrap();
    let b = fuzz::build(&GenCase::from_file(Dialect::Qemu11_1, file)).unwrap();
    let saved = b.reference_bytes().unwrap();
    assert_eq!(saved.len(), 2 + 8 * 2, "{saved:x?}");
    let stream = stream_of(&saved);
    let (r, peak, _) = strict_load(b.d, &b.dest.vmsd, &b.dest.heap, b.dest.opaque, &stream);
    assert!(r.is_ok(), "{r:?}");
    assert!(
        peak >= 8 * 4097 && peak > stream.len() as u64 + SLACK,
        "{peak}"
    );
    fuzz::load_never_leaks(&b, &stream).expect("within the target's cap");
}
