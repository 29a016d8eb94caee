//! The oracles of the cargo-fuzz targets in `fuzz/`, one function each, so
//! that a target is a few lines and every oracle also runs without a
//! fuzzing engine (tests/corpus_replay.rs replays the corpora, the smoke
//! tests below feed them from a fixed-seed RNG).
//!
//! Each oracle takes the fuzzer's bytes and returns `Err` with a readable
//! report (the case file and the stream in hex) when a property fails.
//! Inputs the generator rejects are `Ok`: there is nothing to check.

use crate::campaign::{Ctx, Outcome as CampaignOutcome, PROPERTIES};
use crate::codec::{Compiled, STRICT_SLACK};
use crate::generate::GenCase;
use crate::leak;
use crate::oracle::{self, Built, Mutation, stream_of};
use arbitrary::{Arbitrary, Unstructured};
use vmstate_reference as reference;

/// Heap room a fuzzed load may use beyond the destination's own bytes. The
/// default 256 MiB limit would let a hostile count make every run allocate
/// (and fill) a quarter gigabyte; QEMU-faithful loads stop with
/// `GMallocAbort`/`AllocFailed` past this instead.
pub const FUZZ_HEAP_SLACK: u64 = 8 << 20;

/// A generated device and the bytes its destination loads.
pub struct LoadInput {
    pub case: GenCase,
    pub built: Built,
    pub stream: Vec<u8>,
    /// How the stream was made from the saved bytes (None: raw fuzzer bytes).
    pub mutation: Option<Mutation>,
}

/// Builds a generated case in its dialect, with the destination heap
/// limited to its own bytes plus [`FUZZ_HEAP_SLACK`].
pub fn build(case: &GenCase) -> Option<Built> {
    let mut built = Built::new(case, case.dialect).ok()?;
    built.dest.heap.limits.max_live_bytes = built.dest.heap.live_bytes() + FUZZ_HEAP_SLACK;
    Some(built)
}

/// Decodes fuzzer bytes: a generated case, then either a mutation of its
/// saved stream (three inputs in four) or raw bytes to load as the stream.
pub fn load_input(data: &[u8]) -> Option<LoadInput> {
    let mut u = Unstructured::new(data);
    let case = GenCase::arbitrary(&mut u).ok()?;
    let raw = u.ratio(1, 4).ok()?;
    let built = build(&case)?;
    let (stream, mutation) = if raw {
        (u.take_rest().to_vec(), None)
    } else {
        // The optimized codec's save: the `differential` target holds it to
        // the reference's bytes, and it costs a fraction of the reference's
        // (which renders a field path per element).
        let saved = Compiled::new(built.d, built.vmsd())
            .save(&built.src.heap, built.src.opaque)
            .unwrap_or_default();
        let m = Mutation::arbitrary(&mut u).unwrap_or(Mutation::None);
        (m.apply(&stream_of(&saved)), Some(m))
    };
    Some(LoadInput {
        case,
        built,
        stream,
        mutation,
    })
}

/// The `load` target: on an arbitrary description and bytes, neither load
/// panics; the QEMU-faithful reference load shows only named
/// [`leak::Finding`]s; the strict codec load never leaks, restores the
/// destination when it fails, and grows the heap by at most
/// `strict_alloc_ratio * len + STRICT_SLACK` bytes.
pub fn load(data: &[u8]) -> Result<(), String> {
    let Some(input) = load_input(data) else {
        return Ok(());
    };
    load_never_leaks(&input.built, &input.stream).map_err(|e| {
        format!(
            "{e}\nmutation: {:?}\nstream: {}\ncase file:\n{}",
            input.mutation,
            hex::encode(&input.stream),
            input.case.to_json()
        )
    })
}

