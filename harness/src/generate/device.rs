//! The device generator: structs, their VMSDs and fields of every kind,
//! with the source state and the destination the case's pre-state gives.

use super::{FieldSpec, PreState, placeholder, plain_field};
use crate::case::spec::{FlagsSpec, MemberTest, TestSpec, VmsdSpec};
use arbitrary::{Result, Unstructured};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use vmstate_reference::{Dialect, Dynamic, Flag, NullEntry};

const MAX_DEPTH: usize = 4;

/// Scalar C types with their info names.
const SCALARS: [(&str, &str, u8, bool); 9] = [
    ("bool", "bool", 1, false),
    ("int8_t", "int8", 1, true),
    ("uint8_t", "uint8", 1, false),
    ("int16_t", "int16", 2, true),
    ("uint16_t", "uint16", 2, false),
    ("int32_t", "int32", 4, true),
    ("uint32_t", "uint32", 4, false),
    ("int64_t", "int64", 8, true),
    ("uint64_t", "uint64", 8, false),
];

/// The kinds of field the generator makes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Scalar,
    Array,
    Buffer,
    Unused,
    Varray,
    Vbuffer,
    Struct,
    StructPointer,
    ArrayOfPointers,
    DynamicArray,
    /// `VMS_ARRAY|VMS_STRUCT` over an inline array of structs.
    StructArray,
    /// Hostile: `VMS_POINTER|VMS_VARRAY` over a NULL base with a count of
    /// any width and value (negative, bit 31 or 63 set, 255/256).
    NullBaseCount,
}

pub(super) struct Gen<'u, 'a> {
    pub(super) u: &'u mut Unstructured<'a>,
    pub(super) d: Dialect,
    /// Only what every dialect can describe.
    pub(super) portable: bool,
    /// What the destination holds before the load.
    pub(super) pre: PreState,
    /// Whether hostile shapes may appear.
    pub(super) hostile: bool,
    /// The shapes made so far.
    pub(super) shapes: BTreeSet<&'static str>,
    /// Bytes of undescribed padding for the next struct made.
    pub(super) pad_next: Option<usize>,
    /// The one kind of field the root gets.
    pub(super) only: Option<Kind>,
    pub(super) structs: BTreeMap<String, String>,
    pub(super) vmsds: Vec<VmsdSpec>,
    /// Elements left to spend: keeps every case small enough to run fast.
    pub(super) budget: usize,
    /// How many times the struct being generated is repeated (the product
    /// of the enclosing array lengths): lengths inside it cost that much.
    pub(super) scale: usize,
    /// Inside an element the loader allocates: every field must load into
    /// zeroed memory, so nothing may rely on a pre-populated destination.
    pub(super) self_contained: bool,
}

/// An object's value as JSON.
type Obj = Map<String, Value>;

/// A nested struct: its VMSD name, C struct name, source and destination.
struct Nested {
    vmsd: String,
    c_struct: String,
    state: Obj,
    dest: Obj,
}

/// How the elements of an array of pointers are made.
enum ElemGen {
    /// Every element is this struct value.
    Struct(Obj, Obj),
    /// A fresh scalar per element.
    Scalar(&'static str, u8, bool),
}

/// The members, fields and values one VMSD is being built from.
struct Body {
    decls: String,
    fields: Vec<FieldSpec>,
    state: Map<String, Value>,
    dest: Map<String, Value>,
    /// Members that are always loaded before later fields: usable in tests.
    plain_scalars: Vec<String>,
    version_id: i32,
}

impl Gen<'_, '_> {
    fn fresh(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.structs.len() + self.vmsds.len())
    }

