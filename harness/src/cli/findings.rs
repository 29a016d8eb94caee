//! `vmstate-harness findings [FILE|DIR...]`: replays the QEMU leak findings
//! of corpus/findings. Each case's name starts with the [`Finding`] it
//! reproduces (`VmsAllocOverwrite: ...`); the case is loaded QEMU-faithfully
//! by the reference model, the leak oracle must attribute what it sees to
//! that finding (and nothing to unnamed causes), and the optimized codec's
//! strict mode must load the same bytes without leaking.

use crate::case::ctype::Types;
use crate::case::run::prepare;
use crate::case::spec::CaseFile;
use crate::case::value;
use crate::codec::Compiled;
use crate::leak::{self, Finding};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use vmstate_reference::{Dialect, QEMU_VM_EOF};

/// The verdict on one case in one dialect.
#[derive(Debug, Clone)]
pub struct FindingResult {
    /// `file:case@dialect`
    pub name: String,
    pub expected: Option<Finding>,
    pub found: BTreeSet<Finding>,
    /// What the leak oracle reported, one line per violation.
    pub detail: Vec<String>,
    pub failure: Option<String>,
}

impl fmt::Display for FindingResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.failure, self.expected) {
            (Some(why), _) => write!(f, "FAIL {}: {why}", self.name)?,
            (None, Some(e)) => write!(
                f,
                "FOUND {} {}\n    at {}",
                e.name(),
                self.name,
                e.qemu_site()
            )?,
            (None, None) => write!(f, "PASS {}", self.name)?,
        }
        for line in &self.detail {
            write!(f, "\n    {line}")?;
        }
        Ok(())
    }
}

/// Replays every case of the finding file at `path`.
pub fn run_file(path: &Path) -> Vec<FindingResult> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parsed = std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str::<CaseFile>(&text).map_err(|e| e.to_string()));
    let file = match parsed {
        Ok(f) => f,
        Err(e) => return vec![failed(stem, format!("cannot read case file: {e}"))],
    };
    let types = match Types::new(&file.structs) {
        Ok(t) => t,
        Err(e) => return vec![failed(stem, e)],
    };
    let mut out = Vec::new();
    for (i, spec) in file.cases.iter().enumerate() {
        for dname in &spec.dialects {
            let name = format!("{stem}:{}@{dname}", spec.name);
            let expected = spec
                .name
                .split(':')
                .next()
                .and_then(|n| Finding::from_name(n.trim()));
            let mut r = FindingResult {
                name,
                expected,
                found: BTreeSet::new(),
                detail: vec![],
                failure: None,
            };
            if let Err(e) = dname
                .parse::<Dialect>()
                .and_then(|d| replay(&file, &types, i, d, &mut r))
            {
                r.failure = Some(e);
            }
            out.push(r);
        }
    }
    out
}

fn failed(name: String, why: String) -> FindingResult {
    FindingResult {
        name,
        expected: None,
        found: BTreeSet::new(),
        detail: vec![],
        failure: Some(why),
    }
}

/// A finding case's destination, its stream (the wire and `QEMU_VM_EOF`)
/// and the version to load with.
fn destination(
    file: &CaseFile,
    types: &Types,
    spec: &crate::case::spec::CaseSpec,
    d: Dialect,
) -> Result<(crate::case::run::Prepared, Vec<u8>, i32), String> {
    let empty = serde_json::Value::Object(Default::default());
    let dest_state = spec
        .dest
        .clone()
        .unwrap_or_else(|| value::zeroed(spec.state.as_deref().unwrap_or(&empty)));
    let dst = prepare(file, types, spec, d, &dest_state)?;
    let mut stream = value::parse_hex(spec.wire.as_deref().ok_or("the case has no wire")?)?;
    stream.push(QEMU_VM_EOF);
    let version = spec.version.unwrap_or(dst.vmsd.version_id);
    Ok((dst, stream, version))
}

