//! Generators, written once for proptest and the fuzzer: a generated
//! device is a [`CaseFile`] (C structs, VMSDs, a source state and the
//! destination its dialect requires), so any failure is already a case file.
//!
//! Reached corners: nested structs to depth 4 with subsections (needed or
//! not), every scalar info, buffers, VBUFFER with MULTIPLY, VARRAY with
//! every count width of the dialect, VMS_ALLOC, field versions and
//! `field_exists` tests, arrays of pointers of 0 to 300 entries (across
//! the 255/256 boundary) with NULL density from 0% to 100%, and AUTO_ALLOC.

mod device;
mod raw;

pub use device::Kind;
pub use raw::RawVmsd;

use crate::case::spec::{CaseFile, CaseSpec, FieldSpec, FlagsSpec, VmsdSpec};
use arbitrary::{Arbitrary, Result, Unstructured};
use device::Gen;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use vmstate_reference::Dialect;

/// Every shape the generator records, in the order `check --stats` prints
/// them.
pub const SHAPES: &[&str] = &[
    "destination: fresh",
    "destination: live",
    "destination: reset",
    "scalar",
    "VMS_ARRAY of scalars",
    "buffer",
    "unused_buffer",
    "VMS_VARRAY",
    "count of width 1",
    "count of width 2",
    "count of width 4",
    "count of width 8",
    "VMS_VBUFFER",
    "VMS_VBUFFER|VMS_MULTIPLY",
    "VMS_ALLOC",
    "VMS_ALLOC over an existing buffer",
    "VMS_STRUCT / VMS_VSTRUCT",
    "inline array of structs",
    "VMS_POINTER|VMS_STRUCT",
    "array of pointers",
    "array of pointers across 255/256",
    "array of pointers with NULL at both ends",
    "qemu-10.x array of pointers with size 0",
    "dynamic array of pointers",
    "dynamic array with non-NULL destination slots",
    "element allocating far more than its wire bytes",
    "NULL base with a hostile count",
    "negative count",
    "count of width 8 with bit 31 set",
    "subsection",
    "nested subsection",
    "field version_id",
    "field_exists test",
];

/// What the destination holds before the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PreState {
    /// A new device, as in a migration: every pointer the loader fills is
    /// NULL, every count zero.
    Fresh,
    /// A running device, as in `loadvm`: VMS_ALLOC buffers exist and
    /// dynamic-array slots may be non-NULL.
    Live,
    /// A device just reset: counts zero, VMS_ALLOC buffers still allocated,
    /// dynamic-array slots NULL (the queues were freed).
    Reset,
}

impl PreState {
    pub const ALL: [PreState; 3] = [PreState::Fresh, PreState::Live, PreState::Reset];

    pub fn name(self) -> &'static str {
        match self {
            PreState::Fresh => "fresh",
            PreState::Live => "live",
            PreState::Reset => "reset",
        }
    }
}

/// What a generated device may contain.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub pre_state: PreState,
    /// Shapes QEMU may abort or misbehave on: NULL bases with hostile
    /// counts, size-0 arrays of pointers in qemu-10.x, elements far larger
    /// than their wire bytes. Such a device need not round-trip.
    pub hostile: bool,
    /// Only what every dialect can describe.
    portable: bool,
    /// The one kind of field the root gets.
    only: Option<Kind>,
}

impl Options {
    /// A device that round-trips: fresh or just-reset destination, nothing
    /// hostile.
    pub fn round_trip(u: &mut Unstructured) -> Result<Options> {
        Ok(Options {
            pre_state: *u.choose(&[PreState::Fresh, PreState::Fresh, PreState::Reset])?,
            hostile: false,
            portable: false,
            only: None,
        })
    }

    /// Anything: every pre-state, hostile shapes one case in four.
    pub fn any(u: &mut Unstructured) -> Result<Options> {
        Ok(Options {
            pre_state: *u.choose(&PreState::ALL)?,
            hostile: u.ratio(1, 4)?,
            portable: false,
            only: None,
        })
    }

    fn portable(only: Option<Kind>) -> Options {
        Options {
            pre_state: PreState::Fresh,
            hostile: false,
            portable: true,
            only,
        }
    }
}

/// A generated device in one dialect.
#[derive(Debug, Clone)]
pub struct GenCase {
    pub dialect: Dialect,
    pub file: CaseFile,
    pub options: Options,
    /// The shapes this device has (for `check --stats`).
    pub shapes: BTreeSet<&'static str>,
}

impl GenCase {
    /// A hand-written case file as a generated case (fresh destination).
    pub fn from_file(dialect: Dialect, file: CaseFile) -> GenCase {
        GenCase {
            dialect,
            file,
            options: Options {
                pre_state: PreState::Fresh,
                hostile: false,
                portable: false,
                only: None,
            },
            shapes: BTreeSet::new(),
        }
    }

