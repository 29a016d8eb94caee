//! `vmstate-harness analyze FILE`: a real migration stream as JSON.

use crate::stream;
use std::path::Path;

/// The `-d state` JSON (default), the `-d desc` JSON (`desc`), or an
/// annotated hex dump of the sections `hex` selects.
pub fn analyze(file: &Path, desc: bool, hex: Option<&str>) -> Result<String, String> {
    let data = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let opts = stream::Options {
        annotate: hex.is_some(),
    };
    let s = stream::parse_with(&data, &opts).map_err(|e| format!("{}: {e}", file.display()))?;
    if let Some(sel) = hex {
        let ids = stream::hexdump::select(&s, sel);
        if ids.is_empty() {
            return Err(format!("{}: no section {sel:?}", file.display()));
        }
        return Ok(stream::hexdump::dump(&s, &ids));
    }
    let mut out = if desc {
        let json = stream::desc_json(&s).map_err(|e| format!("{}: {e}", file.display()))?;
        stream::to_python_json(&json)
    } else {
        let mut out = String::with_capacity(data.len() / 2);
        stream::write_state(&s, &mut out);
        out
    };
    out.push('\n');
    // Freeing the parsed tree value by value is wasted work right before
    // the process exits.
    std::mem::forget(s);
    Ok(out)
}
