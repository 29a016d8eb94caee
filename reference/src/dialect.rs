//! The four vmstate dialects: their `enum VMStateFlags` bit values
//! (include/migration/vmstate.h) and, as a table of facts, every way their
//! save and load differ.
//!
//! Flags never travel on the wire; they only steer the interpreter. The same
//! raw bits mean different things in different dialects (0x10000 is
//! `VMS_END` in qemu-10.x and alloc-combo but `VMS_ARRAY_OF_POINTER_AUTO_ALLOC`
//! in qemu-11.1 and qemu-master), which is why a description is always read through a dialect.

use std::fmt;
use std::str::FromStr;

/// Which QEMU semantics to interpret a description with. Each variant is
/// one row of [`Facts`]; code branches on a fact, never on a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dialect {
    /// QEMU 10.0 to 10.2: four VARRAY flags with C types, counts read as
    /// C `int`, `VMS_MULTIPLY_ELEMENTS`, `vmstate_info_nullptr`, `VMS_END`
    /// 0x10000.
    Qemu10,
    /// QEMU 11.1.3 as Debian ships it: AUTO_ALLOC 0x10000 with ptr markers,
    /// `VMS_END` 0x20000, but still the four VARRAY flags; counts and
    /// VBUFFER sizes read unsigned at the member's width (the
    /// VMStateStructMember rework), no overflow checks, g_malloc.
    Qemu11_1,
    /// Upstream after the 2026-08-28 migration pull: one `VMS_VARRAY` with a
    /// count width, `VMS_NO_STATE` 0x80, checked sizes, g_try_malloc, the
    /// extra vmstate_check rules.
    QemuMaster,
    /// Fabiano Rosas' RFC 13/17 over Peter Xu's RFC v1: no AUTO_ALLOC flag,
    /// `VMS_ARRAY_OF_POINTER | VMS_ALLOC` instead, `vmstate_first` /
    /// `vmstate_next`, `VMS_END` back to 0x10000.
    AllocCombo,
}

/// `vmstate_n_elems`: how a VARRAY count is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountRead {
    /// `int n_elems = *(uint8_t|uint16_t|int32_t|uint32_t *)(opaque +
    /// num_offset)` by the VARRAY flag's C type, then `n_elems *= num` for
    /// `VMS_MULTIPLY_ELEMENTS`.
    CInt,
    /// `uint64_t n_elems = vmstate_read_from_offset(&field->num_indirect,
    /// opaque)`: unsigned at `num_indirect.size` (1, 2, 4 or 8 bytes, any
    /// other width is `g_assert_not_reached`), compared as 64-bit.
    MemberWidth,
}

/// `vmstate_size` for `VMS_VBUFFER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VbufferSize {
    /// `int size = *(int32_t *)(opaque + size_offset)`; `size *= field->size`
    /// in `int`, wrapping.
    Int32Wrapping,
    /// Unsigned at `size_indirect.size`, times `field->size` in 64 bits with
    /// no overflow check.
    UnsignedWrapping,
    /// Unsigned at `size_indirect.size`; `umul64_overflow` fails the load
    /// (595273f1 "Harden vmstate_size").
    UnsignedChecked,
}

/// `vmstate_size` for `VMS_ARRAY_OF_POINTER`: the stride of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerStride {
    /// `field->size`, which the 10.x macros set to `sizeof(T *)`.
    FieldSize,
    /// `sizeof(void *)` whatever `field->size` says.
    HostPointer,
}

/// `vmstate_handle_alloc` for `VMS_POINTER | VMS_ALLOC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmsAlloc {
    /// `size * n` (wrapping), then `g_malloc`, which aborts on failure;
    /// nothing when the product is 0.
    GMalloc,
    /// Nothing when `size` or `n` is 0; `umul64_overflow` and
    /// `g_try_malloc` failures fail the load (c3b99f30).
    GTryMallocChecked,
}

/// What a NULL entry of an array of pointers puts on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullEntry {
    /// `vmstate_info_nullptr`: 0x30 when `size != 0`, and the loader only
    /// accepts 0x30 into a NULL slot.
    Nullptr,
    /// `vmstate_info_ptr_marker`: 0x30 for NULL; 0x31 then the element for a
    /// dynamic array.
    PtrMarker,
}

/// Which arrays of pointers the loader allocates elements for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dynamic {
    /// None: both ends must agree which entries are NULL.
    None,
    /// `VMS_ARRAY_OF_POINTER_AUTO_ALLOC`; a non-NULL destination slot trips
    /// `assert(!auto_alloc || *pptr == NULL)`.
    AutoAllocFlag,
    /// `VMS_ARRAY_OF_POINTER | VMS_ALLOC` (RFC 13/17 `vmstate_next`); a
    /// non-NULL destination slot is allocated over.
    ArrayOfPointerAlloc,
}

