//! vmdesc -> [`Vmsd`] + C layout + destination, for one dialect.
//!
//! How the vmdesc (spec section 6) maps onto a description:
//! - ints by size and signedness, `bool`; the `*equal` and `int32 le` infos
//!   become plain ints of the same width (see [`scalar`]);
//! - `unused_buffer` stays `unused_buffer`; every other type (`buffer`,
//!   `timer`, `pci config`, `tmp`, `qtailq`, ...) is a raw `buffer` of `size`
//!   bytes: their bytes travel unchanged, and their C callbacks are not
//!   modelled;
//! - `struct`/`vstruct` become a nested VMSD (`VMS_STRUCT`/`VMS_VSTRUCT`),
//!   `array_len` becomes `VMS_ARRAY`, and the 10.0 `index` entries of a
//!   non-compressible array are merged back into one `VMS_ARRAY` when every
//!   element is described alike;
//! - a run of entries of one name containing marker entries (`nullptr` in
//!   10.x, `ptr-marker` in 11.1) is an array of pointers:
//!   - run-compressed (entries with `array_len`, or two element entries in a
//!     row): `VMS_ARRAY | VMS_ARRAY_OF_POINTER | VMS_STRUCT`, whose slots
//!     point to zeroed objects where the source's were non-NULL (the device
//!     allocated them);
//!   - in a dialect with automatic allocation, one marker entry per slot,
//!     each valid slot's marker followed by its element entry, no
//!     `array_len` (11.1 disables run compression for AUTO_ALLOC arrays):
//!     `VMS_ARRAY_OF_POINTER_AUTO_ALLOC` over `num` = the slot count, with
//!     `size` the element size. The vmdesc alone cannot tell this from a
//!     non-dynamic array of alternating NULL and valid slots
//!     (`[NULL, s, NULL, s]`); such runs are read as AUTO_ALLOC, the only
//!     kind real 11.1.3 devices give;
//! - subsections become `Vmsd::subsections`, always needed (the vmdesc lists
//!   only the subsections that were sent), with the vmdesc's names and
//!   versions. Their fields live in the same object as their parent's.
//!
//! Layout: fields are placed in order at their natural alignment (ints at
//! their width, pointers at 8, structs at their widest member), as a C
//! compiler would; subsection fields follow their parent's in the same object.
use super::{Dest, ReencodeError};
use crate::stream::vmdesc::{FieldDesc, VmsdDesc};
use crate::stream::vmsd::MAX_DEPTH;
use vmstate_reference::{
    Addr, Dialect, Dynamic, Field, Flag, Heap, HeapError, Info, POINTER_SIZE, PointerStride, Test,
    Vmsd,
};

/// A rebuilt description and a destination prepared for a load.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The device's VMSD (the dialect's flag bits); its name is the
    /// vmdesc's `vmsd_name`, or the section idstr for old-style sections.
    pub vmsd: Vmsd,
    /// The version to load with (the section header's).
    pub version_id: i32,
    pub heap: Heap,
    /// The zeroed device object, with its pointer slots set for `dest`.
    pub opaque: Addr,
}

/// Builds the description of one device section from its vmdesc entry in
/// dialect `d` and prepares the destination object as `dest` says.
/// `offset` (the payload start) is what errors point at.
pub fn rebuild(
    d: Dialect,
    dest: Dest,
    desc: &VmsdDesc,
    idstr: &str,
    version_id: u32,
    offset: usize,
) -> Result<Destination, ReencodeError> {
    let name = desc.vmsd_name.clone().unwrap_or_else(|| idstr.to_owned());
    let version = i32::try_from(version_id).map_err(|_| ReencodeError::Rebuild {
        offset,
        path: name.clone(),
        message: format!("section version {version_id} does not fit an int"),
    })?;
    let object = Builder { offset, d }.object(desc, &name, version, &name, 0)?;
    let mut heap = Heap::default();
    let prepare_err = |message: String| ReencodeError::Prepare {
        offset,
        path: name.clone(),
        message,
    };
    let opaque =
        alloc_zeroed(&mut heap, object.layout.size).map_err(|e| prepare_err(e.to_string()))?;
    prepare(&mut heap, opaque, &object.layout, dest, &mut 0).map_err(prepare_err)?;
    Ok(Destination {
        vmsd: object.vmsd,
        version_id: version,
        heap,
        opaque,
    })
}

