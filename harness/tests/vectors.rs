//! Replays every case file in corpus/vectors through both codecs.

use std::path::Path;
use vmstate_harness::case;
use vmstate_harness::engine::{Engine, Optimized, Reference};
use vmstate_reference::Dialect;

/// Runs every vector on `codec`; fails listing every failed case.
fn replay(codec: &dyn Engine) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/vectors");
    let files = case::case_files(&dir).expect("corpus/vectors is readable");
    assert!(!files.is_empty(), "no case files in {}", dir.display());
    let results: Vec<_> = files
        .iter()
        .flat_map(|f| case::run_file(f, codec))
        .collect();
    let failures: Vec<String> = results
        .iter()
        .filter(|r| r.failure.is_some())
        .map(|r| r.to_string())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
}

#[test]
fn every_vector_passes_on_the_reference_model() {
    replay(&Reference);
}

#[test]
fn every_vector_passes_on_the_optimized_codec() {
    replay(&Optimized);
}

#[test]
fn a_wrong_wire_byte_is_reported() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/vectors/test_vmstate.json");
    let text = std::fs::read_to_string(path).expect("test_vmstate.json");
    let text = text.replace("\"00 42 00 43 00 44\"", "\"00 42 00 43 00 45\"");
    let file: case::spec::CaseFile = serde_json::from_str(&text).expect("still a case file");
    let results = case::run_case_file("mutated", &file, &Reference);
    let failed: Vec<_> = results.iter().filter(|r| r.failure.is_some()).collect();
    assert_eq!(failed.len(), Dialect::ALL.len(), "{results:#?}");
    assert!(failed.iter().all(|r| r.name.contains("simple/array")));
}