/// Which `vmstate_check` rules run per field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckRules {
    /// None: only the terminator and subsection-name checks.
    None,
    /// Peter Xu's AUTO_ALLOC rules (size, array of pointers, arrays).
    AutoAlloc,
    /// Those plus "Check more vmstate flags" (num_indirect, size_indirect).
    AutoAllocAndIndirect,
    /// The RFC 13/17 rewrite for `ARRAY_OF_POINTER | ALLOC`.
    AllocCombo,
}

/// One dialect's behaviour, fact by fact; each is named after the QEMU
/// function it governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// The name on the command line and in case files.
    pub name: &'static str,
    /// The release or commit the row was read from.
    pub source: &'static str,
    /// Short release name for messages (`QEMU 11.1.3 aborts: ...`).
    pub release: &'static str,
    /// `enum VMStateFlags` values that differ between dialects.
    pub bits: &'static [(Flag, u32)],
    pub count: CountRead,
    pub vbuffer_size: VbufferSize,
    pub pointer_stride: PointerStride,
    pub vms_alloc: VmsAlloc,
    pub null_entry: NullEntry,
    pub dynamic: Dynamic,
    pub check: CheckRules,
    /// The vmdesc `type` of a NULL (or marker) entry.
    pub vmdesc_null_type: &'static str,
}

const TYPED_VARRAY: [(Flag, u32); 4] = [
    (Flag::VarrayInt32, 0x10),
    (Flag::VarrayUint16, 0x80),
    (Flag::VarrayUint8, 0x400),
    (Flag::VarrayUint32, 0x800),
];

static FACTS: [Facts; 4] = [
    Facts {
        name: "qemu-10.x",
        source: "QEMU 10.0.2 and 10.2.2 (Debian sources), migration/vmstate.c",
        release: "10.0.2",
        bits: &[
            TYPED_VARRAY[0],
            TYPED_VARRAY[1],
            TYPED_VARRAY[2],
            TYPED_VARRAY[3],
            (Flag::MultiplyElements, 0x4000),
            (Flag::End, 0x10000),
        ],
        count: CountRead::CInt,
        vbuffer_size: VbufferSize::Int32Wrapping,
        pointer_stride: PointerStride::FieldSize,
        vms_alloc: VmsAlloc::GMalloc,
        null_entry: NullEntry::Nullptr,
        dynamic: Dynamic::None,
        check: CheckRules::None,
        vmdesc_null_type: "nullptr",
    },
    Facts {
        name: "qemu-11.1",
        source: "QEMU 11.1.3 (Debian 1:11.1.3+ds-1~bpo13+1 binary, driven through harness/qemu/binary; harness/qemu/binary/FACTS-11.1.3.md)",
        release: "11.1.3",
        // No VMS_MULTIPLY_ELEMENTS: no code of the 11.1.3 binary tests 0x4000.
        bits: &[
            TYPED_VARRAY[0],
            TYPED_VARRAY[1],
            TYPED_VARRAY[2],
            TYPED_VARRAY[3],
            (Flag::ArrayOfPointerAutoAlloc, 0x10000),
            (Flag::End, 0x20000),
        ],
        count: CountRead::MemberWidth,
        vbuffer_size: VbufferSize::UnsignedWrapping,
        pointer_stride: PointerStride::HostPointer,
        vms_alloc: VmsAlloc::GMalloc,
        null_entry: NullEntry::PtrMarker,
        dynamic: Dynamic::AutoAllocFlag,
        check: CheckRules::AutoAlloc,
        vmdesc_null_type: "ptr-marker",
    },
    Facts {
        name: "qemu-master",
        source: "qemu/qemu after migration-20260828 (595273f1; p-b-o/qemu-ci e2d6971a)",
        release: "master",
        bits: &[
            (Flag::Varray, 0x10),
            (Flag::NoState, 0x80),
            (Flag::ArrayOfPointerAutoAlloc, 0x10000),
            (Flag::End, 0x20000),
        ],
        count: CountRead::MemberWidth,
        vbuffer_size: VbufferSize::UnsignedChecked,
        pointer_stride: PointerStride::HostPointer,
        vms_alloc: VmsAlloc::GTryMallocChecked,
        null_entry: NullEntry::PtrMarker,
        dynamic: Dynamic::AutoAllocFlag,
        check: CheckRules::AutoAllocAndIndirect,
        vmdesc_null_type: "ptr-marker",
    },
    Facts {
        name: "alloc-combo",
        source: "Fabiano Rosas' RFC 13/17 (patchew 20260324194333.30004-1-farosas@suse.de) over Peter Xu's RFC v1",
        release: "alloc-combo RFC",
        bits: &[
            TYPED_VARRAY[0],
            TYPED_VARRAY[1],
            TYPED_VARRAY[2],
            TYPED_VARRAY[3],
            (Flag::MultiplyElements, 0x4000),
            (Flag::End, 0x10000),
        ],
        count: CountRead::CInt,
        vbuffer_size: VbufferSize::Int32Wrapping,
        pointer_stride: PointerStride::HostPointer,
        vms_alloc: VmsAlloc::GMalloc,
        null_entry: NullEntry::PtrMarker,
        dynamic: Dynamic::ArrayOfPointerAlloc,
        check: CheckRules::AllocCombo,
        vmdesc_null_type: "ptr-marker",
    },
];

