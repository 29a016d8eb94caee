//! The engine protocol (harness/qemu/PROTOCOL.md): little-endian frames
//! carrying a description, a memory image and a stream to the driver, and
//! the result, the heap after a load and the allocation events back.

use std::collections::BTreeMap;
use vmstate_reference::{Addr, Allocator, Test, Vmsd};

pub const MAGIC: u32 = 0x4853_4d56; // "VMSH"
pub const PROTOCOL_VERSION: u32 = 1;

pub const OP_SAVE: u8 = 1;
pub const OP_LOAD: u8 = 2;

/// The engine's greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub protocol: u32,
    /// "qemu-10.x", "qemu-11.1" or "qemu-master".
    pub dialect: String,
    /// QEMU_VERSION of the code it runs.
    pub qemu_version: String,
    /// Bit 0: built with sanitizers.
    pub flags: u32,
}

/// One prepared object of the request; pointers in it are relocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub bytes: Vec<u8>,
}

/// `*(void **)(obj + offset) = base(target) + target_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloc {
    pub obj: u32,
    pub offset: u64,
    pub target: u32,
    pub target_offset: u64,
}

/// A request: op, description, memory image, and for LOAD the stream.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub vmsd: &'a Vmsd,
    pub objects: Vec<Object>,
    pub relocs: Vec<Reloc>,
    pub opaque_obj: u32,
    pub opaque_offset: u64,
    /// None for SAVE; Some((version_id, stream)) for LOAD.
    pub load: Option<(i32, &'a [u8])>,
}

/// The allocator of a ledger event; `Free` is `g_free`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    GMalloc,
    GMalloc0,
    GTryMalloc,
    GTryMalloc0,
    GMallocN,
    GMalloc0N,
    GRealloc,
    Free,
}

impl EventKind {
    fn from_u8(v: u8) -> Result<EventKind, String> {
        use EventKind::*;
        Ok(match v {
            0 => GMalloc,
            1 => GMalloc0,
            2 => GTryMalloc,
            3 => GTryMalloc0,
            4 => GMallocN,
            5 => GMalloc0N,
            6 => GRealloc,
            7 => Free,
            _ => return Err(format!("unknown allocator {v}")),
        })
    }

    /// The C function.
    pub fn c_name(self) -> &'static str {
        use EventKind::*;
        match self {
            GMalloc => "g_malloc",
            GMalloc0 => "g_malloc0",
            GTryMalloc => "g_try_malloc",
            GTryMalloc0 => "g_try_malloc0",
            GMallocN => "g_malloc_n",
            GMalloc0N => "g_malloc0_n",
            GRealloc => "g_realloc",
            Free => "g_free",
        }
    }

    /// The reference model's allocator closest to this one (zeroing and
    /// failure behaviour); None for `g_free`.
    pub fn allocator(self) -> Option<Allocator> {
        use EventKind::*;
        match self {
            GMalloc | GMallocN | GRealloc => Some(Allocator::GMalloc),
            GMalloc0 | GMalloc0N => Some(Allocator::GMalloc0),
            GTryMalloc | GTryMalloc0 => Some(Allocator::GTryMalloc),
            Free => None,
        }
    }
}

/// One call of the ledger, in call order. For `g_free`, `size` is the size
/// of the allocation freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub size: u64,
    pub addr: Addr,
}

/// An object of the heap after a LOAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeapObject {
    /// Prepared object `index` of the request at its real address; `bytes`
    /// is empty if QEMU freed it.
    Prepared {
        index: u32,
        addr: Addr,
        freed: bool,
        bytes: Vec<u8>,
    },
    /// An allocation made during the op and still live: `event` indexes
    /// [`Reply::events`].
    Allocated {
        event: u32,
        kind: EventKind,
        addr: Addr,
        bytes: Vec<u8>,
    },
}

/// LeakSanitizer's verdict after a LOAD (sanitize builds only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lsan {
    NotRun,
    Clean,
    Leaks(String),
}

/// A reply to a request the engine ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// What vmstate_save_state / vmstate_load_state returned.
    pub ret: i32,
    /// qemu_file_get_error(f) after the op.
    pub file_error: i32,
    /// The Error's text, "" if none.
    pub message: String,
    /// SAVE: the bytes written.
    pub output: Vec<u8>,
    /// LOAD: stream bytes consumed; None if unknown (the file had an error).
    pub consumed: Option<u64>,
    pub objects: Vec<HeapObject>,
    pub events: Vec<Event>,
    pub lsan: Lsan,
}

