//! The case-file format (see README, "Case files") and its translation into
//! a [`Vmsd`] for one dialect, the way QEMU's `VMSTATE_*` macros fill in a
//! `VMStateField` in that dialect.

use super::ctype::{CType, StructLayout, Types};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use vmstate_reference::{Dialect, Dynamic, Field, Flag, Indirect, Info, PointerStride, Test, Vmsd};

/// One JSON file: shared declarations and a list of cases.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// Free text: where the cases come from.
    #[serde(default)]
    pub source: String,
    /// C struct name -> member declarations (`"uint8_t n; S **arr;"`).
    pub structs: BTreeMap<String, String>,
    /// VMSDs; the first is the root unless a case names another.
    pub vmsds: Vec<VmsdSpec>,
    pub cases: Vec<CaseSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VmsdSpec {
    pub name: String,
    /// The C struct this VMSD describes.
    #[serde(rename = "struct")]
    pub c_struct: String,
    #[serde(default = "one")]
    pub version_id: i32,
    #[serde(default)]
    pub minimum_version_id: i32,
    pub fields: Vec<FieldSpec>,
    /// Names of other VMSDs in this file, in `vmsd->subsections` order.
    #[serde(default)]
    pub subsections: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needed: Option<TestSpec>,
    /// Flags of the terminator entry; the dialect's `VMS_END` if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminator: Option<FlagsSpec>,
}

fn one() -> i32 {
    1
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Field name; defaults to `member`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The struct member the field describes (gives offset and defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// A raw offset, for fields that describe no member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmsd: Option<String>,
    #[serde(default)]
    pub flags: FlagsSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num: Option<i32>,
    /// Member holding a VARRAY count (`num_indirect` / `num_offset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<String>,
    /// Member holding a VBUFFER size (`size_indirect` / `size_offset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_from: Option<String>,
    #[serde(default)]
    pub version_id: i32,
    #[serde(default)]
    pub struct_version_id: i32,
    /// `field_exists`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<TestSpec>,
}

/// Flags as `"POINTER|ARRAY"` (names with or without `VMS_`, portable
/// names `VARRAY` and `AUTO_ALLOC`, hex numbers) or as a raw number.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum FlagsSpec {
    Raw(u32),
    Text(String),
}

impl Default for FlagsSpec {
    fn default() -> Self {
        FlagsSpec::Raw(0)
    }
}

