//! Re-encoding real device sections (issue 5, item 3): from one device
//! section's vmdesc entry, build a [`Vmsd`] (qemu-10.x flag bits) and a C-like
//! memory layout, prepare a destination object on a [`Heap`] as qemu-10.x
//! requires, load the section payload with the optimized codec, save it again
//! and compare with the bytes of the real stream.
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
//! - a run of entries of one name containing `nullptr` entries is an array of
//!   pointers: one `VMS_ARRAY | VMS_ARRAY_OF_POINTER | VMS_STRUCT` field whose
//!   slots are NULL exactly where the vmdesc says `nullptr` and point to
//!   zeroed objects elsewhere (qemu-10.x loads into what the destination
//!   allocated);
//! - subsections become `Vmsd::subsections`, always needed (the vmdesc lists
//!   only the subsections that were sent), with the vmdesc's names and
//!   versions. Their fields live in the same object as their parent's.
//!
//! Layout: fields are placed in order at their natural alignment (ints at
//! their width, pointers at 8, structs at their widest member), as a C
//! compiler would; subsection fields follow their parent's in the same object.
use super::command::Record;
use super::error::StreamError;
use super::loadvm::parse;
use super::section::{Content, Section, SectionType};
use super::vmdesc::{FieldDesc, VmsdDesc};
use super::vmsd::MAX_DEPTH;
use crate::codec::Compiled;
use std::ops::Range;
use vmstate_reference::{
    Addr, Dialect, ErrorKind, Field, Flag, Heap, HeapError, Info, POINTER_SIZE, Test, Vmsd,
};

/// The dialect QEMU 10.0.2 streams are re-encoded with.
pub const DIALECT: Dialect = Dialect::Qemu10;

/// Why a section could not be re-encoded. Every variant carries an absolute
/// file offset and the path of the item concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReencodeError {
    /// The stream itself does not parse.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The vmdesc entry cannot be turned into a description; `offset` is the
    /// payload start of the section (the vmdesc carries no offsets).
    #[error("offset {offset:#x} ({path}): cannot rebuild the description: {message}")]
    Rebuild {
        offset: usize,
        path: String,
        message: String,
    },
    /// The destination object could not be prepared on the heap.
    #[error("offset {offset:#x} ({path}): preparing the destination: {message}")]
    Prepare {
        offset: usize,
        path: String,
        message: String,
    },
    /// The optimized codec refused the payload; `offset` is where it was
    /// reading.
    #[error("offset {offset:#x} ({path}): load: {kind}")]
    Load {
        offset: usize,
        path: String,
        kind: ErrorKind,
    },
    /// The optimized codec could not save the loaded object; `offset` is the
    /// file offset matching the output position.
    #[error("offset {offset:#x} ({path}): save: {kind}")]
    Save {
        offset: usize,
        path: String,
        kind: ErrorKind,
    },
}

impl ReencodeError {
    /// Absolute byte offset in the file.
    pub fn offset(&self) -> usize {
        match self {
            Self::Stream(e) => e.offset(),
            Self::Rebuild { offset, .. }
            | Self::Prepare { offset, .. }
            | Self::Load { offset, .. }
            | Self::Save { offset, .. } => *offset,
        }
    }

    /// Path of the field concerned, e.g. `s390_css.css[3]`.
    pub fn path(&self) -> &str {
        match self {
            Self::Stream(e) => e.path(),
            Self::Rebuild { path, .. }
            | Self::Prepare { path, .. }
            | Self::Load { path, .. }
            | Self::Save { path, .. } => path,
        }
    }
}

/// The result of one load + save round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// The load consumed exactly the payload and the save gave it back.
    Identical,
    /// The first byte where the saved bytes differ from the payload.
    Differs {
        /// Absolute file offset.
        offset: usize,
        /// The field the saved byte belongs to (reference model's spans).
        path: String,
        /// The payload byte (None: the payload ended first).
        expected: Option<u8>,
        /// The saved byte (None: the save ended first).
        found: Option<u8>,
        /// Bytes the load consumed (may differ from the payload length).
        consumed: usize,
    },
}

