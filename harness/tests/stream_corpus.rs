//! Every committed real QEMU 10.0.2 stream parses, consumes exactly its
//! bytes, and renders to the output analyze-migration.py gives.
mod common;
use common::{STREAMS, fnv1a, stream};
use vmstate_harness::stream::{
    Content, Entry, Record, Value, check_consumption, desc_json, parse, state_json, to_python_json,
};

#[test]
fn every_committed_stream_parses_and_tiles() {
    for name in STREAMS {
        let data = stream(name);
        let s = parse(data).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_consumption(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(s.vmdesc.is_some(), "{name}: vmdesc");
        assert_eq!(
            s.vmdesc.as_ref().map(|v| v.offset),
            Some(s.eof_offset + 1),
            "{name}"
        );
        assert!(s.configuration.is_some(), "{name}: configuration");
        let sections = s
            .records
            .iter()
            .filter(|r| matches!(r, Record::Section(_)))
            .count();
        assert!(sections > 10, "{name}: only {sections} sections");
    }
}

/// FNV-1a of `vmstate-harness analyze` (state) and `--desc` output. Each
/// was checked byte for byte against QEMU 10.0.2's analyze-migration.py
/// (`-d state` / `-d desc`); for arm-lm3s6965evb and the mapped-ram stream,
/// which the script cannot read, against a copy patched to find the vmdesc
/// by structure and to skip mapped-ram blocks. See harness/src/stream/BENCH.md.
const DIGESTS: &[(&str, u64, u64)] = &include!("stream_digests.in");

#[test]
fn outputs_match_the_script() {
    let mut got = Vec::new();
    for name in STREAMS {
        let s = parse(stream(name)).expect("parse");
        let state = to_python_json(&state_json(&s)) + "\n";
        let desc = to_python_json(&desc_json(&s).expect("desc")) + "\n";
        got.push((
            (*name).to_owned(),
            fnv1a(state.as_bytes()),
            fnv1a(desc.as_bytes()),
        ));
    }
    let want: Vec<_> = DIGESTS
        .iter()
        .map(|(n, a, b)| ((*n).to_owned(), *a, *b))
        .collect();
    assert_eq!(got, want);
}

fn section<'s, 'a>(
    s: &'s vmstate_harness::stream::Stream<'a>,
    idstr: &str,
) -> &'s vmstate_harness::stream::Section<'a> {
    s.records
        .iter()
        .find_map(|r| match r {
            Record::Section(sec) if sec.idstr == idstr => Some(sec),
            _ => None,
        })
        .expect("section present")
}

#[test]
fn s390_css_has_254_plus_1_null_markers() {
    let s = parse(stream("s390x-ccw")).expect("parse");
    let css = section(&s, "s390_css");
    let Content::Vmsd(fields) = &css.content else {
        panic!("s390_css is a device");
    };
    let Some(Entry::List(l)) = fields.get("css") else {
        panic!("css is a list");
    };
    assert_eq!(l.len(), 256);
    assert!(l[..254].iter().all(|v| *v == Value::Nullptr));
    assert!(matches!(l[254], Value::Struct(_)));
    assert_eq!(l[255], Value::Nullptr);
    // The 254 markers are the bytes 0x30 right before the struct.
    let data = stream("s390x-ccw");
    let at = data[css.payload.clone()]
        .windows(254)
        .position(|w| w.iter().all(|&b| b == 0x30))
        .expect("run of markers");
    assert!(at > 0);
    let json = state_json(&s);
    let css_json = &json["s390_css (13)"]["css"];
    assert_eq!(css_json[0], "nullptr");
    assert_eq!(css_json[255], "nullptr");
    assert!(css_json[254].is_object());
}

#[test]
fn known_values() {
    let x86 = state_json(&parse(stream("x86-pc")).expect("parse"));
    assert_eq!(x86["cpu (4)"]["env.eip"], "0x000000000000fff0");
    assert_eq!(
        x86["ram (1)"]["section sizes"]["pc.ram"],
        "0x0000000002000000"
    );
    let s = parse(stream("x86-q35")).expect("parse");
    assert_eq!(
        s.configuration.as_ref().map(|c| c.machine.as_str()),
        Some("pc-q35-10.0")
    );
    let s = parse(stream("s390x-ccw")).expect("parse");
    assert!(matches!(
        section(&s, "s390-storage_attributes").content,
        Content::StorageAttributes(_)
    ));
}

#[test]
fn lm3s6965evb_vmdesc_length_holds_a_brace() {
    // analyze-migration.py fails here: it looks for the first '{' after the
    // last NUL, and the BE32 length 0x00007b54 holds a '{' (0x7b).
    let data = stream("arm-lm3s6965evb");
    let s = parse(data).expect("parse");
    let v = s.vmdesc.as_ref().expect("vmdesc");
    assert_eq!(&data[v.offset + 1..v.offset + 5], &[0, 0, 0x7b, 0x54]);
}

#[test]
fn mapped_ram_blocks_live_at_file_offsets() {
    let data = stream("x86-pc-mapped-ram");
    let s = parse(data).expect("parse");
    let conf = s.configuration.as_ref().expect("configuration");
    assert!(conf.has_capability("mapped-ram"));
    let (_, ram) = s.ram.as_ref().expect("ram");
    assert!(ram.mapped_ram);
    assert_eq!(ram.blocks.len(), 6);
    assert_eq!(ram.jumps.len(), 6);
    for b in &ram.blocks {
        let h = b.mapped_ram.as_ref().expect("header");
        assert_eq!(h.version, 1);
        assert_eq!(h.page_size, 4096);
        assert_eq!(h.pages_offset % 0x10_0000, 0, "{}", b.idstr);
    }
    // pc.bios is the largest non-zero block; the guest never ran, so pc.ram
    // has no page written.
    let present: Vec<_> = ram
        .blocks
        .iter()
        .map(|b| {
            (
                b.idstr.as_str(),
                b.mapped_ram.as_ref().map_or(0, |h| h.pages_present),
            )
        })
        .collect();
    assert_eq!(present[0], ("pc.ram", 0));
    assert!(present.iter().any(|&(n, p)| n == "pc.bios" && p > 0));
    assert_eq!(ram.normal_pages + ram.zero_pages, 0);
}

#[test]
fn fast_writer_equals_the_json_tree() {
    for name in STREAMS {
        let s = parse(stream(name)).expect("parse");
        let mut fast = String::new();
        vmstate_harness::stream::write_state(&s, &mut fast);
        assert!(fast == to_python_json(&state_json(&s)), "{name}");
    }
    for seed in [
        "device.mig",
        "packaged.mig",
        "auto-alloc.mig",
        "minimal.mig",
    ] {
        let data = std::fs::read(common::corpus_dir().join("stream").join(seed)).expect("seed");
        let s = parse(&data).expect("parse");
        let mut fast = String::new();
        vmstate_harness::stream::write_state(&s, &mut fast);
        assert!(fast == to_python_json(&state_json(&s)), "{seed}");
    }
}

/// 11.1.3 streams: `(name, fnv1a(state), fnv1a(desc))` of our own output.
/// `-d desc` is the vmdesc re-printed by the same code whose 10.0.2 output
/// is pinned to the script's above; the vmdesc's new `ptr-marker` entries
/// are ordinary JSON to it, so it is byte-identical to the script on these
/// too. `-d state` prints markers as the newest script does (`"30"`,
/// `"31"`, in the per-name list); these digests pin it against regressions
/// (no 11.1.3 script output is committed to compare with).
#[test]
fn outputs_11_1_3_are_pinned() {
    let mut got = Vec::new();
    for name in common::STREAMS_11 {
        let s = parse(common::stream_11(name)).expect("parse");
        let state = to_python_json(&state_json(&s)) + "\n";
        let desc = to_python_json(&desc_json(&s).expect("desc")) + "\n";
        // The desc output is the vmdesc JSON itself, key order kept.
        let v = s.vmdesc.as_ref().expect("vmdesc");
        let raw: serde_json::Value = serde_json::from_slice(v.json).expect("json");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&desc).expect("desc json"),
            raw,
            "{name}"
        );
        got.push((
            (*name).to_owned(),
            fnv1a(state.as_bytes()),
            fnv1a(desc.as_bytes()),
        ));
    }
    let want: Vec<(String, u64, u64)> = include!("stream_digests_11.in")
        .iter()
        .map(|(n, a, b): &(&str, u64, u64)| ((*n).to_owned(), *a, *b))
        .collect();
    assert_eq!(got, want);
}