impl Dialect {
    pub const ALL: [Dialect; 4] = [
        Dialect::Qemu10,
        Dialect::Qemu11_1,
        Dialect::QemuMaster,
        Dialect::AllocCombo,
    ];

    /// This dialect's row of facts.
    pub fn facts(self) -> &'static Facts {
        &FACTS[self as usize]
    }

    /// The name used on the command line and in case files.
    pub fn name(self) -> &'static str {
        self.facts().name
    }

    /// The bit value of `flag` in this dialect, or None if it does not exist.
    pub fn bit(self, flag: Flag) -> Option<u32> {
        use Flag::*;
        let common = match flag {
            Single => Some(0x1),
            Pointer => Some(0x2),
            Array => Some(0x4),
            Struct => Some(0x8),
            Buffer => Some(0x20),
            ArrayOfPointer => Some(0x40),
            Vbuffer => Some(0x100),
            Multiply => Some(0x200),
            MustExist => Some(0x1000),
            Alloc => Some(0x2000),
            Vstruct => Some(0x8000),
            _ => None,
        };
        common.or_else(|| {
            self.facts()
                .bits
                .iter()
                .find(|&&(f, _)| f == flag)
                .map(|&(_, b)| b)
        })
    }

    /// The VARRAY flags of this dialect (one in qemu-master, four elsewhere).
    pub fn varray_flags(self) -> impl Iterator<Item = Flag> {
        [
            Flag::Varray,
            Flag::VarrayInt32,
            Flag::VarrayUint16,
            Flag::VarrayUint8,
            Flag::VarrayUint32,
        ]
        .into_iter()
        .filter(move |&f| self.bit(f).is_some())
    }

    /// Whether `flags` has any VARRAY flag of this dialect.
    pub fn has_varray(self, flags: u32) -> bool {
        self.varray_flags().any(|f| self.has(flags, f))
    }

    /// Whether `flags` has `flag` set (false if the flag does not exist here).
    pub fn has(self, flags: u32, flag: Flag) -> bool {
        self.bit(flag).is_some_and(|b| flags & b != 0)
    }

    /// `VMS_END`: the flags of the `VMSTATE_END_OF_LIST()` terminator.
    pub fn end(self) -> u32 {
        self.bit(Flag::End).unwrap_or(0)
    }
    /// The flags of this dialect that exist, in bit order.
    pub fn flags(self) -> impl Iterator<Item = (Flag, u32)> {
        let mut v: Vec<(Flag, u32)> = Flag::ALL
            .iter()
            .filter_map(|&f| self.bit(f).map(|b| (f, b)))
            .collect();
        v.sort_by_key(|&(_, b)| b);
        v.into_iter()
    }

    /// Renders raw flag bits as `VMS_POINTER|VMS_ARRAY|0x80000`.
    pub fn describe_flags(self, flags: u32) -> String {
        let mut parts = Vec::new();
        let mut rest = flags;
        for (f, b) in self.flags() {
            if flags & b != 0 {
                parts.push(f.qemu_name().to_string());
                rest &= !b;
            }
        }
        if rest != 0 {
            parts.push(format!("{rest:#x}"));
        }
        if parts.is_empty() {
            "0".into()
        } else {
            parts.join("|")
        }
    }

    /// Parses `VMS_POINTER|VMS_ARRAY|0x80000` (the `VMS_` prefix is optional).
    pub fn parse_flags(self, text: &str) -> Result<u32, String> {
        let mut flags = 0;
        for part in text.split('|').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(hex) = part.strip_prefix("0x") {
                flags |= u32::from_str_radix(hex, 16).map_err(|e| format!("{part}: {e}"))?;
                continue;
            }
            let flag: Flag = part.parse()?;
            flags |= self
                .bit(flag)
                .ok_or_else(|| format!("{} does not exist in {}", flag.qemu_name(), self))?;
        }
        Ok(flags)
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Dialect::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Dialect::ALL.iter().map(|d| d.name()).collect();
                format!("unknown dialect {s:?} ({})", names.join(", "))
            })
    }
}

