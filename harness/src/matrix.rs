//! The compatibility matrix: for each field kind, source dialect and
//! destination dialect, whether a stream one saves loads on the other.
//! Computed from generated devices, not written by hand.

use crate::case::spec::{CaseFile, port_to};
use crate::case::value;
use crate::generate::{self, Kind, PreState};
use crate::oracle::{Built, stream_of};
use arbitrary::Unstructured;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use std::collections::BTreeMap;
use vmstate_reference::{self as reference, Dialect};

/// The kinds the matrix has rows for, with their names.
pub const KINDS: [(Kind, &str); 9] = [
    (Kind::Scalar, "scalar"),
    (Kind::Array, "VMS_ARRAY"),
    (Kind::Buffer, "buffer"),
    (Kind::Varray, "VMS_VARRAY (+ALLOC)"),
    (Kind::Vbuffer, "VMS_VBUFFER (+MULTIPLY, ALLOC)"),
    (Kind::Struct, "VMS_STRUCT / VSTRUCT"),
    (Kind::StructPointer, "VMS_POINTER|VMS_STRUCT"),
    (Kind::ArrayOfPointers, "array of pointers (NULL entries)"),
    (Kind::DynamicArray, "dynamic array of pointers"),
];

/// What loading one dialect's stream in another came to, over all cases.
#[derive(Debug, Default, Clone)]
pub struct Cell {
    pub cases: usize,
    pub ok: usize,
    /// Error code (or "wrong state") -> count.
    pub failures: BTreeMap<String, usize>,
}

impl Cell {
    /// `ok`, or each outcome with its count, most frequent first.
    pub fn summary(&self) -> String {
        if self.ok == self.cases {
            return "ok".into();
        }
        let mut parts: Vec<(usize, String)> =
            self.failures.iter().map(|(w, n)| (*n, w.clone())).collect();
        if self.ok > 0 {
            parts.push((self.ok, "ok".into()));
        }
        parts.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let parts: Vec<String> = parts.into_iter().map(|(n, w)| format!("{w} {n}")).collect();
        format!("{} (of {})", parts.join(", "), self.cases)
    }
}

/// Saves with `src`, loads with `dst`, and says how it went.
fn migrate(file: &CaseFile, src: Dialect, dst: Dialect) -> Result<(), String> {
    let from =
        Built::from_file(&port_to(file, src), src).map_err(|e| format!("not expressible ({e})"))?;
    let to =
        Built::from_file(&port_to(file, dst), dst).map_err(|e| format!("not expressible ({e})"))?;
    let bytes = reference::save_state(src, from.vmsd(), &from.src.heap, from.src.opaque)
        .map_err(|e| format!("save: {}", e.kind.code()))?;
    let mut heap = to.dest.heap.clone();
    let stream = stream_of(&bytes);
    let result = reference::load_state(
        dst,
        &to.dest.vmsd,
        &mut heap,
        to.dest.opaque,
        to.dest.vmsd.version_id,
        &stream,
    );
    // A leak QEMU's code makes on purpose is a finding of the cell too.
    let leaks = match crate::leak::Before::new(dst, &to.dest.vmsd, &to.dest.heap, to.dest.opaque)
        .faithful(&heap, &result)
    {
        Ok(found) => found
            .into_iter()
            .filter(|f| *f != crate::leak::Finding::FailedLoadKeepsAllocations)
            .map(|f| format!("leak: {}", f.name()))
            .collect::<Vec<_>>(),
        Err(_) => vec!["leak: unexplained".to_string()],
    };
    if let Err(e) = result {
        return Err(match e.kind.outcome() {
            reference::Outcome::Abort => format!("QEMU aborts: {}", e.kind.code()),
            _ => e.kind.code().to_string(),
        });
    }
    let want = file.cases[0].state.as_deref().ok_or("no state")?;
    let got = value::read(&heap, &to.types, &to.dest.ty, to.dest.opaque, Some(want))?;
    if &got != want {
        return Err("wrong state".into());
    }
    if let Some(leak) = leaks.into_iter().next() {
        return Err(leak);
    }
    Ok(())
}

/// The matrix over `cases` generated devices per kind, loaded into
/// destinations in state `pre`.
pub fn compute(
    cases: usize,
    seed: u64,
    pre: PreState,
) -> Vec<(&'static str, Dialect, BTreeMap<Dialect, Cell>)> {
    let mut rows = vec![];
    for (k, (kind, name)) in KINDS.iter().enumerate() {
        let mut per_src: BTreeMap<Dialect, BTreeMap<Dialect, Cell>> = BTreeMap::new();
        let mut rng = StdRng::seed_from_u64(seed ^ (k as u64) << 32);
        let mut made = 0;
        while made < cases {
            let bytes: Vec<u8> = (0..rng.random_range(64..2048))
                .map(|_| rng.random())
                .collect();
            let Ok(case) = generate::generate_kind(&mut Unstructured::new(&bytes), *kind, pre)
            else {
                continue;
            };
            made += 1;
            for src in Dialect::ALL {
                for dst in Dialect::ALL {
                    let cell = per_src.entry(src).or_default().entry(dst).or_default();
                    cell.cases += 1;
                    match migrate(&case.file, src, dst) {
                        Ok(()) => cell.ok += 1,
                        Err(e) => *cell.failures.entry(e).or_default() += 1,
                    }
                }
            }
        }
        for (src, cells) in per_src {
            rows.push((*name, src, cells));
        }
    }
    rows
}

/// The matrix as a markdown table.
pub fn render(rows: &[(&'static str, Dialect, BTreeMap<Dialect, Cell>)]) -> String {
    let mut out = String::from("| field kind | source |");
    for d in Dialect::ALL {
        out.push_str(&format!(" → {d} |"));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(Dialect::ALL.len()));
    out.push('\n');
    for (kind, src, cells) in rows {
        // A `|` in a kind name would split the markdown cell.
        out.push_str(&format!("| {} | {src} |", kind.replace('|', "\\|")));
        for d in Dialect::ALL {
            let cell = cells.get(&d).map_or("-".into(), Cell::summary);
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}