    /// A struct, its VMSD (and subsections), the source and destination values.
    pub(super) fn gen_struct(
        &mut self,
        vmsd_name: &str,
        depth: usize,
    ) -> Result<(VmsdSpec, Obj, Obj)> {
        let c_struct = self.fresh("S");
        let pad = self.pad_next.take();
        self.structs.insert(c_struct.clone(), String::new()); // reserve the name
        let version_id = self.u.int_in_range(1..=3)?;
        let mut body = Body {
            decls: String::new(),
            fields: vec![],
            state: Map::new(),
            dest: Map::new(),
            plain_scalars: vec![],
            version_id,
        };
        let root_only = depth == 0 && self.only.is_some();
        let n = if root_only {
            1
        } else {
            self.u.int_in_range(1..=5)?
        };
        for k in 0..n {
            self.gen_field(&mut body, &format!("f{k}"), depth)?;
        }
        let mut subsections = vec![];
        let n_subs = if !root_only && depth < MAX_DEPTH && self.u.ratio(1, 3)? {
            self.u.int_in_range(1..=2)?
        } else {
            0
        };
        if n_subs > 0 {
            self.shape(if depth > 0 {
                "nested subsection"
            } else {
                "subsection"
            });
        }
        for s in 0..n_subs {
            let name = format!("{vmsd_name}/sub{s}");
            let needed = match self.u.int_in_range(0..=2)? {
                0 => None,
                1 => Some(TestSpec::Const(self.u.arbitrary()?)),
                _ => match body.plain_scalars.last() {
                    Some(m) => Some(TestSpec::Member(MemberTest::Nonzero(m.clone()))),
                    None => Some(TestSpec::Const(true)),
                },
            };
            let sub_version = self.u.int_in_range(1..=2)?;
            let mut sub = Body {
                decls: String::new(),
                fields: vec![],
                state: Map::new(),
                dest: Map::new(),
                plain_scalars: vec![],
                version_id: sub_version,
            };
            for k in 0..self.u.int_in_range(1..=2)? {
                self.gen_field(&mut sub, &format!("s{s}f{k}"), depth + 1)?;
            }
            let sent = match &needed {
                None => true,
                Some(TestSpec::Const(b)) => *b,
                Some(TestSpec::Member(MemberTest::Nonzero(m))) => is_nonzero(&body.state[m]),
                Some(_) => true,
            };
            // What a subsection does not send stays as the destination has it.
            let sub_state = if sent { sub.state } else { sub.dest.clone() };
            body.decls.push_str(&sub.decls);
            body.state.extend(sub_state);
            body.dest.extend(sub.dest);
            self.vmsds.push(VmsdSpec {
                name: name.clone(),
                c_struct: c_struct.clone(),
                version_id: sub_version,
                minimum_version_id: 0,
                fields: sub.fields,
                subsections: vec![],
                needed,
                terminator: None,
            });
            subsections.push(name);
        }
        if let Some(pad) = pad {
            // An undescribed member: the object is larger than its wire bytes.
            body.decls += &format!("uint8_t pad[{pad}];");
        }
        self.structs.insert(c_struct.clone(), body.decls);
        let minimum_version_id = self.u.int_in_range(0..=version_id)?;
        let vmsd = VmsdSpec {
            name: vmsd_name.into(),
            c_struct,
            version_id,
            minimum_version_id,
            fields: body.fields,
            subsections,
            needed: None,
            terminator: None,
        };
        Ok((vmsd, body.state, body.dest))
    }

    /// A nested struct registered as its own VMSD; returns its struct name.
    fn nested(&mut self, depth: usize) -> Result<Nested> {
        let name = self.fresh("v");
        let idx = self.vmsds.len();
        self.vmsds.push(placeholder());
        let (vmsd, state, dest) = self.gen_struct(&name, depth + 1)?;
        let c_struct = vmsd.c_struct.clone();
        self.vmsds[idx] = vmsd;
        Ok(Nested {
            vmsd: name,
            c_struct,
            state,
            dest,
        })
    }

