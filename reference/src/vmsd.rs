//! The description model: a data mirror of `VMStateDescription` and
//! `VMStateField` (include/migration/vmstate.h). Callbacks become data:
//! `field_exists` and `needed` are [`Test`]s over the device's memory.

use crate::heap::{Addr, Heap, HeapError};

/// `VMStateDescription`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Vmsd {
    pub name: String,
    pub version_id: i32,
    pub minimum_version_id: i32,
    pub fields: Vec<Field>,
    /// The flags of the `VMSTATE_END_OF_LIST()` entry that ends `fields`;
    /// QEMU asserts it equals the dialect's `VMS_END`.
    pub terminator: u32,
    /// `vmsd->subsections`, in order.
    pub subsections: Vec<Vmsd>,
    /// `vmsd->needed`; None means always needed.
    pub needed: Option<Test>,
}

/// `VMStateField`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    pub name: String,
    /// Byte offset of the member in the containing object.
    pub offset: u64,
    /// `size`: element size (for ARRAY_OF_POINTER with auto allocation, the
    /// pointee's size; for VBUFFER|MULTIPLY, the multiplier).
    pub size: u64,
    /// `num`: element count for `VMS_ARRAY`, multiplier for `VMS_MULTIPLY_ELEMENTS`.
    pub num: i32,
    /// Where a VARRAY count lives. qemu-11.1 reads `size` bytes unsigned;
    /// qemu-10.x and alloc-combo (`num_offset`) read the C type named by the
    /// VARRAY flag and ignore `size`.
    pub num_indirect: Indirect,
    /// Where a VBUFFER size lives. qemu-11.1 reads `size` bytes unsigned;
    /// qemu-10.x and alloc-combo (`size_offset`) read an int32.
    pub size_indirect: Indirect,
    /// `info` for scalar and buffer elements.
    pub info: Option<Info>,
    /// `vmsd` for STRUCT/VSTRUCT elements.
    pub vmsd: Option<Box<Vmsd>>,
    pub version_id: i32,
    pub struct_version_id: i32,
    /// Raw `enum VMStateFlags` bits, read through a [`crate::Dialect`].
    pub flags: u32,
    pub field_exists: Option<Test>,
}

impl Field {
    /// A field with every member zero, as C designated initialisers leave it.
    pub fn new(name: impl Into<String>, offset: u64, flags: u32) -> Field {
        Field {
            name: name.into(),
            offset,
            size: 0,
            num: 0,
            num_indirect: Indirect::NONE,
            size_indirect: Indirect::NONE,
            info: None,
            vmsd: None,
            version_id: 0,
            struct_version_id: 0,
            flags,
            field_exists: None,
        }
    }
}

/// `VMStateStructMember` (qemu-11.1) / `num_offset`, `size_offset` (older):
/// a member of the same object that holds a count or a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Indirect {
    pub offset: u64,
    /// Width in bytes: 1, 2, 4 or 8; 0 means "not set".
    pub size: u8,
}

impl Indirect {
    pub const NONE: Indirect = Indirect { offset: 0, size: 0 };
}

/// A `field_exists(opaque, version_id)` or `needed(opaque)` callback, as data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Test {
    /// Always returns this value.
    Const(bool),
    /// The unsigned member of `width` bytes at `offset` is non-zero.
    NonZero { offset: u64, width: u8 },
    /// The unsigned member of `width` bytes at `offset` is zero.
    Zero { offset: u64, width: u8 },
    /// `version_id >= n` (like `vmstate_*_v` helpers).
    VersionAtLeast(i32),
}

impl Test {
    /// Runs the callback on the object at `opaque`.
    pub fn eval(&self, heap: &Heap, opaque: Addr, version_id: i32) -> Result<bool, HeapError> {
        Ok(match *self {
            Test::Const(v) => v,
            Test::NonZero { offset, width } => {
                heap.read_uint(opaque.wrapping_add(offset), width as u64)? != 0
            }
            Test::Zero { offset, width } => {
                heap.read_uint(opaque.wrapping_add(offset), width as u64)? == 0
            }
            Test::VersionAtLeast(n) => version_id >= n,
        })
    }
}

/// `VMStateInfo`: how one scalar or buffer element is put on the wire
/// (migration/vmstate-types.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Info {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int32Equal,
    Uint8Equal,
    Uint16Equal,
    Uint32Equal,
    /// `vmstate_info_uint64_equal`, whose name is "int64 equal".
    Uint64Equal,
    Int32Le,
    Buffer,
    UnusedBuffer,
}

impl Info {
    pub const ALL: [Info; 17] = [
        Info::Bool,
        Info::Int8,
        Info::Int16,
        Info::Int32,
        Info::Int64,
        Info::Uint8,
        Info::Uint16,
        Info::Uint32,
        Info::Uint64,
        Info::Int32Equal,
        Info::Uint8Equal,
        Info::Uint16Equal,
        Info::Uint32Equal,
        Info::Uint64Equal,
        Info::Int32Le,
        Info::Buffer,
        Info::UnusedBuffer,
    ];

    /// `info->name`, which is also the vmdesc `type`.
    pub fn name(self) -> &'static str {
        match self {
            Info::Bool => "bool",
            Info::Int8 => "int8",
            Info::Int16 => "int16",
            Info::Int32 => "int32",
            Info::Int64 => "int64",
            Info::Uint8 => "uint8",
            Info::Uint16 => "uint16",
            Info::Uint32 => "uint32",
            Info::Uint64 => "uint64",
            Info::Int32Equal => "int32 equal",
            Info::Uint8Equal => "uint8 equal",
            Info::Uint16Equal => "uint16 equal",
            Info::Uint32Equal => "uint32 equal",
            Info::Uint64Equal => "int64 equal",
            Info::Int32Le => "int32 le",
            Info::Buffer => "buffer",
            Info::UnusedBuffer => "unused_buffer",
        }
    }

    pub fn from_name(name: &str) -> Option<Info> {
        Info::ALL.into_iter().find(|i| i.name() == name)
    }

    /// Bytes a scalar occupies in memory and on the wire; None for the
    /// size-driven buffer infos.
    pub fn scalar_width(self) -> Option<u64> {
        match self {
            Info::Bool | Info::Int8 | Info::Uint8 | Info::Uint8Equal => Some(1),
            Info::Int16 | Info::Uint16 | Info::Uint16Equal => Some(2),
            Info::Int32 | Info::Uint32 | Info::Int32Equal | Info::Uint32Equal | Info::Int32Le => {
                Some(4)
            }
            Info::Int64 | Info::Uint64 | Info::Uint64Equal => Some(8),
            Info::Buffer | Info::UnusedBuffer => None,
        }
    }
}
