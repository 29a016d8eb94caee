//! The three vmstate dialects and their `enum VMStateFlags` bit values
//! (include/migration/vmstate.h).
//!
//! Flags never travel on the wire; they only steer the interpreter. The same
//! raw bits mean different things in different dialects (0x10000 is
//! `VMS_END` in qemu-10.x and alloc-combo but `VMS_ARRAY_OF_POINTER_AUTO_ALLOC`
//! in qemu-11.1), which is why a description is always read through a dialect.

use std::fmt;
use std::str::FromStr;

/// Which QEMU semantics to interpret a description with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dialect {
    /// Upstream before the AUTO_ALLOC work (master of 2026-02-13, what 10.x
    /// ships): four VARRAY flags with C types, `VMS_MULTIPLY_ELEMENTS`,
    /// `vmstate_info_nullptr`, `VMS_END` 0x10000.
    Qemu10,
    /// Upstream after the Aug-2026 migration pull: one `VMS_VARRAY` with a
    /// count width, `VMS_ARRAY_OF_POINTER_AUTO_ALLOC` 0x10000, ptr markers
    /// 0x30/0x31, `VMS_END` 0x20000.
    Qemu11_1,
    /// Fabiano Rosas' RFC 13/17 over Peter Xu's RFC v1: no AUTO_ALLOC flag,
    /// `VMS_ARRAY_OF_POINTER | VMS_ALLOC` instead, `vmstate_first` /
    /// `vmstate_next`, `VMS_END` back to 0x10000.
    AllocCombo,
}

impl Dialect {
    pub const ALL: [Dialect; 3] = [Dialect::Qemu10, Dialect::Qemu11_1, Dialect::AllocCombo];

    /// The name used on the command line and in case files.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Qemu10 => "qemu-10.x",
            Dialect::Qemu11_1 => "qemu-11.1",
            Dialect::AllocCombo => "alloc-combo",
        }
    }

    /// The bit value of `flag` in this dialect, or None if it does not exist.
    pub fn bit(self, flag: Flag) -> Option<u32> {
        use Dialect::*;
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
        if common.is_some() {
            return common;
        }
        match (self, flag) {
            (Qemu11_1, Varray) => Some(0x10),
            // Seen only on branches carrying the series (spec, verification notes).
            (Qemu11_1, NoState) => Some(0x80),
            (Qemu11_1, ArrayOfPointerAutoAlloc) => Some(0x10000),
            (Qemu11_1, End) => Some(0x20000),
            (Qemu10 | AllocCombo, VarrayInt32) => Some(0x10),
            (Qemu10 | AllocCombo, VarrayUint16) => Some(0x80),
            (Qemu10 | AllocCombo, VarrayUint8) => Some(0x400),
            (Qemu10 | AllocCombo, VarrayUint32) => Some(0x800),
            (Qemu10 | AllocCombo, MultiplyElements) => Some(0x4000),
            (Qemu10 | AllocCombo, End) => Some(0x10000),
            _ => None,
        }
    }

    /// Whether `flags` has `flag` set (false if the flag does not exist here).
    pub fn has(self, flags: u32, flag: Flag) -> bool {
        self.bit(flag).is_some_and(|b| flags & b != 0)
    }

    /// `VMS_END`: the flags of the `VMSTATE_END_OF_LIST()` terminator.
    pub fn end(self) -> u32 {
        self.bit(Flag::End).expect("every dialect has VMS_END")
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
            .ok_or_else(|| format!("unknown dialect {s:?} (qemu-10.x, qemu-11.1, alloc-combo)"))
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
        assert_eq!(Dialect::AllocCombo.end(), 0x10000);
        assert_eq!(
            Dialect::Qemu11_1.bit(Flag::ArrayOfPointerAutoAlloc),
            Dialect::Qemu10.bit(Flag::End)
        );
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
        assert!(Dialect::Qemu11_1.parse_flags("VARRAY_UINT8").is_err());
    }
}
