//! The whole stream (savevm.c `qemu_loadvm_state`, `qemu_loadvm_state_header`,
//! `qemu_loadvm_state_main`).
use super::command::{
    self, Command, MAX_PACKAGED_DEPTH, MIG_CMD_MAX, MIG_CMD_PACKAGED, Packaged, QEMU_VM_COMMAND,
    Record,
};
use super::configuration::{self, Configuration, QEMU_VM_CONFIGURATION};
use super::error::{Result, StreamError};
use super::ram::RamState;
use super::reader::Reader;
use super::section::{Content, QEMU_VM_EOF, QEMU_VM_SECTION_FOOTER, Section, SectionType};
use super::storage_attributes;
use super::vmdesc::{self, QEMU_VM_VMDESCRIPTION, VmDesc, Vmdesc};
use super::vmsd::{Annotation, Decoder};
use std::collections::HashMap;

pub const QEMU_VM_FILE_MAGIC: u32 = 0x5145_564d;
pub const QEMU_VM_FILE_VERSION_COMPAT: u32 = 2;
pub const QEMU_VM_FILE_VERSION: u32 = 3;
/// Used when neither the vmdesc nor the configuration gives a page size.
pub const DEFAULT_PAGE_SIZE: u64 = 4096;

/// Parse options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Collect an [`Annotation`] for every decoded item (for `--hex`).
    pub annotate: bool,
}

/// A parsed migration stream.
#[derive(Debug, Clone)]
pub struct Stream<'a> {
    pub data: &'a [u8],
    pub version: u32,
    /// Offset just after the 8-byte header.
    pub header_end: usize,
    pub configuration: Option<Configuration<'a>>,
    pub records: Vec<Record<'a>>,
    pub eof_offset: usize,
    pub vmdesc: Option<Vmdesc<'a>>,
    /// The RAM section's id and state, when there is one.
    pub ram: Option<(u32, RamState)>,
    pub page_size: u64,
    pub annotations: Vec<Annotation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ram,
    StorageAttributes,
    Vmsd,
}

struct Started {
    idstr: String,
    instance_id: u32,
    version_id: u32,
    kind: Kind,
}

struct Loader<'v> {
    desc: Option<&'v VmDesc>,
    footers: Option<bool>,
    started: HashMap<u32, Started>,
    ram: Option<(u32, RamState)>,
    page_size: u64,
    mapped_ram: bool,
    ignore_shared: bool,
    values_left: usize,
    values_limit: usize,
    annotations: Option<Vec<Annotation>>,
}

/// Parse a whole stream.
pub fn parse(data: &[u8]) -> Result<Stream<'_>> {
    parse_with(data, &Options::default())
}

