//! The fuzz oracle: a smoke run with fixed-seed mutations, and a replay of
//! every seed in corpus/stream.
mod common;
use common::{Rng, corpus_dir, stream};
use vmstate_harness::stream::{check_consumption, parse, stream_oracle};

#[test]
fn replay_corpus_stream() {
    let dir = corpus_dir().join("stream");
    let mut n = 0;
    let mut parsed = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus/stream") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("read seed");
        stream_oracle(&data);
        parsed += usize::from(parse(&data).is_ok());
        n += 1;
    }
    assert!(n >= 10, "only {n} seeds");
    // The hand-built and the two full real streams parse.
    assert!(parsed >= 6, "{parsed} of {n} seeds parse");
}

#[test]
fn oracle_smoke_with_mutations() {
    let mut rng = Rng(0x0bad_5eed);
    let base = stream("s390x-ccw");
    let s = parse(base).expect("parse");
    check_consumption(&s).expect("tiles");
    // Mutate the device part (not the RAM pages) so decoding paths run.
    let lo = s.records.iter().find_map(|r| match r {
        vmstate_harness::stream::Record::Section(sec) if sec.idstr != "ram" => Some(sec.offset),
        _ => None,
    });
    let lo = lo.expect("a device section");
    let mut data = base.to_vec();
    for _ in 0..200 {
        data.copy_from_slice(base);
        for _ in 0..1 + rng.below(4) {
            let at = lo + rng.below(data.len() - lo);
            data[at] = rng.next() as u8;
        }
        stream_oracle(&data);
        stream_oracle(&data[..rng.below(data.len())]);
    }
    // The hand-built device stream, mutated anywhere.
    let dev = std::fs::read(corpus_dir().join("stream/packaged.mig")).expect("seed");
    let mut d = dev.clone();
    for _ in 0..2000 {
        d.copy_from_slice(&dev);
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(d.len());
            d[at] = rng.next() as u8;
        }
        stream_oracle(&d);
    }
    // Raw noise behind a valid header.
    for _ in 0..300 {
        let mut d = b"QEVM\0\0\0\x03".to_vec();
        d.extend((0..rng.below(64)).map(|_| rng.next() as u8));
        stream_oracle(&d);
    }
}
