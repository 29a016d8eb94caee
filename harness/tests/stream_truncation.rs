//! Truncating a real stream anywhere gives a clean `Err`: at every record
//! boundary and at 1000 pseudo-random offsets (fixed seed) per stream.
mod common;
use common::{Rng, STREAMS, stream};
use vmstate_harness::stream::{Record, Stream, parse};

fn boundaries(s: &Stream<'_>) -> Vec<usize> {
    fn walk(records: &[Record<'_>], out: &mut Vec<usize>) {
        for r in records {
            match r {
                Record::Section(sec) => {
                    out.extend([sec.offset, sec.payload.start, sec.payload.end, sec.end]);
                    out.extend(sec.footer);
                }
                Record::Command(c) => {
                    out.extend([c.offset, c.end]);
                    if let Some(p) = &c.packaged {
                        out.push(p.start);
                        walk(&p.records, out);
                    }
                }
            }
        }
    }
    let mut out = vec![0, 4, s.header_end];
    if let Some(c) = &s.configuration {
        out.extend([c.offset, c.offset + 1, c.end]);
    }
    walk(&s.records, &mut out);
    out.extend([s.eof_offset, s.eof_offset + 1]);
    if let Some(v) = &s.vmdesc {
        out.extend([v.offset, v.offset + 1, v.offset + 5]);
    }
    if let Some((_, ram)) = &s.ram {
        for &(from, to) in &ram.jumps {
            out.extend([from, to]);
        }
    }
    out.retain(|&n| n < s.data.len());
    out.sort_unstable();
    out.dedup();
    out
}

#[test]
fn truncation_at_every_record_boundary_is_an_error() {
    for name in STREAMS {
        let data = stream(name);
        let s = parse(data).expect("full stream parses");
        let cuts = boundaries(&s);
        assert!(cuts.len() > 30, "{name}: {} boundaries", cuts.len());
        for n in cuts {
            let e = parse(&data[..n]).expect_err(&format!("{name} cut at {n:#x} must fail"));
            assert!(
                e.offset() <= n,
                "{name} cut at {n:#x}: error offset {:#x} ({e})",
                e.offset()
            );
        }
    }
}

#[test]
fn truncation_at_random_offsets_is_an_error() {
    let mut rng = Rng(0x5eed_0f0e_5eed);
    for name in STREAMS {
        let data = stream(name);
        for _ in 0..1000 {
            let n = rng.below(data.len());
            let e = parse(&data[..n]).expect_err(&format!("{name} cut at {n:#x} must fail"));
            assert!(e.offset() <= n, "{name} cut at {n:#x}: {e}");
        }
    }
}