/// What the destination object needs before a load.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    size: u64,
    align: u64,
    inits: Vec<Init>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Init {
    /// `count` inline structs of `stride` bytes at `offset` that need
    /// preparing themselves.
    Inline {
        offset: u64,
        stride: u64,
        count: u64,
        layout: Box<Layout>,
    },
    /// A pointer table at `offset`: `source[i]` says whether the source's
    /// slot `i` was non-NULL. Slot `i` points to a fresh zeroed object of
    /// `pointee` when the source's did and the destination has one: always
    /// without automatic allocation, only for [`Dest::Live`] with it.
    Pointers {
        offset: u64,
        source: Vec<bool>,
        auto_alloc: bool,
        pointee: Box<Layout>,
    },
}

/// Slots and inline structs [`prepare`] may visit: keeps a hostile vmdesc
/// (a huge `array_len` of structs holding pointer tables) finite.
const MAX_PREPARE_STEPS: u64 = 1 << 22;

/// A zeroed object of `size` bytes, refused before the host allocates it
/// when it would not fit the heap's limit.
fn alloc_zeroed(heap: &mut Heap, size: u64) -> Result<Addr, HeapError> {
    let room = heap.limits.max_live_bytes.saturating_sub(heap.live_bytes());
    if size > room {
        return Err(HeapError::OutOfMemory { size });
    }
    heap.alloc_prepared(vec![0; size as usize])
}

/// Writes what `layout` asks for into the zeroed object at `base`.
fn prepare(
    heap: &mut Heap,
    base: Addr,
    layout: &Layout,
    dest: Dest,
    steps: &mut u64,
) -> Result<(), String> {
    fn step(steps: &mut u64, n: u64) -> Result<(), String> {
        *steps = steps.saturating_add(n);
        if *steps > MAX_PREPARE_STEPS {
            return Err(format!("more than {MAX_PREPARE_STEPS} slots to prepare"));
        }
        Ok(())
    }
    for init in &layout.inits {
        match init {
            Init::Inline {
                offset,
                stride,
                count,
                layout,
            } => {
                step(steps, *count)?;
                for k in 0..*count {
                    prepare(heap, base + offset + stride * k, layout, dest, steps)?;
                }
            }
            Init::Pointers {
                offset,
                source,
                auto_alloc,
                pointee,
            } => {
                if *auto_alloc && !dest.auto_alloc_slots_set() {
                    continue;
                }
                step(steps, source.len() as u64)?;
                for (i, _) in source.iter().enumerate().filter(|(_, p)| **p) {
                    let obj = alloc_zeroed(heap, pointee.size).map_err(|e| e.to_string())?;
                    prepare(heap, obj, pointee, dest, steps)?;
                    let slot = base + offset + POINTER_SIZE * i as u64;
                    heap.write_ptr(slot, obj).map_err(|e| e.to_string())?;
                }
            }
        }
    }
    Ok(())
}

/// Places members in one object, C-like.
struct Cursor {
    at: u64,
    align: u64,
    inits: Vec<Init>,
}

impl Cursor {
    fn new() -> Cursor {
        Cursor {
            at: 0,
            align: 1,
            inits: Vec::new(),
        }
    }

    fn place(&mut self, size: u64, align: u64) -> u64 {
        let offset = self.at.next_multiple_of(align);
        self.at = offset + size;
        self.align = self.align.max(align);
        offset
    }

    fn finish(self) -> Layout {
        Layout {
            size: self.at.next_multiple_of(self.align),
            align: self.align,
            inits: self.inits,
        }
    }
}

/// A described object: its VMSD and its memory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Object {
    vmsd: Vmsd,
    layout: Layout,
}

