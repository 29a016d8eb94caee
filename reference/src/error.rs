//! The one error type of save, load and check.
//!
//! Every error carries the stream offset (for save: the output offset) and
//! the field path (`p.arr[2].a`). Where QEMU asserts, aborts or runs into
//! undefined behaviour, the kind is distinct and [`ErrorKind::qemu_site`]
//! names the C line responsible.

use crate::heap::HeapError;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} @{offset}: {kind}")]
pub struct Error {
    pub kind: ErrorKind,
    /// Stream offset of the item being read (load) or written (save) when
    /// the error was detected; 0 for description checks.
    pub offset: usize,
    /// Field path, e.g. `p.arr[2].a`.
    pub path: String,
}

/// What went wrong. The variant name is the stable code case files use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    // ---- errors QEMU reports (the migration fails cleanly) ----
    #[error("stream ended early (qemu_file_get_error: -EIO)")]
    Eof,
    #[error("incoming version_id {incoming} is too new for local version_id {local}")]
    VersionTooNew { incoming: i32, local: i32 },
    #[error("incoming version_id {incoming} is too old for local minimum version_id {minimum}")]
    VersionTooOld { incoming: i32, minimum: i32 },
    #[error("Input validation failed (VMS_MUST_EXIST field does not exist)")]
    InputValidationFailed,
    #[error("VM subsection '{name}' does not exist")]
    SubsectionNotFound { name: String },
    #[error("Unexpected ptr marker: {0}")]
    UnexpectedPtrMarker(u8),
    #[error("get_nullptr expected VMS_NULLPTR_MARKER, got {0:#04x}")]
    NullptrMarkerExpected(u8),
    #[error("{info}: {local:#x} != {incoming:#x}")]
    NotEqual {
        info: &'static str,
        local: u64,
        incoming: u64,
    },
    #[error("int32 le: incoming {incoming} not in 0..={local}")]
    Int32LeOutOfRange { incoming: i32, local: i32 },
    #[error("Could not allocate memory for field ({size} bytes)")]
    AllocFailed { size: u64 },
    #[error("element size overflows (vmstate_size)")]
    SizeOverflow,

    // ---- where QEMU asserts or aborts ----
    #[error("assertion failed: field->flags == VMS_END (terminator has {flags:#x})")]
    TerminatorNotEnd { flags: u32 },
    #[error(
        "assertion failed: first_elem || !n_elems || !size (NULL VMS_POINTER with {n_elems} elements)"
    )]
    NullPointerBase { n_elems: i64 },
    #[error("assertion failed: !auto_alloc || *pptr == NULL (slot holds {slot:#x})")]
    AutoAllocSlotNotNull { slot: u64 },
    #[error("assertion failed: auto_alloc (marker 0x31 on a field without automatic allocation)")]
    ValidMarkerWithoutAutoAlloc,
    #[error(
        "assertion failed: field->flags & VMS_ARRAY_OF_POINTER (NULL element outside an array of pointers)"
    )]
    NullElementNotArrayOfPointer,
    #[error("assertion failed: !(field->flags & VMS_MUST_EXIST) (output state validation failed)")]
    MustExistOnSave,
    #[error("g_malloc of {size} bytes aborts")]
    GMallocAbort { size: u64 },
    #[error("vmstate_check: {0}")]
    Check(CheckRule),

    // ---- undefined behaviour in C; the model refuses ----
    #[error("memory access: {0}")]
    Memory(HeapError),
    #[error("count or size member width {0} is not 1, 2, 4 or 8")]
    BadIndirectWidth(u8),
    #[error("field has no info")]
    MissingInfo,
    #[error("field has no vmsd")]
    MissingVmsd,

    // ---- limits of the model, not QEMU behaviour ----
    #[error("more than {0} elements visited")]
    ElementLimit(u64),
    #[error("output exceeds {0} bytes")]
    OutputLimit(usize),
}

/// The `vmstate_check` (migration/savevm.c) rule a description broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CheckRule {
    #[error("VMSTATE not ending with VMS_END")]
    NotEndingWithVmsEnd,
    #[error("subsection name does not start with its parent's name")]
    SubsectionPrefix,
    #[error("auto-allocated array of pointers needs size or size_indirect")]
    AutoAllocNeedsSize,
    #[error("array of pointers without auto allocation must have size 0")]
    ArrayOfPointerHasSize,
    #[error("VMS_ARRAY_OF_POINTER needs VMS_ARRAY or VMS_VARRAY")]
    ArrayOfPointerNeedsArray,
    #[error("VMS_ARRAY_OF_POINTER_AUTO_ALLOC needs VMS_ARRAY_OF_POINTER")]
    AutoAllocNeedsArrayOfPointer,
    #[error("VMS_VARRAY needs num_indirect")]
    VarrayNeedsNumIndirect,
    #[error("VMS_VBUFFER needs size_indirect")]
    VbufferNeedsSizeIndirect,
    #[error("VMS_STRUCT/VMS_VSTRUCT field without vmsd")]
    StructWithoutVmsd,
}