/// Parse a whole stream with options.
pub fn parse_with<'a>(data: &'a [u8], opts: &Options) -> Result<Stream<'a>> {
    let vmdesc = vmdesc::read_trailing(data);
    let desc = vmdesc.as_ref().map(|v| &v.desc);
    let limit = data.len().saturating_mul(2).saturating_add(4096);
    let mut ld = Loader {
        desc,
        footers: None,
        started: HashMap::new(),
        ram: None,
        page_size: DEFAULT_PAGE_SIZE,
        mapped_ram: false,
        ignore_shared: false,
        values_left: limit,
        values_limit: limit,
        annotations: opts.annotate.then(Vec::new),
    };
    let mut r = Reader::new(data);

    // qemu_loadvm_state_header
    let magic = r.be32("header.magic")?;
    if magic != QEMU_VM_FILE_MAGIC {
        return Err(StreamError::BadMagic {
            offset: 0,
            path: "header.magic".into(),
            found: magic,
        });
    }
    let version = r.be32("header.version")?;
    if version == QEMU_VM_FILE_VERSION_COMPAT {
        return Err(StreamError::ObsoleteVersion {
            offset: 4,
            path: "header.version".into(),
        });
    }
    if version != QEMU_VM_FILE_VERSION {
        return Err(StreamError::UnsupportedVersion {
            offset: 4,
            path: "header.version".into(),
            version,
        });
    }
    if let Some(a) = ld.annotations.as_mut() {
        a.push(note(None, 0, 8, "header", "QEVM version 3".into()));
    }
    let header_end = r.pos();

    let configuration = if r.peek() == Some(QEMU_VM_CONFIGURATION) {
        let at = r.pos();
        r.u8("configuration")?;
        let conf_desc = desc.and_then(|d| d.configuration.as_ref());
        let conf = {
            let mut dec = ld.decoder(&mut r, "configuration", None);
            let c = configuration::load(&mut dec, at, conf_desc);
            let left = dec.values_left;
            ld.values_left = left;
            c?
        };
        ld.mapped_ram = conf.has_capability("mapped-ram");
        ld.ignore_shared = conf.has_capability("x-ignore-shared");
        Some(conf)
    } else {
        None
    };

    // The script takes the page size from the vmdesc.
    let page_size = match (
        desc.and_then(|d| d.page_size),
        configuration.as_ref().and_then(|c| c.target_page_bits),
    ) {
        (Some(p), _) => p,
        (None, Some(bits)) if bits < 40 => 1u64 << bits,
        _ => DEFAULT_PAGE_SIZE,
    };
    if !page_size.is_power_of_two() || !(256..=1 << 30).contains(&page_size) {
        return Err(StreamError::Vmdesc {
            offset: vmdesc.as_ref().map_or(0, |v| v.offset),
            path: "vmdesc.page_size".into(),
            message: format!("page size {page_size} is not a power of two in 256..=1G"),
        });
    }
    ld.page_size = page_size;

    let (records, eof_offset) = ld.load_main(&mut r, 0)?;

    // What follows QEMU_VM_EOF: nothing, or exactly the vmdesc record.
    let after = eof_offset + 1;
    match &vmdesc {
        Some(v) if v.offset == after => {}
        _ if after == data.len() => {}
        _ => {
            let mut t = Reader::window(data, after, data.len());
            let kind = t.u8("vmdesc")?;
            if kind != QEMU_VM_VMDESCRIPTION {
                return Err(StreamError::TrailingBytes {
                    offset: after,
                    path: "after QEMU_VM_EOF".into(),
                    count: data.len() - after,
                });
            }
            let len = t.be32("vmdesc.length")?;
            let json = t.take(u64::from(len), "vmdesc.json")?;
            if !t.is_empty() {
                return Err(StreamError::TrailingBytes {
                    offset: t.pos(),
                    path: "after vmdesc".into(),
                    count: t.remaining(),
                });
            }
            // Structurally the vmdesc, yet it was not accepted: say why.
            VmDesc::from_json(json, after + 5)?;
            return Err(StreamError::Vmdesc {
                offset: after,
                path: "vmdesc".into(),
                message: "not found by structure".into(),
            });
        }
    }
    let ram = ld.ram.take();
    let mut annotations = ld.annotations.take().unwrap_or_default();
    let vmdesc = vmdesc.filter(|v| v.offset == after);
    if opts.annotate {
        annotations.push(note(None, eof_offset, 1, "EOF", "QEMU_VM_EOF".into()));
        if let Some(v) = &vmdesc {
            annotations.push(note(
                None,
                v.offset,
                5,
                "vmdesc",
                format!("{} bytes of JSON", v.json.len()),
            ));
        }
    }
    Ok(Stream {
        data,
        version,
        header_end,
        configuration,
        records,
        eof_offset,
        vmdesc,
        ram,
        page_size,
        annotations,
    })
}

fn note(section: Option<u32>, offset: usize, len: usize, path: &str, value: String) -> Annotation {
    Annotation {
        section,
        offset,
        len,
        path: path.into(),
        value,
    }
}