/// One element of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Elem {
    Scalar { info: Info, size: u64 },
    Struct { object: Object, vstruct: bool },
}

impl Elem {
    fn size(&self) -> u64 {
        match self {
            Elem::Scalar { size, .. } => *size,
            Elem::Struct { object, .. } => object.layout.size,
        }
    }

    fn align(&self) -> u64 {
        match self {
            Elem::Scalar { info, .. } => info.scalar_width().unwrap_or(1),
            Elem::Struct { object, .. } => object.layout.align,
        }
    }
}

/// Turns a vmdesc type into a scalar `Info` and its size in bytes.
fn scalar(ty: &str, size: Option<u64>) -> Result<(Info, u64), String> {
    let info = match ty {
        "bool" => Info::Bool,
        "int8" => Info::Int8,
        "int16" => Info::Int16,
        "int32" => Info::Int32,
        "int64" => Info::Int64,
        "uint8" => Info::Uint8,
        "uint16" => Info::Uint16,
        "uint32" => Info::Uint32,
        "uint64" => Info::Uint64,
        // These compare the incoming value with the destination's memory
        // (get_int32_equal, get_uint8_equal, ..., get_int32_le). The vmdesc
        // carries no local value to compare with, so they are decoded as
        // plain ints of the same width: the bytes are the same either way.
        "int32 equal" | "int32 le" => Info::Int32,
        "uint8 equal" => Info::Uint8,
        "uint16 equal" => Info::Uint16,
        "uint32 equal" => Info::Uint32,
        // vmstate_info_uint64_equal is named "int64 equal".
        "int64 equal" => Info::Uint64,
        "unused_buffer" => Info::UnusedBuffer,
        "nullptr" | "ptr-marker" => {
            return Err(format!("{ty} entry outside an array of pointers"));
        }
        "capability" => return Err("capability is only known in the configuration".into()),
        "struct" | "vstruct" => return Err(format!("{ty} without a \"struct\" description")),
        // buffer and every type with its own callbacks (timer, pci config,
        // tmp, qtailq, ...): raw bytes of the size the vmdesc gives.
        _ => Info::Buffer,
    };
    let size = size.ok_or_else(|| format!("field of type {ty:?} has no size"))?;
    match info.scalar_width() {
        Some(w) if w != size => Err(format!("{ty} of {size} bytes, expected {w}")),
        _ => Ok((info, size)),
    }
}

struct Builder {
    /// Payload start: where errors of the description point.
    offset: usize,
    d: Dialect,
}

/// A marker entry: `nullptr` (10.x) or `ptr-marker` (11.1).
fn is_marker(e: &FieldDesc) -> bool {
    matches!(e.ty.as_str(), "nullptr" | "ptr-marker")
}

impl Builder {
    fn err(&self, path: &str, message: impl Into<String>) -> ReencodeError {
        ReencodeError::Rebuild {
            offset: self.offset,
            path: path.to_owned(),
            message: message.into(),
        }
    }

    fn bit(&self, flag: Flag) -> u32 {
        self.d.bit(flag).unwrap_or(0)
    }

    /// A VMSD and the object it describes.
    fn object(
        &self,
        desc: &VmsdDesc,
        name: &str,
        version: i32,
        path: &str,
        depth: usize,
    ) -> Result<Object, ReencodeError> {
        let mut cursor = Cursor::new();
        let vmsd = self.vmsd(desc, name, version, path, depth, &mut cursor)?;
        Ok(Object {
            vmsd,
            layout: cursor.finish(),
        })
    }

    fn version(&self, v: Option<i64>, path: &str) -> Result<i32, ReencodeError> {
        let v = v.ok_or_else(|| self.err(path, "no version"))?;
        i32::try_from(v).map_err(|_| self.err(path, format!("version {v} does not fit an int")))
    }

