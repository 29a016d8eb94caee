//! Shared helpers for the stream tests: the committed real streams.
#![allow(dead_code)]
use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;

/// `corpus/` at the workspace root.
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus")
}

/// Names of the committed QEMU 10.0.2 streams (without `.mig`).
pub const STREAMS: &[&str] = &[
    "x86-pc",
    "x86-q35",
    "arm64-virt",
    "s390x-ccw",
    "arm-lm3s6965evb",
    "x86-pc-mapped-ram",
];

/// The bytes of one committed stream (`.mig`, or `.mig.gz` decompressed).
pub fn stream(name: &str) -> &'static [u8] {
    static CACHE: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    let all = CACHE.get_or_init(|| {
        STREAMS
            .iter()
            .map(|n| {
                let dir = corpus_dir().join("qemu");
                let plain = dir.join(format!("{n}.mig"));
                let data = if plain.exists() {
                    std::fs::read(&plain).expect("read stream")
                } else {
                    let gz = std::fs::read(dir.join(format!("{n}.mig.gz"))).expect("read .gz");
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(&gz[..])
                        .read_to_end(&mut out)
                        .expect("gunzip");
                    out
                };
                ((*n).to_owned(), data)
            })
            .collect()
    });
    &all.iter().find(|(n, _)| n == name).expect("known stream").1
}

/// FNV-1a 64: a small digest to pin outputs.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A fixed-seed xorshift64* generator (no dependency, stable across
/// versions).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