/// The leak properties of loading `stream` into `b`'s destination.
pub fn load_never_leaks(b: &Built, stream: &[u8]) -> Result<(), String> {
    let (vmsd, opaque) = (&b.dest.vmsd, b.dest.opaque);
    let version = vmsd.version_id;
    let before = &b.dest.heap;
    let walked = leak::Before::new(b.d, vmsd, before, opaque);

    let mut faithful = before.clone();
    let r = reference::load_state(b.d, vmsd, &mut faithful, opaque, version, stream);
    walked
        .faithful(&faithful, &r)
        .map_err(|e| format!("{} QEMU-faithful load gave {r:?}\n{e}", b.d))?;

    let codec = Compiled::new(b.d, vmsd);
    let mut strict = before.clone();
    strict.reset_peak();
    let r = codec.load_strict(&mut strict, opaque, version, stream);
    walked
        .strict(&strict, &r)
        .map_err(|e| format!("{} strict load: {e}", b.d))?;
    let bound = codec
        .strict_alloc_ratio()
        .saturating_mul(stream.len() as u64)
        .saturating_add(STRICT_SLACK);
    leak::within_cap(before, &strict, bound).map_err(|e| {
        format!(
            "{} strict load ({r:?}): {e} (ratio {} x {} bytes + {STRICT_SLACK})",
            b.d,
            codec.strict_alloc_ratio(),
            stream.len()
        )
    })?;
    Ok(())
}

/// The `differential` target: reference and optimized codec save the same
/// bytes and load (a mutation of) them to the same result and heap.
pub fn differential(data: &[u8]) -> Result<(), String> {
    let Some(input) = load_input(data) else {
        return Ok(());
    };
    let case_file = || input.case.to_json();
    oracle::save_agrees_on(&input.built, &oracle::MODELS).map_err(|e| {
        format!(
            "reference and optimized save disagree\n{e}\ncase file:\n{}",
            case_file()
        )
    })?;
    oracle::load_agrees_on(&input.built, &input.stream, &oracle::MODELS).map_err(|e| {
        format!(
            "reference and optimized load disagree\nmutation: {:?}\n{e}\ncase file:\n{}",
            input.mutation,
            case_file()
        )
    })
}

/// The `stream` target: the migration stream parser never panics and, when
/// it parses, consumes its input exactly and renders the state.
pub fn stream(data: &[u8]) -> Result<(), String> {
    use crate::stream::{check_consumption, parse};
    if let Ok(s) = parse(data) {
        check_consumption(&s).map_err(|e| format!("stream parsed but not consumed: {e}"))?;
        let _ = crate::stream::state_json(&s);
    }
    Ok(())
}

/// An oracle: fuzzer bytes to a verdict.
pub type Oracle = fn(&[u8]) -> Result<(), String>;

/// The oracle of a target by name (`load`, `differential`, `stream`, or
/// `all`, the binary that drives every oracle).
pub fn oracle(target: &str) -> Option<Oracle> {
    match target {
        "load" => Some(load),
        "differential" => Some(differential),
        "stream" => Some(stream),
        "all" => Some(all),
        _ => None,
    }
}

/// The three targets' oracles, by name.
const TARGETS: [(&str, Oracle); 3] = [
    ("load", load),
    ("differential", differential),
    ("stream", stream),
];

/// Every oracle name the `all` binary knows: the three targets, then every
/// property of `check` by its id.
pub fn oracle_names() -> Vec<&'static str> {
    TARGETS
        .iter()
        .map(|t| t.0)
        .chain(PROPERTIES.iter().map(|p| p.id))
        .collect()
}

/// Runs oracle number `k` of [`oracle_names`] on `data`.
fn run_oracle(k: usize, data: &[u8]) -> Result<(), String> {
    if let Some((_, oracle)) = TARGETS.get(k) {
        return oracle(data);
    }
    let Some(property) = PROPERTIES.get(k - TARGETS.len()) else {
        return Ok(());
    };
    thread_local! {
        static MODELS: Ctx = Ctx::models();
    }
    MODELS.with(
        |ctx| match (property.run)(&mut Unstructured::new(data), ctx) {
            Ok(CampaignOutcome::Fail(f)) => Err(f.to_string()),
            _ => Ok(()),
        },
    )
}

