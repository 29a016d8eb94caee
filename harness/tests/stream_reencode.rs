//! Re-encode: every device section of every committed real QEMU stream
//! (10.0.2 and 11.1.3), described from its vmdesc in the dialect of the
//! QEMU that wrote it, loads with the optimized codec and saves back to the
//! very same bytes.
//!
//! Excluded: the sections of iterative handlers, which are not VMSDs: `ram`
//! (every stream) and `s390-storage_attributes` (s390x).
mod common;
use common::{STREAMS, STREAMS_11, all_streams, stream, stream_11};
use vmstate_harness::reencode::{
    Comparison, Dest, ReencodeError, ReencodeReport, rebuild, reencode_payload, reencode_stream,
    stream_version,
};
use vmstate_harness::stream::{Content, Record, Section, parse};
use vmstate_reference::{Dialect, ErrorKind};

fn report(name: &str) -> ReencodeReport {
    reencode_stream(stream(name), None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn failures(r: &ReencodeReport) -> Vec<String> {
    r.sections
        .iter()
        .filter(|s| !s.identical())
        .map(|s| format!("{} ({}): {:?}", s.name, s.instance_id, s.result))
        .collect()
}

#[test]
fn every_device_section_re_encodes_byte_for_byte() {
    let mut total = 0;
    for name in STREAMS {
        let r = report(name);
        assert_eq!(failures(&r), Vec::<String>::new(), "{name}");
        assert!(
            r.sections.len() > 10,
            "{name}: {} sections",
            r.sections.len()
        );
        assert_eq!(r.identical_count(), r.sections.len());
        // Only iterative handlers are left out.
        for x in &r.excluded {
            assert!(
                matches!(x.name.as_str(), "ram" | "s390-storage_attributes"),
                "{name}: {x:?}"
            );
        }
        assert!(r.excluded.iter().any(|x| x.name == "ram"), "{name}");
        // Every device section of the parse is in the report.
        let s = parse(stream(name)).expect("parse");
        let devices = s
            .records
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    Record::Section(Section {
                        content: Content::Vmsd(_),
                        ..
                    })
                )
            })
            .count();
        assert_eq!(devices, r.sections.len(), "{name}");
        total += r.sections.len();
    }
    assert!(total > 100, "{total} sections");
}

