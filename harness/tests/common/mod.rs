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

fn load(n: &str) -> Vec<u8> {
    let dir = corpus_dir().join("qemu");
    let plain = dir.join(format!("{n}.mig"));
    if plain.exists() {
        return std::fs::read(&plain).expect("read stream");
    }
    let gz = std::fs::read(dir.join(format!("{n}.mig.gz"))).expect("read .gz");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

/// The bytes of one committed stream (`.mig`, or `.mig.gz` decompressed),
/// loaded once per test binary.
pub fn stream(name: &str) -> &'static [u8] {
    static CACHE: [OnceLock<Vec<u8>>; 6] = [const { OnceLock::new() }; 6];
    let i = STREAMS
        .iter()
        .position(|n| *n == name)
        .expect("known stream");
    CACHE[i].get_or_init(|| load(name))
}

/// Names of the committed QEMU 11.1.3 streams (`corpus/qemu/11.1.3/`,
/// without `.mig`).
pub const STREAMS_11: &[&str] = &[
    "x86-pc",
    "x86-q35",
    "s390x-ccw",
    "x86-pc-nvme",
    "x86-pc-nvme-qtest",
];

/// The bytes of one committed 11.1.3 stream, loaded once per test binary.
pub fn stream_11(name: &str) -> &'static [u8] {
    static CACHE: [OnceLock<Vec<u8>>; 5] = [const { OnceLock::new() }; 5];
    let i = STREAMS_11
        .iter()
        .position(|n| *n == name)
        .expect("known 11.1.3 stream");
    CACHE[i].get_or_init(|| {
        std::fs::read(corpus_dir().join(format!("qemu/11.1.3/{name}.mig"))).expect("read stream")
    })
}

/// Every committed stream, both versions: (label, bytes).
pub fn all_streams() -> Vec<(String, &'static [u8])> {
    let mut v: Vec<(String, &'static [u8])> = STREAMS
        .iter()
        .map(|n| (format!("10.0.2/{n}"), stream(n)))
        .collect();
    v.extend(
        STREAMS_11
            .iter()
            .map(|n| (format!("11.1.3/{n}"), stream_11(n))),
    );
    v
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

/// A device with hostile-count fields: a `VMS_ALLOC` VARRAY of uint32
/// (count `n`) and an AUTO_ALLOC array of pointers (count `m`), for the
/// leak and strict-cap tests.
pub const HOSTILE_COUNTS: &str = r#"{
  "source": "hostile counts",
  "structs": {"S": "uint32_t a;", "P": "uint32_t n; uint32_t *v; uint16_t m; S **arr;"},
  "vmsds": [
    {"name": "p", "struct": "P", "fields": [
      {"member": "n", "info": "uint32"},
      {"member": "v", "info": "uint32", "count": "n", "flags": "POINTER|VARRAY|ALLOC"},
      {"member": "m", "info": "uint16"},
      {"member": "arr", "vmsd": "s", "count": "m", "flags": "POINTER|VARRAY|ARRAY_OF_POINTER|STRUCT|AUTO_ALLOC"}]},
    {"name": "s", "struct": "S", "fields": [{"member": "a", "info": "uint32"}]}
  ],
  "cases": [{"name": "h", "dialects": [], "state": {"n": 0, "v": null, "m": 2, "arr": [null, null]},
             "dest": {"n": 0, "v": null, "m": 0, "arr": [null, null]}}]
}"#;