impl ErrorKind {
    /// The stable code of this kind, as case files write it.
    pub fn code(&self) -> &'static str {
        use ErrorKind::*;
        match self {
            Eof => "Eof",
            VersionTooNew { .. } => "VersionTooNew",
            VersionTooOld { .. } => "VersionTooOld",
            InputValidationFailed => "InputValidationFailed",
            SubsectionNotFound { .. } => "SubsectionNotFound",
            UnexpectedPtrMarker(_) => "UnexpectedPtrMarker",
            NullptrMarkerExpected(_) => "NullptrMarkerExpected",
            NotEqual { .. } => "NotEqual",
            Int32LeOutOfRange { .. } => "Int32LeOutOfRange",
            AllocFailed { .. } => "AllocFailed",
            SizeOverflow => "SizeOverflow",
            TerminatorNotEnd { .. } => "TerminatorNotEnd",
            NullPointerBase { .. } => "NullPointerBase",
            AutoAllocSlotNotNull { .. } => "AutoAllocSlotNotNull",
            ValidMarkerWithoutAutoAlloc => "ValidMarkerWithoutAutoAlloc",
            NullElementNotArrayOfPointer => "NullElementNotArrayOfPointer",
            MustExistOnSave => "MustExistOnSave",
            GMallocAbort { .. } => "GMallocAbort",
            Check(_) => "Check",
            Memory(_) => "Memory",
            BadIndirectWidth(_) => "BadIndirectWidth",
            MissingInfo => "MissingInfo",
            MissingVmsd => "MissingVmsd",
            ElementLimit(_) => "ElementLimit",
            OutputLimit(_) => "OutputLimit",
        }
    }

    /// The outcome of the kind whose [`code`](Self::code) (or `vmstate_check`
    /// rule name) is `code`, as case files name it; None if unknown.
    pub fn outcome_of_code(code: &str) -> Option<Outcome> {
        use ErrorKind::*;
        let probe = match code {
            "Eof" => Eof,
            "VersionTooNew" => VersionTooNew {
                incoming: 0,
                local: 0,
            },
            "VersionTooOld" => VersionTooOld {
                incoming: 0,
                minimum: 0,
            },
            "InputValidationFailed" => InputValidationFailed,
            "SubsectionNotFound" => SubsectionNotFound {
                name: String::new(),
            },
            "UnexpectedPtrMarker" => UnexpectedPtrMarker(0),
            "NullptrMarkerExpected" => NullptrMarkerExpected(0),
            "NotEqual" => NotEqual {
                info: "",
                local: 0,
                incoming: 0,
            },
            "Int32LeOutOfRange" => Int32LeOutOfRange {
                incoming: 0,
                local: 0,
            },
            "AllocFailed" => AllocFailed { size: 0 },
            "SizeOverflow" => SizeOverflow,
            "TerminatorNotEnd" => TerminatorNotEnd { flags: 0 },
            "NullPointerBase" => NullPointerBase { n_elems: 0 },
            "AutoAllocSlotNotNull" => AutoAllocSlotNotNull { slot: 0 },
            "ValidMarkerWithoutAutoAlloc" => ValidMarkerWithoutAutoAlloc,
            "NullElementNotArrayOfPointer" => NullElementNotArrayOfPointer,
            "MustExistOnSave" => MustExistOnSave,
            "GMallocAbort" => GMallocAbort { size: 0 },
            "Memory" => Memory(HeapError::NullDeref { addr: 0 }),
            "BadIndirectWidth" => BadIndirectWidth(0),
            "MissingInfo" => MissingInfo,
            "MissingVmsd" => MissingVmsd,
            "ElementLimit" => ElementLimit(0),
            "OutputLimit" => OutputLimit(0),
            // vmstate_check rules, and the generic code
            _ => return Some(Outcome::Abort).filter(|_| code == "Check" || is_check_rule(code)),
        };
        debug_assert_eq!(probe.code(), code);
        Some(probe.outcome())
    }

    /// How QEMU itself ends up in this situation.
    pub fn outcome(&self) -> Outcome {
        use ErrorKind::*;
        match self {
            TerminatorNotEnd { .. }
            | NullPointerBase { .. }
            | AutoAllocSlotNotNull { .. }
            | ValidMarkerWithoutAutoAlloc
            | NullElementNotArrayOfPointer
            | MustExistOnSave
            | GMallocAbort { .. }
            | BadIndirectWidth(_)
            | Check(_) => Outcome::Abort,
            Memory(_) | MissingInfo | MissingVmsd => Outcome::UndefinedBehaviour,
            ElementLimit(_) | OutputLimit(_) => Outcome::ModelLimit,
            _ => Outcome::Error,
        }
    }

    /// The QEMU source line behind this error.
    pub fn qemu_site(&self) -> &'static str {
        use ErrorKind::*;
        match self {
            Eof => {
                "migration/qemu-file.c qemu_fill_buffer: qemu_file_set_error(f, -EIO) at end of stream"
            }
            VersionTooNew { .. } => {
                "migration/vmstate.c vmstate_load_vmsd: version_id > vmsd->version_id"
            }
            VersionTooOld { .. } => {
                "migration/vmstate.c vmstate_load_vmsd: version_id < vmsd->minimum_version_id"
            }
            InputValidationFailed => {
                "migration/vmstate.c vmstate_load_vmsd: field->flags & VMS_MUST_EXIST"
            }
            SubsectionNotFound { .. } => {
                "migration/vmstate.c vmstate_subsection_load: sub_vmsd == NULL"
            }
            UnexpectedPtrMarker(_) => {
                "migration/vmstate.c vmstate_ptr_marker_load: error_setg(\"Unexpected ptr marker\")"
            }
            NullptrMarkerExpected(_) => {
                "migration/vmstate-types.c get_nullptr: byte != VMS_NULLPTR_MARKER"
            }
            NotEqual { .. } => "migration/vmstate-types.c get_*_equal: *v != v2",
            Int32LeOutOfRange { .. } => {
                "migration/vmstate-types.c get_int32_le: !(0 <= loaded && loaded <= *cur)"
            }
            AllocFailed { .. } => {
                "migration/vmstate.c vmstate_handle_alloc: umul64_overflow or g_try_malloc == NULL"
            }
            SizeOverflow => "migration/vmstate.c vmstate_size: VBUFFER size overflow",
            TerminatorNotEnd { .. } => "migration/vmstate.c: assert(field->flags == VMS_END)",
            NullPointerBase { .. } => {
                "migration/vmstate.c: assert(first_elem || !n_elems || !size)"
            }
            AutoAllocSlotNotNull { .. } => {
                "migration/vmstate.c vmstate_load_next: assert(!auto_alloc || *pptr == NULL)"
            }
            ValidMarkerWithoutAutoAlloc => {
                "migration/vmstate.c vmstate_load_next: assert(auto_alloc)"
            }
            NullElementNotArrayOfPointer => {
                "migration/vmstate.c: assert(field->flags & VMS_ARRAY_OF_POINTER)"
            }
            MustExistOnSave => {
                "migration/vmstate.c vmstate_save_vmsd_v: assert(!(field->flags & VMS_MUST_EXIST))"
            }
            GMallocAbort { .. } => {
                "migration/vmstate.c vmstate_handle_alloc: g_malloc aborts on failure"
            }
            Check(_) => "migration/savevm.c vmstate_check: assert / g_assert_not_reached",
            Memory(_) => "C undefined behaviour: access outside the device's memory",
            BadIndirectWidth(_) => {
                "migration/vmstate.c vmstate_read_from_offset: g_assert_not_reached() on an unsupported width"
            }
            MissingInfo => "C undefined behaviour: field->info is NULL",
            MissingVmsd => "C undefined behaviour: field->vmsd is NULL",
            ElementLimit(_) | OutputLimit(_) => "model limit (no QEMU counterpart)",
        }
    }
}

/// How a run ends in QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An error is returned; the migration fails cleanly.
    Error,
    /// QEMU aborts (assert, g_assert_not_reached, g_malloc failure).
    Abort,
    /// The C code has undefined behaviour; the model stops with an error.
    UndefinedBehaviour,
    /// The model's own resource limit; QEMU would carry on.
    ModelLimit,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Error => "error",
            Outcome::Abort => "abort",
            Outcome::UndefinedBehaviour => "undefined behaviour",
            Outcome::ModelLimit => "model limit",
        })
    }
}

impl Error {
    pub fn new(kind: ErrorKind, offset: usize, path: impl Into<String>) -> Error {
        Error {
            kind,
            offset,
            path: path.into(),
        }
    }
}

fn is_check_rule(name: &str) -> bool {
    use CheckRule::*;
    [
        NotEndingWithVmsEnd,
        SubsectionPrefix,
        AutoAllocNeedsSize,
        ArrayOfPointerHasSize,
        ArrayOfPointerNeedsArray,
        AutoAllocNeedsArrayOfPointer,
        VarrayNeedsNumIndirect,
        VbufferNeedsSizeIndirect,
        StructWithoutVmsd,
    ]
    .iter()
    .any(|r| format!("{r:?}") == name)
}
