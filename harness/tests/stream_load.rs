//! `load`: device sections of real streams through the reference model
//! into destinations rebuilt from a vmdesc, fresh or live; the two real
//! QEMU 11.1.3 aborts (corpus/findings/streams/qemu-11.1.3.txt); a 10.0.2
//! s390x stream into 11.1.3's descriptions.
mod common;
use clap::Parser;
use common::{all_streams, corpus_dir, stream, stream_11};
use vmstate_harness::cli::reencode::{LoadArgs, load_text};
use vmstate_harness::reencode::{Dest, LoadOutcome, load_stream};
use vmstate_reference::ErrorKind;

#[derive(Parser)]
struct Load {
    #[command(flatten)]
    args: LoadArgs,
}

/// Every committed stream loads into fresh destinations, every section ok.
#[test]
fn every_stream_loads_into_a_fresh_destination() {
    for (label, data) in all_streams() {
        let r =
            load_stream(data, None, None, Dest::Fresh).unwrap_or_else(|e| panic!("{label}: {e}"));
        let bad: Vec<_> = r
            .sections
            .iter()
            .filter(|s| !s.ok())
            .map(|s| format!("{}: {}", s.name, s.verdict(r.dialect)))
            .collect();
        assert_eq!(bad, Vec::<String>::new(), "{label}");
        // Reset is the same memory as fresh.
        let reset = load_stream(data, None, None, Dest::Reset).expect("parse");
        assert!(reset.sections.iter().all(|s| s.ok()), "{label}");
    }
}

/// Live destinations only matter where the stream fills an AUTO_ALLOC slot:
/// the qtest nvme stream (aer_reqs[0], sq[0..1], cq[0..1]); the first one
/// met is aer_reqs[0].
#[test]
fn live_destinations_abort_only_on_filled_auto_alloc_slots() {
    for (label, data) in all_streams() {
        let r = load_stream(data, None, None, Dest::Live).expect("parse");
        let bad: Vec<_> = r.sections.iter().filter(|s| !s.ok()).collect();
        if label == "11.1.3/x86-pc-nvme-qtest" {
            assert_eq!(bad.len(), 1, "{label}");
            let LoadOutcome::Abort(e) = &bad[0].outcome else {
                panic!("{label}: {:?}", bad[0].outcome);
            };
            assert!(matches!(e.kind, ErrorKind::AutoAllocSlotNotNull { .. }));
            assert_eq!((e.offset, e.path.as_str()), (306160, "nvme.aer_reqs[0]"));
        } else {
            assert!(bad.is_empty(), "{label}: {bad:?}");
        }
    }
}

/// The findings manifest: each line's `load` prints the expected line.
#[test]
fn load_names_both_real_aborts() {
    let manifest = corpus_dir().join("findings/streams/qemu-11.1.3.txt");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let mut names = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let f: Vec<&str> = line.splitn(4, " | ").collect();
        assert_eq!(f.len(), 4, "{line}");
        let file = corpus_dir().join(f[1]);
        let mut argv = vec!["load".to_owned(), file.display().to_string()];
        argv.extend(f[2].split_whitespace().map(str::to_owned));
        let args = Load::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .args;
        let (out, ok) = load_text(&args).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(!ok, "{}: a finding must not load", f[0]);
        assert!(
            out.lines().any(|l| l.trim() == f[3]),
            "{}: expected {:?} in\n{out}",
            f[0],
            f[3]
        );
        names.push(f[0]);
    }
    assert_eq!(
        names,
        ["loadvm-nvme-aer-slot", "css-valid-marker", "css-bad-marker"]
    );
    // Both aborts name their assertion.
    assert!(text.contains(
        "aborts: migration/vmstate.c vmstate_load_next: assert(!auto_alloc || *pptr == NULL)"
    ));
    assert!(text.contains("aborts: migration/vmstate.c vmstate_load_next: assert(auto_alloc)"));
}

/// The mutated s390x stream, generated here: 0x31 at css[0] aborts, 0x32
/// fails cleanly, every other section still loads.
#[test]
fn css_marker_mutations() {
    let base = stream_11("s390x-ccw");
    assert_eq!(
        base[186236], 0x30,
        "css[0] marker (corpus/qemu/11.1.3/README.md)"
    );
    for (byte, want) in [
        (0x31u8, "ValidMarkerWithoutAutoAlloc"),
        (0x32, "UnexpectedPtrMarker"),
    ] {
        let mut data = base.to_vec();
        data[186236] = byte;
        let r = load_stream(&data, None, None, Dest::Fresh).expect("still parses");
        let bad: Vec<_> = r.sections.iter().filter(|s| !s.ok()).collect();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].name, "s390_css");
        let e = match &bad[0].outcome {
            LoadOutcome::Abort(e) if byte == 0x31 => e,
            LoadOutcome::Error(e) if byte == 0x32 => e,
            o => panic!("{byte:#x}: {o:?}"),
        };
        assert_eq!(e.kind.code(), want);
        assert_eq!((e.offset, e.path.as_str()), (186236, "s390_css.css[0]"));
    }
}

/// Cross-version (corpus/qemu/11.1.3/README.md d.): the 10.0.2 s390x stream
/// loads into the qemu-11.1 descriptions rebuilt from the 11.1.3 stream's
/// vmdesc, as real QEMU 11.1.3 loads it.
#[test]
fn s390x_10_0_2_loads_into_11_1_3_descriptions() {
    let r = load_stream(
        stream("s390x-ccw"),
        Some(stream_11("s390x-ccw")),
        None,
        Dest::Fresh,
    )
    .expect("parse");
    assert_eq!(r.dialect.name(), "qemu-11.1");
    let bad: Vec<_> = r
        .sections
        .iter()
        .filter(|s| !s.ok())
        .map(|s| format!("{}: {}", s.name, s.verdict(r.dialect)))
        .collect();
    assert_eq!(bad, Vec::<String>::new());
    assert_eq!(r.sections.len(), 13);
    assert!(r.sections.iter().any(|s| s.name == "s390_css"));
}
