//! Device state decoded from the vmdesc field list (QEMU's
//! `vmstate_load_state`, driven by the JSON instead of the C tables).
use super::error::{Result, StreamError};
use super::reader::Reader;
use super::vmdesc::{FieldDesc, VmsdDesc};

/// `QEMU_VM_SUBSECTION`.
pub const QEMU_VM_SUBSECTION: u8 = 0x05;
/// `VMS_NULLPTR_MARKER` ('0').
pub const VMS_NULLPTR_MARKER: u8 = 0x30;
/// `VMS_MARKER_PTR_VALID` ('1', AUTO_ALLOC arrays of pointers).
pub const VMS_MARKER_PTR_VALID: u8 = 0x31;
/// Maximum nesting of structs and subsections.
pub const MAX_DEPTH: usize = 64;

/// One decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// An integer of `bytes.len()` bytes, big-endian as on the wire.
    Int {
        bytes: &'a [u8],
        signed: bool,
    },
    Bool(bool),
    /// Raw bytes (buffers, timers, unknown types).
    Bytes(&'a [u8]),
    /// A NULL pointer marker (`nullptr`).
    Nullptr,
    /// A `ptr-marker` (QEMU 11.1): the byte as read, 0x30 for NULL and 0x31
    /// for valid on a well-formed stream. Any byte is accepted here, as
    /// analyze-migration.py's generic reader does: judging a marker is the
    /// loader's job (`load`), and a stream with a bad one must still parse.
    PtrMarker(u8),
    Capability(String),
    Struct(Fields<'a>),
}

impl Value<'_> {
    /// A leaf as analyze-migration.py prints it in `-d state`: ints as
    /// `0x..` (with the signed value in parentheses when negative), bools
    /// as `True`/`False`, raw bytes and ptr markers as hex (`30`, `31`: the
    /// script has no ptr-marker reader), 10.x NULL markers as `nullptr`.
    pub fn render(&self) -> String {
        match self {
            Value::Int { bytes, signed } => {
                const DIGITS: &[u8; 16] = b"0123456789abcdef";
                let mut s = String::with_capacity(2 + 2 * bytes.len());
                s.push_str("0x");
                for &b in bytes.iter() {
                    s.push(char::from(DIGITS[usize::from(b >> 4)]));
                    s.push(char::from(DIGITS[usize::from(b & 15)]));
                }
                if *signed && bytes[0] & 0x80 != 0 {
                    // Sign-extend (at most 16 bytes, checked when decoding).
                    let mut x: i128 = -1;
                    for &b in bytes.iter() {
                        x = (x << 8) | i128::from(b);
                    }
                    s.push_str(&format!(" ({x})"));
                }
                s
            }
            Value::Bool(b) => if *b { "True" } else { "False" }.into(),
            Value::Bytes(b) => hex(b),
            Value::Nullptr => "nullptr".into(),
            Value::PtrMarker(b) => hex(&[*b]),
            Value::Capability(c) => c.clone(),
            Value::Struct(_) => "{...}".into(),
        }
    }
}

/// A field name's value: one, or several when the name repeats (array
/// elements, split NULL runs), accumulated as analyze-migration.py does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry<'a> {
    One(Value<'a>),
    List(Vec<Value<'a>>),
}

/// The fields of a VMSD in stream order, subsections included by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields<'a> {
    pub entries: Vec<(String, Entry<'a>)>,
}

impl<'a> Fields<'a> {
    fn position(&self, name: &str) -> Option<usize> {
        // Repeats are usually of the latest name: look there first.
        match self.entries.last() {
            Some((n, _)) if n == name => Some(self.entries.len() - 1),
            _ => self.entries.iter().position(|(n, _)| n == name),
        }
    }

    /// Add a value under `name`, turning repeats into a list.
    pub fn accumulate(&mut self, name: &str, v: Value<'a>) {
        match self.position(name) {
            None => self.entries.push((name.to_owned(), Entry::One(v))),
            Some(i) => {
                let e = &mut self.entries[i].1;
                match e {
                    Entry::List(l) => l.push(v),
                    Entry::One(_) => {
                        let Entry::One(old) = std::mem::replace(e, Entry::List(Vec::new())) else {
                            unreachable!("matched One above")
                        };
                        *e = Entry::List(vec![old, v]);
                    }
                }
            }
        }
    }

    /// Set `name` to `v`, replacing in place (subsections).
    pub fn replace(&mut self, name: &str, v: Value<'a>) {
        match self.position(name) {
            None => self.entries.push((name.to_owned(), Entry::One(v))),
            Some(i) => self.entries[i].1 = Entry::One(v),
        }
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&Entry<'a>> {
        self.position(name).map(|i| &self.entries[i].1)
    }
}

/// One decoded leaf for the annotated hex dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// Section id this belongs to (`None` for the file header, commands, EOF).
    pub section: Option<u32>,
    pub offset: usize,
    pub len: usize,
    pub path: String,
    pub value: String,
}