/// One device section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionReport {
    pub name: String,
    pub instance_id: u32,
    pub section_id: u32,
    /// Absolute offsets of the payload.
    pub payload: Range<usize>,
    pub result: Result<Comparison, ReencodeError>,
}

impl SectionReport {
    pub fn payload_len(&self) -> usize {
        self.payload.len()
    }

    pub fn identical(&self) -> bool {
        matches!(self.result, Ok(Comparison::Identical))
    }
}

/// A section that is not a device (VMSD) section and is not re-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    pub name: String,
    pub instance_id: u32,
    pub section_id: u32,
    pub section_type: SectionType,
    pub reason: &'static str,
}

/// Every section of a stream: device sections re-encoded, iterative ones
/// listed as excluded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReencodeReport {
    pub sections: Vec<SectionReport>,
    pub excluded: Vec<Excluded>,
}

impl ReencodeReport {
    pub fn identical_count(&self) -> usize {
        self.sections.iter().filter(|s| s.identical()).count()
    }

    pub fn all_identical(&self) -> bool {
        self.sections.iter().all(SectionReport::identical)
    }
}

/// Parses `data` and re-encodes every device section (sections inside
/// PACKAGED commands included). Fails only when the stream does not parse;
/// per-section failures are in the report.
pub fn reencode_stream(data: &[u8]) -> Result<ReencodeReport, ReencodeError> {
    let stream = parse(data)?;
    let desc = stream.vmdesc.as_ref().map(|v| &v.desc);
    let mut report = ReencodeReport::default();
    let mut pending: Vec<&[Record<'_>]> = vec![&stream.records];
    while let Some(records) = pending.pop() {
        for record in records {
            match record {
                Record::Section(s) => visit(data, s, desc, &mut report),
                Record::Command(c) => {
                    if let Some(p) = &c.packaged {
                        pending.push(&p.records);
                    }
                }
            }
        }
    }
    report.sections.sort_by_key(|s| s.payload.start);
    Ok(report)
}

fn visit(
    data: &[u8],
    s: &Section<'_>,
    desc: Option<&super::vmdesc::VmDesc>,
    report: &mut ReencodeReport,
) {
    let reason = match s.content {
        Content::Vmsd(_) => {
            let result = match desc.and_then(|d| d.device(&s.idstr, s.instance_id)) {
                Some(d) => reencode_payload(data, s.payload.clone(), &s.idstr, s.version_id, d),
                None => Err(ReencodeError::Rebuild {
                    offset: s.offset,
                    path: s.idstr.clone(),
                    message: format!("no vmdesc entry for instance {}", s.instance_id),
                }),
            };
            report.sections.push(SectionReport {
                name: s.idstr.clone(),
                instance_id: s.instance_id,
                section_id: s.section_id,
                payload: s.payload.clone(),
                result,
            });
            return;
        }
        Content::Ram => "RAM: iterative handler (ram_save_setup/iterate/complete), not a VMSD",
        Content::StorageAttributes(_) => {
            "s390 storage attributes: iterative handler (cmma_save_*), not a VMSD"
        }
    };
    report.excluded.push(Excluded {
        name: s.idstr.clone(),
        instance_id: s.instance_id,
        section_id: s.section_id,
        section_type: s.section_type,
        reason,
    });
}

/// A rebuilt description and a destination prepared for a qemu-10.x load.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The device's VMSD (qemu-10.x flag bits); its name is the vmdesc's
    /// `vmsd_name`, or the section idstr for old-style sections.
    pub vmsd: Vmsd,
    /// The version to load with (the section header's).
    pub version_id: i32,
    pub heap: Heap,
    /// The zeroed device object, with its pointer slots set as the vmdesc says.
    pub opaque: Addr,
}

/// Builds the description of one device section from its vmdesc entry and
/// prepares the destination object. `offset` (the payload start) is what
/// errors point at.
pub fn rebuild(
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
    let object = Builder { offset }.object(desc, &name, version, &name, 0)?;
    let mut heap = Heap::default();
    let prepare_err = |message: String| ReencodeError::Prepare {
        offset,
        path: name.clone(),
        message,
    };
    let opaque =
        alloc_zeroed(&mut heap, object.layout.size).map_err(|e| prepare_err(e.to_string()))?;
    prepare(&mut heap, opaque, &object.layout, &mut 0).map_err(prepare_err)?;
    Ok(Destination {
        vmsd: object.vmsd,
        version_id: version,
        heap,
        opaque,
    })
}