    fn kinds(&self, depth: usize) -> Vec<Kind> {
        let mut k = vec![
            Kind::Scalar,
            Kind::Array,
            Kind::Buffer,
            Kind::Unused,
            Kind::Varray,
            Kind::Vbuffer,
        ];
        if depth < MAX_DEPTH && self.self_contained {
            k.push(Kind::Struct);
        } else if depth < MAX_DEPTH {
            k.extend([
                Kind::Struct,
                Kind::StructPointer,
                Kind::ArrayOfPointers,
                Kind::StructArray,
            ]);
            // A matrix row isolates its kind: no dynamic arrays elsewhere.
            if self.d.facts().dynamic != Dynamic::None && self.only.is_none() {
                k.extend([Kind::DynamicArray, Kind::DynamicArray]);
            }
        }
        if self.hostile && !self.portable && self.only.is_none() {
            k.push(Kind::NullBaseCount);
        }
        k
    }

    fn shape(&mut self, name: &'static str) {
        self.shapes.insert(name);
    }

    /// An array length: mostly short, sometimes across 255/256 or 0.
    fn length(&mut self, max: usize) -> Result<usize> {
        let n = match self.u.int_in_range(0..=9)? {
            0 => 0,
            1 => self.u.int_in_range(250..=300)?,
            2 => self.u.int_in_range(0..=300)?,
            _ => self.u.int_in_range(1..=6)?,
        };
        let n = n.min(max).min(self.budget / self.scale);
        self.budget -= n * self.scale;
        Ok(n)
    }

    fn scalar(&mut self) -> Result<(&'static str, &'static str, u8, bool)> {
        Ok(*self.u.choose(&SCALARS)?)
    }

    fn value(&mut self, ctype: &str, width: u8, signed: bool) -> Result<Value> {
        if ctype == "bool" {
            return Ok(json!(self.u.arbitrary::<bool>()?));
        }
        let raw: u64 = self.u.arbitrary()?;
        let bits = 8 * width as u32;
        Ok(if signed {
            let shift = 64 - bits;
            json!(((raw << shift) as i64) >> shift)
        } else {
            json!(raw & (u64::MAX >> (64 - bits)))
        })
    }

