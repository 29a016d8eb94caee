//! `vmstate-harness case [--engine E] [--qemu ENGINE] FILE|DIR...`: run
//! case files on one engine.

use crate::case;
use crate::engine::Engine;
use std::path::PathBuf;

/// Runs every case file under `paths` on `engine`, printing one line per
/// case and dialect; returns whether none failed.
pub fn run_cases(paths: &[PathBuf], engine: &dyn Engine) -> bool {
    let skipped = std::cell::Cell::new(0usize);
    let (total, failed) = super::run_paths(
        paths,
        |f| case::run_file(f, engine),
        |r| {
            skipped.set(skipped.get() + r.skipped.is_some() as usize);
            r.failure.is_some()
        },
    );
    let skipped = skipped.get();
    println!(
        "{} passed, {failed} failed, {skipped} skipped ({})",
        total - failed - skipped,
        engine.name()
    );
    failed == 0
}
