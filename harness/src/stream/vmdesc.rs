//! The trailing `QEMU_VM_VMDESCRIPTION` record: byte 0x06, BE32 length and
//! the JSON written by `vmstate_save_vmsd_v` (migration/vmstate.c).
//!
//! It is located by structure: the record whose BE32 length reaches exactly
//! the end of the file. The parser later checks that it starts right after
//! `QEMU_VM_EOF`.
use super::error::{Result, StreamError};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// `QEMU_VM_VMDESCRIPTION`.
pub const QEMU_VM_VMDESCRIPTION: u8 = 0x06;

/// One VMSD as described in the vmdesc (device, struct or subsection).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VmsdDesc {
    #[serde(default)]
    pub vmsd_name: Option<String>,
    #[serde(default)]
    pub version: Option<i64>,
    #[serde(default)]
    pub fields: Option<Vec<FieldDesc>>,
    #[serde(default)]
    pub subsections: Vec<VmsdDesc>,
    /// Per field: does its name need an index in paths (repeats, arrays)?
    #[serde(skip)]
    pub indexed: OnceLock<Vec<bool>>,
}

impl VmsdDesc {
    /// For each field, whether its name occurs more than once (counting
    /// `array_len`/`index` entries as repeats), computed once.
    pub fn indexed(&self) -> &[bool] {
        self.indexed.get_or_init(|| {
            let fields = self.fields.as_deref().unwrap_or(&[]);
            let mut counts: HashMap<&str, u64> = HashMap::new();
            for f in fields {
                let n = if f.array_len.is_some() || f.index.is_some() {
                    2
                } else {
                    1
                };
                *counts.entry(f.name.as_str()).or_default() += n;
            }
            fields.iter().map(|f| counts[f.name.as_str()] > 1).collect()
        })
    }
}

/// One field entry (`vmsd_desc_field_start` / `vmsd_desc_field_end`).
#[derive(Debug, Clone, Deserialize)]
pub struct FieldDesc {
    pub name: String,
    #[serde(default)]
    pub array_len: Option<u64>,
    #[serde(default)]
    pub index: Option<u64>,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default, rename = "struct")]
    pub nested: Option<Box<VmsdDesc>>,
    #[serde(default)]
    pub size: Option<u64>,
}

/// One device entry of `"devices"`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceDesc {
    pub name: String,
    pub instance_id: u32,
    #[serde(default)]
    pub vmsd_name: Option<String>,
    #[serde(default)]
    pub version: Option<i64>,
    #[serde(default)]
    pub fields: Option<Vec<FieldDesc>>,
    #[serde(default)]
    pub subsections: Vec<VmsdDesc>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    configuration: Option<VmsdDesc>,
    #[serde(default)]
    page_size: Option<u64>,
    devices: Vec<DeviceDesc>,
}

/// The parsed vmdesc.
#[derive(Debug, Clone)]
pub struct VmDesc {
    pub configuration: Option<VmsdDesc>,
    pub page_size: Option<u64>,
    pub devices: Vec<(String, u32, VmsdDesc)>,
    index: HashMap<(String, u32), usize>,
}

impl VmDesc {
    /// Parse the JSON text; `offset` is where it starts in the file.
    pub fn from_json(json: &[u8], offset: usize) -> Result<Self> {
        let raw: Raw = serde_json::from_slice(json).map_err(|e| StreamError::Vmdesc {
            offset,
            path: "vmdesc".into(),
            message: e.to_string(),
        })?;
        let mut devices = Vec::with_capacity(raw.devices.len());
        let mut index = HashMap::new();
        for d in raw.devices {
            if d.fields.is_none() {
                return Err(StreamError::Vmdesc {
                    offset,
                    path: format!("vmdesc.devices.{}", d.name),
                    message: "device has no fields".into(),
                });
            }
            // Later entries win, as in the script's dict.
            index.insert((d.name.clone(), d.instance_id), devices.len());
            devices.push((
                d.name,
                d.instance_id,
                VmsdDesc {
                    vmsd_name: d.vmsd_name,
                    version: d.version,
                    fields: d.fields,
                    subsections: d.subsections,
                    indexed: OnceLock::new(),
                },
            ));
        }
        Ok(Self {
            configuration: raw.configuration,
            page_size: raw.page_size,
            devices,
            index,
        })
    }

    /// The description of section (`idstr`, `instance_id`).
    pub fn device(&self, idstr: &str, instance_id: u32) -> Option<&VmsdDesc> {
        self.index
            .get(&(idstr.to_owned(), instance_id))
            .map(|&i| &self.devices[i].2)
    }
}

/// A located vmdesc record.
#[derive(Debug, Clone)]
pub struct Vmdesc<'a> {
    /// Offset of the 0x06 byte.
    pub offset: usize,
    /// The JSON text.
    pub json: &'a [u8],
    pub desc: VmDesc,
}

/// Offsets of the 0x06 bytes of records `06 | BE32 n | n bytes` that end
/// exactly at the end of `data`, last first. JSON text never contains a raw
/// 0x06 byte, so the record's marker is the last 0x06 of the file or, when
/// its length field holds a 0x06, at most four bytes before it. The JSON is
/// an object written without trailing whitespace, so a file that does not
/// end in `}` has no vmdesc (this keeps the search short on streams that
/// end in long runs of RAM).
pub fn candidates(data: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let last = if data.last() == Some(&b'}') {
        data[..data.len().saturating_sub(4)]
            .iter()
            .rposition(|&b| b == QEMU_VM_VMDESCRIPTION)
    } else {
        None
    };
    let range = last.map_or(0..0, |q| q.saturating_sub(4)..q + 1);
    range.rev().filter(move |&p| {
        data[p] == QEMU_VM_VMDESCRIPTION && {
            let len = u32::from_be_bytes([data[p + 1], data[p + 2], data[p + 3], data[p + 4]]);
            len as usize == data.len() - p - 5
        }
    })
}

/// At most this many candidates are tried as JSON (bounds the work on
/// hostile input).
pub const MAX_CANDIDATES: usize = 4;

/// Locate and parse the trailing vmdesc: the first candidate whose JSON is
/// a vmdesc. `None` when there is none; the parser then reports precisely
/// what follows `QEMU_VM_EOF`.
pub fn read_trailing(data: &[u8]) -> Option<Vmdesc<'_>> {
    candidates(data).take(MAX_CANDIDATES).find_map(|offset| {
        let json = &data[offset + 5..];
        let desc = VmDesc::from_json(json, offset + 5).ok()?;
        Some(Vmdesc { offset, json, desc })
    })
}
