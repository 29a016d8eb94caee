//! Compiling a description into a flat plan: every flag question of a
//! dialect is answered once, here, so save and load only follow data.

use vmstate_reference::{Dialect, Field, Flag, Info, Test, Vmsd};

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
    Fixed(i32),
    /// A member of `width` bytes; `checked` widths come from
    /// `num_indirect.size` and may be invalid.
    Member {
        offset: u64,
        width: u8,
        checked: bool,
    },
}

/// `vmstate_size`, decided per dialect.
#[derive(Debug, Clone, Copy)]
pub enum SizeRule {
    Fixed(i32),
    /// qemu-10.x/alloc-combo: int32 member, wrapping multiply.
    LegacyMember {
        offset: u64,
        multiply: Option<i32>,
    },
    /// qemu-11.1: unsigned member of `width`, checked multiply, fits int.
    HardenedMember {
        offset: u64,
        width: u8,
        multiply: Option<u64>,
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
    /// qemu-10.x: slots hold pointers; NULL with size != 0 is a nullptr marker.
    Nullptr10,
    /// qemu-11.1: ptr markers; `dynamic` = AUTO_ALLOC.
    Marker11 { dynamic: bool },
    /// alloc-combo: ptr markers; `dynamic` = ARRAY_OF_POINTER|ALLOC.
    MarkerCombo { dynamic: bool },
    /// Not an array of pointers, but AUTO_ALLOC-style markers anyway.
    DynamicDirect,
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
    let aop = has(Flag::ArrayOfPointer);
    let count = if has(Flag::MustExist) && has(Flag::NoState) {
        Count::Fixed(0)
    } else if has(Flag::Array) {
        Count::Fixed(f.num)
    } else if has(Flag::Varray) {
        Count::Member {
            offset: f.num_indirect.offset,
            width: f.num_indirect.size,
            checked: true,
        }
    } else if has(Flag::VarrayInt32) || has(Flag::VarrayUint32) {
        Count::Member {
            offset: f.num_indirect.offset,
            width: 4,
            checked: false,
        }
    } else if has(Flag::VarrayUint16) {
        Count::Member {
            offset: f.num_indirect.offset,
            width: 2,
            checked: false,
        }
    } else if has(Flag::VarrayUint8) {
        Count::Member {
            offset: f.num_indirect.offset,
            width: 1,
            checked: false,
        }
    } else {
        Count::Fixed(1)
    };
    // VMS_NO_STATE|VMS_MUST_EXIST short-circuits the multiply too
    let no_state = has(Flag::MustExist) && has(Flag::NoState);
    let multiply_elements = (has(Flag::MultiplyElements) && !no_state).then_some(f.num);
    let size = if has(Flag::Vbuffer) {
        let multiply = has(Flag::Multiply);
        match d {
            Dialect::Qemu11_1 => SizeRule::HardenedMember {
                offset: f.size_indirect.offset,
                width: f.size_indirect.size,
                multiply: multiply.then_some(f.size),
            },
            _ => SizeRule::LegacyMember {
                offset: f.size_indirect.offset,
                multiply: multiply.then_some(f.size as i32),
            },
        }
    } else if aop && d != Dialect::Qemu10 {
        SizeRule::Fixed(vmstate_reference::POINTER_SIZE as i32)
    } else {
        SizeRule::Fixed(f.size as i32)
    };
    let alloc = match d {
        _ if !(has(Flag::Pointer) && has(Flag::Alloc)) => Alloc::None,
        Dialect::Qemu10 => Alloc::GMalloc,
        Dialect::AllocCombo if aop => Alloc::None,
        Dialect::AllocCombo => Alloc::GMalloc,
        Dialect::Qemu11_1 => Alloc::GTryMalloc,
    };
    let dynamic = match d {
        Dialect::Qemu10 => false,
        Dialect::Qemu11_1 => has(Flag::ArrayOfPointerAutoAlloc),
        Dialect::AllocCombo => aop && has(Flag::Alloc),
    };
    let slots = match (d, aop) {
        (Dialect::Qemu10, true) => Slots::Nullptr10,
        (Dialect::Qemu10, false) => Slots::Direct { null_check: true },
        (Dialect::Qemu11_1, true) => Slots::Marker11 { dynamic },
        (Dialect::AllocCombo, true) => Slots::MarkerCombo { dynamic },
        (_, false) if dynamic => Slots::DynamicDirect,
        (_, false) => Slots::Direct { null_check: false },
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
            plain &= !matches!(
                info,
                Info::Int32Equal
                    | Info::Uint8Equal
                    | Info::Uint16Equal
                    | Info::Uint32Equal
                    | Info::Uint64Equal
                    | Info::Int32Le
            );
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