    /// One field. The first field of a nested struct is a plain scalar:
    /// a struct whose fields put no byte on the wire lets its subsection
    /// loop swallow the next array element's subsections (a finding, see
    /// corpus/vectors/findings_from_properties.json), which would make
    /// round trips fail for a reason already recorded.
    fn gen_field(&mut self, body: &mut Body, m: &str, depth: usize) -> Result<()> {
        let first_of_nested = depth > 0 && m == "f0";
        let kind = match self.only {
            Some(k) if depth == 0 => k,
            _ if first_of_nested => Kind::Scalar,
            _ => *self.u.choose(&self.kinds(depth))?,
        };
        let mut field = plain_field(m);
        self.shape(match kind {
            Kind::Scalar => "scalar",
            Kind::Array => "VMS_ARRAY of scalars",
            Kind::Buffer => "buffer",
            Kind::Unused => "unused_buffer",
            Kind::Varray => "VMS_VARRAY",
            Kind::Vbuffer => "VMS_VBUFFER",
            Kind::Struct => "VMS_STRUCT / VMS_VSTRUCT",
            Kind::StructPointer => "VMS_POINTER|VMS_STRUCT",
            Kind::ArrayOfPointers => "array of pointers",
            Kind::DynamicArray => "dynamic array of pointers",
            Kind::StructArray => "inline array of structs",
            Kind::NullBaseCount => "NULL base with a hostile count",
        });
        let (state, dest) = match kind {
            Kind::Scalar => {
                let (ct, info, w, s) = self.scalar()?;
                body.decls += &format!("{ct} {m};");
                field.info = Some(info.into());
                let v = self.value(ct, w, s)?;
                (v, zero_of(ct))
            }
            Kind::Array => {
                let (ct, info, w, s) = self.scalar()?;
                let n = self.length(300)?.max(1);
                body.decls += &format!("{ct} {m}[{n}];");
                field.info = Some(info.into());
                field.flags = FlagsSpec::Text("ARRAY".into());
                let v: Result<Vec<Value>> = (0..n).map(|_| self.value(ct, w, s)).collect();
                (Value::Array(v?), Value::Array(vec![zero_of(ct); n]))
            }
            Kind::Buffer | Kind::Unused => {
                // g_malloc0(0) is NULL: a zero-size element would not survive
                // auto-allocation (a finding of its own), so keep them sized.
                let n = self.u.int_in_range(self.self_contained as usize..=12)?;
                body.decls += &format!("uint8_t {m}[{n}];");
                let bytes: Vec<u8> = if kind == Kind::Buffer {
                    (0..n).map(|_| self.u.arbitrary()).collect::<Result<_>>()?
                } else {
                    vec![0; n]
                };
                field.info = Some(
                    if kind == Kind::Buffer {
                        "buffer"
                    } else {
                        "unused_buffer"
                    }
                    .into(),
                );
                (json!(hex::encode(bytes)), json!("00".repeat(n)))
            }
            Kind::Varray => {
                let (count_ct, count_info, count_max) = self.count_type()?;
                let (ct, info, w, s) = self.scalar()?;
                let n = self.length(count_max)?;
                let c = format!("{m}n");
                body.decls += &format!("{count_ct} {c}; {ct} *{m};");
                self.count_field(body, &c, count_info, n);
                let alloc = self.self_contained || self.u.ratio(1, 3)?;
                field.info = Some(info.into());
                field.count = Some(c);
                field.flags = FlagsSpec::Text(
                    if alloc {
                        "POINTER|VARRAY|ALLOC"
                    } else {
                        "POINTER|VARRAY"
                    }
                    .into(),
                );
                let v: Vec<Value> = (0..n)
                    .map(|_| self.value(ct, w, s))
                    .collect::<Result<_>>()?;
                let zeros = Value::Array(vec![zero_of(ct); n]);
                if alloc {
                    self.shape("VMS_ALLOC");
                }
                let src = if n == 0 { Value::Null } else { Value::Array(v) };
                match (alloc, self.existing_buffer()?) {
                    (true, None) => (src, Value::Null),
                    // n == 0: nothing allocated, the old buffer stays
                    (true, Some(len)) if n == 0 => {
                        let old = Value::Array(vec![zero_of(ct); len]);
                        (old.clone(), old)
                    }
                    (true, Some(len)) => (src, Value::Array(vec![zero_of(ct); len])),
                    (false, _) => (src.as_array().map_or(zeros.clone(), |_| src.clone()), zeros),
                }
            }
            Kind::Vbuffer => {
                let len = self.u.int_in_range(0..=8)?;
                let multiply = self.u.int_in_range(0..=3)?;
                let alloc = self.self_contained || self.u.ratio(1, 3)?;
                let l = format!("{m}len");
                body.decls += &format!("uint32_t {l}; uint8_t *{m};");
                self.count_field(body, &l, "uint32", len);
                let total = len * multiply.max(1);
                let mut flags = String::from("POINTER|VBUFFER");
                if multiply > 0 {
                    flags += "|MULTIPLY";
                    field.size = Some(multiply as u64);
                }
                if alloc {
                    flags += "|ALLOC";
                }
                field.flags = FlagsSpec::Text(flags);
                field.info = Some("buffer".into());
                field.size_from = Some(l);
                let bytes: Vec<u8> = (0..total)
                    .map(|_| self.u.arbitrary())
                    .collect::<Result<_>>()?;
                if multiply > 0 {
                    self.shape("VMS_VBUFFER|VMS_MULTIPLY");
                }
                if alloc {
                    self.shape("VMS_ALLOC");
                }
                match (alloc, total, self.existing_buffer()?) {
                    (false, 0, _) | (true, 0, None) => (Value::Null, Value::Null),
                    // size 0: nothing allocated, the old buffer stays
                    (true, 0, Some(len)) => {
                        let old = json!("00".repeat(len));
                        (old.clone(), old)
                    }
                    (true, _, None) => (json!(hex::encode(bytes)), Value::Null),
                    (true, _, Some(len)) => (json!(hex::encode(bytes)), json!("00".repeat(len))),
                    (false, _, _) => (json!(hex::encode(bytes)), json!("00".repeat(total))),
                }
            }
            Kind::Struct => {
                let Nested {
                    vmsd,
                    c_struct,
                    state,
                    dest,
                } = self.nested(depth)?;
                body.decls += &format!("{c_struct} {m};");
                field.vmsd = Some(vmsd);
                if self.u.ratio(1, 4)? {
                    field.flags = FlagsSpec::Text("VSTRUCT".into());
                    field.struct_version_id = self
                        .vmsds
                        .iter()
                        .find(|v| Some(&v.name) == field.vmsd.as_ref())
                        .map_or(1, |v| v.version_id);
                } else {
                    field.flags = FlagsSpec::Text("STRUCT".into());
                }
                (Value::Object(state), Value::Object(dest))
            }
            Kind::StructPointer => {
                let Nested {
                    vmsd,
                    c_struct,
                    state,
                    dest,
                } = self.nested(depth)?;
                body.decls += &format!("{c_struct} *{m};");
                field.vmsd = Some(vmsd);
                field.flags = FlagsSpec::Text("POINTER|STRUCT".into());
                (Value::Object(state), Value::Object(dest))
            }
            Kind::ArrayOfPointers | Kind::DynamicArray => {
                return self.pointer_array(body, field, m, depth, kind);
            }
            Kind::StructArray => {
                let n = self.length(8)?.max(1);
                let outer = self.scale;
                self.scale = self.scale.saturating_mul(n);
                let nested = self.nested(depth);
                self.scale = outer;
                let Nested {
                    vmsd,
                    c_struct,
                    state,
                    dest,
                } = nested?;
                body.decls += &format!("{c_struct} {m}[{n}];");
                field.vmsd = Some(vmsd);
                field.num = Some(n as i32);
                field.flags = FlagsSpec::Text("ARRAY|STRUCT".into());
                (
                    Value::Array(vec![Value::Object(state); n]),
                    Value::Array(vec![Value::Object(dest); n]),
                )
            }
            Kind::NullBaseCount => {
                let (count_ct, count_info, value) = self.hostile_count()?;
                let (ct, info, _, _) = self.scalar()?;
                let c = format!("{m}n");
                body.decls += &format!("{count_ct} {c}; {ct} *{m};");
                body.fields.push(FieldSpec {
                    info: Some(count_info.into()),
                    ..plain_field(&c)
                });
                body.state.insert(c.clone(), value);
                body.dest.insert(c.clone(), json!(0));
                field.info = Some(info.into());
                field.count = Some(c);
                field.flags = FlagsSpec::Text("POINTER|VARRAY".into());
                (Value::Null, Value::Null)
            }
        };
        // Versions and field_exists tests on fields that are not arrays of
        // structs keep round trips exact.
        if matches!(kind, Kind::Scalar | Kind::Array | Kind::Buffer) && !first_of_nested {
            if self.u.ratio(1, 4)? {
                field.version_id = self.u.int_in_range(0..=body.version_id)?;
                self.shape("field version_id");
            }
            if self.u.ratio(1, 5)?
                && let Some(t) = body.plain_scalars.last()
            {
                let test = if self.u.arbitrary()? {
                    MemberTest::Nonzero(t.clone())
                } else {
                    MemberTest::Zero(t.clone())
                };
                let present = match &test {
                    MemberTest::Nonzero(t) => is_nonzero(&body.state[t]),
                    _ => !is_nonzero(&body.state[t]),
                };
                field.exists = Some(TestSpec::Member(test));
                self.shape("field_exists test");
                let state = if present { state } else { dest.clone() };
                body.state.insert(m.into(), state);
                body.dest.insert(m.into(), dest);
                body.fields.push(field);
                return Ok(());
            }
        }
        if kind == Kind::Scalar && field.version_id == 0 && field.exists.is_none() {
            body.plain_scalars.push(m.into());
        }
        body.state.insert(m.into(), state);
        body.dest.insert(m.into(), dest);
        body.fields.push(field);
        Ok(())
    }