/// Shared decoding state: the reader, the current path, the value budget
/// and the optional annotation sink.
pub struct Decoder<'a, 'r> {
    pub r: &'r mut Reader<'a>,
    pub path: String,
    pub values_left: usize,
    pub values_limit: usize,
    pub section: Option<u32>,
    pub annotations: Option<&'r mut Vec<Annotation>>,
}

const SIGNED: &[&str] = &[
    "int8",
    "int16",
    "int32",
    "int32 equal",
    "int32 le",
    "int64",
    "int64 equal",
    "uint8 equal",
    "uint16 equal",
];
const UNSIGNED: &[&str] = &["uint8", "uint16", "uint32", "uint32 equal", "uint64"];

impl<'a> Decoder<'a, '_> {
    /// Error helper: a `BadValue` at `offset` on the current path.
    pub fn bad(&self, offset: usize, message: impl Into<String>) -> StreamError {
        StreamError::BadValue {
            offset,
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// Record an annotation (only when a sink is present).
    pub fn note(&mut self, offset: usize, len: usize, value: impl FnOnce() -> String) {
        if let Some(a) = self.annotations.as_deref_mut() {
            a.push(Annotation {
                section: self.section,
                offset,
                len,
                path: self.path.clone(),
                value: value(),
            });
        }
    }

    fn spend(&mut self) -> Result<()> {
        if self.values_left == 0 {
            return Err(StreamError::TooManyValues {
                offset: self.r.pos(),
                path: self.path.clone(),
                limit: self.values_limit,
            });
        }
        self.values_left -= 1;
        Ok(())
    }

    /// Decode one VMSD (fields, then the subsections the vmdesc lists).
    pub fn vmsd(&mut self, desc: &VmsdDesc, depth: usize) -> Result<Fields<'a>> {
        if depth > MAX_DEPTH {
            return Err(StreamError::TooDeep {
                offset: self.r.pos(),
                path: self.path.clone(),
                limit: MAX_DEPTH,
            });
        }
        let Some(fields) = desc.fields.as_deref() else {
            return Err(StreamError::Vmdesc {
                offset: self.r.pos(),
                path: self.path.clone(),
                message: "no fields in struct".into(),
            });
        };
        // Names that occur more than once get an index in paths: the
        // occurrence number, i.e. how many values the name already has.
        let indexed = desc.indexed();
        let mut out = Fields::default();
        // Per name: element entries merged with the marker before them.
        let mut paired: Vec<(&str, usize)> = Vec::new();
        for (f, &indexed) in fields.iter().zip(indexed) {
            // The script unfolds `array_len` into that many copies
            // (array_len 0 still gives one).
            let n = f.array_len.unwrap_or(1).max(1);
            for _ in 0..n {
                self.spend()?;
                let base = self.path.len();
                self.path.push('.');
                self.path.push_str(&f.name);
                if indexed {
                    let (count, last) = match out.get(&f.name) {
                        None => (0, None),
                        Some(Entry::One(v)) => (1, Some(v)),
                        Some(Entry::List(l)) => (l.len(), l.last()),
                    };
                    // AUTO_ALLOC arrays (11.1): a valid slot is a 0x31 marker
                    // entry then its element entry, both of one element
                    // index, so elements are numbered sq[0], sq[1], ...
                    // rather than by vmdesc entry.
                    let pair = f.ty != "ptr-marker"
                        && matches!(last, Some(Value::PtrMarker(VMS_MARKER_PTR_VALID)));
                    let slot = paired.iter_mut().find(|(n, _)| *n == f.name.as_str());
                    let merged = slot.as_ref().map_or(0, |(_, m)| *m);
                    let k = count - merged - usize::from(pair);
                    if pair {
                        match slot {
                            Some((_, m)) => *m += 1,
                            None => paired.push((f.name.as_str(), 1)),
                        }
                    }
                    push_index(&mut self.path, k);
                }
                let v = self.field(f, depth);
                self.path.truncate(base);
                if indexed {
                    out.accumulate(&f.name, v?);
                } else {
                    // The name is unique among the fields: no search.
                    out.entries.push((f.name.clone(), Entry::One(v?)));
                }
            }
        }
        for sub in &desc.subsections {
            let base = self.path.len();
            let start = self.r.pos();
            let want = sub.vmsd_name.as_deref().unwrap_or("");
            let mark = self.r.u8(&format!("{}/{want}", self.path))?;
            if mark != QEMU_VM_SUBSECTION {
                return Err(StreamError::Subsection {
                    offset: start,
                    path: self.path.clone(),
                    message: format!("expected subsection {want:?}, found byte {mark:#04x}"),
                });
            }
            let name = self.r.counted_string(&self.path)?;
            if !want.is_empty() && name != want {
                return Err(StreamError::Subsection {
                    offset: start,
                    path: self.path.clone(),
                    message: format!("expected subsection {want:?}, found {name:?}"),
                });
            }
            let version = self.r.be32(&self.path)?;
            self.path.push('.');
            self.path.push_str(&name);
            let hlen = self.r.pos() - start;
            self.note(start, hlen, || {
                format!("subsection {name:?} version {version}")
            });
            let v = self.vmsd(sub, depth + 1);
            self.path.truncate(base);
            out.replace(&name, Value::Struct(v?));
        }
        Ok(out)
    }

    fn size(&self, f: &FieldDesc) -> Result<u64> {
        f.size.ok_or_else(|| StreamError::Vmdesc {
            offset: self.r.pos(),
            path: self.path.clone(),
            message: format!("field of type {:?} has no size", f.ty),
        })
    }

    /// Decode one element of field `f`.
    pub fn field(&mut self, f: &FieldDesc, depth: usize) -> Result<Value<'a>> {
        let start = self.r.pos();
        let ty = f.ty.as_str();
        if let (Some(nested), "struct" | "vstruct") = (f.nested.as_deref(), ty) {
            return Ok(Value::Struct(self.vmsd(nested, depth + 1)?));
        }
        if ty == "struct" {
            return Err(StreamError::Vmdesc {
                offset: start,
                path: self.path.clone(),
                message: "struct field without a \"struct\" description".into(),
            });
        }
        if ty == "capability" {
            let n = self.r.u8(&self.path)?;
            let s = self.r.take(u64::from(n), &self.path)?;
            let s = String::from_utf8_lossy(s).into_owned();
            self.note(start, 1 + usize::from(n), || format!("{s:?}"));
            return Ok(Value::Capability(s));
        }
        let size = self.size(f)?;
        let bytes = self.r.take(size, &self.path)?;
        let v = if let Some(signed) = SIGNED
            .contains(&ty)
            .then_some(true)
            .or_else(|| UNSIGNED.contains(&ty).then_some(false))
        {
            if bytes.is_empty() || bytes.len() > 16 {
                return Err(self.bad(start, format!("{ty} of {size} bytes")));
            }
            Value::Int { bytes, signed }
        } else {
            match ty {
                "bool" => match bytes.first() {
                    Some(&b) => Value::Bool(b != 0),
                    None => return Err(self.bad(start, "bool of 0 bytes")),
                },
                "nullptr" => {
                    if bytes != [VMS_NULLPTR_MARKER] {
                        return Err(self.bad(
                            start,
                            format!("expected NULL marker 30, found {}", hex(bytes)),
                        ));
                    }
                    Value::Nullptr
                }
                "ptr-marker" => match bytes {
                    [b] => Value::PtrMarker(*b),
                    _ => {
                        return Err(self.bad(
                            start,
                            format!("ptr-marker of {} bytes, expected 1", bytes.len()),
                        ));
                    }
                },
                _ => Value::Bytes(bytes),
            }
        };
        if self.annotations.is_some() {
            let shown = v.render();
            self.note(start, bytes.len(), || shown);
        }
        Ok(v)
    }
}

/// Append `[k]` without going through `fmt`.
fn push_index(path: &mut String, k: usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut k = k;
    loop {
        i -= 1;
        buf[i] = b'0' + (k % 10) as u8;
        k /= 10;
        if k == 0 {
            break;
        }
    }
    path.push('[');
    for &d in &buf[i..] {
        path.push(char::from(d));
    }
    path.push(']');
}

/// Bytes as `"0a 0b 0c"` (the script's rendering of raw fields).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = Vec::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(b' ');
        }
        s.push(DIGITS[usize::from(b >> 4)]);
        s.push(DIGITS[usize::from(b & 15)]);
    }
    String::from_utf8(s).unwrap_or_default()
}
