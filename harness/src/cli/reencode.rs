//! `vmstate-harness reencode FILE...` and `vmstate-harness load FILE`:
//! real device sections through the codecs (see [`crate::reencode`]).

use crate::reencode::{self, Comparison, Dest, LoadReport, ReencodeReport};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use vmstate_reference::Dialect;

/// A byte to change before the stream is read: `OFFSET=BYTE` (decimal or
/// 0x hex), e.g. `186236=0x31`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patch {
    pub offset: usize,
    pub byte: u8,
}

impl std::str::FromStr for Patch {
    type Err = String;
    fn from_str(s: &str) -> Result<Patch, String> {
        fn num(t: &str) -> Result<u64, String> {
            match t.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => t.parse(),
            }
            .map_err(|e| format!("{t:?}: {e}"))
        }
        let (o, b) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected OFFSET=BYTE"))?;
        let byte = u8::try_from(num(b)?).map_err(|_| format!("{b:?} is not a byte"))?;
        let offset = usize::try_from(num(o)?).map_err(|_| format!("{o:?}: too large"))?;
        Ok(Patch { offset, byte })
    }
}

/// Reads `file` and applies `patches`.
pub fn read_patched(file: &Path, patches: &[Patch]) -> Result<Vec<u8>, String> {
    let mut data = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    for p in patches {
        let len = data.len();
        let b = data
            .get_mut(p.offset)
            .ok_or_else(|| format!("{}: offset {} past {len} bytes", file.display(), p.offset))?;
        *b = p.byte;
    }
    Ok(data)
}

/// The `reencode` report of one stream as text; the bool is "every device
/// section identical".
pub fn render_reencode(file: &Path, r: &ReencodeReport) -> (String, bool) {
    let mut out = String::new();
    let d = r.dialect.map_or("?".into(), |d| d.to_string());
    let why = r.version.as_ref().map_or("", |v| v.evidence.as_str());
    let _ = writeln!(out, "{}: dialect {d} ({why})", file.display());
    // Stream order: device sections and excluded ones are listed together.
    let mut lines: Vec<(usize, String)> = Vec::new();
    for s in &r.sections {
        let what = match &s.result {
            Ok(Comparison::Identical) => "identical".to_string(),
            Ok(Comparison::Differs {
                offset,
                path,
                expected,
                found,
                consumed,
            }) => {
                let b = |x: &Option<u8>| x.map_or("end".into(), |b| format!("{b:02x}"));
                format!(
                    "different at offset {offset} ({path}): stream {} saved {} (load consumed {consumed} of {})",
                    b(expected),
                    b(found),
                    s.payload_len()
                )
            }
            Ok(Comparison::HeapsDiffer { detail }) => {
                format!("different: the models loaded different memory: {detail}")
            }
            Err(e) => format!("different: {e}"),
        };
        lines.push((
            s.payload.start,
            format!(
                "  {} (instance {}, section {}, {} bytes): {what}",
                s.name,
                s.instance_id,
                s.section_id,
                s.payload_len()
            ),
        ));
    }
    for x in &r.excluded {
        lines.push((
            usize::MAX,
            format!(
                "  {} (instance {}, section {}, {:?}): excluded: {}",
                x.name, x.instance_id, x.section_id, x.section_type, x.reason
            ),
        ));
    }
    lines.sort_by_key(|(k, _)| *k);
    for (_, l) in lines {
        out.push_str(&l);
        out.push('\n');
    }
    let same = r.identical_count();
    let _ = writeln!(
        out,
        "{}: {same} identical, {} different, {} excluded",
        file.display(),
        r.sections.len() - same,
        r.excluded.len()
    );
    (out, r.all_identical())
}

/// `vmstate-harness reencode FILE...`: true when every device section of
/// every file re-encodes byte for byte.
pub fn reencode_files(files: &[PathBuf], dialect: Option<Dialect>) -> bool {
    let mut ok = true;
    let (mut identical, mut different, mut excluded, mut unreadable) = (0, 0, 0, 0);
    for f in files {
        let r = std::fs::read(f)
            .map_err(|e| e.to_string())
            .and_then(|data| reencode::reencode_stream(&data, dialect).map_err(|e| e.to_string()));
        match r {
            Ok(r) => {
                let (text, same) = render_reencode(f, &r);
                print!("{text}");
                ok &= same;
                identical += r.identical_count();
                different += r.sections.len() - r.identical_count();
                excluded += r.excluded.len();
            }
            Err(e) => {
                println!("{}: error: {e}", f.display());
                ok = false;
                unreadable += 1;
            }
        }
    }
    println!(
        "{} files: {identical} identical, {different} different, {excluded} excluded, {unreadable} unreadable",
        files.len()
    );
    ok
}

/// The `load` report as text.
pub fn render_load(file: &Path, r: &LoadReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: dialect {} ({}), destination {:?}",
        file.display(),
        r.dialect,
        r.version.evidence,
        r.dest
    );
    for s in &r.sections {
        let _ = writeln!(
            out,
            "  {} (instance {}, section {}): {}",
            s.name,
            s.instance_id,
            s.section_id,
            s.verdict(r.dialect)
        );
    }
    let ok = r.sections.iter().filter(|s| s.ok()).count();
    let _ = writeln!(
        out,
        "{}: {ok} ok, {} not ({} excluded)",
        file.display(),
        r.sections.len() - ok,
        r.excluded.len()
    );
    out
}

/// Arguments of `vmstate-harness load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// The migration stream.
    pub file: PathBuf,
    /// Dialect of the destination (default: the stream's QEMU version).
    #[arg(long)]
    pub dialect: Option<Dialect>,
    /// Destination pre-state: fresh (migration), live (loadvm into a running
    /// VM), reset.
    #[arg(long, default_value = "fresh")]
    pub dest: Dest,
    /// Rebuild the destinations from this stream's vmdesc instead (e.g. an
    /// 11.1.3 stream's, to load a 10.0.2 stream as 11.1.3 would).
    #[arg(long, value_name = "STREAM")]
    pub desc_from: Option<PathBuf>,
    /// Change one byte before loading: OFFSET=BYTE (repeatable).
    #[arg(long, value_name = "OFFSET=BYTE")]
    pub patch: Vec<Patch>,
}

/// Runs `load` and renders its report; the bool is "every device section
/// loaded".
pub fn load_text(args: &LoadArgs) -> Result<(String, bool), String> {
    let data = read_patched(&args.file, &args.patch)?;
    let other = args
        .desc_from
        .as_ref()
        .map(|p| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display())))
        .transpose()?;
    let r = reencode::load_stream(&data, other.as_deref(), args.dialect, args.dest)
        .map_err(|e| format!("{}: {e}", args.file.display()))?;
    let ok = r.sections.iter().all(|s| s.ok());
    Ok((render_load(&args.file, &r), ok))
}

/// `vmstate-harness load`: true when every device section loads.
pub fn load(args: &LoadArgs) -> bool {
    match load_text(args) {
        Ok((text, ok)) => {
            print!("{text}");
            ok
        }
        Err(e) => {
            println!("error: {e}");
            false
        }
    }
}
