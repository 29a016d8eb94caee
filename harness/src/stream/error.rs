//! Typed errors of the stream parser. Every variant names the byte offset
//! (absolute, in the file) and the path of the thing being read, such as
//! `s390_css.css[254].cssid` or `ram.block[pc.ram]`.
use thiserror::Error;

/// Result type of the stream parser.
pub type Result<T> = std::result::Result<T, StreamError>;

/// Everything that can go wrong while reading a migration stream.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StreamError {
    #[error("offset {offset:#x} ({path}): truncated: need {need} bytes, {have} left")]
    Truncated {
        offset: usize,
        path: String,
        need: u64,
        have: usize,
    },
    #[error("offset {offset:#x} ({path}): bad file magic {found:#010x}, expected QEVM")]
    BadMagic {
        offset: usize,
        path: String,
        found: u32,
    },
    #[error("offset {offset:#x} ({path}): SaveVM v2 format is obsolete")]
    ObsoleteVersion { offset: usize, path: String },
    #[error("offset {offset:#x} ({path}): unsupported stream version {version}")]
    UnsupportedVersion {
        offset: usize,
        path: String,
        version: u32,
    },
    #[error("offset {offset:#x} ({path}): unknown section type {byte:#04x}")]
    UnknownSectionType {
        offset: usize,
        path: String,
        byte: u8,
    },
    #[error("offset {offset:#x} ({path}): missing section footer, found byte {found:#04x}")]
    MissingFooter {
        offset: usize,
        path: String,
        found: u8,
    },
    #[error(
        "offset {offset:#x} ({path}): section footer names section {found}, expected {expected}"
    )]
    FooterMismatch {
        offset: usize,
        path: String,
        expected: u32,
        found: u32,
    },
    #[error(
        "offset {offset:#x} ({path}): a section footer is {what} while earlier sections {before}"
    )]
    FooterInconsistent {
        offset: usize,
        path: String,
        what: &'static str,
        before: &'static str,
    },
    #[error(
        "offset {offset:#x} ({path}): PART/END for section id {section_id}, which was never started"
    )]
    UnknownSectionId {
        offset: usize,
        path: String,
        section_id: u32,
    },
    #[error("offset {offset:#x} ({path}): no vmdesc description for instance {instance_id}")]
    NoDescription {
        offset: usize,
        path: String,
        instance_id: u32,
    },
    #[error("offset {offset:#x} ({path}): unsupported section: {reason}")]
    UnsupportedSection {
        offset: usize,
        path: String,
        reason: String,
    },
    #[error("offset {offset:#x} ({path}): bad vmdesc: {message}")]
    Vmdesc {
        offset: usize,
        path: String,
        message: String,
    },
    #[error("offset {offset:#x} ({path}): {count} bytes after QEMU_VM_EOF are not a vmdesc")]
    TrailingBytes {
        offset: usize,
        path: String,
        count: usize,
    },
    #[error("offset {offset:#x} ({path}): {message}")]
    BadValue {
        offset: usize,
        path: String,
        message: String,
    },
    #[error("offset {offset:#x} ({path}): subsection: {message}")]
    Subsection {
        offset: usize,
        path: String,
        message: String,
    },
    #[error("offset {offset:#x} ({path}): nesting deeper than {limit}")]
    TooDeep {
        offset: usize,
        path: String,
        limit: usize,
    },
    #[error("offset {offset:#x} ({path}): more than {limit} decoded values")]
    TooManyValues {
        offset: usize,
        path: String,
        limit: usize,
    },
    #[error("offset {offset:#x} ({path}): RAM: {message}")]
    Ram {
        offset: usize,
        path: String,
        message: String,
    },
    #[error("offset {offset:#x} ({path}): command: {message}")]
    Command {
        offset: usize,
        path: String,
        message: String,
    },
    #[error("offset {offset:#x} ({path}): storage attributes: {message}")]
    StorageAttributes {
        offset: usize,
        path: String,
        message: String,
    },
}

impl StreamError {
    /// Byte offset in the file where the problem was found.
    pub fn offset(&self) -> usize {
        match self {
            Self::Truncated { offset, .. }
            | Self::BadMagic { offset, .. }
            | Self::ObsoleteVersion { offset, .. }
            | Self::UnsupportedVersion { offset, .. }
            | Self::UnknownSectionType { offset, .. }
            | Self::MissingFooter { offset, .. }
            | Self::FooterMismatch { offset, .. }
            | Self::FooterInconsistent { offset, .. }
            | Self::UnknownSectionId { offset, .. }
            | Self::NoDescription { offset, .. }
            | Self::UnsupportedSection { offset, .. }
            | Self::Vmdesc { offset, .. }
            | Self::TrailingBytes { offset, .. }
            | Self::BadValue { offset, .. }
            | Self::Subsection { offset, .. }
            | Self::TooDeep { offset, .. }
            | Self::TooManyValues { offset, .. }
            | Self::Ram { offset, .. }
            | Self::Command { offset, .. }
            | Self::StorageAttributes { offset, .. } => *offset,
        }
    }

    /// Path of the item being read (section, field, record).
    pub fn path(&self) -> &str {
        match self {
            Self::Truncated { path, .. }
            | Self::BadMagic { path, .. }
            | Self::ObsoleteVersion { path, .. }
            | Self::UnsupportedVersion { path, .. }
            | Self::UnknownSectionType { path, .. }
            | Self::MissingFooter { path, .. }
            | Self::FooterMismatch { path, .. }
            | Self::FooterInconsistent { path, .. }
            | Self::UnknownSectionId { path, .. }
            | Self::NoDescription { path, .. }
            | Self::UnsupportedSection { path, .. }
            | Self::Vmdesc { path, .. }
            | Self::TrailingBytes { path, .. }
            | Self::BadValue { path, .. }
            | Self::Subsection { path, .. }
            | Self::TooDeep { path, .. }
            | Self::TooManyValues { path, .. }
            | Self::Ram { path, .. }
            | Self::Command { path, .. }
            | Self::StorageAttributes { path, .. } => path,
        }
    }
}
