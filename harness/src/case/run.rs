//! Running a case file against a codec, dialect by dialect.

use super::ctype::{CType, Types};
use super::spec::{CaseFile, CaseSpec, LoadSpec, SaveSpec, build_vmsd};
use super::value;
use crate::engine::{Class, Engine, Failed, Run};
use serde_json::Value;
use std::fmt;
use std::path::Path;
use vmstate_reference::{Addr, Dialect, Error, ErrorKind, Heap, QEMU_VM_EOF, Vmsd};

/// The verdict on one case in one dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// `file:case@dialect`
    pub name: String,
    pub failure: Option<String>,
    /// Why the case did not run on this engine (a dialect it cannot run).
    pub skipped: Option<String>,
}

impl fmt::Display for CaseResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.failure, &self.skipped) {
            (Some(why), _) => write!(f, "FAIL {}: {}", self.name, why),
            (None, Some(why)) => write!(f, "SKIP {}: {}", self.name, why),
            (None, None) => write!(f, "PASS {}", self.name),
        }
    }
}

/// Runs every case of the file at `path`.
pub fn run_file(path: &Path, engine: &dyn Engine) -> Vec<CaseResult> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parsed = std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str::<CaseFile>(&text).map_err(|e| e.to_string()));
    match parsed {
        Ok(file) => run_case_file(&stem, &file, engine),
        Err(e) => vec![CaseResult {
            name: stem,
            failure: Some(format!("cannot read case file: {e}")),
            skipped: None,
        }],
    }
}

/// Runs every case of a parsed file, in every dialect it lists.
pub fn run_case_file(stem: &str, file: &CaseFile, engine: &dyn Engine) -> Vec<CaseResult> {
    let types = match Types::new(&file.structs) {
        Ok(t) => t,
        Err(e) => {
            return vec![CaseResult {
                name: stem.to_string(),
                failure: Some(e),
                skipped: None,
            }];
        }
    };
    let mut out = Vec::new();
    for case in &file.cases {
        for dname in &case.dialects {
            let name = format!("{stem}:{}@{dname}", case.name);
            let (failure, skipped) = match dname.parse::<Dialect>() {
                Err(e) => (Some(e), None),
                Ok(d) if !engine.dialects().contains(&d) => {
                    (None, Some(format!("{} does not run {d}", engine.name())))
                }
                Ok(d) => (run_case(file, &types, case, d, engine).err(), None),
            };
            out.push(CaseResult {
                name,
                failure,
                skipped,
            });
        }
    }
    out
}

/// A root object of the case's root struct, prepared on a fresh heap.
pub struct Prepared {
    pub vmsd: Vmsd,
    pub heap: Heap,
    pub opaque: Addr,
    pub ty: CType,
}

/// Builds the root VMSD and writes `state` into a fresh heap.
pub fn prepare(
    file: &CaseFile,
    types: &Types,
    case: &CaseSpec,
    d: Dialect,
    state: &Value,
) -> Result<Prepared, String> {
    let root = case.root.as_deref().unwrap_or_else(|| &file.vmsds[0].name);
    let vmsd = build_vmsd(file, types, d, root)?;
    let spec = file
        .vmsds
        .iter()
        .find(|v| v.name == root)
        .ok_or("no root vmsd")?;
    let ty = CType::Struct(spec.c_struct.clone());
    let mut heap = Heap::default();
    let size = types.size_of(&ty)?;
    let opaque = heap
        .alloc_prepared(vec![0; size as usize])
        .map_err(|e| e.to_string())?;
    value::write(
        &mut heap,
        types,
        &ty,
        opaque,
        state,
        &value::Path::Root(&vmsd.name),
    )?;
    Ok(Prepared {
        vmsd,
        heap,
        opaque,
        ty,
    })
}