    /// A count member type this dialect can use as a VARRAY count.
    fn count_type(&mut self) -> Result<(&'static str, &'static str, usize)> {
        let options: &[(&str, &str, usize)] = match self.d {
            _ if self.portable => &[
                ("uint8_t", "uint8", 255),
                ("uint16_t", "uint16", 300),
                ("uint32_t", "uint32", 300),
            ],
            // One VMS_VARRAY with a count width: a uint64_t count is fine.
            d if d.bit(Flag::Varray).is_some() => &[
                ("uint8_t", "uint8", 255),
                ("uint16_t", "uint16", 300),
                ("uint32_t", "uint32", 300),
                ("uint64_t", "uint64", 300),
            ],
            _ => &[
                ("uint8_t", "uint8", 255),
                ("uint16_t", "uint16", 300),
                ("uint32_t", "uint32", 300),
                ("int32_t", "int32", 300),
            ],
        };
        let chosen = *self.u.choose(options)?;
        self.shape(match chosen.0 {
            "uint8_t" => "count of width 1",
            "uint16_t" => "count of width 2",
            "uint64_t" => "count of width 8",
            _ => "count of width 4",
        });
        Ok(chosen)
    }

    /// A count member and a hostile value for it: negative, bit 31 or 63
    /// set, across 255/256, or 0.
    fn hostile_count(&mut self) -> Result<(&'static str, &'static str, Value)> {
        let (ct, info, _) = self.count_type()?;
        let values: &[Value] = &match ct {
            "uint8_t" => [json!(0), json!(1), json!(255), json!(255)],
            "uint16_t" => [json!(0), json!(256), json!(65535), json!(1)],
            "int32_t" => [json!(-1), json!(i32::MIN), json!(i32::MAX), json!(0)],
            "uint32_t" => [json!(0x8000_0000u32), json!(u32::MAX), json!(1), json!(0)],
            _ => [
                json!(1u64 << 31),
                json!(1u64 << 63),
                json!(u64::MAX),
                json!(1u64 << 32),
            ],
        };
        let v = self.u.choose(values)?.clone();
        if v.as_i64().is_some_and(|n| n < 0) {
            self.shape("negative count");
        }
        if ct == "uint64_t" && v.as_u64().is_some_and(|n| n & (1 << 31) != 0) {
            self.shape("count of width 8 with bit 31 set");
        }
        Ok((ct, info, v))
    }

