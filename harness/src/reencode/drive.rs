//! Driving real payloads through the codecs: `reencode` (load then save
//! with the optimized codec, compared byte for byte with the stream) and
//! `load` (the reference model into a destination of a chosen pre-state).
use super::describe::{Destination, rebuild};
use super::{Dest, ReencodeError, StreamVersion, stream_version};
use crate::codec::Compiled;
use crate::stream::vmdesc::{VmDesc, VmsdDesc};
use crate::stream::{Content, Record, Section, SectionType, parse};
use std::ops::Range;
use vmstate_reference::{Dialect, Error, Outcome};

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
    /// The bytes round-trip, but the reference model and the optimized
    /// codec loaded the section into different memory (a mistake both
    /// codecs' saves undo would hide here).
    HeapsDiffer {
        /// What differs, from `oracle::heap_diff`, or the two results.
        detail: String,
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
    /// The dialect the sections were re-encoded in.
    pub dialect: Option<Dialect>,
    /// What the stream says about the QEMU that wrote it.
    pub version: Option<StreamVersion>,
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
/// PACKAGED commands included) in `dialect`, or in the dialect of the QEMU
/// that wrote the stream ([`stream_version`]). Fails only when the stream
/// does not parse; per-section failures are in the report.
pub fn reencode_stream(
    data: &[u8],
    dialect: Option<Dialect>,
) -> Result<ReencodeReport, ReencodeError> {
    let stream = parse(data)?;
    let version = stream_version(&stream);
    let d = dialect.unwrap_or(version.dialect);
    let desc = stream.vmdesc.as_ref().map(|v| &v.desc);
    let mut report = ReencodeReport {
        dialect: Some(d),
        version: Some(version),
        ..ReencodeReport::default()
    };
    for s in device_sections(&stream.records, &mut report.excluded) {
        let result = match section_desc(desc, s) {
            Ok(dd) => reencode_payload(d, data, s.payload.clone(), &s.idstr, s.version_id, dd),
            Err(e) => Err(e),
        };
        report.sections.push(SectionReport {
            name: s.idstr.clone(),
            instance_id: s.instance_id,
            section_id: s.section_id,
            payload: s.payload.clone(),
            result,
        });
    }
    report.sections.sort_by_key(|s| s.payload.start);
    Ok(report)
}

fn section_desc<'d>(
    desc: Option<&'d VmDesc>,
    s: &Section<'_>,
) -> Result<&'d VmsdDesc, ReencodeError> {
    desc.and_then(|d| d.device(&s.idstr, s.instance_id))
        .ok_or_else(|| ReencodeError::Rebuild {
            offset: s.offset,
            path: s.idstr.clone(),
            message: format!("no vmdesc entry for instance {}", s.instance_id),
        })
}