    /// One VMSD whose members are placed by `cursor` (subsections share it).
    fn vmsd(
        &self,
        desc: &VmsdDesc,
        name: &str,
        version: i32,
        path: &str,
        depth: usize,
        cursor: &mut Cursor,
    ) -> Result<Vmsd, ReencodeError> {
        if depth > MAX_DEPTH {
            return Err(self.err(path, format!("nesting deeper than {MAX_DEPTH}")));
        }
        let entries = desc
            .fields
            .as_deref()
            .ok_or_else(|| self.err(path, "no fields"))?;
        let fields = self.fields(entries, path, depth, cursor)?;
        let mut subsections = Vec::with_capacity(desc.subsections.len());
        for sub in &desc.subsections {
            let sname = sub
                .vmsd_name
                .as_deref()
                .ok_or_else(|| self.err(path, "subsection without vmsd_name"))?;
            let spath = match sname.strip_prefix(name) {
                Some(rest) if rest.starts_with('/') => format!("{path}{rest}"),
                _ => format!("{path}/{sname}"),
            };
            let sversion = self.version(sub.version, &spath)?;
            let mut s = self.vmsd(sub, sname, sversion, &spath, depth + 1, cursor)?;
            // The vmdesc lists only the subsections that were sent.
            s.needed = Some(Test::Const(true));
            subsections.push(s);
        }
        Ok(Vmsd {
            name: name.to_owned(),
            version_id: version,
            minimum_version_id: 0,
            fields,
            terminator: self.d.end(),
            subsections,
            needed: None,
        })
    }

    /// The fields of one VMSD, grouping entries back into arrays.
    fn fields(
        &self,
        entries: &[FieldDesc],
        path: &str,
        depth: usize,
        cursor: &mut Cursor,
    ) -> Result<Vec<Field>, ReencodeError> {
        let mut out = Vec::with_capacity(entries.len());
        let mut i = 0;
        while i < entries.len() {
            let name = entries[i].name.as_str();
            let run = entries[i..].iter().take_while(|e| e.name == name).count();
            let run = &entries[i..i + run];
            let fpath = format!("{path}.{name}");
            if run.iter().any(is_marker) {
                out.push(self.pointer_array(run, &fpath, depth, cursor)?);
                i += run.len();
                continue;
            }
            let merged = self.index_run(run, &fpath, depth)?;
            let (elem, count, array, used) = match merged {
                Some((elem, n)) => (elem, n, true, n as usize),
                None => {
                    let e = &run[0];
                    let elem = self.elem(e, &fpath, depth)?;
                    let n = e.array_len.unwrap_or(1).max(1);
                    (elem, n, e.array_len.is_some(), 1)
                }
            };
            out.push(self.inline_field(name, elem, count, array, &fpath, cursor)?);
            i += used;
        }
        Ok(out)
    }

    /// QEMU 10.0 writes a non-compressible array as entries `index` 0, 1,
    /// ..., n-2 and a last one without `index` (`max_elems` is 1 there).
    /// When every element is described alike, they are one `VMS_ARRAY`.
    fn index_run(
        &self,
        run: &[FieldDesc],
        path: &str,
        depth: usize,
    ) -> Result<Option<(Elem, u64)>, ReencodeError> {
        let mut n = 0;
        for (k, e) in run.iter().enumerate() {
            if e.array_len.is_some() {
                return Ok(None);
            }
            match e.index {
                Some(ix) if ix == k as u64 => {}
                None if k > 0 => {
                    n = k + 1;
                    break;
                }
                _ => return Ok(None),
            }
        }
        if n < 2 {
            return Ok(None);
        }
        let first = self.elem(&run[0], path, depth)?;
        for e in &run[1..n] {
            if self.elem(e, path, depth)? != first {
                return Ok(None); // described differently: separate fields
            }
        }
        Ok(Some((first, n as u64)))
    }

    /// One element of an entry.
    fn elem(&self, e: &FieldDesc, path: &str, depth: usize) -> Result<Elem, ReencodeError> {
        if let (Some(nested), "struct" | "vstruct") = (e.nested.as_deref(), e.ty.as_str()) {
            let name = nested
                .vmsd_name
                .as_deref()
                .ok_or_else(|| self.err(path, "struct without vmsd_name"))?;
            let version = self.version(nested.version, path)?;
            let object = self.object(nested, name, version, path, depth + 1)?;
            return Ok(Elem::Struct {
                object,
                vstruct: e.ty == "vstruct",
            });
        }
        let (info, size) = scalar(&e.ty, e.size).map_err(|m| self.err(path, m))?;
        Ok(Elem::Scalar { info, size })
    }

