//! Hand-built streams: every construct with known bytes and known errors
//! (offset and path). The same builders make the fuzz seeds in
//! corpus/stream (see `seeds`).
mod common;
use pretty_assertions::assert_eq;
use serde_json::json;
use vmstate_harness::stream::{Record, StreamError, check_consumption, parse, state_json};

pub fn header() -> Vec<u8> {
    b"QEVM\0\0\0\x03".to_vec()
}

/// A SECTION_FULL record with footer.
pub fn full(id: u32, idstr: &str, instance: u32, version: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x04];
    v.extend(id.to_be_bytes());
    v.push(idstr.len() as u8);
    v.extend(idstr.as_bytes());
    v.extend(instance.to_be_bytes());
    v.extend(version.to_be_bytes());
    v.extend(payload);
    v.push(0x7e);
    v.extend(id.to_be_bytes());
    v
}

pub fn vmdesc(json: &str) -> Vec<u8> {
    let mut v = vec![0x06];
    v.extend((json.len() as u32).to_be_bytes());
    v.extend(json.as_bytes());
    v
}

pub const DEV_DESC: &str = r#"{"page_size": 4096, "devices": [{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": [{"name": "a", "type": "uint16", "size": 2}, {"name": "n", "type": "int8", "size": 1}, {"name": "flag", "type": "bool", "size": 1}, {"name": "buf", "type": "buffer", "size": 3}, {"name": "arr", "array_len": 2, "type": "nullptr", "size": 1}, {"name": "arr", "type": "struct", "struct": {"vmsd_name": "s", "version": 1, "fields": [{"name": "x", "type": "uint32", "size": 4}]}, "size": 4}, {"name": "odd", "type": "frobnicator", "size": 2}], "subsections": [{"vmsd_name": "dev/sub", "version": 1, "fields": [{"name": "y", "type": "uint8", "size": 1}]}]}]}"#;

pub fn dev_payload() -> Vec<u8> {
    let mut p = vec![
        0x12, 0x34, 0xfe, 0x01, 1, 2, 3, 0x30, 0x30, 0, 0, 0, 7, 0xab, 0xcd,
    ];
    p.push(0x05);
    p.push(7);
    p.extend(b"dev/sub");
    p.extend(1u32.to_be_bytes());
    p.push(9);
    p
}

pub fn dev_stream() -> Vec<u8> {
    let mut v = header();
    v.extend(full(2, "dev", 0, 1, &dev_payload()));
    v.push(0);
    v.extend(vmdesc(DEV_DESC));
    v
}

/// The device section wrapped in a PACKAGED command.
pub fn packaged_stream() -> Vec<u8> {
    let mut nested = full(2, "dev", 0, 1, &dev_payload());
    nested.push(0);
    let mut v = header();
    v.extend([0x08, 0x00, 0x07, 0x00, 0x04]);
    v.extend((nested.len() as u32).to_be_bytes());
    v.extend(nested);
    v.extend([0x08, 0x00, 0x0b, 0x00, 0x00]); // SWITCHOVER_START
    v.push(0);
    v.extend(vmdesc(DEV_DESC));
    v
}

/// vmstate-spec.md 2.7: an AUTO_ALLOC array of pointers, described with
/// `ptr-marker` entries.
pub fn auto_alloc_stream() -> Vec<u8> {
    let s = r#"{"vmsd_name": "s", "version": 1, "fields": [{"name": "a", "type": "uint32", "size": 4}, {"name": "b", "type": "uint16", "size": 2}]}"#;
    let desc = format!(
        r#"{{"page_size": 4096, "devices": [{{"name": "p", "instance_id": 0, "vmsd_name": "p", "version": 1, "fields": [{{"name": "n", "type": "uint8", "size": 1}}, {{"name": "arr", "type": "ptr-marker", "size": 1}}, {{"name": "arr", "type": "struct", "struct": {s}, "size": 6}}, {{"name": "arr", "type": "ptr-marker", "size": 1}}, {{"name": "arr", "type": "ptr-marker", "size": 1}}, {{"name": "arr", "type": "struct", "struct": {s}, "size": 6}}]}}]}}"#
    );
    let mut v = header();
    v.extend([
        0x04, 0, 0, 0, 5, 1, b'p', 0, 0, 0, 0, 0, 0, 0, 1, 3, 0x31, 0x11, 0x22, 0x33, 0x44, 0x55,
        0x66, 0x30, 0x31, 0, 0, 0, 1, 0, 2, 0x7e, 0, 0, 0, 5,
    ]);
    v.push(0);
    v.extend(vmdesc(&desc));
    v
}