fn run_case(
    file: &CaseFile,
    types: &Types,
    case: &CaseSpec,
    d: Dialect,
    engine: &dyn Engine,
) -> Result<(), String> {
    if file.vmsds.is_empty() {
        return Err("no vmsds".into());
    }
    let empty = Value::Object(Default::default());
    let state = case.state.as_deref().unwrap_or(&empty);
    let src = prepare(file, types, case, d, state)?;

    let want = case.check.as_deref().unwrap_or("ok");
    if let Some(checked) = engine.check(d, &src.vmsd) {
        let verdict = match checked {
            Ok(()) => "ok".to_string(),
            Err(Error {
                kind: ErrorKind::Check(rule),
                ..
            }) => format!("{rule:?}"),
            Err(e) => return Err(format!("vmstate_check: {e}")),
        };
        if verdict != want {
            return Err(format!("vmstate_check gave {verdict}, expected {want}"));
        }
    } else if want != "ok" {
        // QEMU's registration would assert before any save or load.
        return Ok(());
    }

    let wire = case.wire.as_deref().map(value::parse_hex).transpose()?;
    let save = case
        .save
        .clone()
        .unwrap_or(SaveSpec::Skip(case.state.is_some()));
    match (&save, &wire) {
        (SaveSpec::Skip(false), _) => {}
        (SaveSpec::Error { error, path }, _) => {
            match engine.save(d, &src.vmsd, &src.heap, src.opaque) {
                Ok(bytes) => {
                    return Err(format!(
                        "save gave {}, expected error {error}",
                        hex::encode(bytes)
                    ));
                }
                Err(e) => expect_error(&e, error, None, path.as_deref())
                    .map_err(|m| format!("save: {m}"))?,
            }
        }
        (SaveSpec::Skip(true), Some(wire)) => {
            let saved = engine
                .save(d, &src.vmsd, &src.heap, src.opaque)
                .map_err(|e| format!("save failed: {e}"))?;
            if &saved != wire {
                return Err(format!(
                    "save gave\n  {}\nexpected\n  {}",
                    spaced(&saved),
                    spaced(wire)
                ));
            }
        }
        (SaveSpec::Skip(true), None) => {
            if case.save.is_some() {
                return Err("save: true needs wire".into());
            }
        }
    }

    let Some(wire) = wire else {
        return Ok(());
    };
    let expect = match &case.load {
        Some(LoadSpec::Skip(false)) => return Ok(()),
        Some(LoadSpec::Skip(true)) | None => None,
        Some(LoadSpec::Expect(e)) => Some(e),
    };
    let dest_state = case.dest.clone().unwrap_or_else(|| value::zeroed(state));
    let version = case.version.unwrap_or(src.vmsd.version_id);
    let load_into = |stream: &[u8]| -> LoadAttempt {
        let mut dst = prepare(file, types, case, d, &dest_state)?;
        let r = engine.load(d, &dst.vmsd, &mut dst.heap, dst.opaque, version, stream);
        Ok((dst, r))
    };
    // test-vmstate.c: the stream ends with QEMU_VM_EOF.
    let mut stream = wire.clone();
    stream.push(QEMU_VM_EOF);
    let (dst, result) = load_into(&stream)?;
    match (expect.and_then(|e| e.error.as_deref()), result) {
        (Some(code), Ok(_)) => return Err(format!("load succeeded, expected error {code}")),
        (Some(code), Err(e)) => {
            let e_spec = expect.expect("error implies expect");
            expect_error(&e, code, e_spec.offset, e_spec.path.as_deref())
                .map_err(|m| format!("load: {m}"))?;
        }
        (None, Err(e)) => return Err(format!("load failed: {e}")),
        (None, Ok(consumed)) => {
            if consumed != wire.len() {
                return Err(format!("load consumed {consumed} bytes of {}", wire.len()));
            }
            let want = expect.and_then(|e| e.state.as_ref()).unwrap_or(state);
            let got = value::read(&dst.heap, types, &dst.ty, dst.opaque, Some(want))?;
            let got = project(&got, want);
            if &got != want {
                return Err(format!("loaded state\n  {got}\nexpected\n  {want}"));
            }
            if case.truncations != Some(false) {
                check_truncations(&stream, &load_into)?;
            }
        }
    }
    Ok(())
}

/// A destination after a load, with the load's result.
type LoadAttempt = Result<(Prepared, Run<usize>), String>;

/// test-vmstate.c `load_vmstate`: loading nothing, all but 2 bytes, the
/// first half and the second half of the stream must all fail.
fn check_truncations(
    stream: &[u8],
    load_into: &dyn Fn(&[u8]) -> LoadAttempt,
) -> Result<(), String> {
    let size = stream.len();
    let mut cuts: Vec<(&str, &[u8])> = vec![("empty stream", &stream[..0])];
    if size > 3 {
        cuts.push(("size - 2", &stream[..size - 2]));
        cuts.push(("first half", &stream[..size / 2]));
        cuts.push(("second half", &stream[size / 2..size / 2 + size / 2]));
    }
    for (what, cut) in cuts {
        if let (_, Ok(n)) = load_into(cut)? {
            return Err(format!(
                "loading the {what} ({} bytes) succeeded, consuming {n}",
                cut.len()
            ));
        }
    }
    Ok(())
}

/// A failure against an expected error: exactly (code, offset, path) for a
/// model engine; by outcome class for QEMU, which reports no kind.
fn expect_error(
    failed: &Failed,
    code: &str,
    offset: Option<usize>,
    path: Option<&str>,
) -> Result<(), String> {
    let Some(e) = failed.model() else {
        let want = vmstate_reference::ErrorKind::outcome_of_code(code)
            .map(Class::from)
            .ok_or_else(|| format!("unknown error code {code}"))?;
        if want == Class::Undefined || failed.class() == Class::Poisoned {
            return Ok(()); // nothing to compare
        }
        if failed.class() != want {
            return Err(format!("{failed}, expected {code} ({want})"));
        }
        return Ok(());
    };
    let got = match &e.kind {
        ErrorKind::Check(rule) => format!("{rule:?}"),
        k => k.code().to_string(),
    };
    if got != code && e.kind.code() != code {
        return Err(format!("error {e} ({got}), expected {code}"));
    }
    if offset.is_some_and(|o| o != e.offset) {
        return Err(format!(
            "error {e} at offset {}, expected offset {}",
            e.offset,
            offset.unwrap_or(0)
        ));
    }
    if path.is_some_and(|p| p != e.path) {
        return Err(format!(
            "error {e} at path {}, expected {}",
            e.path,
            path.unwrap_or("")
        ));
    }
    Ok(())
}

/// `got` restricted to the object members `want` names, recursively.
fn project(got: &Value, want: &Value) -> Value {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => Value::Object(
            w.keys()
                .filter_map(|k| g.get(k).map(|gv| (k.clone(), project(gv, &w[k]))))
                .collect(),
        ),
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            Value::Array(g.iter().zip(w).map(|(gv, wv)| project(gv, wv)).collect())
        }
        (Value::Array(g), Value::String(_)) => {
            // a byte array written as hex
            let bytes: Option<Vec<u8>> = g.iter().map(|v| v.as_u64().map(|b| b as u8)).collect();
            bytes.map_or_else(|| got.clone(), |b| Value::String(hex::encode(b)))
        }
        _ => got.clone(),
    }
}

fn spaced(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
