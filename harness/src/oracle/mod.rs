//! Oracles: the properties the harness checks, each a function from a
//! generated case to `Ok` or a readable [`Failure`]. proptest, the fuzz
//! targets and `vmstate-harness check` all call these.

mod built;
mod report;

pub use built::{Built, Source};
pub use report::{annotate, heap_diff, hex_diff, text_diff};

use crate::case::spec::{CaseFile, FlagsSpec, port_to};
use crate::case::value;
use crate::codec;
use crate::engine::compare::Canonical;
use crate::engine::{Agreement, Class, Engine, Failed, Optimized, Reference, Run, agree, class_of};
use crate::generate::GenCase;
use arbitrary::Arbitrary;
use std::fmt;
use vmstate_reference::{
    self as reference, Dialect, Dynamic, Heap, MARKER_VALID, NullEntry, QEMU_VM_EOF, Span,
    SpanKind, Vmsd,
};

/// A property that did not hold, with everything needed to reproduce it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub property: &'static str,
    /// What differed, for a person.
    pub report: String,
    /// The case file that reproduces it.
    pub case: Option<Box<CaseFile>>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "property `{}` failed", self.property)?;
        writeln!(f, "{}", self.report)?;
        if let Some(case) = &self.case {
            writeln!(
                f,
                "case file:\n{}",
                serde_json::to_string_pretty(case).unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

fn fail(property: &'static str, case: &GenCase, report: String) -> Failure {
    Failure {
        property,
        report,
        case: Some(Box::new(case.file.clone())),
    }
}

fn built(property: &'static str, case: &GenCase, d: Dialect) -> Result<Built, Failure> {
    Built::new(case, d).map_err(|e| does_not_build(property, case, e))
}

/// [`built`] up to the source, for the properties that only save.
fn source(property: &'static str, case: &GenCase, d: Dialect) -> Result<Source, Failure> {
    Source::new(case, d).map_err(|e| does_not_build(property, case, e))
}

fn does_not_build(property: &'static str, case: &GenCase, e: String) -> Failure {
    fail(
        property,
        case,
        format!("generated case does not build: {e}"),
    )
}

/// The two model engines, the default of every oracle.
pub const MODELS: [&dyn Engine; 2] = [&Reference, &Optimized];

/// Every pair of `engines` that can run dialect `d`.
fn pairs(engines: &[&dyn Engine], d: Dialect) -> Vec<(usize, usize)> {
    let able: Vec<usize> = (0..engines.len())
        .filter(|&i| engines[i].dialects().contains(&d))
        .collect();
    let mut out = vec![];
    for (k, &i) in able.iter().enumerate() {
        for &j in &able[k + 1..] {
            out.push((i, j));
        }
    }
    out
}

/// Runs `op` on `e` unless `e` cannot run dialect `d`, or a model already
/// found undefined behaviour: C code with undefined behaviour proves
/// nothing, and a wild write could corrupt a long-running QEMU driver and
/// make a later case fail for no reason of its own.
fn run_unless_undefined<T>(
    e: &dyn Engine,
    d: Dialect,
    undefined: bool,
    op: impl FnOnce() -> Run<T>,
) -> Run<T> {
    if !e.dialects().contains(&d) {
        Err(Failed::Lost(format!("{} does not run {d}", e.name())))
    } else if undefined && !e.exact() {
        Err(Failed::Lost("a model found undefined behaviour".into()))
    } else {
        op()
    }
}

/// Reference and optimized save give the same bytes (or the same error).
pub fn save_agrees(case: &GenCase) -> Result<(), Failure> {
    save_agrees_with(case, &MODELS)
}

/// Every engine saves the same bytes, or fails the same way (exactly
/// between models, by outcome class against QEMU).
pub fn save_agrees_with(case: &GenCase, engines: &[&dyn Engine]) -> Result<(), Failure> {
    const P: &str = "save: engines agree";
    let b = source(P, case, case.dialect)?;
    save_agrees_on(&b, engines).map_err(|r| fail(P, case, r))
}

/// [`save_agrees_with`] on a built case.
pub fn save_agrees_on(b: &Source, engines: &[&dyn Engine]) -> Result<(), String> {
    let mut undefined = false;
    let runs: Vec<Run<Vec<u8>>> = engines
        .iter()
        .map(|e| {
            let r = run_unless_undefined(*e, b.d, undefined, || {
                e.save(b.d, b.vmsd(), &b.src.heap, b.src.opaque)
            });
            undefined |= e.exact() && class_of(&r) == Class::Undefined;
            r
        })
        .collect();
    for (i, j) in pairs(engines, b.d) {
        let (ei, ej) = (engines[i], engines[j]);
        let names = format!("{} vs {} ({})", ei.name(), ej.name(), b.d);
        match agree(&runs[i], &runs[j], ei.exact() && ej.exact()) {
            Agreement::Differ(why) => return Err(format!("{names}: {why}")),
            Agreement::Poisoned => {}
            Agreement::Same => {
                if let (Ok(x), Ok(y)) = (&runs[i], &runs[j])
                    && x != y
                {
                    let diff = hex_diff(x, y, &b.spans());
                    return Err(format!("{names}: bytes differ\n{diff}"));
                }
            }
        }
    }
    Ok(())
}

/// Bytes a device payload is followed by in these oracles: `QEMU_VM_EOF`
/// and room for the longest subsection peek (2 + 255 bytes). On a real
/// stream the footer and the rest of the migration follow; with only the
/// EOF byte, a nested struct followed by a byte 0x05 makes the loader peek
/// past the end, which sets the file's -EIO (a finding, see README).
pub const TRAILER: usize = 258;

/// The saved stream as a destination reads it: payload, EOF, zero padding.
pub fn stream_of(bytes: &[u8]) -> Vec<u8> {
    let mut s = bytes.to_vec();
    s.push(QEMU_VM_EOF);
    s.resize(bytes.len() + TRAILER, 0);
    s
}

/// A change made to a valid stream before loading it.
#[derive(Debug, Clone, Arbitrary)]
pub enum Mutation {
    None,
    /// Cut the stream at this offset (modulo its length).
    Truncate(u16),
    /// Replace one byte.
    Replace(u16, u8),
    /// Put a marker byte (0x30, 0x31, or anything else) somewhere.
    Marker(u16, bool, bool),
    /// Write 0xff..ff over 4 bytes: a hostile count or size.
    HostileCount(u16),
}

impl Mutation {
    pub fn apply(&self, stream: &[u8]) -> Vec<u8> {
        let mut s = stream.to_vec();
        let at = |i: u16| {
            if s.is_empty() {
                0
            } else {
                i as usize % s.len()
            }
        };
        match *self {
            Mutation::None => {}
            Mutation::Truncate(i) => s.truncate(at(i)),
            Mutation::Replace(i, b) => {
                let i = at(i);
                if let Some(x) = s.get_mut(i) {
                    *x = b;
                }
            }
            Mutation::Marker(i, a, b) => {
                let i = at(i);
                if let Some(x) = s.get_mut(i) {
                    *x = match (a, b) {
                        (false, _) => 0x30,
                        (true, false) => 0x31,
                        (true, true) => 0x32,
                    };
                }
            }
            Mutation::HostileCount(i) => {
                let i = at(i);
                let end = (i + 4).min(s.len());
                s[i..end].fill(0xff);
            }
        }
        s
    }
}

/// Reference and optimized load of the same bytes give the same result
/// (value or error kind, offset and path) and the same heap, byte for byte.
pub fn load_agrees(case: &GenCase, mutation: &Mutation) -> Result<(), Failure> {
    load_agrees_with(case, mutation, &MODELS)
}

/// Every engine loads (a mutation of) the reference's bytes with the same
/// outcome; models leave the same heap byte for byte, and any two engines
/// the same destination state and the same allocations.
pub fn load_agrees_with(
    case: &GenCase,
    mutation: &Mutation,
    engines: &[&dyn Engine],
) -> Result<(), Failure> {
    const P: &str = "load: engines agree";
    let b = built(P, case, case.dialect)?;
    let saved = b.reference_bytes().unwrap_or_default();
    let stream = mutation.apply(&stream_of(&saved));
    load_agrees_on(&b, &stream, engines)
        .map_err(|r| fail(P, case, format!("mutation {mutation:?}\n{r}")))
}

/// [`load_agrees_with`] on given bytes.
pub fn load_agrees_on(b: &Built, stream: &[u8], engines: &[&dyn Engine]) -> Result<(), String> {
    let version = b.dest.vmsd.version_id;
    let mut undefined = false;
    let runs: Vec<(Run<usize>, Heap)> = engines
        .iter()
        .map(|e| {
            let mut heap = b.dest.heap.clone();
            let r = run_unless_undefined(*e, b.d, undefined, || {
                e.load(b.d, &b.dest.vmsd, &mut heap, b.dest.opaque, version, stream)
            });
            undefined |= e.exact() && class_of(&r) == Class::Undefined;
            (r, heap)
        })
        .collect();
    for (i, j) in pairs(engines, b.d) {
        let (ei, ej) = (engines[i], engines[j]);
        let ((ri, hi), (rj, hj)) = (&runs[i], &runs[j]);
        let exact = ei.exact() && ej.exact();
        let head = format!(
            "{} vs {} ({})\nstream {}",
            ei.name(),
            ej.name(),
            b.d,
            hex::encode(stream)
        );
        match agree(ri, rj, exact) {
            Agreement::Differ(why) => return Err(format!("{head}\n{why}")),
            Agreement::Poisoned => continue,
            Agreement::Same => {}
        }
        if exact {
            if hi != hj {
                return Err(format!(
                    "{head}\nresult {ri:?}\nheaps differ:\n{}",
                    heap_diff(hi, hj)
                ));
            }
            continue;
        }
        if let (Ok(ci), Ok(cj)) = (ri, rj) {
            if ci != cj {
                return Err(format!("{head}\nconsumed {ci} vs {cj} bytes"));
            }
            let canon =
                |h: &Heap| Canonical::of(h, &b.types, &b.dest.ty, b.dest.opaque, Some(&b.state));
            if let Some(diff) = canon(hi).diff(&canon(hj)) {
                return Err(format!("{head}\nafter the load:\n{diff}"));
            }
        }
    }
    Ok(())
}

/// load(save(x)) gives back x, into a destination prepared as the dialect
/// requires, on the reference.
pub fn round_trip(case: &GenCase) -> Result<(), Failure> {
    round_trip_with(case, &[&Reference])
}

/// load(save(x)) gives back x on every engine, each loading its own bytes
/// and consuming all of them.
pub fn round_trip_with(case: &GenCase, engines: &[&dyn Engine]) -> Result<(), Failure> {
    const P: &str = "load(save(x)) == x";
    let b = built(P, case, case.dialect)?;
    for e in engines.iter().filter(|e| e.dialects().contains(&b.d)) {
        round_trip_on(&b, *e).map_err(|r| fail(P, case, format!("{}: {r}", e.name())))?;
    }
    Ok(())
}

fn round_trip_on(b: &Built, e: &dyn Engine) -> Result<(), String> {
    if !e.exact() && b.reference_bytes().is_err() {
        return Ok(()); // nothing to round-trip; the save property compares the error
    }
    let saved = match e.save(b.d, b.vmsd(), &b.src.heap, b.src.opaque) {
        Ok(bytes) => bytes,
        Err(f) if e.exact() => return Err(format!("save failed: {f}")),
        Err(_) => return Ok(()), // QEMU's save outcome is the save property's
    };
    let stream = stream_of(&saved);
    let mut dest = b.dest.heap.clone();
    let version = b.src.vmsd.version_id;
    let consumed = match e.load(
        b.d,
        &b.dest.vmsd,
        &mut dest,
        b.dest.opaque,
        version,
        &stream,
    ) {
        Ok(n) => n,
        Err(f) if f.class() == Class::Poisoned => return Ok(()),
        Err(f) => {
            return Err(format!(
                "load failed: {f}\n{}",
                annotate(&stream, &b.spans())
            ));
        }
    };
    if consumed != saved.len() {
        return Err(format!("load consumed {consumed} of {} bytes", saved.len()));
    }
    let want: &serde_json::Value = &b.state;
    let got = value::read(&dest, &b.types, &b.dest.ty, b.dest.opaque, Some(want))
        .map_err(|e| format!("reading the destination: {e}"))?;
    if &got != want {
        let (w, g) = (
            serde_json::to_string_pretty(want).unwrap_or_default(),
            serde_json::to_string_pretty(&got).unwrap_or_default(),
        );
        return Err(format!(
            "loaded state differs (left: source, right: loaded):\n{}\nstream:\n{}",
            text_diff(&w, &g),
            annotate(&saved, &b.spans())
        ));
    }
    Ok(())
}

/// The dialects with a dynamic array of pointers (ptr markers, the loader
/// allocates): qemu-11.1, qemu-master and alloc-combo.
pub fn dynamic_dialects() -> impl Iterator<Item = Dialect> {
    Dialect::ALL.into_iter().filter(|d| {
        let f = d.facts();
        f.null_entry == NullEntry::PtrMarker && f.dynamic != Dynamic::None
    })
}

/// The dialects that write `vmstate_info_nullptr` placeholders (qemu-10.x).
pub fn nullptr_dialects() -> impl Iterator<Item = Dialect> {
    Dialect::ALL
        .into_iter()
        .filter(|d| d.facts().null_entry == NullEntry::Nullptr)
}

/// Every dialect with a dynamic array puts the same bytes on the wire for
/// the same device (AUTO_ALLOC in 11.1 and master, ARRAY_OF_POINTER|ALLOC in
/// the RFC: seed 001's claim). `None` when fewer than two of them can
/// describe the device (a uint64 count, say).
pub fn dynamic_wire_agrees(case: &GenCase) -> Option<Result<(), Failure>> {
    const P: &str = "dynamic-array dialects' bytes agree";
    let built: Vec<Source> = dynamic_dialects()
        .filter_map(|d| Source::new(case, d).ok())
        .collect();
    let (first, rest) = built.split_first()?;
    if rest.is_empty() {
        return None;
    }
    let a = first.reference_bytes();
    for other in rest {
        let mismatch = match (&a, other.reference_bytes()) {
            (Ok(wa), Ok(wc)) if *wa != wc => Some(hex_diff(wa, &wc, &first.spans())),
            (Ok(_), Ok(_)) => None,
            (Err(ea), Err(ec)) if *ea == ec => None,
            (ra, rc) => Some(format!("{ra:?}\n{}: {rc:?}", other.d)),
        };
        if let Some(diff) = mismatch {
            return Some(Err(fail(
                P,
                case,
                format!("{} vs {}:\n{diff}", first.d, other.d),
            )));
        }
    }
    Some(Ok(()))
}

/// For every (nullptr, ptr-marker) pair of dialects: the bytes are equal
/// for fields without a dynamic array; with one, they differ exactly by one
/// 0x31 before each non-NULL element. `None` when the device cannot be
/// described in both.
pub fn markers_differ_exactly(case: &GenCase) -> Option<Result<(), Failure>> {
    const P: &str = "nullptr bytes = ptr-marker bytes without the 0x31 markers";
    let non_null = count_dynamic_elements(case);
    let mut ran = false;
    for old_d in nullptr_dialects() {
        let old = Source::from_file(&port_to(&case.file, old_d), old_d).ok()?;
        let wo = match old.reference_bytes() {
            Ok(bytes) => bytes,
            Err(e) => return Some(Err(fail(P, case, format!("{old_d} save: {e}")))),
        };
        for new_d in dynamic_dialects() {
            let Ok(new) = Source::new(case, new_d) else {
                continue;
            };
            ran = true;
            let verdict = new
                .reference_save()
                .map_err(|e| format!("{new_d} save: {e}"))
                .and_then(|(wn, spans)| markers_differ_between(&wn, &spans, &wo, non_null))
                .map_err(|r| fail(P, case, format!("{new_d} vs {old_d}: {r}")));
            if verdict.is_err() {
                return Some(verdict);
            }
        }
    }
    ran.then_some(Ok(()))
}

/// `wn` (a ptr-marker save, with its spans) is `wo` (the nullptr save of
/// the same device) plus one 0x31 marker per non-NULL element.
fn markers_differ_between(
    wn: &[u8],
    spans: &[Span],
    wo: &[u8],
    non_null: usize,
) -> Result<(), String> {
    let mut valid = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Marker && wn[s.start] == MARKER_VALID)
        .map(|s| s.start)
        .peekable();
    let mut markers = 0;
    let mut stripped = Vec::with_capacity(wn.len());
    for (i, &b) in wn.iter().enumerate() {
        if valid.next_if_eq(&i).is_some() {
            markers += 1;
        } else {
            stripped.push(b);
        }
    }
    if stripped != wo {
        return Err(format!("\n{}", hex_diff(&stripped, wo, &[])));
    }
    if markers != non_null {
        return Err(format!(
            "{markers} 0x31 markers for {non_null} non-NULL elements"
        ));
    }
    Ok(())
}

/// Non-NULL elements of the AUTO_ALLOC arrays in the source state,
/// counted from the case file, independently of any save.
fn count_dynamic_elements(case: &GenCase) -> usize {
    count_in(&case.file, &case.file.vmsds[0].name, case.state())
}

fn count_in(file: &CaseFile, vmsd: &str, state: &serde_json::Value) -> usize {
    let Some(spec) = file.vmsds.iter().find(|v| v.name == vmsd) else {
        return 0;
    };
    let mut n = 0;
    for f in &spec.fields {
        let (FlagsSpec::Text(flags), Some(member)) = (&f.flags, &f.member) else {
            continue;
        };
        let value = &state[member.as_str()];
        let elems: Vec<&serde_json::Value> = match value {
            // arrays of pointers, and inline arrays of structs
            serde_json::Value::Array(a)
                if flags.contains("ARRAY_OF_POINTER") || flags.contains("STRUCT") =>
            {
                a.iter().filter(|v| !v.is_null()).collect()
            }
            v if flags.contains("STRUCT") && !v.is_null() => vec![v],
            _ => vec![],
        };
        if flags.contains("AUTO_ALLOC") {
            n += elems.len();
        }
        if let Some(child) = &f.vmsd {
            n += elems
                .iter()
                .map(|e| count_in(file, child, e))
                .sum::<usize>();
        }
    }
    n + spec
        .subsections
        .iter()
        .map(|s| count_in(file, s, state))
        .sum::<usize>()
}

/// Both implementations give the same `vmstate_check` verdict.
pub fn check_agrees(d: Dialect, vmsd: &Vmsd) -> Result<(), String> {
    let r = reference::check(d, vmsd);
    let o = codec::check::check(d, vmsd);
    if r == o {
        Ok(())
    } else {
        Err(format!("{d}: reference {r:?}, optimized {o:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(at: usize) -> Span {
        Span {
            start: at,
            end: at + 1,
            path: "d.arr[0]".into(),
            kind: SpanKind::Marker,
        }
    }

    /// `01 | 31 02 | 30`: a valid marker before element 02, a NULL marker.
    #[test]
    fn markers_differ_between_strips_only_valid_markers_and_counts_them() {
        let wn = [0x01, MARKER_VALID, 0x02, 0x30];
        let spans = [marker(1), marker(3)];
        assert_eq!(
            markers_differ_between(&wn, &spans, &[0x01, 0x02, 0x30], 1),
            Ok(())
        );
        // a nullptr stream that differs elsewhere
        assert!(markers_differ_between(&wn, &spans, &[0x01, 0x03, 0x30], 1).is_err());
        // the 0x30 marker is not stripped
        assert!(markers_differ_between(&wn, &spans, &[0x01, 0x02], 1).is_err());
        // one 0x31 marker, but two non-NULL elements in the source
        let err = markers_differ_between(&wn, &spans, &[0x01, 0x02, 0x30], 2).unwrap_err();
        assert!(err.contains("1 0x31 markers for 2"), "{err}");
    }
}