    pub fn case(&self) -> &CaseSpec {
        &self.file.cases[0]
    }
    pub fn state(&self) -> &Value {
        self.case()
            .state
            .as_ref()
            .expect("generated cases have a state")
    }
    pub fn dest(&self) -> &Value {
        self.case()
            .dest
            .as_ref()
            .expect("generated cases have a dest")
    }
    /// The case file, pretty-printed: the readable form of a failure.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.file).expect("case files serialize")
    }
}

impl<'a> Arbitrary<'a> for GenCase {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let dialect = *u.choose(&Dialect::ALL)?;
        generate(u, dialect)
    }
}

/// A device that round-trips, in any dialect: what the round-trip
/// properties draw.
#[derive(Debug, Clone)]
pub struct RoundTrip(pub GenCase);

impl<'a> Arbitrary<'a> for RoundTrip {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let dialect = *u.choose(&Dialect::ALL)?;
        generate_round_trip(u, dialect).map(RoundTrip)
    }
}

/// Generates any device for a given dialect (any pre-state, hostile shapes
/// included).
pub fn generate(u: &mut Unstructured, dialect: Dialect) -> Result<GenCase> {
    let options = Options::any(u)?;
    generate_with(u, dialect, options)
}

/// Generates a device that round-trips in `dialect`.
pub fn generate_round_trip(u: &mut Unstructured, dialect: Dialect) -> Result<GenCase> {
    let options = Options::round_trip(u)?;
    generate_with(u, dialect, options)
}

/// Generates a qemu-master device that every dialect can describe (no
/// uint64 counts), for the properties that compare dialects.
pub fn generate_portable(u: &mut Unstructured) -> Result<GenCase> {
    generate_with(u, Dialect::QemuMaster, Options::portable(None))
}

/// Generates a qemu-master device, portable to every dialect, whose root has
/// exactly one field of `kind`, with a destination in state `pre` (for the
/// compatibility matrix).
pub fn generate_kind(u: &mut Unstructured, kind: Kind, pre: PreState) -> Result<GenCase> {
    let mut options = Options::portable(Some(kind));
    options.pre_state = pre;
    generate_with(u, Dialect::QemuMaster, options)
}

/// Generates a device for `dialect` with the given options.
pub fn generate_with(u: &mut Unstructured, dialect: Dialect, options: Options) -> Result<GenCase> {
    let mut g = Gen {
        u,
        d: dialect,
        portable: options.portable,
        only: options.only,
        pre: options.pre_state,
        hostile: options.hostile,
        shapes: BTreeSet::new(),
        pad_next: None,
        structs: BTreeMap::new(),
        vmsds: Vec::new(),
        budget: 1200,
        scale: 1,
        self_contained: false,
    };
    g.vmsds.push(placeholder());
    let (root, state, dest) = g.gen_struct("dev", 0)?;
    g.vmsds[0] = root;
    let mut shapes = g.shapes;
    shapes.insert(match options.pre_state {
        PreState::Fresh => "destination: fresh",
        PreState::Live => "destination: live",
        PreState::Reset => "destination: reset",
    });
    let case = CaseSpec {
        name: "generated".into(),
        dialects: vec![dialect.name().into()],
        root: None,
        check: None,
        state: Some(Arc::new(Value::Object(state))),
        wire: None,
        save: None,
        dest: Some(Value::Object(dest)),
        version: None,
        load: None,
        truncations: None,
    };
    Ok(GenCase {
        dialect,
        file: CaseFile {
            source: "generated".into(),
            structs: g.structs,
            vmsds: g.vmsds,
            cases: vec![case],
        },
        options,
        shapes,
    })
}

fn placeholder() -> VmsdSpec {
    VmsdSpec {
        name: String::new(),
        c_struct: String::new(),
        version_id: 1,
        minimum_version_id: 0,
        fields: vec![],
        subsections: vec![],
        needed: None,
        terminator: None,
    }
}

/// A field over `member` with every other setting at its default.
fn plain_field(member: &str) -> FieldSpec {
    FieldSpec {
        name: None,
        member: Some(member.into()),
        offset: None,
        info: None,
        vmsd: None,
        flags: FlagsSpec::Raw(0),
        size: None,
        num: None,
        count: None,
        size_from: None,
        version_id: 0,
        struct_version_id: 0,
        exists: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape `check --stats` lists is made within 3000 devices.
    #[test]
    fn every_shape_is_reached() {
        let mut seen = BTreeSet::new();
        let mut state = 0x5eed_u64;
        for _ in 0..3000 {
            let bytes: Vec<u8> = (0..2048)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            if let Ok(case) = GenCase::arbitrary(&mut Unstructured::new(&bytes)) {
                seen.extend(case.shapes);
            }
        }
        let missing: Vec<&&str> = SHAPES.iter().filter(|s| !seen.contains(**s)).collect();
        assert!(missing.is_empty(), "never generated: {missing:?}");
        assert!(
            seen.iter().all(|s| SHAPES.contains(s)),
            "unlisted: {seen:?}"
        );
    }
}