/// Every `VMS_*` flag name of any dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    Single,
    Pointer,
    Array,
    Struct,
    Varray,
    VarrayInt32,
    VarrayUint16,
    VarrayUint8,
    VarrayUint32,
    Buffer,
    ArrayOfPointer,
    NoState,
    Vbuffer,
    Multiply,
    MustExist,
    Alloc,
    MultiplyElements,
    Vstruct,
    ArrayOfPointerAutoAlloc,
    End,
}

impl Flag {
    pub const ALL: [Flag; 20] = [
        Flag::Single,
        Flag::Pointer,
        Flag::Array,
        Flag::Struct,
        Flag::Varray,
        Flag::VarrayInt32,
        Flag::VarrayUint16,
        Flag::VarrayUint8,
        Flag::VarrayUint32,
        Flag::Buffer,
        Flag::ArrayOfPointer,
        Flag::NoState,
        Flag::Vbuffer,
        Flag::Multiply,
        Flag::MustExist,
        Flag::Alloc,
        Flag::MultiplyElements,
        Flag::Vstruct,
        Flag::ArrayOfPointerAutoAlloc,
        Flag::End,
    ];

    pub fn qemu_name(self) -> &'static str {
        match self {
            Flag::Single => "VMS_SINGLE",
            Flag::Pointer => "VMS_POINTER",
            Flag::Array => "VMS_ARRAY",
            Flag::Struct => "VMS_STRUCT",
            Flag::Varray => "VMS_VARRAY",
            Flag::VarrayInt32 => "VMS_VARRAY_INT32",
            Flag::VarrayUint16 => "VMS_VARRAY_UINT16",
            Flag::VarrayUint8 => "VMS_VARRAY_UINT8",
            Flag::VarrayUint32 => "VMS_VARRAY_UINT32",
            Flag::Buffer => "VMS_BUFFER",
            Flag::ArrayOfPointer => "VMS_ARRAY_OF_POINTER",
            Flag::NoState => "VMS_NO_STATE",
            Flag::Vbuffer => "VMS_VBUFFER",
            Flag::Multiply => "VMS_MULTIPLY",
            Flag::MustExist => "VMS_MUST_EXIST",
            Flag::Alloc => "VMS_ALLOC",
            Flag::MultiplyElements => "VMS_MULTIPLY_ELEMENTS",
            Flag::Vstruct => "VMS_VSTRUCT",
            Flag::ArrayOfPointerAutoAlloc => "VMS_ARRAY_OF_POINTER_AUTO_ALLOC",
            Flag::End => "VMS_END",
        }
    }
}

impl FromStr for Flag {
    type Err = String;
    fn from_str(s: &str) -> Result<Flag, String> {
        let want = s.strip_prefix("VMS_").unwrap_or(s);
        Flag::ALL
            .into_iter()
            .find(|f| &f.qemu_name()[4..] == want)
            .ok_or_else(|| format!("unknown flag {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_moves_between_dialects() {
        assert_eq!(Dialect::Qemu10.end(), 0x10000);
        assert_eq!(Dialect::Qemu11_1.end(), 0x20000);
        assert_eq!(Dialect::QemuMaster.end(), 0x20000);
        assert_eq!(Dialect::AllocCombo.end(), 0x10000);
        assert_eq!(
            Dialect::Qemu11_1.bit(Flag::ArrayOfPointerAutoAlloc),
            Dialect::Qemu10.bit(Flag::End)
        );
    }

    #[test]
    fn every_dialect_has_a_row_and_an_end() {
        for (i, d) in Dialect::ALL.into_iter().enumerate() {
            assert_eq!(d as usize, i, "FACTS is indexed by the variant");
            assert_ne!(d.end(), 0, "{d} has VMS_END");
            assert_eq!(d.name().parse::<Dialect>().unwrap(), d);
        }
    }

    #[test]
    fn flags_round_trip_through_text() {
        for d in Dialect::ALL {
            for (f, b) in d.flags() {
                assert_eq!(d.parse_flags(f.qemu_name()).unwrap(), b, "{d} {f:?}");
            }
            let all: u32 = d.flags().map(|(_, b)| b).fold(0, |a, b| a | b);
            assert_eq!(
                d.parse_flags(&d.describe_flags(all | 0x8000_0000)).unwrap(),
                all | 0x8000_0000
            );
        }
        assert!(Dialect::Qemu10.parse_flags("VMS_VARRAY").is_err());
        assert!(Dialect::QemuMaster.parse_flags("VARRAY_UINT8").is_err());
        assert!(Dialect::Qemu11_1.parse_flags("VARRAY").is_err());
        assert_eq!(
            Dialect::Qemu11_1.parse_flags("VARRAY_UINT16").unwrap(),
            0x80
        );
        assert_eq!(Dialect::QemuMaster.parse_flags("NO_STATE").unwrap(), 0x80);
    }
}