fn replay(
    file: &CaseFile,
    types: &Types,
    i: usize,
    d: Dialect,
    r: &mut FindingResult,
) -> Result<(), String> {
    let spec = &file.cases[i];
    let expected = r
        .expected
        .ok_or("the case name must start with a finding name and ':'")?;
    let (dst, stream, version) = destination(file, types, spec, d)?;

    let mut heap = dst.heap.clone();
    let result =
        vmstate_reference::load_state(d, &dst.vmsd, &mut heap, dst.opaque, version, &stream);
    r.detail.push(format!("QEMU-faithful load: {result:?}"));
    let walked = leak::Before::new(d, &dst.vmsd, &dst.heap, dst.opaque);
    let report = walked.check(&heap, &result);
    r.detail
        .extend(report.violations.iter().map(|v| v.to_string()));
    if result.is_err() && !report.made_live.is_empty() {
        r.detail.push(format!(
            "still attached after the failure: {} bytes in {} allocations",
            report.made_bytes,
            report.made_live.len()
        ));
    }
    r.found = walked.faithful(&heap, &result)?;
    if !r.found.contains(&expected) {
        return Err(format!(
            "expected {}, the leak oracle found {:?}\n    {}",
            expected.name(),
            r.found,
            r.detail.join("\n    ")
        ));
    }

    let mut heap = dst.heap.clone();
    let result = Compiled::new(d, &dst.vmsd).load_strict(&mut heap, dst.opaque, version, &stream);
    walked.strict(&heap, &result)?;
    r.detail.push(format!(
        "strict codec load: {result:?}, no leak, ledger balances"
    ));
    Ok(())
}

/// Runs every finding file under `paths` (default corpus/findings), printing
/// one entry per case and dialect; returns whether all reproduced.
pub fn run_findings(paths: &[PathBuf]) -> bool {
    let (total, failed) = super::run_paths(paths, run_file, |r| r.failure.is_some());
    println!("{} reproduced, {failed} failed", total - failed);
    failed == 0
}

/// `findings --qemu ENGINE`: each finding reproducer of the engine's dialect
/// loaded by QEMU's own C. A finding is CONFIRMED when QEMU does what the
/// model says it does (with LeakSanitizer's report when the engine was
/// built with `--sanitize`), REFUTED when it does not.
pub fn run_findings_qemu(paths: &[PathBuf], engine: &Path) -> bool {
    let qemu = match crate::engine::qemu::QemuEngine::spawn(engine) {
        Ok(q) => q,
        Err(e) => {
            println!("FAIL cannot start {}: {e}", engine.display());
            return false;
        }
    };
    let (mut confirmed, mut refuted, mut skipped) = (0, 0, 0);
    for path in paths {
        let files = crate::case::case_files(path).unwrap_or_default();
        for f in files {
            for line in qemu_file(&f, &qemu) {
                println!("{line}");
                match line.split(' ').next() {
                    Some("CONFIRMED") => confirmed += 1,
                    Some("SKIP") => skipped += 1,
                    _ => refuted += 1,
                }
            }
        }
    }
    println!(
        "{confirmed} confirmed, {refuted} refuted or failed, {skipped} skipped ({} {})",
        crate::engine::Engine::name(&qemu),
        qemu.dialect()
    );
    refuted == 0 && confirmed > 0
}

fn qemu_file(path: &Path, qemu: &crate::engine::qemu::QemuEngine) -> Vec<String> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<CaseFile>(&t).map_err(|e| e.to_string()))
    {
        Ok(f) => f,
        Err(e) => return vec![format!("FAIL {stem}: {e}")],
    };
    let Ok(types) = Types::new(&file.structs) else {
        return vec![format!("FAIL {stem}: bad structs")];
    };
    let mut out = vec![];
    for spec in &file.cases {
        let name = format!("{stem}:{}@{}", spec.name, qemu.dialect());
        if !spec.dialects.iter().any(|d| d == qemu.dialect().name()) {
            out.push(format!(
                "SKIP {stem}:{}: not a {} case",
                spec.name,
                qemu.dialect()
            ));
            continue;
        }
        let expected = spec
            .name
            .split(':')
            .next()
            .and_then(|n| Finding::from_name(n.trim()));
        out.push(match (expected, confirm(&file, &types, spec, qemu)) {
            (None, _) => format!("FAIL {name}: the case name must start with a finding"),
            (Some(_), Err(e)) => format!("FAIL {name}: {e}"),
            (Some(f), Ok(verdict)) => verdict.line(f, &name),
        });
    }
    out
}

