//! The stream consumption oracle: each broken rule is reported.

// ---------------------------------------------------------------------------
// Stream consumption oracle

use vmstate_harness::stream::{Record, Stream, check_consumption, parse};

fn seed(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus/stream")
        .join(name);
    std::fs::read(path).unwrap()
}

fn first_section<'s, 'a>(s: &'s mut Stream<'a>) -> &'s mut vmstate_harness::stream::Section<'a> {
    s.records
        .iter_mut()
        .find_map(|r| match r {
            Record::Section(sec) => Some(sec),
            _ => None,
        })
        .expect("a section")
}

/// Each rule of `check_consumption`, broken by editing one offset of a
/// parsed stream; the unedited stream passes.
#[test]
fn stream_oracle_reports_each_broken_rule() {
    type Edit = fn(&mut Stream<'_>);
    let rows: &[(&str, &str, Edit, &str)] = &[
        (
            "device.mig",
            "record offset",
            |s| first_section(s).offset += 1,
            "expected",
        ),
        (
            "device.mig",
            "payload start",
            |s| {
                let sec = first_section(s);
                sec.payload.start = sec.offset - 1;
            },
            "bad payload",
        ),
        (
            "device.mig",
            "payload reversed",
            |s| {
                let sec = first_section(s);
                sec.payload.end = sec.payload.start - 1;
            },
            "bad payload",
        ),
        (
            "device.mig",
            "footer not at payload end",
            |s| {
                let sec = first_section(s);
                sec.footer = sec.footer.map(|f| f + 1);
            },
            "footer",
        ),
        (
            "device.mig",
            "record end not after its footer",
            |s| first_section(s).end += 1,
            "footer",
        ),
        (
            "device.mig",
            "no footer, payload end != end",
            |s| {
                let sec = first_section(s);
                sec.footer = None;
            },
            "payload/end mismatch",
        ),
        ("device.mig", "EOF offset", |s| s.eof_offset += 1, "EOF at"),
        (
            "packaged.mig",
            "command offset",
            |s| {
                for r in &mut s.records {
                    if let Record::Command(c) = r {
                        c.offset += 1;
                        return;
                    }
                }
                panic!("no command");
            },
            "command at",
        ),
        (
            "packaged.mig",
            "packaged records",
            |s| {
                for r in &mut s.records {
                    if let Record::Command(c) = r
                        && let Some(p) = &mut c.packaged
                    {
                        p.start += 1;
                        return;
                    }
                }
                panic!("no packaged command");
            },
            "expected",
        ),
        (
            "packaged.mig",
            "packaged EOF",
            |s| {
                for r in &mut s.records {
                    if let Record::Command(c) = r
                        && let Some(p) = &mut c.packaged
                    {
                        p.eof_offset += 1;
                        return;
                    }
                }
                panic!("no packaged command");
            },
            "not consumed exactly",
        ),
        (
            "packaged.mig",
            "packaged command end",
            |s| {
                for r in &mut s.records {
                    if let Record::Command(c) = r
                        && c.packaged.is_some()
                    {
                        c.end += 1;
                        return;
                    }
                }
                panic!("no packaged command");
            },
            "not consumed exactly",
        ),
    ];
    let mut missed = Vec::new();
    for (file, what, edit, says) in rows {
        let data = seed(file);
        let mut s = parse(&data).unwrap_or_else(|e| panic!("{file}: {e}"));
        check_consumption(&s).unwrap_or_else(|e| panic!("{file} unedited: {e}"));
        edit(&mut s);
        match check_consumption(&s) {
            Err(e) if e.contains(says) => {}
            other => missed.push(format!("{file} {what}: {other:?}, want {says:?}")),
        }
    }
    assert!(missed.is_empty(), "\n{}", missed.join("\n"));
}

/// The rules about the configuration section and the vmdesc, on the first
/// seed that has each.
#[test]
fn stream_oracle_reports_configuration_and_vmdesc_rules() {
    let mut with_config = 0;
    let mut with_vmdesc = 0;
    for name in [
        "s390x-ccw.mig",
        "minimal.mig",
        "device.mig",
        "auto-alloc.mig",
    ] {
        let data = seed(name);
        let Ok(s) = parse(&data) else { continue };
        check_consumption(&s).unwrap();
        if s.configuration.is_some() {
            with_config += 1;
            let mut t = s.clone();
            t.configuration.as_mut().unwrap().offset += 1;
            let e = check_consumption(&t).unwrap_err();
            assert!(e.contains("configuration at"), "{e}");
        }
        if s.vmdesc.is_some() {
            with_vmdesc += 1;
            let mut t = s.clone();
            t.vmdesc.as_mut().unwrap().offset += 1;
            let e = check_consumption(&t).unwrap_err();
            assert!(e.contains("vmdesc at"), "{e}");
            let mut t = s.clone();
            let mut longer = data.clone();
            longer.push(0);
            t.data = &longer;
            let e = check_consumption(&t).unwrap_err();
            assert!(e.contains("does not end the file"), "{e}");
        } else {
            let mut t = s.clone();
            let mut longer = data.clone();
            longer.push(0);
            t.data = &longer;
            let e = check_consumption(&t).unwrap_err();
            assert!(e.contains("1 bytes after EOF"), "{e}");
        }
    }
    assert!(
        with_config > 0 && with_vmdesc > 0,
        "{with_config} {with_vmdesc}"
    );
}
