//! The configuration section (`QEMU_VM_CONFIGURATION`, savevm.c
//! `vmstate_configuration`): machine type name, then the needed
//! subsections `configuration/target-page-bits`,
//! `configuration/capabilities` and `configuration/uuid`. It has no
//! section header, no version and no footer.
use super::error::Result;
use super::vmdesc::VmsdDesc;
use super::vmsd::{Decoder, Entry, Fields, QEMU_VM_SUBSECTION, Value};

/// `QEMU_VM_CONFIGURATION`.
pub const QEMU_VM_CONFIGURATION: u8 = 0x07;

/// The decoded configuration section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configuration<'a> {
    /// Offset of the 0x07 byte.
    pub offset: usize,
    /// Offset just after the section.
    pub end: usize,
    pub machine: String,
    pub target_page_bits: Option<u32>,
    pub capabilities: Vec<String>,
    pub uuid: Option<&'a [u8]>,
    /// The fields as decoded from the vmdesc description, if there was one.
    pub fields: Option<Fields<'a>>,
}

impl Configuration<'_> {
    /// True when the source had migration capability `cap` on.
    pub fn has_capability(&self, cap: &str) -> bool {
        self.capabilities.iter().any(|c| c == cap)
    }
}

fn int(v: &Value<'_>) -> Option<u64> {
    match v {
        Value::Int { bytes, .. } if bytes.len() <= 8 => {
            Some(bytes.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
        }
        _ => None,
    }
}

/// Read the section body (the 0x07 byte is already consumed at `offset`).
pub fn load<'a>(
    dec: &mut Decoder<'a, '_>,
    offset: usize,
    desc: Option<&VmsdDesc>,
) -> Result<Configuration<'a>> {
    dec.path = "configuration".into();
    match desc {
        Some(desc) => {
            let fields = dec.vmsd(desc, 0)?;
            let machine = match fields.get("name") {
                Some(Entry::One(Value::Bytes(b))) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            };
            let sub = |name: &str| match fields.get(name) {
                Some(Entry::One(Value::Struct(s))) => Some(s.clone()),
                _ => None,
            };
            let target_page_bits = sub("configuration/target-page-bits")
                .and_then(|s| match s.get("target_page_bits") {
                    Some(Entry::One(v)) => int(v),
                    _ => None,
                })
                .and_then(|v| u32::try_from(v).ok());
            let capabilities = sub("configuration/capabilities")
                .map(|s| match s.get("capabilities") {
                    Some(Entry::One(Value::Capability(c))) => vec![c.clone()],
                    Some(Entry::List(l)) => l
                        .iter()
                        .filter_map(|v| match v {
                            Value::Capability(c) => Some(c.clone()),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                })
                .unwrap_or_default();
            let uuid = sub("configuration/uuid").and_then(|s| match s.get("uuid") {
                Some(Entry::One(Value::Bytes(b))) => Some(*b),
                _ => None,
            });
            Ok(Configuration {
                offset,
                end: dec.r.pos(),
                machine,
                target_page_bits,
                capabilities,
                uuid,
                fields: Some(fields),
            })
        }
        None => load_builtin(dec, offset),
    }
}

/// Without a vmdesc: QEMU 10.0's `vmstate_configuration` layout.
fn load_builtin<'a>(dec: &mut Decoder<'a, '_>, offset: usize) -> Result<Configuration<'a>> {
    let start = dec.r.pos();
    let len = dec.r.be32("configuration.len")?;
    let name = dec.r.take(u64::from(len), "configuration.name")?;
    dec.path = "configuration.name".into();
    dec.note(start, 4 + name.len(), || {
        format!("{:?}", String::from_utf8_lossy(name))
    });
    let mut conf = Configuration {
        offset,
        end: 0,
        machine: String::from_utf8_lossy(name).into_owned(),
        target_page_bits: None,
        capabilities: Vec::new(),
        uuid: None,
        fields: None,
    };
    while dec.r.peek() == Some(QEMU_VM_SUBSECTION) {
        let at = dec.r.pos();
        dec.r.u8("configuration")?;
        let sub = dec.r.counted_string("configuration")?;
        let _version = dec.r.be32("configuration")?;
        let path = format!("configuration.{sub}");
        match sub.as_str() {
            "configuration/target-page-bits" => {
                conf.target_page_bits = Some(dec.r.be32(&path)?);
            }
            "configuration/capabilities" => {
                let count = dec.r.be32(&path)?;
                for _ in 0..count {
                    // Every capability takes at least one byte: bounded.
                    let c = dec.r.counted_string(&path)?;
                    conf.capabilities.push(c);
                }
            }
            "configuration/uuid" => conf.uuid = Some(dec.r.take(16, &path)?),
            _ => {
                return Err(super::error::StreamError::Subsection {
                    offset: at,
                    path,
                    message: "unknown configuration subsection".into(),
                });
            }
        }
        dec.path = path;
        let end = dec.r.pos();
        dec.note(at, end - at, || "subsection".into());
    }
    conf.end = dec.r.pos();
    Ok(conf)
}