/// What QEMU's C did with a finding's reproducer.
struct QemuVerdict {
    result: crate::engine::Run<usize>,
    /// Load-made allocations still live afterwards.
    made_live: usize,
    /// Prepared objects reachable before, unreachable after.
    lost: usize,
    lsan: crate::engine::qemu::protocol::Lsan,
}

impl QemuVerdict {
    fn line(&self, f: Finding, name: &str) -> String {
        use crate::engine::qemu::protocol::Lsan;
        let lsan = match &self.lsan {
            Lsan::NotRun => "LeakSanitizer not built in".to_string(),
            Lsan::Clean => "LeakSanitizer: no leak".to_string(),
            Lsan::Leaks(report) => format!(
                "LeakSanitizer: {}",
                report
                    .lines()
                    .find(|l| l.contains("leak of"))
                    .unwrap_or("leak")
                    .trim()
            ),
        };
        let lsan_ok = !matches!(self.lsan, Lsan::Clean);
        let (holds, what) = match f {
            Finding::VmsAllocOverwrite | Finding::ComboAllocOverNonNull => (
                self.result.is_ok() && self.lost > 0 && lsan_ok,
                format!(
                    "load {}, {} prepared object(s) lost",
                    self.result
                        .as_ref()
                        .err()
                        .map_or("ok".into(), |e| e.to_string()),
                    self.lost
                ),
            ),
            Finding::FailedLoadKeepsAllocations => (
                self.result.is_err() && self.made_live > 0,
                format!(
                    "load failed ({}), {} allocation(s) left attached",
                    self.result
                        .as_ref()
                        .err()
                        .map_or("ok".into(), |e| e.to_string()),
                    self.made_live
                ),
            ),
            Finding::AllocAutoAllocUnzeroedTable => (
                matches!(&self.result, Err(crate::engine::Failed::Aborted { assertion }) if assertion.contains("auto_alloc")),
                format!(
                    "load {}",
                    self.result
                        .as_ref()
                        .err()
                        .map_or("ok".into(), |e| e.to_string())
                ),
            ),
        };
        let verdict = if holds { "CONFIRMED" } else { "REFUTED" };
        format!("{verdict} {} {name}\n    QEMU: {what}; {lsan}", f.name())
    }
}

fn confirm(
    file: &CaseFile,
    types: &Types,
    spec: &crate::case::spec::CaseSpec,
    qemu: &crate::engine::qemu::QemuEngine,
) -> Result<QemuVerdict, String> {
    let d = qemu.dialect();
    let (dst, stream, version) = destination(file, types, spec, d)?;
    let mut heap = dst.heap.clone();
    let result = qemu
        .load(&dst.vmsd, &mut heap, dst.opaque, version, &stream)
        .into_run();
    let before = leak::reach(d, &dst.vmsd, &dst.heap, dst.opaque);
    let after = leak::reach(d, &dst.vmsd, &heap, dst.opaque);
    let lost = before
        .reachable
        .iter()
        .filter(|a| !after.reachable.contains(a))
        .count();
    let made_live = heap
        .allocations()
        .filter(|a| !a.freed && matches!(a.origin, vmstate_reference::Origin::Load { .. }))
        .count();
    Ok(QemuVerdict {
        result,
        made_live,
        lost,
        lsan: qemu
            .last_run()
            .lsan
            .unwrap_or(crate::engine::qemu::protocol::Lsan::NotRun),
    })
}