/// The same descriptions and destinations through the reference model
/// (vmstate-reference) give the same bytes: the codec and the model agree
/// on real data.
#[test]
fn the_reference_model_agrees_on_every_device_section() {
    let mut n = 0;
    for name in STREAMS {
        let data = stream(name);
        let s = parse(data).expect("parse");
        let desc = &s.vmdesc.as_ref().expect("vmdesc").desc;
        for r in &s.records {
            let Record::Section(sec) = r else { continue };
            if !matches!(sec.content, Content::Vmsd(_)) {
                continue;
            }
            let d = desc.device(&sec.idstr, sec.instance_id).expect("desc");
            let mut dst = rebuild(
                Dialect::Qemu10,
                Dest::Fresh,
                d,
                &sec.idstr,
                sec.version_id,
                sec.payload.start,
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            let used = vmstate_reference::load_state(
                Dialect::Qemu10,
                &dst.vmsd,
                &mut dst.heap,
                dst.opaque,
                dst.version_id,
                &data[sec.payload.start..],
            )
            .unwrap_or_else(|e| panic!("{name} {}: {e}", sec.idstr));
            assert_eq!(used, sec.payload.len(), "{name} {}", sec.idstr);
            let saved =
                vmstate_reference::save_state(Dialect::Qemu10, &dst.vmsd, &dst.heap, dst.opaque)
                    .unwrap_or_else(|e| panic!("{name} {}: {e}", sec.idstr));
            assert!(saved == data[sec.payload.clone()], "{name} {}", sec.idstr);
            n += 1;
        }
    }
    assert_eq!(n, 30 + 29 + 16 + 13 + 34 + 30);
}

/// Device sections re-encoded (all identical) and sections excluded
/// (START, PART and END of `ram`; on s390x also of
/// `s390-storage_attributes`).
#[test]
fn per_stream_section_counts() {
    let got: Vec<(&str, usize, usize, usize)> = STREAMS
        .iter()
        .map(|n| {
            let r = report(n);
            (*n, r.sections.len(), r.identical_count(), r.excluded.len())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("x86-pc", 30, 30, 3),
            ("x86-q35", 29, 29, 3),
            ("arm64-virt", 16, 16, 3),
            ("s390x-ccw", 13, 13, 6),
            ("arm-lm3s6965evb", 34, 34, 3),
            ("x86-pc-mapped-ram", 30, 30, 3),
        ]
    );
}

fn s390_css(data: &[u8]) -> (std::ops::Range<usize>, u32) {
    let s = parse(data).expect("parse");
    s.records
        .iter()
        .find_map(|r| match r {
            Record::Section(sec) if sec.idstr == "s390_css" => {
                Some((sec.payload.clone(), sec.version_id))
            }
            _ => None,
        })
        .expect("s390_css")
}

#[test]
fn s390_css_nulls_are_rebuilt_from_the_vmdesc() {
    let data = stream("s390x-ccw");
    let r = report("s390x-ccw");
    let css = r
        .sections
        .iter()
        .find(|s| s.name == "s390_css")
        .expect("s390_css");
    assert!(css.identical(), "{css:?}");
    let (payload, _) = s390_css(data);
    assert_eq!(css.payload, payload);
    // 254 NULL markers, the 768-byte css of slot 254, one more NULL marker.
    let first = data[payload.clone()]
        .windows(254)
        .position(|w| w.iter().all(|&b| b == 0x30))
        .expect("254 NULL markers")
        + payload.start;
    assert_eq!(data[first + 254 + 768], 0x30);
    assert!(first + 254 + 768 < payload.end);
}

#[test]
fn a_mutated_scalar_still_round_trips() {
    let base = stream("x86-pc");
    let s = parse(base).expect("parse");
    // The first uint32 of the first section whose vmdesc starts with one.
    let desc = &s.vmdesc.as_ref().expect("vmdesc").desc;
    let (sec, at) = s
        .records
        .iter()
        .find_map(|r| match r {
            Record::Section(sec) if matches!(sec.content, Content::Vmsd(_)) => {
                let d = desc.device(&sec.idstr, sec.instance_id)?;
                let f = d.fields.as_ref()?.first()?;
                (f.ty == "uint32" && f.array_len.is_none())
                    .then(|| (sec.clone(), sec.payload.start))
            }
            _ => None,
        })
        .expect("a section starting with a uint32");
    let mut data = base.to_vec();
    data[at + 2] ^= 0x5a;
    let r = reencode_stream(&data, None).expect("still parses");
    assert_eq!(failures(&r), Vec::<String>::new());
    let this = r
        .sections
        .iter()
        .find(|x| x.payload == sec.payload)
        .expect("section");
    assert!(this.identical());
    // And the bytes really were different from the original.
    assert_ne!(data[sec.payload.clone()], base[sec.payload.clone()]);
}

#[test]
fn a_mutated_nullptr_marker_fails_with_its_path() {
    let base = stream("s390x-ccw");
    let s = parse(base).expect("parse");
    let desc = s
        .vmdesc
        .as_ref()
        .expect("vmdesc")
        .desc
        .device("s390_css", 0)
        .expect("s390_css desc");
    let (payload, version) = s390_css(base);
    // Find the first nullptr run: css[0] is the first marker of the field.
    let first = base[payload.clone()]
        .windows(254)
        .position(|w| w.iter().all(|&b| b == 0x30))
        .expect("254 NULL markers")
        + payload.start;
    for (slot, byte) in [(0usize, 0x31u8), (3, 0x00), (253, 0x7e)] {
        let mut data = base.to_vec();
        data[first + slot] = byte;
        // The stream parser would refuse this too; re-encode the section
        // with the original vmdesc and payload bounds.
        let err = reencode_payload(
            Dialect::Qemu10,
            &data,
            payload.clone(),
            "s390_css",
            version,
            desc,
        )
        .expect_err("a bad marker must not load");
        assert_eq!(err.path(), format!("s390_css.css[{slot}]"), "{err}");
        assert_eq!(err.offset(), first + slot, "{err}");
        assert!(
            matches!(
                err,
                ReencodeError::Load {
                    kind: ErrorKind::NullptrMarkerExpected(b),
                    ..
                } if b == byte
            ),
            "{err}"
        );
    }
    // The unmutated payload is identical through the same entry point.
    assert_eq!(
        reencode_payload(Dialect::Qemu10, base, payload, "s390_css", version, desc),
        Ok(Comparison::Identical)
    );
}

/// Every device section of every committed stream of both versions
/// re-encodes byte for byte in the dialect the stream's QEMU version
/// decides: 10.0.2 -> qemu-10.x, 11.1.3 -> qemu-11.1.
#[test]
fn both_versions_re_encode_in_their_own_dialect() {
    let mut got = Vec::new();
    for (label, data) in all_streams() {
        let r = reencode_stream(data, None).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(failures(&r), Vec::<String>::new(), "{label}");
        let want = if label.starts_with("11.1.3/") {
            "qemu-11.1"
        } else {
            "qemu-10.x"
        };
        let d = r.dialect.expect("dialect");
        assert_eq!(d.name(), want, "{label}: {:?}", r.version);
        got.push((label, r.sections.len(), r.excluded.len()));
    }
    let want: Vec<(String, usize, usize)> = [
        ("10.0.2/x86-pc", 30, 3),
        ("10.0.2/x86-q35", 29, 3),
        ("10.0.2/arm64-virt", 16, 3),
        ("10.0.2/s390x-ccw", 13, 6),
        ("10.0.2/arm-lm3s6965evb", 34, 3),
        ("10.0.2/x86-pc-mapped-ram", 30, 3),
        ("11.1.3/x86-pc", 30, 3),
        ("11.1.3/x86-q35", 29, 3),
        ("11.1.3/s390x-ccw", 14, 6),
        ("11.1.3/x86-pc-nvme", 31, 3),
        ("11.1.3/x86-pc-nvme-qtest", 31, 3),
    ]
    .into_iter()
    .map(|(l, a, b)| (l.to_owned(), a, b))
    .collect();
    assert_eq!(got, want);
}

/// The 11.1.3 sections that matter: nvme (AUTO_ALLOC sq/cq/aer_reqs with
/// 0x31 markers) and s390_css (non-dynamic array of pointers) are
/// identical, and would not be in qemu-10.x.
#[test]
fn nvme_and_css_need_the_11_1_dialect() {
    for name in ["x86-pc-nvme-qtest", "x86-pc-nvme", "s390x-ccw"] {
        let data = stream_11(name);
        let v = stream_version(&parse(data).expect("parse"));
        assert_eq!(v.evidence, "vmdesc type ptr-marker", "{name}");
        let r = reencode_stream(data, None).expect("parses");
        let dev = if name.starts_with("s390") {
            "s390_css"
        } else {
            "0000:00:02.0/nvme"
        };
        let s = r.sections.iter().find(|s| s.name == dev).expect(dev);
        assert!(s.identical(), "{name}: {s:?}");
    }
    // In qemu-10.x the first 0x31 marker is refused.
    let r = reencode_stream(stream_11("x86-pc-nvme-qtest"), Some(Dialect::Qemu10)).expect("parse");
    let nvme = r
        .sections
        .iter()
        .find(|s| s.name == "0000:00:02.0/nvme")
        .expect("nvme");
    let err = nvme.result.as_ref().expect_err("10.x cannot load 0x31");
    assert_eq!((err.offset(), err.path()), (306160, "nvme.aer_reqs[0]"));
}

/// The 10.0.2 stream names cover the committed files.
#[test]
fn stream_lists_are_complete() {
    assert_eq!(STREAMS.len(), 6);
    assert_eq!(STREAMS_11.len(), 5);
}