// ---- encoding ---------------------------------------------------------------

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn bytes64(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn rule(&mut self, t: Option<&Test>) {
        let (kind, arg, offset, n) = match t {
            None => (0xff, 0, 0, 0),
            Some(Test::Const(v)) => (0, *v as u8, 0, 0),
            Some(Test::NonZero { offset, width }) => (1, *width, *offset, 0),
            Some(Test::Zero { offset, width }) => (2, *width, *offset, 0),
            Some(Test::VersionAtLeast(n)) => (3, 0, 0, *n),
        };
        self.u8(kind);
        self.u8(arg);
        self.u64(offset);
        self.i32(n);
    }
}

/// Numbers every VMSD of the tree in pre-order (each occurrence gets its own
/// index) and encodes them in index order; the root is index 0.
fn flatten(root: &Vmsd) -> Vec<u8> {
    // Pre-order: a VMSD, then its fields' VMSDs, then its subsections.
    let mut next = 0u32;
    let mut e = Enc(Vec::new());
    e.u32(count(root));
    fn emit(v: &Vmsd, e: &mut Enc, next: &mut u32) {
        *next += 1;
        // Children indexes: allocate in the same order `number` did.
        let mut cursor = *next;
        let mut field_idx = Vec::new();
        for f in &v.fields {
            match f.vmsd.as_deref() {
                Some(n) => {
                    field_idx.push(cursor as i32);
                    cursor += count(n);
                }
                None => field_idx.push(-1),
            }
        }
        let mut sub_idx = Vec::new();
        for s in &v.subsections {
            sub_idx.push(cursor as i32);
            cursor += count(s);
        }
        e.str(&v.name);
        e.i32(v.version_id);
        e.i32(v.minimum_version_id);
        e.u32(v.terminator);
        e.rule(v.needed.as_ref());
        e.u32(sub_idx.len() as u32);
        for s in &sub_idx {
            e.i32(*s);
        }
        e.u32(v.fields.len() as u32);
        for (f, idx) in v.fields.iter().zip(&field_idx) {
            e.str(&f.name);
            e.u64(f.offset);
            e.u64(f.size);
            e.i32(f.num);
            e.u32(f.num_indirect.offset as u32);
            e.u8(f.num_indirect.size);
            e.u32(f.size_indirect.offset as u32);
            e.u8(f.size_indirect.size);
            e.str(f.info.map(|i| i.name()).unwrap_or(""));
            e.i32(*idx);
            e.i32(f.version_id);
            e.i32(f.struct_version_id);
            e.u32(f.flags);
            e.rule(f.field_exists.as_ref());
        }
        for f in &v.fields {
            if let Some(n) = f.vmsd.as_deref() {
                emit(n, e, next);
            }
        }
        for s in &v.subsections {
            emit(s, e, next);
        }
    }
    fn count(v: &Vmsd) -> u32 {
        1 + v
            .fields
            .iter()
            .filter_map(|f| f.vmsd.as_deref())
            .map(count)
            .sum::<u32>()
            + v.subsections.iter().map(count).sum::<u32>()
    }
    emit(root, &mut e, &mut next);
    e.u32(0); // root index
    e.0
}

/// The payload of a request frame.
pub fn encode_request(r: &Request) -> Vec<u8> {
    let mut e = Enc(Vec::new());
    e.u8(if r.load.is_some() { OP_LOAD } else { OP_SAVE });
    e.0.extend_from_slice(&flatten(r.vmsd));
    e.u32(r.objects.len() as u32);
    for o in &r.objects {
        e.bytes64(&o.bytes);
    }
    e.u32(r.relocs.len() as u32);
    for x in &r.relocs {
        e.u32(x.obj);
        e.u64(x.offset);
        e.u32(x.target);
        e.u64(x.target_offset);
    }
    e.u32(r.opaque_obj);
    e.u64(r.opaque_offset);
    if let Some((version, stream)) = r.load {
        e.i32(version);
        e.bytes64(stream);
    }
    e.0
}