pub fn minimal_stream() -> Vec<u8> {
    let mut v = header();
    v.push(0);
    v
}

#[test]
fn minimal_stream_parses() {
    let data = minimal_stream();
    let s = parse(&data).expect("parse");
    assert!(s.records.is_empty());
    assert!(s.vmdesc.is_none());
    assert_eq!(state_json(&s), json!({}));
}

#[test]
fn device_fields_decode_like_the_script() {
    let data = dev_stream();
    let s = parse(&data).expect("parse");
    check_consumption(&s).expect("tiles");
    assert_eq!(
        state_json(&s),
        json!({"dev (2)": {
            "a": "0x1234",
            "n": "0xfe (-2)",
            "flag": true,
            "buf": "01 02 03",
            "arr": ["nullptr", "nullptr", {"x": "0x00000007"}],
            "odd": "ab cd",
            "dev/sub": {"y": "0x09"}
        }})
    );
}

#[test]
fn packaged_stream_is_parsed_recursively() {
    let data = packaged_stream();
    let s = parse(&data).expect("parse");
    check_consumption(&s).expect("tiles");
    let Record::Command(c) = &s.records[0] else {
        panic!("first record is a command");
    };
    assert_eq!(c.cmd, 7);
    let p = c.packaged.as_ref().expect("nested stream");
    assert_eq!(p.records.len(), 1);
    assert_eq!(state_json(&s)["dev (2)"]["a"], "0x1234");
}

#[test]
fn auto_alloc_markers() {
    let data = auto_alloc_stream();
    let s = parse(&data).expect("parse");
    assert_eq!(
        state_json(&s),
        // Markers render as analyze-migration.py prints them (README,
        // "How ptr markers render").
        json!({"p (5)": {"n": "0x03", "arr": ["31", {"a": "0x11223344", "b": "0x5566"}, "30", "31", {"a": "0x00000001", "b": "0x0002"}]}})
    );
}

#[test]
fn errors_name_offset_and_path() {
    let good = dev_stream();
    // Section header: 1 + 4 + 1 + 3 + 4 + 4 = 17 bytes after the 8-byte header.
    let payload = 8 + 17;
    // Cut inside arr[2].x: the vmdesc is gone with the tail, so the device
    // section cannot be decoded.
    let e = parse(&good[..payload + 11]).expect_err("truncated");
    assert_eq!((e.offset(), e.path()), (8, "dev"), "{e}");

    // A wrong NULL marker.
    let mut bad = good.clone();
    bad[payload + 8] = 0x31;
    let e = parse(&bad).expect_err("bad marker");
    assert_eq!((e.offset(), e.path()), (payload + 8, "dev.arr[1]"), "{e}");

    // The struct member cut short: vmdesc says 4 bytes, make the section
    // one byte longer so the footer is misplaced.
    let mut long = good.clone();
    long.insert(payload + 13, 0xee);
    let e = parse(&long).expect_err("footer misplaced");
    assert!(matches!(e, StreamError::Subsection { .. }), "{e}");

    // Footer naming another section.
    let mut bad = good.clone();
    let footer = payload + dev_payload().len();
    bad[footer + 4] = 9;
    let e = parse(&bad).expect_err("footer");
    assert_eq!(
        e,
        StreamError::FooterMismatch {
            offset: footer,
            path: "dev".into(),
            expected: 2,
            found: 9
        }
    );

    // Version 2 and bad magic.
    let mut v2 = good.clone();
    v2[7] = 2;
    assert!(matches!(
        parse(&v2),
        Err(StreamError::ObsoleteVersion { offset: 4, .. })
    ));
    let mut m = good.clone();
    m[0] = b'X';
    assert!(matches!(
        parse(&m),
        Err(StreamError::BadMagic { offset: 0, .. })
    ));

    // Bytes after EOF that are not the vmdesc.
    let mut t = minimal_stream();
    t.extend([1, 2, 3]);
    assert!(matches!(
        parse(&t),
        Err(StreamError::TrailingBytes { offset: 9, .. })
    ));

    // A device the vmdesc does not describe.
    let mut nd = header();
    nd.extend(full(1, "ghost", 0, 1, &[]));
    nd.push(0);
    nd.extend(vmdesc(DEV_DESC));
    let e = parse(&nd).expect_err("no description");
    assert_eq!((e.offset(), e.path()), (8, "ghost"));
}