/// Re-encodes one device payload: `data[payload]` described by `desc`,
/// loaded with the section's `version_id`. The loader is given the rest of
/// the file (it peeks one byte past the payload for a subsection). `idstr`
/// names the root VMSD when the vmdesc has no `vmsd_name` (old-style
/// sections).
pub fn reencode_payload(
    data: &[u8],
    payload: Range<usize>,
    idstr: &str,
    version_id: u32,
    desc: &VmsdDesc,
) -> Result<Comparison, ReencodeError> {
    let start = payload.start;
    if payload.start > payload.end || payload.end > data.len() {
        return Err(ReencodeError::Rebuild {
            offset: start.min(data.len()),
            path: idstr.to_owned(),
            message: format!("payload {payload:?} outside a file of {} bytes", data.len()),
        });
    }
    let Destination {
        vmsd,
        version_id: version,
        mut heap,
        opaque,
    } = rebuild(desc, idstr, version_id, start)?;
    let name = vmsd.name.clone();

    let codec = Compiled::new(DIALECT, &vmsd);
    let consumed = codec
        .load(&mut heap, opaque, version, &data[start..])
        .map_err(|e| ReencodeError::Load {
            offset: start + e.offset,
            path: e.path,
            kind: e.kind,
        })?;
    let saved = codec.save(&heap, opaque).map_err(|e| ReencodeError::Save {
        offset: start + e.offset,
        path: e.path,
        kind: e.kind,
    })?;
    let original = &data[payload];
    if saved == original && consumed == original.len() {
        return Ok(Comparison::Identical);
    }
    let at = saved
        .iter()
        .zip(original)
        .position(|(a, b)| a != b)
        .unwrap_or(saved.len().min(original.len()));
    // Which field wrote that byte: the reference model's annotated save.
    let path = vmstate_reference::save_state_annotated(DIALECT, &vmsd, &heap, opaque)
        .ok()
        .and_then(|(_, spans)| {
            spans
                .iter()
                .rev()
                .find(|s| s.start <= at && (at < s.end || s.start == s.end))
                .or_else(|| spans.iter().rev().find(|s| s.end <= at))
                .map(|s| s.path.clone())
        })
        .unwrap_or_else(|| name.clone());
    Ok(Comparison::Differs {
        offset: start + at,
        path,
        expected: original.get(at).copied(),
        found: saved.get(at).copied(),
        consumed,
    })
}