/// `--hex` numbers AUTO_ALLOC elements by element index: the marker and
/// the element of a valid slot share it (sq[0], sq[1], ..., sq[64]), and
/// the byte offsets are those of corpus/qemu/11.1.3/README.md.
#[test]
fn hex_numbers_auto_alloc_elements_by_index() {
    let data = common::stream_11("x86-pc-nvme-qtest");
    let s = vmstate_harness::stream::parse_with(
        data,
        &vmstate_harness::stream::Options { annotate: true },
    )
    .expect("parse");
    let at = |path: &str| {
        s.annotations
            .iter()
            .find(|a| a.path == path)
            .map(|a| (a.offset, a.value.clone()))
    };
    let n = "0000:00:02.0/nvme";
    assert_eq!(at(&format!("{n}.aer_reqs[0]")), Some((306160, "31".into())));
    assert_eq!(at(&format!("{n}.sq[0]")), Some((318598, "31".into())));
    assert_eq!(
        at(&format!("{n}.sq[0].sqid")),
        Some((318599, "0x0000".into()))
    );
    assert_eq!(at(&format!("{n}.sq[1]")), Some((318623, "31".into())));
    assert_eq!(
        at(&format!("{n}.sq[1].sqid")),
        Some((318624, "0x0001".into()))
    );
    assert_eq!(at(&format!("{n}.sq[2]")), Some((318648, "30".into())));
    assert_eq!(at(&format!("{n}.sq[64]")), Some((318710, "30".into())));
    assert_eq!(at(&format!("{n}.sq[65]")), None);
    assert_eq!(at(&format!("{n}.cq[0]")), Some((318711, "31".into())));
    assert_eq!(at(&format!("{n}.cq[1]")), Some((318742, "31".into())));
    assert_eq!(at(&format!("{n}.cq[64]")), Some((318835, "30".into())));
    // Non-dynamic arrays keep one index per slot (s390 css).
    let data = common::stream_11("s390x-ccw");
    let s = vmstate_harness::stream::parse_with(
        data,
        &vmstate_harness::stream::Options { annotate: true },
    )
    .expect("parse");
    let at = |path: &str| {
        s.annotations
            .iter()
            .find(|a| a.path == path)
            .map(|a| a.offset)
    };
    assert_eq!(at("s390_css.css[0]"), Some(186236));
    assert_eq!(at("s390_css.css[255]"), Some(187258));
    assert!(
        s.annotations
            .iter()
            .any(|a| a.path.starts_with("s390_css.css[254]."))
    );
}