    /// A field stored in the object: `count` elements side by side.
    fn inline_field(
        &self,
        name: &str,
        elem: Elem,
        count: u64,
        array: bool,
        path: &str,
        cursor: &mut Cursor,
    ) -> Result<Field, ReencodeError> {
        let size = elem.size();
        let total = size
            .checked_mul(count)
            .filter(|&t| t <= u64::from(u32::MAX))
            .ok_or_else(|| self.err(path, format!("{count} elements of {size} bytes")))?;
        let num = i32::try_from(count).map_err(|_| self.err(path, "too many elements"))?;
        let offset = cursor.place(total, elem.align());
        let mut flags = if array { self.bit(Flag::Array) } else { 0 };
        let mut field = Field::new(name, offset, 0);
        field.num = if array { num } else { 0 };
        field.size = size;
        match elem {
            Elem::Scalar { info, .. } => {
                if !array {
                    // VMSTATE_UINT32 & co. are VMS_SINGLE; VMSTATE_BUFFER and
                    // VMSTATE_UNUSED are VMS_BUFFER.
                    flags |= match info.scalar_width() {
                        Some(_) => self.bit(Flag::Single),
                        None => self.bit(Flag::Buffer),
                    };
                }
                field.info = Some(info);
            }
            Elem::Struct { object, vstruct } => {
                if vstruct {
                    flags |= self.bit(Flag::Vstruct);
                    field.struct_version_id = object.vmsd.version_id;
                } else {
                    flags |= self.bit(Flag::Struct);
                }
                if !object.layout.inits.is_empty() {
                    cursor.inits.push(Init::Inline {
                        offset,
                        stride: size,
                        count,
                        layout: Box::new(object.layout),
                    });
                }
                field.vmsd = Some(Box::new(object.vmsd));
            }
        }
        field.flags = flags;
        Ok(field)
    }

