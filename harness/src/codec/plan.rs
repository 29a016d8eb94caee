//! Compiling a description into a flat plan: every flag question of a
//! dialect is answered once, here, so save and load only follow data.

use vmstate_reference::{
    CountRead, Dialect, Dynamic, Field, Flag, Info, NullEntry, PointerStride, Test, VbufferSize,
    VmsAlloc, Vmsd,
};

/// A compiled `VMStateDescription`.
#[derive(Debug, Clone)]
pub struct VmsdPlan {
    pub name: String,
    /// The name as C's `strlen`/`strcmp` see it (up to the first NUL).
    pub c_name: Vec<u8>,
    pub version_id: i32,
    pub minimum_version_id: i32,
    pub fields: Vec<FieldPlan>,
    /// `Some(flags)` when the terminator is not the dialect's `VMS_END`.
    pub bad_terminator: Option<u32>,
    pub subsections: Vec<SubsectionPlan>,
}

#[derive(Debug, Clone)]
pub struct SubsectionPlan {
    pub plan: VmsdPlan,
    pub needed: Option<Test>,
    /// `05 len name`, with the name cut to the length byte.
    pub header: Vec<u8>,
    /// What the subsection appends to its parent's path (`/extra`).
    pub path_suffix: String,
}

/// When a field takes part.
#[derive(Debug, Clone)]
pub enum Exists {
    /// `field->version_id <= version_id`
    FromVersion(i32),
    /// `field_exists(opaque, version_id)`
    Test(Test),
}

/// `vmstate_n_elems`, decided per dialect.
#[derive(Debug, Clone, Copy)]
pub enum Count {
    /// Already widened the dialect's way.
    Fixed(i64),
    /// A C `int` read from a member of the VARRAY flag's type.
    IntMember { offset: u64, width: u8 },
    /// `vmstate_read_from_offset(&num_indirect)`: unsigned, any width
    /// but 1, 2, 4 and 8 aborts.
    UnsignedMember { offset: u64, width: u8 },
}

/// `vmstate_size`, decided per dialect.
#[derive(Debug, Clone, Copy)]
pub enum SizeRule {
    /// Already widened the dialect's way.
    Fixed(i64),
    /// C `int` sizes: int32 member, wrapping multiply.
    LegacyMember { offset: u64, multiply: Option<i32> },
    /// Unsigned member of `width`; `checked`: an overflowing multiply
    /// fails the load, otherwise it wraps.
    UnsignedMember {
        offset: u64,
        width: u8,
        multiply: Option<u64>,
        checked: bool,
    },
}

/// `vmstate_handle_alloc`, decided per dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alloc {
    None,
    /// `g_malloc(size * n)`, wrapping, aborts on failure.
    GMalloc,
    /// `g_try_malloc` after an overflow check.
    GTryMalloc,
}

/// How the element slots are walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slots {
    /// `base + size * i`; `null_check`: qemu-10.x's `!curr_elem && size`
    /// assertion applies.
    Direct { null_check: bool },
    /// Slots hold pointers; NULL with size != 0 is a nullptr placeholder.
    NullptrPlaceholder,
    /// Slots hold pointers with ptr markers; `dynamic`: the loader
    /// allocates elements (AUTO_ALLOC or ARRAY_OF_POINTER|ALLOC).
    Marker {
        dynamic: bool,
        over_non_null: OverNonNull,
    },
    /// Not an array of pointers, but AUTO_ALLOC-style markers anyway.
    DynamicDirect,
}

/// What a marker load does when the destination slot is already non-NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverNonNull {
    /// `assert(!auto_alloc || *pptr == NULL)`; a plain slot loads in place.
    Assert,
    /// RFC 13/17 `vmstate_next`: a dynamic slot is allocated over; a plain
    /// slot loads in place with no marker.
    Allocate,
}

/// What one element is.
#[derive(Debug, Clone)]
pub enum Elem {
    /// STRUCT (own version) or VSTRUCT (`struct_version_id`); `flat` when
    /// at that version the struct is only plain scalars and scalar arrays.
    Struct {
        plan: Box<VmsdPlan>,
        version: i32,
        flat: Option<Flat>,
    },
    Info(Info),
    MissingVmsd,
    MissingInfo,
}

#[derive(Debug, Clone)]
pub struct FieldPlan {
    pub name: String,
    pub offset: u64,
    pub exists: Exists,
    pub must_exist: bool,
    pub count: Count,
    /// `VMS_MULTIPLY_ELEMENTS` over a member count.
    pub multiply_elements: Option<i32>,
    pub size: SizeRule,
    pub pointer: bool,
    pub alloc: Alloc,
    pub slots: Slots,
    pub elem: Elem,
    /// `field->size`: what a dynamic element is saved with and allocated as.
    pub field_size: u64,
    /// Element paths carry an index.
    pub array: bool,
}

