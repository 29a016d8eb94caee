//! The engines a case or property runs on, behind one trait: the reference
//! model, the optimized codec and QEMU's own C (`qemu`). Every oracle takes
//! engines, never an implementation by name, so a property that holds
//! between two of them can be asked of any pair.
//!
//! Results are compared by outcome class first ([`Class`]): ok, error,
//! QEMU aborts, undefined behaviour. Model engines also agree on the exact
//! error (kind, offset, path); QEMU only reports a class and its text.

pub mod compare;
mod optimized;
pub mod qemu;
mod reference;

pub use optimized::Optimized;
pub use reference::Reference;

use std::fmt;
use vmstate_reference::{Addr, Dialect, Error, Heap, Outcome, Vmsd};

/// How a run ended, in QEMU's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// The save or load returned 0.
    Ok,
    /// An error was returned; the migration fails cleanly.
    Error,
    /// QEMU aborts (an assertion, `g_assert_not_reached`, g_malloc failure).
    Abort,
    /// Undefined behaviour in C: a crash, a sanitizer report, or nothing
    /// visible. Never compared.
    Undefined,
    /// No verdict: a model limit, a lost driver, a timeout.
    Poisoned,
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Class::Ok => "ok",
            Class::Error => "error",
            Class::Abort => "QEMU aborts",
            Class::Undefined => "undefined behaviour",
            Class::Poisoned => "no verdict",
        })
    }
}

impl From<Outcome> for Class {
    fn from(o: Outcome) -> Class {
        match o {
            Outcome::Error => Class::Error,
            Outcome::Abort => Class::Abort,
            Outcome::UndefinedBehaviour => Class::Undefined,
            Outcome::ModelLimit => Class::Poisoned,
        }
    }
}

/// Why a run did not return `Ok`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// A model engine's typed error.
    Model(Error),
    /// QEMU returned an error (`ret < 0`) with this text.
    Qemu { ret: i32, message: String },
    /// QEMU aborted; the assertion line from its stderr.
    Aborted { assertion: String },
    /// QEMU crashed or a sanitizer reported (the summary line and frame).
    Crashed { report: String },
    /// The engine gave no verdict (timeout, lost driver, protocol error).
    Lost(String),
}

impl Failed {
    /// The outcome class of this failure.
    pub fn class(&self) -> Class {
        match self {
            Failed::Model(e) => e.kind.outcome().into(),
            Failed::Qemu { .. } => Class::Error,
            Failed::Aborted { .. } => Class::Abort,
            Failed::Crashed { .. } => Class::Undefined,
            Failed::Lost(_) => Class::Poisoned,
        }
    }

    /// The model's error, when the engine is a model.
    pub fn model(&self) -> Option<&Error> {
        match self {
            Failed::Model(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failed::Model(e) => write!(f, "{e} ({})", e.kind.outcome()),
            Failed::Qemu { ret, message } => write!(f, "QEMU returned {ret}: {message}"),
            Failed::Aborted { assertion } => write!(f, "QEMU aborts: {assertion}"),
            Failed::Crashed { report } => write!(f, "QEMU crashed: {report}"),
            Failed::Lost(why) => write!(f, "no verdict: {why}"),
        }
    }
}

impl From<Error> for Failed {
    fn from(e: Error) -> Failed {
        Failed::Model(e)
    }
}

/// The result of one engine operation.
pub type Run<T> = Result<T, Failed>;

/// The class of a run.
pub fn class_of<T>(r: &Run<T>) -> Class {
    match r {
        Ok(_) => Class::Ok,
        Err(f) => f.class(),
    }
}

/// Whether two runs agree: `Same`, `Poisoned` (one gave no comparable
/// verdict: undefined behaviour or no verdict), or `Differ`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agreement {
    Same,
    Poisoned,
    Differ(String),
}

/// Compares two runs. `exact` (two model engines): the same class and, for
/// errors, the same kind, offset and path, undefined behaviour included.
/// Otherwise by outcome class, where undefined behaviour or no verdict on
/// either side poisons the comparison.
pub fn agree<A, B>(a: &Run<A>, b: &Run<B>, exact: bool) -> Agreement {
    let (ca, cb) = (class_of(a), class_of(b));
    if exact {
        return match (a, b) {
            (Ok(_), Ok(_)) => Agreement::Same,
            (Err(x), Err(y)) if x == y => Agreement::Same,
            (x, y) => Agreement::Differ(format!(
                "{} vs {}",
                x.as_ref().err().map_or("ok".into(), |e| e.to_string()),
                y.as_ref().err().map_or("ok".into(), |e| e.to_string())
            )),
        };
    }
    if [ca, cb]
        .iter()
        .any(|c| matches!(c, Class::Undefined | Class::Poisoned))
    {
        return Agreement::Poisoned;
    }
    if ca != cb {
        let show = |r: Result<(), &Failed>| r.map_or_else(|f| f.to_string(), |()| "ok".into());
        return Agreement::Differ(format!(
            "{ca} vs {cb}\n  {}\n  {}",
            show(a.as_ref().map(|_| ())),
            show(b.as_ref().map(|_| ()))
        ));
    }
    Agreement::Same
}

