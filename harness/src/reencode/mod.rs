//! Real device sections through the codecs: from one section's vmdesc entry,
//! rebuild a [`Vmsd`](vmstate_reference::Vmsd) and a C-like destination for
//! a dialect ([`describe`]), then load the real payload into it and save it
//! again ([`drive`]). The stream parser does not depend on this module.
//!
//! - [`describe`]: vmdesc -> Vmsd + layout + destination pre-state;
//! - [`drive`]: `reencode` (optimized codec, byte comparison) and `load`
//!   (reference model, per-section outcome);
//! - here: the error type, the destination pre-states and the choice of
//!   dialect from what the stream says about the QEMU that wrote it.
pub mod describe;
pub mod drive;

pub use describe::{Destination, rebuild};
pub use drive::{
    Comparison, Excluded, LoadOutcome, LoadReport, ReencodeReport, SectionLoad, SectionReport,
    load_stream, reencode_payload, reencode_stream,
};

use crate::stream::{Stream, StreamError};
use vmstate_reference::{Dialect, ErrorKind};

/// Why a section could not be re-encoded. Every variant carries an absolute
/// file offset and the path of the item concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReencodeError {
    /// The stream itself does not parse.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The vmdesc entry cannot be turned into a description; `offset` is the
    /// payload start of the section (the vmdesc carries no offsets).
    #[error("offset {offset:#x} ({path}): cannot rebuild the description: {message}")]
    Rebuild {
        offset: usize,
        path: String,
        message: String,
    },
    /// The destination object could not be prepared on the heap.
    #[error("offset {offset:#x} ({path}): preparing the destination: {message}")]
    Prepare {
        offset: usize,
        path: String,
        message: String,
    },
    /// The codec refused the payload; `offset` is where it was reading.
    #[error("offset {offset:#x} ({path}): load: {kind}")]
    Load {
        offset: usize,
        path: String,
        kind: ErrorKind,
    },
    /// The codec could not save the loaded object; `offset` is the file
    /// offset matching the output position.
    #[error("offset {offset:#x} ({path}): save: {kind}")]
    Save {
        offset: usize,
        path: String,
        kind: ErrorKind,
    },
}

impl ReencodeError {
    /// Absolute byte offset in the file.
    pub fn offset(&self) -> usize {
        match self {
            Self::Stream(e) => e.offset(),
            Self::Rebuild { offset, .. }
            | Self::Prepare { offset, .. }
            | Self::Load { offset, .. }
            | Self::Save { offset, .. } => *offset,
        }
    }

    /// Path of the field concerned, e.g. `s390_css.css[3]`.
    pub fn path(&self) -> &str {
        match self {
            Self::Stream(e) => e.path(),
            Self::Rebuild { path, .. }
            | Self::Prepare { path, .. }
            | Self::Load { path, .. }
            | Self::Save { path, .. } => path,
        }
    }
}

/// What the destination device holds before the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dest {
    /// As in a migration: a freshly realized device. Arrays of pointers
    /// without automatic allocation point to objects where the source's do
    /// (the device allocated them), automatically allocated slots are NULL.
    #[default]
    Fresh,
    /// As in `loadvm` into a running VM: additionally every automatically
    /// allocated slot that the stream fills is non-NULL, as after a device
    /// reset that cleared the count but not the slots (upstream-2026-11.md
    /// section 7, finding 1).
    Live,
    /// As in `loadvm` after a reset that freed every automatically allocated
    /// element: the same memory as [`Dest::Fresh`].
    Reset,
}

impl std::str::FromStr for Dest {
    type Err = String;
    fn from_str(s: &str) -> Result<Dest, String> {
        match s {
            "fresh" => Ok(Dest::Fresh),
            "live" => Ok(Dest::Live),
            "reset" => Ok(Dest::Reset),
            _ => Err(format!("unknown destination {s:?} (fresh, live, reset)")),
        }
    }
}

impl Dest {
    /// Whether an automatically allocated slot the stream fills starts
    /// non-NULL.
    pub fn auto_alloc_slots_set(self) -> bool {
        self == Dest::Live
    }
}

/// The QEMU version a stream comes from, as far as it tells, and the dialect
/// that version loads with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamVersion {
    pub dialect: Dialect,
    /// Why: `vmdesc type ptr-marker`, `machine pc-i440fx-11.1`, ...
    pub evidence: String,
}

/// Which dialect a stream's QEMU writes and reads: the vmdesc's marker type
/// first (`nullptr` was renamed `ptr-marker` in 11.1), then the machine
/// type's version suffix (`pc-i440fx-11.1`, `s390-ccw-virtio-10.0`), else
/// qemu-10.x (the oldest modelled).
pub fn stream_version(s: &Stream<'_>) -> StreamVersion {
    let pick = |major: u32| {
        // The releases this project has real streams of: 10.0.2 and 11.1.3.
        let want = if major >= 11 {
            "qemu-11.1"
        } else {
            "qemu-10.x"
        };
        Dialect::ALL
            .into_iter()
            .find(|d| d.name() == want)
            .unwrap_or(Dialect::ALL[0])
    };
    if let Some(v) = &s.vmdesc {
        let mut types = Vec::new();
        for (_, _, d) in &v.desc.devices {
            collect_types(d, &mut types);
        }
        for (ty, major) in [("ptr-marker", 11), ("nullptr", 10)] {
            if types.contains(&ty) {
                return StreamVersion {
                    dialect: pick(major),
                    evidence: format!("vmdesc type {ty}"),
                };
            }
        }
    }
    if let Some(c) = &s.configuration
        && let Some(major) = machine_major(&c.machine)
    {
        return StreamVersion {
            dialect: pick(major),
            evidence: format!("machine {}", c.machine),
        };
    }
    StreamVersion {
        dialect: pick(10),
        evidence: "no marker type, no versioned machine".into(),
    }
}

fn collect_types<'d>(d: &'d crate::stream::vmdesc::VmsdDesc, out: &mut Vec<&'d str>) {
    for f in d.fields.iter().flatten() {
        if matches!(f.ty.as_str(), "ptr-marker" | "nullptr") && !out.contains(&f.ty.as_str()) {
            out.push(f.ty.as_str());
        }
        if let Some(n) = &f.nested {
            collect_types(n, out);
        }
    }
    for s in &d.subsections {
        collect_types(s, out);
    }
}

/// `pc-i440fx-11.1` -> 11.
fn machine_major(machine: &str) -> Option<u32> {
    let (_, tail) = machine.rsplit_once('-')?;
    let (major, minor) = tail.split_once('.')?;
    minor.parse::<u32>().ok()?;
    major.parse().ok()
}

/// The QEMU release a dialect's row was read from, for messages such as
/// `QEMU 11.1.3 aborts: ...`.
pub fn release(d: Dialect) -> &'static str {
    d.facts().release
}

#[cfg(test)]
mod tests {
    use super::machine_major;

    #[test]
    fn machine_versions() {
        assert_eq!(machine_major("pc-i440fx-11.1"), Some(11));
        assert_eq!(machine_major("s390-ccw-virtio-10.0"), Some(10));
        assert_eq!(machine_major("lm3s6965evb"), None);
        assert_eq!(machine_major("pc-q35-10.0"), Some(10));
    }
}
