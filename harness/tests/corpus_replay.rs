//! Replays every file of corpus/load, corpus/differential and corpus/stream
//! through the oracle of the fuzz target of the same name, without a fuzzing
//! engine: the seeds and every minimized crash stay regression tests.

use std::path::Path;
use vmstate_harness::fuzz;

fn replay(target: &str, at_least: usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(target);
    let files = fuzz::corpus_files([&dir]).expect("corpus folder is readable");
    assert!(
        files.len() >= at_least,
        "{} has {} files",
        dir.display(),
        files.len()
    );
    let oracle = fuzz::oracle(target).expect("a fuzz target");
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let data = std::fs::read(f).expect("readable");
            oracle(&data).err().map(|e| format!("{}: {e}", f.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn corpus_load() {
    replay("load", 20);
}

#[test]
fn corpus_differential() {
    replay("differential", 20);
}

#[test]
fn corpus_stream() {
    replay("stream", 10);
}