// ---- decoding ---------------------------------------------------------------

struct Dec<'a> {
    b: &'a [u8],
}

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err(format!(
                "reply truncated (wanted {n}, have {})",
                self.b.len()
            ));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(self.u32()? as i32)
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn str(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    fn bytes64(&mut self) -> Result<Vec<u8>, String> {
        let n = self.u64()?;
        Ok(self
            .take(usize::try_from(n).map_err(|_| "length overflow")?)?
            .to_vec())
    }
    fn end(&self) -> Result<(), String> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(format!("{} trailing bytes in reply", self.b.len()))
        }
    }
}

pub fn decode_hello(payload: &[u8]) -> Result<Hello, String> {
    let mut d = Dec { b: payload };
    let magic = d.u32()?;
    if magic != MAGIC {
        return Err(format!("bad magic {magic:#x}"));
    }
    let h = Hello {
        protocol: d.u32()?,
        dialect: d.str()?,
        qemu_version: d.str()?,
        flags: d.u32()?,
    };
    d.end()?;
    if h.protocol != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version {} (want {PROTOCOL_VERSION})",
            h.protocol
        ));
    }
    Ok(h)
}

/// Ok(Ok(reply)) for a request the engine ran; Ok(Err(text)) for one it
/// refused; Err for a malformed frame.
pub fn decode_reply(payload: &[u8]) -> Result<Result<Reply, String>, String> {
    let mut d = Dec { b: payload };
    match d.u8()? {
        0 => {}
        1 => {
            let m = d.str()?;
            d.end()?;
            return Ok(Err(m));
        }
        s => return Err(format!("bad reply status {s}")),
    }
    let ret = d.i32()?;
    let file_error = d.i32()?;
    let message = d.str()?;
    let output = d.bytes64()?;
    let consumed = d.u64()?;
    let consumed = (consumed as i64 >= 0).then_some(consumed);
    let n = d.u32()?;
    let mut objects = Vec::new();
    for _ in 0..n {
        let kind = d.u8()?;
        let index = d.u32()?;
        let alloc = d.u8()?;
        let freed = d.u8()? != 0;
        let addr = d.u64()?;
        let bytes = d.bytes64()?;
        objects.push(match kind {
            0 => HeapObject::Prepared {
                index,
                addr,
                freed,
                bytes,
            },
            1 => HeapObject::Allocated {
                event: index,
                kind: EventKind::from_u8(alloc)?,
                addr,
                bytes,
            },
            k => return Err(format!("bad object kind {k}")),
        });
    }
    let n = d.u32()?;
    let mut events = Vec::new();
    for _ in 0..n {
        events.push(Event {
            kind: EventKind::from_u8(d.u8()?)?,
            size: d.u64()?,
            addr: d.u64()?,
        });
    }
    let lsan = match d.u8()? {
        0 => {
            d.str()?;
            Lsan::NotRun
        }
        1 => {
            d.str()?;
            Lsan::Clean
        }
        _ => Lsan::Leaks(d.str()?),
    };
    d.end()?;
    Ok(Ok(Reply {
        ret,
        file_error,
        message,
        output,
        consumed,
        objects,
        events,
        lsan,
    }))
}