#[test]
fn hostile_descriptions_are_bounded() {
    // 2^60 zero-sized elements: refused by the value budget, no hang.
    let desc = r#"{"page_size": 4096, "devices": [{"name": "d", "instance_id": 0, "fields": [{"name": "z", "array_len": 1152921504606846976, "type": "buffer", "size": 0}]}]}"#;
    let mut v = header();
    v.extend(full(1, "d", 0, 1, &[]));
    v.push(0);
    v.extend(vmdesc(desc));
    assert!(matches!(parse(&v), Err(StreamError::TooManyValues { .. })));

    // A field claiming 2^62 bytes: refused before any allocation.
    let desc = r#"{"page_size": 4096, "devices": [{"name": "d", "instance_id": 0, "fields": [{"name": "big", "type": "buffer", "size": 4611686018427387904}]}]}"#;
    let mut v = header();
    v.extend(full(1, "d", 0, 1, &[]));
    v.push(0);
    v.extend(vmdesc(desc));
    let e = parse(&v).expect_err("too big");
    assert_eq!(e.path(), "d.big");

    // Structs nested 100 deep: a clean error (serde's or ours), no overflow.
    let mut s = r#"{"fields": []}"#.to_owned();
    for _ in 0..100 {
        s = format!(
            r#"{{"fields": [{{"name": "s", "type": "struct", "struct": {s}, "size": 0}}]}}"#
        );
    }
    let desc = format!(
        r#"{{"page_size": 4096, "devices": [{{"name": "d", "instance_id": 0, "fields": [{{"name": "s", "type": "struct", "struct": {s}, "size": 0}}]}}]}}"#
    );
    let mut v = header();
    v.extend(full(1, "d", 0, 1, &[]));
    v.push(0);
    v.extend(vmdesc(&desc));
    assert!(parse(&v).is_err());
}

/// Seeds of the future `stream` fuzz target: the hand-built streams above,
/// two small real streams and short prefixes of the others. Run with
/// `VMSTATE_BLESS=1` to (re)write corpus/stream.
#[test]
fn seeds() {
    let mut seeds: Vec<(String, Vec<u8>)> = vec![
        ("minimal.mig".into(), minimal_stream()),
        ("device.mig".into(), dev_stream()),
        ("packaged.mig".into(), packaged_stream()),
        ("auto-alloc.mig".into(), auto_alloc_stream()),
    ];
    for name in ["s390x-ccw", "arm-lm3s6965evb"] {
        seeds.push((format!("{name}.mig"), common::stream(name).to_vec()));
    }
    for name in ["x86-pc", "x86-q35", "arm64-virt", "x86-pc-mapped-ram"] {
        seeds.push((
            format!("{name}.head512.mig"),
            common::stream(name)[..512].to_vec(),
        ));
    }
    let dir = common::corpus_dir().join("stream");
    if std::env::var_os("VMSTATE_BLESS").is_some() {
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (n, d) in &seeds {
            std::fs::write(dir.join(n), d).expect("write seed");
        }
    }
    for (n, d) in &seeds {
        let on_disk = std::fs::read(dir.join(n))
            .unwrap_or_else(|e| panic!("{n}: {e} (run with VMSTATE_BLESS=1)"));
        assert!(
            on_disk == *d,
            "{n} differs from its derivation (run with VMSTATE_BLESS=1)"
        );
    }
}