/// The oracle `FUZZER` pins, if set (read once).
fn pinned() -> Option<usize> {
    static PINNED: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *PINNED.get_or_init(|| {
        let name = std::env::var("FUZZER").ok()?;
        let k = oracle_names().iter().position(|n| *n == name);
        if k.is_none() {
            eprintln!("FUZZER={name}: not one of {:?}", oracle_names());
            std::process::exit(2);
        }
        k
    })
}

/// The `all` target, as wasm-tools does it: the first byte picks the
/// oracle (unless `FUZZER=name` pins one) and the rest is its input.
pub fn all(data: &[u8]) -> Result<(), String> {
    let count = oracle_names().len();
    match pinned() {
        Some(k) => run_oracle(k, data),
        None => {
            let Some((&first, rest)) = data.split_first() else {
                return Ok(());
            };
            run_oracle(first as usize % count, rest)
        }
    }
}

/// Every file under `paths` (files, or directories one level deep), in
/// name order.
pub fn corpus_files(
    paths: impl IntoIterator<Item = impl Into<std::path::PathBuf>>,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let p = p.into();
        if p.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(&p)?
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()?;
            files.retain(|f| f.is_file());
            files.sort();
            out.extend(files);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

/// Replays files through the oracle of `target` without a fuzzing engine,
/// one `PASS`/`FAIL` line per input: what a fuzz target binary does when
/// built without `--cfg fuzzing`.
pub fn replay_files(
    target: &str,
    paths: impl IntoIterator<Item = impl Into<std::path::PathBuf>>,
) -> std::process::ExitCode {
    let (Some(oracle), Ok(files)) = (oracle(target), corpus_files(paths)) else {
        eprintln!("unknown target {target} or unreadable path");
        return std::process::ExitCode::FAILURE;
    };
    let mut failed = 0;
    for f in &files {
        let verdict = std::fs::read(f)
            .map_err(|e| e.to_string())
            .and_then(|data| oracle(&data));
        match verdict {
            Ok(()) => println!("PASS {}", f.display()),
            Err(e) => {
                failed += 1;
                println!("FAIL {}: {e}", f.display());
            }
        }
    }
    println!("{} passed, {failed} failed", files.len() - failed);
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    fn smoke(oracle: Oracle, seed: u64, runs: usize) -> usize {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut decoded = 0;
        for _ in 0..runs {
            let len = rng.random_range(0..2048);
            let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            decoded += usize::from(load_input(&data).is_some());
            if let Err(e) = oracle(&data) {
                panic!("input {}\n{e}", hex::encode(&data));
            }
        }
        decoded
    }

    #[test]
    fn load_smoke() {
        let decoded = smoke(load, 0x1ea4, 150);
        assert!(decoded > 100, "only {decoded} of 150 inputs decoded");
    }

    #[test]
    fn differential_smoke() {
        smoke(differential, 0xd1ff, 100);
    }

    #[test]
    fn stream_smoke() {
        let base: &[u8] = include_bytes!("../../corpus/stream/device.mig");
        let mut rng = StdRng::seed_from_u64(0x57ea);
        stream(base).expect("the seed itself");
        for _ in 0..300 {
            let mut data = base.to_vec();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..data.len());
                data[i] = rng.random();
            }
            let cut = rng.random_range(0..=data.len());
            data.truncate(cut);
            stream(&data).unwrap_or_else(|e| panic!("{}\n{e}", hex::encode(&data)));
        }
    }

    /// Every oracle of the `all` binary, fed from a fixed seed.
    #[test]
    fn every_oracle_of_all_smoke() {
        let mut rng = StdRng::seed_from_u64(0xa11);
        for (k, name) in oracle_names().iter().enumerate() {
            for _ in 0..40 {
                let len = rng.random_range(0..2048);
                let mut data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                data.insert(0, k as u8);
                if let Err(e) = all(&data) {
                    panic!("oracle {name}, input {}\n{e}", hex::encode(&data));
                }
            }
        }
        assert_eq!(oracle_names().len(), 3 + PROPERTIES.len());
    }

    #[test]
    fn targets_by_name() {
        assert!(oracle("load").is_some() && oracle("stream").is_some());
        assert!(oracle("nope").is_none());
    }
}
