//! `vmstate-harness case FILE|DIR...`: run case files.

use crate::case;
use std::path::PathBuf;

/// Runs every case file under `paths`, printing one line per case and
/// dialect; returns whether all passed.
pub fn run_cases(paths: &[PathBuf]) -> bool {
    let mut failed = 0;
    let mut total = 0;
    for path in paths {
        let files = match case::case_files(path) {
            Ok(f) => f,
            Err(e) => {
                println!("FAIL {}: {e}", path.display());
                failed += 1;
                total += 1;
                continue;
            }
        };
        for file in files {
            for result in case::run_file(&file, &case::Reference) {
                println!("{result}");
                total += 1;
                failed += result.failure.is_some() as usize;
            }
        }
    }
    println!("{} passed, {failed} failed", total - failed);
    failed == 0
}
