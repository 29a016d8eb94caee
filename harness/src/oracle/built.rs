//! A generated case built for one dialect: its description, its source
//! object and, for the properties that load, its destination.

use crate::case::ctype::Types;
use crate::case::run::{Prepared, prepare};
use crate::case::spec::CaseFile;
use crate::generate::GenCase;
use std::sync::Arc;
use vmstate_reference::{self as reference, Dialect, Error, Span, Vmsd};

/// A generated case built for one dialect up to its source: the
/// description and the source object, all a save needs.
pub struct Source {
    pub d: Dialect,
    pub types: Types,
    pub src: Prepared,
    /// The source state as the case file gives it (the shape hint for
    /// reading any heap back).
    pub state: Arc<serde_json::Value>,
}

impl Source {
    pub fn new(case: &GenCase, d: Dialect) -> Result<Source, String> {
        Source::from_file(&case.file, d)
    }

    pub fn from_file(file: &CaseFile, d: Dialect) -> Result<Source, String> {
        let types = Types::new(&file.structs)?;
        let spec = &file.cases[0];
        let state = spec
            .state
            .clone()
            .unwrap_or_else(|| Arc::new(serde_json::Value::Object(Default::default())));
        let src = prepare(file, &types, spec, d, &state)?;
        Ok(Source {
            d,
            types,
            src,
            state,
        })
    }

    pub fn vmsd(&self) -> &Vmsd {
        &self.src.vmsd
    }

    /// The reference model's save, with spans.
    pub fn reference_save(&self) -> Result<(Vec<u8>, Vec<Span>), Error> {
        reference::save_state_annotated(self.d, &self.src.vmsd, &self.src.heap, self.src.opaque)
    }

    /// The reference model's save, bytes only (no spans to render).
    pub fn reference_bytes(&self) -> Result<Vec<u8>, Error> {
        reference::save_state(self.d, &self.src.vmsd, &self.src.heap, self.src.opaque)
    }

    /// The spans of the reference save, for a failure report.
    pub(super) fn spans(&self) -> Vec<Span> {
        self.reference_save().map(|(_, s)| s).unwrap_or_default()
    }
}

/// A generated case built for one dialect: its [`Source`] (which a `Built`
/// reads as) and the destination a load fills.
pub struct Built {
    pub source: Source,
    pub dest: Prepared,
}

impl Built {
    pub fn new(case: &GenCase, d: Dialect) -> Result<Built, String> {
        Built::from_file(&case.file, d)
    }

    pub fn from_file(file: &CaseFile, d: Dialect) -> Result<Built, String> {
        let source = Source::from_file(file, d)?;
        let spec = &file.cases[0];
        let empty = serde_json::Value::Object(Default::default());
        let dest = prepare(
            file,
            &source.types,
            spec,
            d,
            spec.dest.as_ref().unwrap_or(&empty),
        )?;
        Ok(Built { source, dest })
    }
}

impl std::ops::Deref for Built {
    type Target = Source;
    fn deref(&self) -> &Source {
        &self.source
    }
}
