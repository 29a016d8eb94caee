//! The subcommands of the `vmstate-harness` binary, one module each.

pub mod analyze;
pub mod case;
pub mod check;
pub mod dialects;
pub mod findings;
pub mod reencode;

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// Runs `run` on every case file under `paths`, printing each result (and
/// each unreadable path as a failure); returns (results, failures).
pub fn run_paths<R: Display>(
    paths: &[PathBuf],
    run: impl Fn(&Path) -> Vec<R>,
    failed: impl Fn(&R) -> bool,
) -> (usize, usize) {
    let (mut total, mut failures) = (0, 0);
    for path in paths {
        let files = match crate::case::case_files(path) {
            Ok(f) => f,
            Err(e) => {
                println!("FAIL {}: {e}", path.display());
                total += 1;
                failures += 1;
                continue;
            }
        };
        for result in files.iter().flat_map(|f| run(f)) {
            println!("{result}");
            total += 1;
            failures += failed(&result) as usize;
        }
    }
    (total, failures)
}