/// Compiles `vmsd` for dialect `d`.
pub fn compile(d: Dialect, vmsd: &Vmsd) -> VmsdPlan {
    VmsdPlan {
        name: vmsd.name.clone(),
        c_name: c_str(vmsd.name.as_bytes()).to_vec(),
        version_id: vmsd.version_id,
        minimum_version_id: vmsd.minimum_version_id,
        fields: vmsd.fields.iter().map(|f| compile_field(d, f)).collect(),
        bad_terminator: (vmsd.terminator != d.end()).then_some(vmsd.terminator),
        subsections: vmsd
            .subsections
            .iter()
            .map(|s| {
                let name = s.name.as_bytes();
                let len = name.len() as u8;
                let mut header = vec![vmstate_reference::QEMU_VM_SUBSECTION, len];
                header.extend_from_slice(&name[..len as usize]);
                let path_suffix = match s.name.strip_prefix(vmsd.name.as_str()) {
                    Some(rest) if rest.starts_with('/') => rest.to_string(),
                    _ => format!("/{}", s.name),
                };
                SubsectionPlan {
                    plan: compile(d, s),
                    needed: s.needed.clone(),
                    header,
                    path_suffix,
                }
            })
            .collect(),
    }
}

fn compile_field(d: Dialect, f: &Field) -> FieldPlan {
    let has = |flag| d.has(f.flags, flag);
    let facts = d.facts();
    let aop = has(Flag::ArrayOfPointer);
    let varray = [
        (Flag::Varray, 0),
        (Flag::VarrayInt32, 4),
        (Flag::VarrayUint32, 4),
        (Flag::VarrayUint16, 2),
        (Flag::VarrayUint8, 1),
    ]
    .into_iter()
    .find(|&(flag, _)| has(flag));
    let unsigned = |n: u64| n.min(i64::MAX as u64) as i64;
    let (count, multiply_elements) = match facts.count {
        CountRead::CInt => {
            let count = if has(Flag::Array) {
                Count::Fixed(f.num as i64)
            } else if let Some((_, width)) = varray {
                Count::IntMember {
                    offset: f.num_indirect.offset,
                    width,
                }
            } else {
                Count::Fixed(1)
            };
            let multiply = has(Flag::MultiplyElements).then_some(f.num);
            if let (Count::Fixed(n), Some(m)) = (count, multiply) {
                (Count::Fixed((n as i32).wrapping_mul(m) as i64), None)
            } else {
                (count, multiply)
            }
        }
        CountRead::MemberWidth => {
            let count = if has(Flag::Array) {
                Count::Fixed(unsigned(f.num as i64 as u64))
            } else if varray.is_some() {
                Count::UnsignedMember {
                    offset: f.num_indirect.offset,
                    width: f.num_indirect.size,
                }
            } else if has(Flag::MustExist) && has(Flag::NoState) {
                Count::Fixed(0)
            } else {
                Count::Fixed(1)
            };
            let multiply = has(Flag::MultiplyElements).then_some(f.num);
            match (count, multiply) {
                (Count::Fixed(n), Some(m)) => (
                    Count::Fixed(unsigned((n as u64).wrapping_mul(m as i64 as u64))),
                    None,
                ),
                _ => (count, multiply),
            }
        }
    };
    let int_sizes = facts.vbuffer_size == VbufferSize::Int32Wrapping;
    let size = if has(Flag::Vbuffer) {
        let multiply = has(Flag::Multiply);
        match facts.vbuffer_size {
            VbufferSize::Int32Wrapping => SizeRule::LegacyMember {
                offset: f.size_indirect.offset,
                multiply: multiply.then_some(f.size as i32),
            },
            VbufferSize::UnsignedWrapping | VbufferSize::UnsignedChecked => {
                SizeRule::UnsignedMember {
                    offset: f.size_indirect.offset,
                    width: f.size_indirect.size,
                    multiply: multiply.then_some(f.size),
                    checked: facts.vbuffer_size == VbufferSize::UnsignedChecked,
                }
            }
        }
    } else if aop && facts.pointer_stride == PointerStride::HostPointer {
        SizeRule::Fixed(vmstate_reference::POINTER_SIZE as i64)
    } else if int_sizes {
        SizeRule::Fixed(f.size as i32 as i64)
    } else {
        SizeRule::Fixed(unsigned(f.size))
    };
    let combo = facts.dynamic == Dynamic::ArrayOfPointerAlloc;
    let alloc = match facts.vms_alloc {
        _ if !(has(Flag::Pointer) && has(Flag::Alloc)) => Alloc::None,
        _ if combo && aop => Alloc::None,
        VmsAlloc::GMalloc => Alloc::GMalloc,
        VmsAlloc::GTryMallocChecked => Alloc::GTryMalloc,
    };
    let dynamic = match facts.dynamic {
        Dynamic::None => false,
        Dynamic::AutoAllocFlag => has(Flag::ArrayOfPointerAutoAlloc),
        Dynamic::ArrayOfPointerAlloc => aop && has(Flag::Alloc),
    };
    let slots = match (facts.null_entry, aop) {
        (NullEntry::Nullptr, true) => Slots::NullptrPlaceholder,
        (NullEntry::Nullptr, false) => Slots::Direct { null_check: true },
        (NullEntry::PtrMarker, true) => Slots::Marker {
            dynamic,
            over_non_null: match facts.dynamic {
                Dynamic::ArrayOfPointerAlloc => OverNonNull::Allocate,
                Dynamic::None | Dynamic::AutoAllocFlag => OverNonNull::Assert,
            },
        },
        (_, false) if dynamic => Slots::DynamicDirect,
        (NullEntry::PtrMarker, false) => Slots::Direct { null_check: false },
    };
    let array = [
        Flag::Array,
        Flag::Varray,
        Flag::VarrayInt32,
        Flag::VarrayUint32,
        Flag::VarrayUint16,
        Flag::VarrayUint8,
        Flag::MultiplyElements,
        Flag::ArrayOfPointer,
    ]
    .into_iter()
    .any(has);
    let elem = if has(Flag::Struct) || has(Flag::Vstruct) {
        match &f.vmsd {
            None => Elem::MissingVmsd,
            Some(v) => {
                let version = if has(Flag::Struct) {
                    v.version_id
                } else {
                    f.struct_version_id
                };
                let plan = compile(d, v);
                Elem::Struct {
                    flat: Flat::of(&plan, version),
                    version,
                    plan: Box::new(plan),
                }
            }
        }
    } else {
        f.info.map_or(Elem::MissingInfo, Elem::Info)
    };
    FieldPlan {
        name: f.name.clone(),
        offset: f.offset,
        exists: match &f.field_exists {
            Some(t) => Exists::Test(t.clone()),
            None => Exists::FromVersion(f.version_id),
        },
        must_exist: has(Flag::MustExist),
        count,
        multiply_elements,
        size,
        pointer: has(Flag::Pointer),
        alloc,
        slots,
        elem,
        field_size: f.size,
        array,
    }
}