/// What the destination object needs before a qemu-10.x load.
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
    /// A pointer table at `offset`: slot `i` points to a fresh zeroed object
    /// of `pointee` when `present[i]`, else stays NULL.
    Pointers {
        offset: u64,
        present: Vec<bool>,
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
fn prepare(heap: &mut Heap, base: Addr, layout: &Layout, steps: &mut u64) -> Result<(), String> {
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
                    prepare(heap, base + offset + stride * k, layout, steps)?;
                }
            }
            Init::Pointers {
                offset,
                present,
                pointee,
            } => {
                step(steps, present.len() as u64)?;
                for (i, _) in present.iter().enumerate().filter(|(_, p)| **p) {
                    let obj = alloc_zeroed(heap, pointee.size).map_err(|e| e.to_string())?;
                    prepare(heap, obj, pointee, steps)?;
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
        "nullptr" => return Err("nullptr entry outside an array of pointers".into()),
        "ptr-marker" => return Err("ptr-marker is not a qemu-10.x type".into()),
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
        DIALECT.bit(flag).unwrap_or(0)
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
            terminator: DIALECT.end(),
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
            if run.iter().any(|e| e.ty == "nullptr") {
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

    /// A run of entries of one name with `nullptr` entries: an array of
    /// pointers (`VMSTATE_ARRAY_OF_POINTER_TO_STRUCT`, qemu-10.x: `size` is
    /// `sizeof(T *)`, so a NULL slot is written as a `nullptr` marker).
    ///
    /// The vmdesc splits the array into runs of NULL and non-NULL slots, each
    /// with `array_len` when longer than one, with a quirk (spec section 6):
    /// the run detection starts as "previous slot non-NULL", so when slot 0
    /// is non-NULL its entry claims the whole array (`array_len` = n) and the
    /// entries after it describe slots 1..n. Arrays starting with NULL are
    /// described exactly.
    fn pointer_array(
        &self,
        run: &[FieldDesc],
        path: &str,
        depth: usize,
        cursor: &mut Cursor,
    ) -> Result<Field, ReencodeError> {
        let name = run[0].name.as_str();
        let mut present = Vec::new();
        let mut elem: Option<Elem> = None;
        let mut claimed = None;
        for (k, e) in run.iter().enumerate() {
            let null = e.ty == "nullptr";
            let n = e.array_len.unwrap_or(1).max(1);
            if null {
                if e.size != Some(1) {
                    return Err(self.err(path, format!("nullptr of size {:?}", e.size)));
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
            if k == 0 && !null && e.array_len.is_some() && run.len() > 1 {
                // The quirk: this entry stands for slot 0 and names the length.
                claimed = Some(n);
                present.push(true);
            } else {
                let n = usize::try_from(n)
                    .ok()
                    .filter(|&n| present.len().saturating_add(n) <= 1 << 20)
                    .ok_or_else(|| self.err(path, format!("array of {n} pointers")))?;
                present.resize(present.len() + n, !null);
            }
        }
        if let Some(n) = claimed
            && n != present.len() as u64
        {
            return Err(self.err(
                path,
                format!(
                    "first run claims {n} slots, the runs describe {}",
                    present.len()
                ),
            ));
        }
        // Non-struct pointees are wrapped in a struct: with a plain info the
        // codec would hand `sizeof(T *)` to a buffer's callback.
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
                Object {
                    vmsd: Vmsd {
                        name: format!("(reencode pointee) {name}"),
                        version_id: 0,
                        minimum_version_id: 0,
                        fields: vec![field],
                        terminator: DIALECT.end(),
                        subsections: Vec::new(),
                        needed: None,
                    },
                    layout: c.finish(),
                }
            }
            // Only NULL slots: the pointee is never visited.
            None => Object {
                vmsd: Vmsd {
                    name: format!("(reencode pointee) {name}"),
                    version_id: 0,
                    minimum_version_id: 0,
                    fields: Vec::new(),
                    terminator: DIALECT.end(),
                    subsections: Vec::new(),
                    needed: None,
                },
                layout: Cursor::new().finish(),
            },
        };
        let n = present.len() as u64;
        let num = i32::try_from(n).map_err(|_| self.err(path, "too many pointers"))?;
        let offset = cursor.place(POINTER_SIZE * n, POINTER_SIZE);
        let flags = self.bit(Flag::Array) | self.bit(Flag::ArrayOfPointer) | self.bit(Flag::Struct);
        let mut field = Field::new(name, offset, flags);
        field.num = num;
        field.size = POINTER_SIZE;
        field.vmsd = Some(Box::new(object.vmsd));
        cursor.inits.push(Init::Pointers {
            offset,
            present,
            pointee: Box::new(object.layout),
        });
        Ok(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let err = reencode_payload(&[0x7e], 0..0, "p", 1, &d).expect_err("too big");
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
        let got = reencode_payload(&data, 0..5, "p", 1, &d).expect("re-encodes");
        assert_eq!(got, Comparison::Identical);
        // A NULL where the vmdesc says struct: the loader finds 0x30 data.
        let bad = [0x11, 0x22, 0x31, 0x33, 0x44, 0x7e];
        let err = reencode_payload(&bad, 0..5, "p", 1, &d).expect_err("marker");
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
        let err = reencode_payload(&[0x30, 0x7e], 0..1, "p", 1, &d).expect_err("claims 4");
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
        let got = reencode_payload(&data, 0..end, "p", 2, &d).expect("re-encodes");
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
        let got = reencode_payload(&data, 0..2, "p", 1, &d).expect("loads");
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