impl Loader<'_> {
    fn decoder<'a, 'r>(
        &'r mut self,
        r: &'r mut Reader<'a>,
        path: &str,
        section: Option<u32>,
    ) -> Decoder<'a, 'r> {
        Decoder {
            r,
            path: path.into(),
            values_left: self.values_left,
            values_limit: self.values_limit,
            section,
            annotations: self.annotations.as_mut(),
        }
    }

    /// `qemu_loadvm_state_main`: records until `QEMU_VM_EOF`.
    fn load_main<'a>(
        &mut self,
        r: &mut Reader<'a>,
        depth: usize,
    ) -> Result<(Vec<Record<'a>>, usize)> {
        let mut records = Vec::new();
        loop {
            let at = r.pos();
            let t = r.u8("section type")?;
            if let Some(st) = SectionType::from_byte(t) {
                records.push(Record::Section(self.section(r, st, at)?));
                continue;
            }
            match t {
                QEMU_VM_EOF => return Ok((records, at)),
                QEMU_VM_COMMAND => records.push(Record::Command(self.command(r, at, depth)?)),
                _ => {
                    return Err(StreamError::UnknownSectionType {
                        offset: at,
                        path: "section type".into(),
                        byte: t,
                    });
                }
            }
        }
    }

    fn section<'a>(
        &mut self,
        r: &mut Reader<'a>,
        st: SectionType,
        at: usize,
    ) -> Result<Section<'a>> {
        let section_id = r.be32("section header")?;
        let (idstr, instance_id, version_id, kind) = match st {
            SectionType::Start | SectionType::Full => {
                let idstr = r.counted_string("section header")?;
                let instance_id = r.be32(&idstr)?;
                let version_id = r.be32(&idstr)?;
                let kind = match (idstr.as_str(), instance_id) {
                    ("ram", 0) => {
                        if version_id != 4 {
                            return Err(unsupported(
                                at,
                                &idstr,
                                format!("RAM version {version_id}, expected 4"),
                            ));
                        }
                        Kind::Ram
                    }
                    ("s390-storage_attributes", 0) => {
                        if version_id != 0 {
                            return Err(unsupported(
                                at,
                                &idstr,
                                format!("storage attributes version {version_id}"),
                            ));
                        }
                        Kind::StorageAttributes
                    }
                    _ => {
                        if self
                            .desc
                            .and_then(|d| d.device(&idstr, instance_id))
                            .is_none()
                        {
                            return Err(StreamError::NoDescription {
                                offset: at,
                                path: idstr,
                                instance_id,
                            });
                        }
                        if st == SectionType::Start {
                            return Err(unsupported(
                                at,
                                &idstr,
                                "SECTION_START of a device without an iterative loader".into(),
                            ));
                        }
                        Kind::Vmsd
                    }
                };
                self.started.insert(
                    section_id,
                    Started {
                        idstr: idstr.clone(),
                        instance_id,
                        version_id,
                        kind,
                    },
                );
                (idstr, instance_id, version_id, kind)
            }
            SectionType::Part | SectionType::End => {
                let Some(s) = self.started.get(&section_id) else {
                    return Err(StreamError::UnknownSectionId {
                        offset: at,
                        path: "section header".into(),
                        section_id,
                    });
                };
                if s.kind == Kind::Vmsd {
                    return Err(unsupported(
                        at,
                        &s.idstr,
                        format!("{} of a device without an iterative loader", st.name()),
                    ));
                }
                (s.idstr.clone(), s.instance_id, s.version_id, s.kind)
            }
        };
        let start = r.pos();
        if let Some(a) = self.annotations.as_mut() {
            a.push(note(
                Some(section_id),
                at,
                start - at,
                &idstr,
                format!(
                    "{} id {section_id} instance {instance_id} version {version_id}",
                    st.name()
                ),
            ));
        }
        let content = match kind {
            Kind::Ram => {
                let (page_size, mapped, shared) =
                    (self.page_size, self.mapped_ram, self.ignore_shared);
                let mut state = match self.ram.take() {
                    Some((_, s)) => s,
                    None => RamState::new(page_size, mapped, shared),
                };
                let res = {
                    let mut dec = self.decoder(r, &idstr, Some(section_id));
                    state.load_chunk(&mut dec)
                };
                self.ram = Some((section_id, state));
                res?;
                Content::Ram
            }
            Kind::StorageAttributes => {
                let page_size = self.page_size;
                let mut dec = self.decoder(r, &idstr, Some(section_id));
                Content::StorageAttributes(storage_attributes::load_chunk(&mut dec, page_size)?)
            }
            Kind::Vmsd => {
                let desc = self.desc.and_then(|d| d.device(&idstr, instance_id));
                let Some(desc) = desc else {
                    return Err(StreamError::NoDescription {
                        offset: at,
                        path: idstr,
                        instance_id,
                    });
                };
                let mut dec = self.decoder(r, &idstr, Some(section_id));
                let fields = dec.vmsd(desc, 0);
                let left = dec.values_left;
                self.values_left = left;
                Content::Vmsd(fields?)
            }
        };
        let payload = start..r.pos();
        let footer = self.footer(r, section_id, &idstr)?;
        Ok(Section {
            section_type: st,
            offset: at,
            section_id,
            idstr,
            instance_id,
            version_id,
            payload,
            footer,
            end: r.pos(),
            content,
        })
    }

    /// `check_section_footer`.
    fn footer(
        &mut self,
        r: &mut Reader<'_>,
        section_id: u32,
        idstr: &str,
    ) -> Result<Option<usize>> {
        let at = r.pos();
        let next = r.peek();
        let has = next == Some(QEMU_VM_SECTION_FOOTER);
        match self.footers {
            None => self.footers = Some(has),
            Some(true) if !has => {
                let found = r.u8(&format!("{idstr}.footer"))?;
                return Err(StreamError::MissingFooter {
                    offset: at,
                    path: idstr.into(),
                    found,
                });
            }
            Some(false) if has => {
                return Err(StreamError::FooterInconsistent {
                    offset: at,
                    path: idstr.into(),
                    what: "present",
                    before: "had none",
                });
            }
            Some(_) => {}
        }
        if !has {
            return Ok(None);
        }
        r.u8("footer")?;
        let found = r.be32(&format!("{idstr}.footer"))?;
        if found != section_id {
            return Err(StreamError::FooterMismatch {
                offset: at,
                path: idstr.into(),
                expected: section_id,
                found,
            });
        }
        if let Some(a) = self.annotations.as_mut() {
            a.push(note(
                Some(section_id),
                at,
                5,
                &format!("{idstr}.footer"),
                format!("section {found}"),
            ));
        }
        Ok(Some(at))
    }

    /// `loadvm_process_command`.
    fn command<'a>(&mut self, r: &mut Reader<'a>, at: usize, depth: usize) -> Result<Command<'a>> {
        let cmd = r.be16("command")?;
        let len = r.be16("command")?;
        let path = format!("command.{}", command::name(cmd));
        let err = |message: String| StreamError::Command {
            offset: at,
            path: path.clone(),
            message,
        };
        if cmd == 0 || cmd >= MIG_CMD_MAX {
            return Err(err(format!("unknown command {cmd:#x} (len {len:#x})")));
        }
        if let Some(want) = command::fixed_len(cmd)
            && want != len
        {
            return Err(err(format!("length {len}, expected {want}")));
        }
        let data = r.take(u64::from(len), &path)?;
        if let Some(a) = self.annotations.as_mut() {
            let end = r.pos();
            a.push(note(
                None,
                at,
                end - at,
                &path,
                format!("{} bytes of data", data.len()),
            ));
        }
        let packaged = if cmd == MIG_CMD_PACKAGED {
            if depth >= MAX_PACKAGED_DEPTH {
                return Err(err(format!(
                    "PACKAGED nested deeper than {MAX_PACKAGED_DEPTH}"
                )));
            }
            let length = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            let start = r.pos();
            r.take(u64::from(length), &path)?;
            let mut nested = Reader::window(r.data(), start, r.pos());
            let (records, eof_offset) = self.load_main(&mut nested, depth + 1)?;
            if !nested.is_empty() {
                return Err(StreamError::TrailingBytes {
                    offset: nested.pos(),
                    path,
                    count: nested.remaining(),
                });
            }
            Some(Packaged {
                start,
                records,
                eof_offset,
            })
        } else {
            None
        };
        Ok(Command {
            offset: at,
            cmd,
            data,
            end: r.pos(),
            packaged,
        })
    }
}

fn unsupported(offset: usize, idstr: &str, reason: String) -> StreamError {
    StreamError::UnsupportedSection {
        offset,
        path: idstr.into(),
        reason,
    }
}
