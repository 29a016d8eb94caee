//! Section records (savevm.c `save_section_header`, `save_section_footer`,
//! `qemu_loadvm_section_start_full`, `qemu_loadvm_section_part_end`).
use super::vmsd::Fields;
use std::ops::Range;

pub const QEMU_VM_EOF: u8 = 0x00;
pub const QEMU_VM_SECTION_START: u8 = 0x01;
pub const QEMU_VM_SECTION_PART: u8 = 0x02;
pub const QEMU_VM_SECTION_END: u8 = 0x03;
pub const QEMU_VM_SECTION_FULL: u8 = 0x04;
pub const QEMU_VM_SECTION_FOOTER: u8 = 0x7e;

/// The four section types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionType {
    Start,
    Part,
    End,
    Full,
}

impl SectionType {
    /// From the type byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            QEMU_VM_SECTION_START => Some(Self::Start),
            QEMU_VM_SECTION_PART => Some(Self::Part),
            QEMU_VM_SECTION_END => Some(Self::End),
            QEMU_VM_SECTION_FULL => Some(Self::Full),
            _ => None,
        }
    }

    /// QEMU's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Start => "SECTION_START",
            Self::Part => "SECTION_PART",
            Self::End => "SECTION_END",
            Self::Full => "SECTION_FULL",
        }
    }
}

/// What a section carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content<'a> {
    /// A device (VMSD) decoded from the vmdesc.
    Vmsd(Fields<'a>),
    /// A chunk of the RAM section (state is in `Stream::ram`).
    Ram,
    /// A chunk of s390x storage attributes: attribute bytes seen.
    StorageAttributes(u64),
}

/// One section record, as it sits in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section<'a> {
    pub section_type: SectionType,
    /// Offset of the type byte.
    pub offset: usize,
    pub section_id: u32,
    /// For PART/END: copied from the START.
    pub idstr: String,
    pub instance_id: u32,
    pub version_id: u32,
    /// The payload; `payload.end` is where the footer (if any) starts.
    pub payload: Range<usize>,
    /// Offset of the footer's 0x7e byte.
    pub footer: Option<usize>,
    /// Offset just after the record.
    pub end: usize,
    pub content: Content<'a>,
}

/// The script's key for a section: `"idstr (section_id)"`.
pub fn section_key(idstr: &str, section_id: u32) -> String {
    format!("{idstr} ({section_id})")
}