/// A `field_exists` / `needed` callback.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TestSpec {
    Const(bool),
    Member(MemberTest),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum MemberTest {
    /// The member is non-zero.
    Nonzero(String),
    /// The member is zero.
    Zero(String),
    /// The version is at least this.
    VersionAtLeast(i32),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    pub name: String,
    /// Dialect names the case applies to.
    pub dialects: Vec<String>,
    /// Root VMSD name; the file's first VMSD if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Expected `vmstate_check` verdict: "ok" or a rule name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// Source object state (shared with the [`crate::oracle::Built`]s made
    /// from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Arc<Value>>,
    /// Expected wire bytes (hex) of the root VMSD payload, without EOF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<String>,
    /// Expected save result: `wire` by default when both `state` and
    /// `wire` exist; `false` to skip; `{"error": code}` for a failing save.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save: Option<SaveSpec>,
    /// Destination state before load; `state` with every scalar zero if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest: Option<Value>,
    /// Stream version handed to load; the root's version_id if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    /// Expected load result; `{"state": <state>}` if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadSpec>,
    /// Whether the four truncations of test-vmstate.c's `load_vmstate` must
    /// fail (default true for a successful load).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncations: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum SaveSpec {
    Skip(bool),
    Error {
        error: String,
        #[serde(default)]
        path: Option<String>,
    },
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum LoadSpec {
    Skip(bool),
    Expect(LoadExpect),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoadExpect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    /// Error code (`ErrorKind::code`) expected instead of success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Builds the root VMSD of a case for one dialect.
pub fn build_vmsd(file: &CaseFile, types: &Types, d: Dialect, name: &str) -> Result<Vmsd, String> {
    build_vmsd_at(file, types, d, name, 0)
}

fn build_vmsd_at(
    file: &CaseFile,
    types: &Types,
    d: Dialect,
    name: &str,
    depth: usize,
) -> Result<Vmsd, String> {
    if depth > 32 {
        return Err(format!("vmsd {name} nests too deep"));
    }
    let spec = file
        .vmsds
        .iter()
        .find(|v| v.name == name)
        .ok_or_else(|| format!("unknown vmsd {name}"))?;
    let layout = types.get(&spec.c_struct)?;
    let fields = spec
        .fields
        .iter()
        .map(|f| build_field(file, types, d, layout, f, depth).map_err(|e| format!("{name}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let subsections = spec
        .subsections
        .iter()
        .map(|s| build_vmsd_at(file, types, d, s, depth + 1))
        .collect::<Result<Vec<_>, _>>()?;
    let terminator = match &spec.terminator {
        None => d.end(),
        Some(f) => parse_flags(d, f, None, types)?,
    };
    Ok(Vmsd {
        name: spec.name.clone(),
        version_id: spec.version_id,
        minimum_version_id: spec.minimum_version_id,
        fields,
        terminator,
        subsections,
        needed: spec
            .needed
            .as_ref()
            .map(|t| build_test(t, layout, types))
            .transpose()?,
    })
}

fn build_field(
    file: &CaseFile,
    types: &Types,
    d: Dialect,
    layout: &StructLayout,
    spec: &FieldSpec,
    depth: usize,
) -> Result<Field, String> {
    let member = spec
        .member
        .as_deref()
        .map(|m| {
            layout
                .member(m)
                .ok_or_else(|| format!("{} has no member {m}", layout.name))
        })
        .transpose()?;
    let name = spec
        .name
        .clone()
        .or_else(|| spec.member.clone())
        .ok_or("field needs a name or a member")?;
    let offset = match (spec.offset, member) {
        (Some(o), _) => o,
        (None, Some(m)) => m.offset,
        (None, None) => return Err(format!("field {name} needs a member or an offset")),
    };
    let count = spec
        .count
        .as_deref()
        .map(|c| indirect(layout, types, c))
        .transpose()?;
    let count_ty = spec
        .count
        .as_deref()
        .and_then(|c| layout.member(c))
        .map(|m| &m.ty);
    let flags =
        parse_flags(d, &spec.flags, count_ty, types).map_err(|e| format!("field {name}: {e}"))?;
    let mut field = Field::new(name.clone(), offset, flags);
    field.info = spec
        .info
        .as_deref()
        .map(|i| Info::from_name(i).ok_or_else(|| format!("field {name}: unknown info {i:?}")))
        .transpose()?;
    field.vmsd = spec
        .vmsd
        .as_deref()
        .map(|v| build_vmsd_at(file, types, d, v, depth + 1).map(Box::new))
        .transpose()?;
    field.num_indirect = count.unwrap_or(Indirect::NONE);
    field.size_indirect = spec
        .size_from
        .as_deref()
        .map(|s| indirect(layout, types, s))
        .transpose()?
        .unwrap_or(Indirect::NONE);
    field.version_id = spec.version_id;
    field.struct_version_id = spec.struct_version_id;
    field.field_exists = spec
        .exists
        .as_ref()
        .map(|t| build_test(t, layout, types))
        .transpose()?;
    field.num = match spec.num {
        Some(n) => n,
        None if d.has(flags, Flag::Array) => {
            let ty = member
                .map(|m| &m.ty)
                .ok_or_else(|| format!("field {name}: ARRAY needs num"))?;
            let (_, n) = ty
                .array_elem()
                .ok_or_else(|| format!("field {name}: ARRAY needs num"))?;
            n as i32
        }
        None => 0,
    };
    field.size = match spec.size {
        Some(s) => s,
        None => default_size(d, flags, member.map(|m| &m.ty), types)
            .map_err(|e| format!("field {name}: {e}"))?,
    };
    Ok(field)
}

/// What the dialect's `VMSTATE_*` macros put in `.size`.
fn default_size(d: Dialect, flags: u32, ty: Option<&CType>, types: &Types) -> Result<u64, String> {
    let has = |f| d.has(flags, f);
    let Some(mut ty) = ty else {
        return Ok(0);
    };
    if has(Flag::Vbuffer) {
        return Ok(if has(Flag::Multiply) { 1 } else { 0 });
    }
    if has(Flag::Pointer) {
        ty = ty
            .pointee()
            .ok_or("VMS_POINTER on a member that is not a pointer")?;
    }
    if vmstate_reference::is_array(d, flags)
        && let Some((elem, _)) = ty.array_elem()
    {
        ty = elem;
    }
    if has(Flag::ArrayOfPointer) {
        // qemu-10.x macros store sizeof(T *); later ones store the pointee
        // size only where the loader allocates elements.
        let pointee_size =
            || types.size_of(ty.pointee().ok_or("array of pointers over a non-pointer")?);
        return match d.facts().pointer_stride {
            PointerStride::FieldSize => Ok(vmstate_reference::POINTER_SIZE),
            PointerStride::HostPointer if vmstate_reference::is_dynamic_array(d, flags) => {
                pointee_size()
            }
            PointerStride::HostPointer => Ok(0),
        };
    }
    types.size_of(ty)
}

/// `VMStateStructMember` for a member: its offset and width.
fn indirect(layout: &StructLayout, types: &Types, member: &str) -> Result<Indirect, String> {
    let m = layout
        .member(member)
        .ok_or_else(|| format!("{} has no member {member}", layout.name))?;
    let size = types.size_of(&m.ty)?;
    Ok(Indirect {
        offset: m.offset,
        size: u8::try_from(size).map_err(|_| format!("member {member} is too wide for a count"))?,
    })
}

fn build_test(t: &TestSpec, layout: &StructLayout, types: &Types) -> Result<Test, String> {
    Ok(match t {
        TestSpec::Const(b) => Test::Const(*b),
        TestSpec::Member(MemberTest::VersionAtLeast(n)) => Test::VersionAtLeast(*n),
        TestSpec::Member(MemberTest::Nonzero(m)) => {
            let at = indirect(layout, types, m)?;
            Test::NonZero {
                offset: at.offset,
                width: at.size,
            }
        }
        TestSpec::Member(MemberTest::Zero(m)) => {
            let at = indirect(layout, types, m)?;
            Test::Zero {
                offset: at.offset,
                width: at.size,
            }
        }
    })
}

/// Resolves flag text in a dialect. `VARRAY` becomes `VMS_VARRAY` in
/// qemu-11.1 and the `VMS_VARRAY_<type>` of the count member elsewhere;
/// `AUTO_ALLOC` becomes the dialect's dynamic-array flag.
fn parse_flags(
    d: Dialect,
    spec: &FlagsSpec,
    count_ty: Option<&CType>,
    _types: &Types,
) -> Result<u32, String> {
    let text = match spec {
        FlagsSpec::Raw(r) => return Ok(*r),
        FlagsSpec::Text(t) => t,
    };
    let mut out = 0;
    for part in text.split('|').map(str::trim).filter(|p| !p.is_empty()) {
        let bare = part.strip_prefix("VMS_").unwrap_or(part);
        let flag = match (bare, d) {
            ("VARRAY", _) if d.bit(Flag::Varray).is_some() => Flag::Varray,
            ("VARRAY", _) => match count_ty {
                Some(CType::Int {
                    width: 4,
                    signed: true,
                }) => Flag::VarrayInt32,
                Some(CType::Int {
                    width: 4,
                    signed: false,
                }) => Flag::VarrayUint32,
                Some(CType::Int {
                    width: 2,
                    signed: false,
                }) => Flag::VarrayUint16,
                Some(CType::Int {
                    width: 1,
                    signed: false,
                }) => Flag::VarrayUint8,
                other => {
                    return Err(format!(
                        "no VMS_VARRAY_* flag in {d} for a count of type {other:?}"
                    ));
                }
            },
            ("AUTO_ALLOC", _) => match d.facts().dynamic {
                Dynamic::AutoAllocFlag => Flag::ArrayOfPointerAutoAlloc,
                Dynamic::ArrayOfPointerAlloc => Flag::Alloc,
                Dynamic::None => {
                    return Err(format!("{d} has no dynamic array of pointers"));
                }
            },
            _ => {
                out |= d.parse_flags(part)?;
                continue;
            }
        };
        out |= d.bit(flag).expect("flag chosen for this dialect");
    }
    Ok(out)
}

/// The same device as `d` would declare it. A dialect without dynamic
/// arrays has no AUTO_ALLOC: the field becomes a plain array of pointers
/// and its destination table is pre-populated (non-NULL where the source
/// is), which is how such a device has to migrate; the rest of the
/// destination stays as the case has it.
pub fn port_to(file: &CaseFile, d: Dialect) -> CaseFile {
    let mut f = file.clone();
    if d.facts().dynamic != Dynamic::None {
        return f;
    }
    let root = f.vmsds.first().map(|v| v.name.clone()).unwrap_or_default();
    for case in &mut f.cases {
        let root = case.root.clone().unwrap_or_else(|| root.clone());
        if let (Some(state), Some(dest)) = (&case.state, &mut case.dest) {
            prepopulate(&file.vmsds, &root, state, dest);
        }
    }
    for v in &mut f.vmsds {
        for field in &mut v.fields {
            if let FlagsSpec::Text(t) = &mut field.flags {
                *t = t.replace("|AUTO_ALLOC", "");
            }
        }
    }
    f
}

/// Gives every AUTO_ALLOC table under the object `vmsd` describes a
/// destination with an element wherever the source has one.
fn prepopulate(vmsds: &[VmsdSpec], vmsd: &str, state: &Value, dest: &mut Value) {
    let Some(spec) = vmsds.iter().find(|v| v.name == vmsd) else {
        return;
    };
    for field in &spec.fields {
        let Some(member) = field.member.as_deref() else {
            continue;
        };
        let (Some(s), Some(dv)) = (state.get(member), dest.get_mut(member)) else {
            continue;
        };
        let dynamic = matches!(&field.flags, FlagsSpec::Text(t) if t.contains("AUTO_ALLOC"));
        if dynamic {
            *dv = super::value::zeroed(s);
        } else if let Some(child) = &field.vmsd {
            match (s, dv) {
                (Value::Array(ss), Value::Array(ds)) => {
                    for (se, de) in ss.iter().zip(ds.iter_mut()) {
                        prepopulate(vmsds, child, se, de);
                    }
                }
                (s, dv) => prepopulate(vmsds, child, s, dv),
            }
        }
    }
    for sub in &spec.subsections {
        prepopulate(vmsds, sub, state, dest);
    }
}
