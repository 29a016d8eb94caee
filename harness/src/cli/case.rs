//! `vmstate-harness case FILE|DIR...`: run case files.

use crate::case;
use std::path::PathBuf;

/// Runs every case file under `paths`, printing one line per case and
/// dialect; returns whether all passed.
pub fn run_cases(paths: &[PathBuf]) -> bool {
    let (total, failed) = super::run_paths(
        paths,
        |f| case::run_file(f, &case::Reference),
        |r| r.failure.is_some(),
    );
    println!("{} passed, {failed} failed", total - failed);
    failed == 0
}