/// A save and load implementation of QEMU's vmstate semantics.
pub trait Engine {
    /// `reference`, `optimized`, `qemu 10.2.2`, ...
    fn name(&self) -> String;
    /// The dialects this engine can run.
    fn dialects(&self) -> Vec<Dialect>;
    /// Whether this is a model over the simulated heap, whose errors carry
    /// the exact kind, offset and path.
    fn exact(&self) -> bool {
        false
    }
    /// `vmstate_check`; None when the engine cannot run it (QEMU's is a
    /// static function of savevm.c, outside the libraries it links).
    fn check(&self, d: Dialect, vmsd: &Vmsd) -> Option<Result<(), Error>>;
    /// `vmstate_save_state`.
    fn save(&self, d: Dialect, vmsd: &Vmsd, heap: &Heap, opaque: Addr) -> Run<Vec<u8>>;
    /// `vmstate_load_state` then `qemu_file_get_error`; the bytes consumed.
    /// The heap afterwards keeps every caller object at its address.
    fn load(
        &self,
        d: Dialect,
        vmsd: &Vmsd,
        heap: &mut Heap,
        opaque: Addr,
        version: i32,
        stream: &[u8],
    ) -> Run<usize>;
}

/// Starts the QEMU engine at `path` (what harness/qemu/build.sh prints).
pub fn open_qemu(path: &std::path::Path) -> Result<Box<dyn Engine>, String> {
    qemu::QemuEngine::spawn(path)
        .map(|e| Box::new(e) as Box<dyn Engine>)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The model engines by name (`reference`, `optimized`).
pub fn model(name: &str) -> Option<Box<dyn Engine>> {
    match name {
        "reference" => Some(Box::new(Reference)),
        "optimized" => Some(Box::new(Optimized)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmstate_reference::ErrorKind;

    fn model_err(kind: ErrorKind) -> Run<()> {
        Err(Failed::Model(Error::new(kind, 3, "p.a")))
    }

    #[test]
    fn classes_compare_and_undefined_poisons() {
        let ok: Run<()> = Ok(());
        let abort: Run<()> = Err(Failed::Aborted {
            assertion: "x".into(),
        });
        assert_eq!(agree(&ok, &ok, false), Agreement::Same);
        assert!(matches!(agree(&ok, &abort, false), Agreement::Differ(_)));
        assert_eq!(
            agree(
                &model_err(ErrorKind::AutoAllocSlotNotNull { slot: 1 }),
                &abort,
                false
            ),
            Agreement::Same
        );
        assert!(matches!(
            agree(&model_err(ErrorKind::Eof), &abort, false),
            Agreement::Differ(_)
        ));
        assert_eq!(
            agree(&model_err(ErrorKind::MissingInfo), &ok, false),
            Agreement::Poisoned
        );
        assert!(matches!(
            agree(
                &model_err(ErrorKind::Eof),
                &model_err(ErrorKind::MissingInfo),
                false
            ),
            Agreement::Poisoned
        ));
        assert!(matches!(
            agree(
                &model_err(ErrorKind::Eof),
                &model_err(ErrorKind::UnexpectedPtrMarker(2)),
                false
            ),
            Agreement::Same
        ));
        // Two models: undefined behaviour is compared, never poisoned.
        assert!(matches!(
            agree(&model_err(ErrorKind::MissingInfo), &ok, true),
            Agreement::Differ(_)
        ));
        assert!(matches!(
            agree(&model_err(ErrorKind::Eof), &model_err(ErrorKind::Eof), true),
            Agreement::Same
        ));
        let other_path: Run<()> = Err(Failed::Model(Error::new(ErrorKind::Eof, 3, "p.b")));
        assert!(matches!(
            agree(&model_err(ErrorKind::Eof), &other_path, true),
            Agreement::Differ(_)
        ));
    }
}