/// A C string's bytes: up to the first NUL.
pub fn c_str(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or(bytes)
}

/// Whether `info->get` compares the wire value with what memory holds
/// (`*_equal`, `int32 le`) instead of only storing it: such elements need
/// the element-by-element path.
pub fn compares_with_memory(info: Info) -> bool {
    matches!(
        info,
        Info::Int32Equal
            | Info::Uint8Equal
            | Info::Uint16Equal
            | Info::Uint32Equal
            | Info::Uint64Equal
            | Info::Int32Le
    )
}

/// A struct whose fields, at one version, are nothing but plain scalars and
/// dense scalar arrays: saved and loaded from one slice (its subsections
/// follow the ordinary way).
#[derive(Debug, Clone)]
pub struct Flat {
    /// Bytes from the struct's start that the fields cover.
    pub extent: u64,
    /// Elements the fields count for the element limit.
    pub elements: u64,
    pub runs: Vec<FlatRun>,
    /// Every info is a plain integer or bool (no `equal`/`le` checks), so a
    /// load needs no comparison against memory.
    pub plain: bool,
}

/// `n` scalars of `width` bytes at `offset`.
#[derive(Debug, Clone, Copy)]
pub struct FlatRun {
    pub offset: u64,
    pub width: u64,
    pub n: u64,
    pub bool: bool,
}

impl Flat {
    fn of(plan: &VmsdPlan, version: i32) -> Option<Flat> {
        // Loading checks the version gate first; only a struct that passes
        // it and has a proper terminator is flat. Its subsections (if any)
        // are saved and loaded the ordinary way after the flat fields.
        let gate = version <= plan.version_id && version >= plan.minimum_version_id;
        if !gate || plan.bad_terminator.is_some() {
            return None;
        }
        let mut runs = vec![];
        let mut plain = true;
        for f in &plan.fields {
            let Exists::FromVersion(v) = f.exists else {
                return None;
            };
            if v > version {
                if f.must_exist {
                    return None;
                }
                continue;
            }
            let (
                Count::Fixed(n),
                None,
                SizeRule::Fixed(size),
                false,
                Alloc::None,
                Slots::Direct { .. },
                Elem::Info(info),
            ) = (
                f.count,
                f.multiply_elements,
                f.size,
                f.pointer,
                f.alloc,
                f.slots,
                &f.elem,
            )
            else {
                return None;
            };
            let width = info.scalar_width()?;
            if n < 1 || size as u64 != width || f.offset.checked_add(width * n as u64)? > 1 << 32 {
                return None;
            }
            plain &= !compares_with_memory(*info);
            runs.push(FlatRun {
                offset: f.offset,
                width,
                n: n as u64,
                bool: *info == Info::Bool,
            });
        }
        let extent = runs
            .iter()
            .map(|r| r.offset + r.width * r.n)
            .max()
            .unwrap_or(0);
        let elements = runs.iter().map(|r| r.n).sum();
        (!runs.is_empty()).then_some(Flat {
            extent,
            elements,
            runs,
            plain,
        })
    }
}
