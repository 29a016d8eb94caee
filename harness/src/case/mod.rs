//! Test vectors as data: case files (JSON) that declare C structs, VMSDs
//! over their members, a source state, the expected wire bytes and the
//! expected load result, per dialect. See README, "Case files".

pub mod ctype;
pub mod run;
pub mod spec;
pub mod value;

pub use run::{CaseResult, run_case_file, run_file};

use std::path::{Path, PathBuf};

/// Every `*.json` file under `path` (or `path` itself), sorted.
pub fn case_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let p = entry?.path();
        if p.is_dir() {
            out.extend(case_files(&p)?);
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}