    /// Live and reset destinations hold a VMS_ALLOC buffer already: its
    /// length, or None for a fresh one.
    fn existing_buffer(&mut self) -> Result<Option<usize>> {
        if self.pre == PreState::Fresh || self.self_contained {
            return Ok(None);
        }
        self.shape("VMS_ALLOC over an existing buffer");
        Ok(Some(self.u.int_in_range(1..=8)?))
    }

    /// The separate field that migrates a count or size member first.
    fn count_field(&mut self, body: &mut Body, member: &str, info: &str, n: usize) {
        body.fields.push(FieldSpec {
            info: Some(info.into()),
            ..plain_field(member)
        });
        body.state.insert(member.into(), json!(n));
        body.dest.insert(member.into(), json!(0));
    }

    /// A fixed array of pointers, or (dialects with a dynamic array) a dynamic one.
    fn pointer_array(
        &mut self,
        body: &mut Body,
        mut field: FieldSpec,
        m: &str,
        depth: usize,
        kind: Kind,
    ) -> Result<()> {
        let dynamic = kind == Kind::DynamicArray;
        let n = if dynamic {
            self.length(300)?
        } else {
            self.length(300)?.max(1)
        };
        // qemu-10.x with `.size = 0`: the stride is 0 and NULL entries are
        // not skipped (`!curr_elem && size`), so every element is slot 0.
        let size_zero = self.hostile
            && !dynamic
            && self.d.facts().null_entry == NullEntry::Nullptr
            && self.u.ratio(1, 3)?;
        let null_percent: u32 = if size_zero {
            0
        } else {
            *self.u.choose(&[0, 10, 50, 90, 100])?
        };
        let mut nulls: Vec<bool> = (0..n)
            .map(|_| Ok(self.u.int_in_range(0..=99)? < null_percent))
            .collect::<Result<_>>()?;
        if n >= 2 && null_percent > 0 && self.u.ratio(1, 3)? {
            nulls[0] = true;
            nulls[n - 1] = true;
        }
        if n >= 2 && nulls[0] && nulls[n - 1] {
            self.shape("array of pointers with NULL at both ends");
        }
        if (250..=300).contains(&n) {
            self.shape("array of pointers across 255/256");
        }
        if size_zero {
            field.size = Some(0);
            self.shape("qemu-10.x array of pointers with size 0");
        }
        let elem_struct = self.u.ratio(2, 3)?;
        let (elem_type, elems) = if elem_struct {
            let (outer, outer_scale) = (self.self_contained, self.scale);
            self.self_contained |= dynamic;
            self.scale = self.scale.saturating_mul(n.max(1));
            let pad = dynamic && self.hostile && self.u.ratio(1, 2)?;
            self.pad_next = pad.then_some(self.u.int_in_range(256..=4096)?);
            if pad {
                self.shape("element allocating far more than its wire bytes");
            }
            let nested = self.nested(depth);
            self.pad_next = None;
            (self.self_contained, self.scale) = (outer, outer_scale);
            let Nested {
                vmsd,
                c_struct,
                state,
                dest,
            } = nested?;
            field.vmsd = Some(vmsd);
            (c_struct, ElemGen::Struct(state, dest))
        } else {
            let (ct, info, w, s) = self.scalar()?;
            field.info = Some(info.into());
            (ct.to_string(), ElemGen::Scalar(ct, w, s))
        };
        let kind_flag = if elem_struct { "|STRUCT" } else { "" };
        let mut state = vec![];
        let mut dest = vec![];
        for &null in &nulls {
            if null {
                state.push(Value::Null);
                dest.push(Value::Null);
            } else {
                let (s, d) = match &elems {
                    ElemGen::Struct(s, d) => (Value::Object(s.clone()), Value::Object(d.clone())),
                    ElemGen::Scalar(ct, w, sg) => (self.value(ct, *w, *sg)?, zero_of(ct)),
                };
                state.push(s);
                // A live destination may hold an element in a dynamic slot.
                let keep = !dynamic || (self.pre == PreState::Live && self.u.ratio(1, 2)?);
                if dynamic && keep {
                    self.shape("dynamic array with non-NULL destination slots");
                }
                dest.push(if keep { d } else { Value::Null });
            }
        }
        if dynamic {
            let (count_ct, count_info, _) = self.count_type()?;
            let n = n.min(if count_ct == "uint8_t" { 255 } else { n });
            state.truncate(n);
            dest.truncate(n);
            let c = format!("{m}n");
            body.decls += &format!("{count_ct} {c}; {elem_type} **{m};");
            self.count_field(body, &c, count_info, n);
            field.count = Some(c);
            field.flags = FlagsSpec::Text(format!(
                "POINTER|VARRAY|ARRAY_OF_POINTER|AUTO_ALLOC{kind_flag}"
            ));
        } else {
            body.decls += &format!("{elem_type} *{m}[{n}];");
            field.flags = FlagsSpec::Text(format!("ARRAY|ARRAY_OF_POINTER{kind_flag}"));
        }
        body.state.insert(m.into(), Value::Array(state));
        body.dest.insert(m.into(), Value::Array(dest));
        body.fields.push(field);
        Ok(())
    }
}

fn zero_of(ct: &str) -> Value {
    if ct == "bool" { json!(false) } else { json!(0) }
}

fn is_nonzero(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64() != Some(0) && n.as_u64() != Some(0),
        _ => true,
    }
}