    /// A run of entries of one name with marker entries: an array of
    /// pointers. Without automatic allocation
    /// (`VMSTATE_ARRAY_OF_POINTER_TO_STRUCT`), a NULL slot is written as a
    /// marker and a non-NULL one as its element alone.
    ///
    /// The vmdesc splits such an array into runs of NULL and non-NULL slots,
    /// each with `array_len` when longer than one, with a quirk (spec section
    /// 6): the run detection starts as "previous slot non-NULL", so when slot
    /// 0 is non-NULL its entry claims the whole array (`array_len` = n) and
    /// the entries after it describe slots 1..n. Arrays starting with NULL
    /// are described exactly.
    fn pointer_array(
        &self,
        run: &[FieldDesc],
        path: &str,
        depth: usize,
        cursor: &mut Cursor,
    ) -> Result<Field, ReencodeError> {
        let name = run[0].name.as_str();
        let auto_alloc = self.d.facts().dynamic == Dynamic::AutoAllocFlag
            && is_marker(&run[0])
            && run.iter().all(|e| e.array_len.is_none())
            && run.windows(2).all(|w| is_marker(&w[0]) || is_marker(&w[1]));
        let mut source = Vec::new();
        let mut elem: Option<Elem> = None;
        let mut claimed = None;
        for (k, e) in run.iter().enumerate() {
            let null = is_marker(e);
            let n = e.array_len.unwrap_or(1).max(1);
            if null {
                if e.size != Some(1) {
                    return Err(self.err(path, format!("{} of size {:?}", e.ty, e.size)));
                }
            } else {
                let this = self.elem(e, path, depth)?;
                match &elem {
                    None => elem = Some(this),
                    Some(first) if *first != this => {
                        return Err(self.err(
                            path,
                            format!("element entry {k} is described unlike the first"),
                        ));
                    }
                    Some(_) => {}
                }
            }
            if auto_alloc {
                // One marker per slot; the element entry after a marker makes
                // that slot valid.
                if null {
                    source.push(false);
                } else if let Some(last) = source.last_mut() {
                    *last = true;
                }
            } else if k == 0 && !null && e.array_len.is_some() && run.len() > 1 {
                // The quirk: this entry stands for slot 0 and names the length.
                claimed = Some(n);
                source.push(true);
            } else {
                let n = usize::try_from(n)
                    .ok()
                    .filter(|&n| source.len().saturating_add(n) <= 1 << 20)
                    .ok_or_else(|| self.err(path, format!("array of {n} pointers")))?;
                source.resize(source.len() + n, !null);
            }
        }
        if let Some(n) = claimed
            && n != source.len() as u64
        {
            return Err(self.err(
                path,
                format!(
                    "first run claims {n} slots, the runs describe {}",
                    source.len()
                ),
            ));
        }
        // Non-struct pointees are wrapped in a struct: with a plain info the
        // codec would hand `sizeof(T *)` to a buffer's callback.
        let empty = |fields: Vec<Field>, layout: Layout| Object {
            vmsd: Vmsd {
                name: format!("(reencode pointee) {name}"),
                version_id: 0,
                minimum_version_id: 0,
                fields,
                terminator: self.d.end(),
                subsections: Vec::new(),
                needed: None,
            },
            layout,
        };
        let object = match elem {
            Some(Elem::Struct {
                object,
                vstruct: false,
            }) => object,
            Some(Elem::Struct { vstruct: true, .. }) => {
                return Err(self.err(path, "array of pointers to vstruct"));
            }
            Some(e @ Elem::Scalar { .. }) => {
                let mut c = Cursor::new();
                let field = self.inline_field(name, e, 1, false, path, &mut c)?;
                empty(vec![field], c.finish())
            }
            // Only NULL slots: the pointee is never visited.
            None => empty(Vec::new(), Cursor::new().finish()),
        };
        let n = source.len() as u64;
        let num = i32::try_from(n).map_err(|_| self.err(path, "too many pointers"))?;
        let offset = cursor.place(POINTER_SIZE * n, POINTER_SIZE);
        let mut flags =
            self.bit(Flag::Array) | self.bit(Flag::ArrayOfPointer) | self.bit(Flag::Struct);
        let size = if auto_alloc {
            // g_malloc0(field->size) per valid slot: the element's size.
            flags |= self.bit(Flag::ArrayOfPointerAutoAlloc);
            object.layout.size.max(1)
        } else if self.d.facts().pointer_stride == PointerStride::FieldSize {
            POINTER_SIZE // sizeof(T *), as the 10.x macros set it
        } else {
            0 // vmstate_check: no size without automatic allocation
        };
        let mut field = Field::new(name, offset, flags);
        field.num = num;
        field.size = size;
        field.vmsd = Some(Box::new(object.vmsd));
        cursor.inits.push(Init::Pointers {
            offset,
            source,
            auto_alloc,
            pointee: Box::new(object.layout),
        });
        Ok(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reencode::drive::{Comparison, reencode_payload};

    fn desc(json: &str) -> VmsdDesc {
        serde_json::from_str(json).expect("vmdesc JSON")
    }

    /// Sizes from a hostile vmdesc are refused before anything is allocated.
    #[test]
    fn huge_sizes_are_typed_errors() {
        for (size, rebuild) in [(1u64 << 40, true), (300 << 20, false)] {
            let d = desc(&format!(
                r#"{{"vmsd_name": "p", "version": 1, "fields": [
                    {{"name": "b", "type": "buffer", "size": {size}}}]}}"#
            ));
            let err =
                reencode_payload(Dialect::Qemu10, &[0x7e], 0..0, "p", 1, &d).expect_err("too big");
            assert_eq!(
                matches!(err, ReencodeError::Rebuild { .. }),
                rebuild,
                "{err}"
            );
            assert!(err.path().starts_with('p'), "{err}");
        }
    }

    /// `[s0, NULL, s2]`: struct `array_len 3`, nullptr, struct (spec 6).
    #[test]
    fn pointer_array_quirk_first_slot_non_null() {
        let s = r#"{"vmsd_name": "s", "version": 1, "fields": [{"name": "a", "type": "uint16", "size": 2}]}"#;
        let d = desc(&format!(
            r#"{{"vmsd_name": "p", "version": 1, "fields": [
                {{"name": "arr", "array_len": 3, "type": "struct", "struct": {s}, "size": 2}},
                {{"name": "arr", "type": "nullptr", "size": 1}},
                {{"name": "arr", "type": "struct", "struct": {s}, "size": 2}}]}}"#
        ));
        let data = [0x11, 0x22, 0x30, 0x33, 0x44, 0x7e];
        let got = reencode_payload(Dialect::Qemu10, &data, 0..5, "p", 1, &d).expect("re-encodes");
        assert_eq!(got, Comparison::Identical);
        // A NULL where the vmdesc says struct: the loader finds 0x30 data.
        let bad = [0x11, 0x22, 0x31, 0x33, 0x44, 0x7e];
        let err = reencode_payload(Dialect::Qemu10, &bad, 0..5, "p", 1, &d).expect_err("marker");
        assert_eq!(err.path(), "p.arr[1]");
        assert_eq!(err.offset(), 2);
    }

    #[test]
    fn pointer_array_runs_must_add_up() {
        let s = r#"{"vmsd_name": "s", "version": 1, "fields": []}"#;
        let d = desc(&format!(
            r#"{{"vmsd_name": "p", "version": 1, "fields": [
                {{"name": "arr", "array_len": 4, "type": "struct", "struct": {s}, "size": 0}},
                {{"name": "arr", "type": "nullptr", "size": 1}}]}}"#
        ));
        let err = reencode_payload(Dialect::Qemu10, &[0x30, 0x7e], 0..1, "p", 1, &d)
            .expect_err("claims 4");
        assert!(matches!(err, ReencodeError::Rebuild { .. }), "{err}");
        assert_eq!(err.path(), "p.arr");
    }

    #[test]
    fn scalar_pointees_and_index_runs() {
        let d = desc(
            r#"{"vmsd_name": "p", "version": 2, "fields": [
                {"name": "t", "type": "nullptr", "size": 1},
                {"name": "t", "array_len": 2, "type": "timer", "size": 8},
                {"name": "x", "index": 0, "type": "uint8", "size": 1},
                {"name": "x", "index": 1, "type": "uint8", "size": 1},
                {"name": "x", "type": "uint8", "size": 1},
                {"name": "e", "type": "int32 equal", "size": 4}],
              "subsections": [{"vmsd_name": "p/sub", "version": 3, "fields": [
                {"name": "b", "type": "bool", "size": 1}]}]}"#,
        );
        let mut data = vec![0x30];
        data.extend(1..=16u8);
        data.extend([7, 8, 9, 0, 0, 0, 5]);
        data.extend([5, 5, b'p', b'/', b's', b'u', b'b', 0, 0, 0, 3, 1]);
        let end = data.len();
        data.push(0x7e);
        let got = reencode_payload(Dialect::Qemu10, &data, 0..end, "p", 2, &d).expect("re-encodes");
        assert_eq!(got, Comparison::Identical);
    }

    #[test]
    fn bool_normalisation_is_reported_with_its_path() {
        let d = desc(
            r#"{"vmsd_name": "p", "version": 1, "fields": [
                {"name": "a", "type": "uint8", "size": 1},
                {"name": "b", "type": "bool", "size": 1}]}"#,
        );
        let data = [1, 2, 0x7e];
        let got = reencode_payload(Dialect::Qemu10, &data, 0..2, "p", 1, &d).expect("loads");
        assert_eq!(
            got,
            Comparison::Differs {
                offset: 1,
                path: "p.b".into(),
                expected: Some(2),
                found: Some(1),
                consumed: 2,
            }
        );
    }
}
