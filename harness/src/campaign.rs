//! The property campaign `vmstate-harness check` runs: every oracle, fed
//! from seeded random bytes through the same generators proptest uses.

use crate::engine::{Engine, Optimized, Reference};
use crate::generate::{self, GenCase, RawVmsd};
use crate::oracle::{self, Failure, Mutation};
use arbitrary::{Arbitrary, Unstructured};
use vmstate_reference::{Dialect, Dynamic};

/// What one case of a property came to.
pub enum Outcome {
    Pass,
    /// The case does not apply (e.g. not expressible in qemu-10.x).
    Skip,
    Fail(Box<Failure>),
}

/// What a property runs on: the dialect to generate in (any when None)
/// and the engines to compare (the two models, then any QEMU).
pub struct Ctx {
    pub dialect: Option<Dialect>,
    pub engines: Vec<Box<dyn Engine>>,
}

impl Ctx {
    /// The two models, in any dialect.
    pub fn models() -> Ctx {
        Ctx {
            dialect: None,
            engines: vec![Box::new(Reference), Box::new(Optimized)],
        }
    }

    pub fn engines(&self) -> Vec<&dyn Engine> {
        self.engines.iter().map(|e| e.as_ref()).collect()
    }
}

/// A property of the campaign.
pub struct Property {
    /// Short name: what `FUZZER=` and the fuzz binary call it.
    pub id: &'static str,
    pub name: &'static str,
    pub run: fn(&mut Unstructured, &Ctx) -> arbitrary::Result<Outcome>,
}

fn gen_case(u: &mut Unstructured, d: Option<Dialect>) -> arbitrary::Result<GenCase> {
    match d {
        Some(d) => generate::generate(u, d),
        None => GenCase::arbitrary(u),
    }
}

/// A device that round-trips (fresh or reset destination, nothing hostile).
fn round_trip_case(u: &mut Unstructured, d: Option<Dialect>) -> arbitrary::Result<GenCase> {
    match d {
        Some(d) => generate::generate_round_trip(u, d),
        None => generate::RoundTrip::arbitrary(u).map(|r| r.0),
    }
}

fn outcome(r: Result<(), Failure>) -> Outcome {
    match r {
        Ok(()) => Outcome::Pass,
        Err(f) => Outcome::Fail(Box::new(f)),
    }
}

fn optional(r: Option<Result<(), Failure>>) -> Outcome {
    r.map_or(Outcome::Skip, outcome)
}

/// Every property, in the order the table prints them.
pub const PROPERTIES: &[Property] = &[
    Property {
        id: "save",
        name: "save: every engine gives the same bytes",
        run: |u, c| {
            let case = gen_case(u, c.dialect)?;
            Ok(outcome(oracle::save_agrees_with(&case, &c.engines())))
        },
    },
    Property {
        id: "load-mutated",
        name: "load: same outcome, state, allocations (mutated)",
        run: |u, c| {
            let case = gen_case(u, c.dialect)?;
            let mutation = Mutation::arbitrary(u)?;
            Ok(outcome(oracle::load_agrees_with(
                &case,
                &mutation,
                &c.engines(),
            )))
        },
    },
    Property {
        id: "round-trip",
        name: "load(save(x)) == x",
        run: |u, c| {
            let case = round_trip_case(u, c.dialect)?;
            Ok(outcome(oracle::round_trip_with(&case, &c.engines())))
        },
    },
    Property {
        id: "dynamic-wire",
        name: "dynamic-array dialects' bytes agree",
        run: |u, c| {
            if c.dialect
                .is_some_and(|d| d.facts().dynamic == Dynamic::None)
            {
                return Ok(Outcome::Skip);
            }
            Ok(optional(oracle::dynamic_wire_agrees(
                &generate::generate_portable(u)?,
            )))
        },
    },
    Property {
        id: "markers",
        name: "nullptr bytes == ptr-marker bytes - 0x31",
        run: |u, _| {
            Ok(optional(oracle::markers_differ_exactly(
                &generate::generate_portable(u)?,
            )))
        },
    },
    Property {
        id: "check",
        name: "vmstate_check: reference == optimized",
        run: |u, c| {
            let raw = RawVmsd::arbitrary(u)?;
            for dialect in Dialect::ALL
                .into_iter()
                .filter(|x| c.dialect.is_none_or(|d| d == *x))
            {
                if let Err(report) = oracle::check_agrees(dialect, &raw.0) {
                    let report = format!("{report}\ndescription: {:#?}", raw.0);
                    return Ok(Outcome::Fail(Box::new(Failure {
                        property: "vmstate_check agrees",
                        report,
                        case: None,
                    })));
                }
            }
            Ok(Outcome::Pass)
        },
    },
];