/// Maps an address to (object index, offset) for the objects of a request.
pub fn locate(bases: &BTreeMap<Addr, (u32, u64)>, addr: Addr) -> Option<(u32, u64)> {
    let (&base, &(i, len)) = bases.range(..=addr).next_back()?;
    let off = addr - base;
    (off < len || off == 0).then_some((i, off))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmstate_reference::{Field, Info};

    fn vmsd(name: &str, fields: Vec<Field>, subs: Vec<Vmsd>) -> Vmsd {
        Vmsd {
            name: name.into(),
            version_id: 1,
            minimum_version_id: 1,
            fields,
            terminator: 0x10000,
            subsections: subs,
            needed: None,
        }
    }

    #[test]
    fn hello_round_trip() {
        let mut e = Enc(Vec::new());
        e.u32(MAGIC);
        e.u32(1);
        e.str("qemu-10.x");
        e.str("10.2.2");
        e.u32(1);
        let h = decode_hello(&e.0).unwrap();
        assert_eq!(h.dialect, "qemu-10.x");
        assert_eq!(h.qemu_version, "10.2.2");
        assert_eq!(h.flags, 1);
        assert!(decode_hello(&e.0[..10]).is_err());
    }

    #[test]
    fn vmsd_indexes_are_pre_order() {
        let mut inner = Field::new("s", 8, 0x8);
        inner.vmsd = Some(Box::new(vmsd("in", vec![], vec![])));
        let mut a = Field::new("a", 0, 0x1);
        a.info = Some(Info::Uint32);
        a.size = 4;
        a.field_exists = Some(Test::NonZero {
            offset: 4,
            width: 2,
        });
        let root = vmsd("dev", vec![a, inner], vec![vmsd("dev/sub", vec![], vec![])]);
        let b = flatten(&root);
        let mut d = Dec { b: &b };
        assert_eq!(d.u32().unwrap(), 3);
        assert_eq!(d.str().unwrap(), "dev");
        assert_eq!((d.i32().unwrap(), d.i32().unwrap()), (1, 1));
        assert_eq!(d.u32().unwrap(), 0x10000);
        assert_eq!(d.take(14).unwrap()[0], 0xff); // needed: none
        assert_eq!(d.u32().unwrap(), 1);
        assert_eq!(d.i32().unwrap(), 2); // dev/sub after "in"
        assert_eq!(d.u32().unwrap(), 2);
        assert_eq!(d.str().unwrap(), "a");
        assert_eq!((d.u64().unwrap(), d.u64().unwrap()), (0, 4));
        d.take(4 + 5 + 5).unwrap();
        assert_eq!(d.str().unwrap(), "uint32");
        assert_eq!(d.i32().unwrap(), -1);
        d.take(12).unwrap();
        let rule = d.take(14).unwrap();
        assert_eq!((rule[0], rule[1], rule[2]), (1, 2, 4));
        assert_eq!(d.str().unwrap(), "s");
        d.take(8 + 8 + 4 + 5 + 5).unwrap();
        assert_eq!(d.str().unwrap(), "");
        assert_eq!(d.i32().unwrap(), 1);
        d.take(12 + 14).unwrap();
        assert_eq!(d.str().unwrap(), "in");
        d.take(12 + 14 + 4 + 4).unwrap();
        assert_eq!(d.str().unwrap(), "dev/sub");
        d.take(12 + 14 + 4 + 4).unwrap();
        assert_eq!(d.u32().unwrap(), 0);
        d.end().unwrap();
    }

    #[test]
    fn reply_decodes() {
        let mut e = Enc(Vec::new());
        e.u8(0);
        e.i32(-22);
        e.i32(0);
        e.str("boom");
        e.bytes64(&[]);
        e.u64(5);
        e.u32(2);
        e.u8(0);
        e.u32(0);
        e.u8(0xff);
        e.u8(0);
        e.u64(0x1000);
        e.bytes64(&[1, 2]);
        e.u8(1);
        e.u32(0);
        e.u8(1);
        e.u8(0);
        e.u64(0x2000);
        e.bytes64(&[0; 3]);
        e.u32(1);
        e.u8(1);
        e.u64(3);
        e.u64(0x2000);
        e.u8(0);
        e.str("");
        let r = decode_reply(&e.0).unwrap().unwrap();
        assert_eq!(r.ret, -22);
        assert_eq!(r.message, "boom");
        assert_eq!(r.consumed, Some(5));
        assert_eq!(r.objects.len(), 2);
        assert_eq!(
            r.events,
            vec![Event {
                kind: EventKind::GMalloc0,
                size: 3,
                addr: 0x2000
            }]
        );
        let mut e = Enc(Vec::new());
        e.u8(1);
        e.str("unknown info \"x\"");
        assert_eq!(
            decode_reply(&e.0).unwrap(),
            Err("unknown info \"x\"".into())
        );
    }

    #[test]
    fn locate_interior_and_empty() {
        let mut m = BTreeMap::new();
        m.insert(0x100, (0, 16));
        m.insert(0x200, (1, 0));
        assert_eq!(locate(&m, 0x10f), Some((0, 15)));
        assert_eq!(locate(&m, 0x110), None);
        assert_eq!(locate(&m, 0x200), Some((1, 0)));
        assert_eq!(locate(&m, 0xff), None);
    }
}