/// The device (VMSD) sections of `records`, PACKAGED sub-streams included,
/// in stream order; every other section goes to `excluded`.
pub fn device_sections<'s, 'a>(
    records: &'s [Record<'a>],
    excluded: &mut Vec<Excluded>,
) -> Vec<&'s Section<'a>> {
    let mut out = Vec::new();
    let mut pending: Vec<&[Record<'_>]> = vec![records];
    while let Some(records) = pending.pop() {
        for record in records {
            match record {
                Record::Section(s) => {
                    let reason = match s.content {
                        Content::Vmsd(_) => {
                            out.push(s);
                            continue;
                        }
                        Content::Ram => {
                            "RAM: iterative handler (ram_save_setup/iterate/complete), not a VMSD"
                        }
                        Content::StorageAttributes(_) => {
                            "s390 storage attributes: iterative handler (cmma_save_*), not a VMSD"
                        }
                    };
                    excluded.push(Excluded {
                        name: s.idstr.clone(),
                        instance_id: s.instance_id,
                        section_id: s.section_id,
                        section_type: s.section_type,
                        reason,
                    });
                }
                Record::Command(c) => {
                    if let Some(p) = &c.packaged {
                        pending.push(&p.records);
                    }
                }
            }
        }
    }
    out.sort_by_key(|s| s.payload.start);
    out
}

/// Re-encodes one device payload in dialect `d`: `data[payload]` described
/// by `desc`, loaded with the section's `version_id` into a fresh
/// destination. The loader is given the rest of the file (it peeks one
/// byte past the payload for a subsection). `idstr` names the root VMSD when
/// the vmdesc has no `vmsd_name` (old-style sections).
pub fn reencode_payload(
    d: Dialect,
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
    } = rebuild(d, Dest::Fresh, desc, idstr, version_id, start)?;
    let name = vmsd.name.clone();

    let codec = Compiled::new(d, &vmsd);
    let mut reference_heap = heap.clone();
    let reference = vmstate_reference::load_state(
        d,
        &vmsd,
        &mut reference_heap,
        opaque,
        version,
        &data[start..],
    );
    let optimized = codec.load(&mut heap, opaque, version, &data[start..]);
    if reference != optimized || reference_heap != heap {
        let detail = if reference != optimized {
            format!("reference {reference:?}, optimized {optimized:?}")
        } else {
            crate::oracle::heap_diff(&reference_heap, &heap)
        };
        return Ok(Comparison::HeapsDiffer { detail });
    }
    let consumed = optimized.map_err(|e| ReencodeError::Load {
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
    let path = vmstate_reference::save_state_annotated(d, &vmsd, &heap, opaque)
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

/// How one section's load ends in the reference model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadOutcome {
    /// Loaded; `consumed` bytes (the payload length when all is well).
    Ok { consumed: usize },
    /// The load fails cleanly (QEMU returns an error).
    Error(Error),
    /// QEMU aborts (the model's [`Outcome::Abort`]); the error names the
    /// assertion through [`ErrorKind::qemu_site`].
    Abort(Error),
    /// The description or destination could not be built, or the model
    /// stopped for a reason QEMU does not share (undefined behaviour, a
    /// model limit).
    Other(String),
}

/// One device section's load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionLoad {
    pub name: String,
    pub instance_id: u32,
    pub section_id: u32,
    pub payload: Range<usize>,
    pub outcome: LoadOutcome,
}

impl SectionLoad {
    /// `ok`, `error: ...`, `QEMU 11.1.3 aborts: ...`, for dialect `d`.
    pub fn verdict(&self, d: Dialect) -> String {
        match &self.outcome {
            LoadOutcome::Ok { consumed } if *consumed == self.payload.len() => "ok".into(),
            LoadOutcome::Ok { consumed } => format!(
                "ok, but consumed {consumed} of {} payload bytes",
                self.payload.len()
            ),
            LoadOutcome::Error(e) => format!("error: {e}"),
            LoadOutcome::Abort(e) => format!(
                "QEMU {} aborts: {} (offset {}, {})",
                super::release(d),
                e.kind.qemu_site(),
                e.offset,
                e.path
            ),
            LoadOutcome::Other(m) => format!("not modelled: {m}"),
        }
    }

    /// Whether the load went through and consumed exactly the payload.
    pub fn ok(&self) -> bool {
        matches!(self.outcome, LoadOutcome::Ok { consumed } if consumed == self.payload.len())
    }
}

/// Every device section of a stream loaded through the reference model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    pub dialect: Dialect,
    pub version: StreamVersion,
    pub dest: Dest,
    pub sections: Vec<SectionLoad>,
    pub excluded: Vec<Excluded>,
}

/// Loads every device section of `data` into destinations rebuilt from the
/// vmdesc of `desc_from` (default: `data` itself) in dialect `dialect`
/// (default: the stream's own), prepared as `dest` says, through the
/// reference model.
pub fn load_stream(
    data: &[u8],
    desc_from: Option<&[u8]>,
    dialect: Option<Dialect>,
    dest: Dest,
) -> Result<LoadReport, ReencodeError> {
    let stream = parse(data)?;
    let other = desc_from.map(parse).transpose()?;
    let descs = other.as_ref().unwrap_or(&stream);
    let version = stream_version(descs);
    let d = dialect.unwrap_or(version.dialect);
    let desc = descs.vmdesc.as_ref().map(|v| &v.desc);
    let mut excluded = Vec::new();
    let mut sections = Vec::new();
    for s in device_sections(&stream.records, &mut excluded) {
        let outcome = match section_desc(desc, s)
            .and_then(|dd| rebuild(d, dest, dd, &s.idstr, s.version_id, s.payload.start))
        {
            Err(e) => LoadOutcome::Other(e.to_string()),
            Ok(mut dst) => {
                let r = vmstate_reference::load_state(
                    d,
                    &dst.vmsd,
                    &mut dst.heap,
                    dst.opaque,
                    dst.version_id,
                    &data[s.payload.start..],
                );
                match r {
                    Ok(consumed) => LoadOutcome::Ok { consumed },
                    Err(mut e) => {
                        e.offset += s.payload.start;
                        match e.kind.outcome() {
                            Outcome::Error => LoadOutcome::Error(e),
                            Outcome::Abort => LoadOutcome::Abort(e),
                            o => LoadOutcome::Other(format!("{o}: {e}")),
                        }
                    }
                }
            }
        };
        sections.push(SectionLoad {
            name: s.idstr.clone(),
            instance_id: s.instance_id,
            section_id: s.section_id,
            payload: s.payload.clone(),
            outcome,
        });
    }
    Ok(LoadReport {
        dialect: d,
        version,
        dest,
        sections,
        excluded,
    })
}
