//! Oracles for fuzzing: properties every input must satisfy.
use super::command::Record;
use super::loadvm::{Stream, parse};
use super::output::state_json;

/// Check that a parsed stream tiles its input: every record starts where
/// the previous one ended, every section's payload ends exactly at its
/// footer, `QEMU_VM_EOF` follows the last record and the vmdesc (if any)
/// follows EOF and ends the file.
pub fn check_consumption(s: &Stream<'_>) -> Result<(), String> {
    let mut pos = s.configuration.as_ref().map_or(s.header_end, |c| c.end);
    if let Some(c) = &s.configuration
        && c.offset != s.header_end
    {
        return Err(format!(
            "configuration at {:#x}, header ends at {:#x}",
            c.offset, s.header_end
        ));
    }
    check_records(&s.records, &mut pos)?;
    if s.eof_offset != pos {
        return Err(format!(
            "EOF at {:#x}, last record ends at {pos:#x}",
            s.eof_offset
        ));
    }
    let after = s.eof_offset + 1;
    match &s.vmdesc {
        Some(v) if v.offset != after => {
            Err(format!("vmdesc at {:#x}, EOF ends at {after:#x}", v.offset))
        }
        Some(v) if v.offset + 5 + v.json.len() != s.data.len() => {
            Err("vmdesc does not end the file".into())
        }
        None if after != s.data.len() => Err(format!("{} bytes after EOF", s.data.len() - after)),
        _ => Ok(()),
    }
}

fn check_records(records: &[Record<'_>], pos: &mut usize) -> Result<(), String> {
    for rec in records {
        match rec {
            Record::Section(sec) => {
                if sec.offset != *pos {
                    return Err(format!(
                        "section {} at {:#x}, expected {:#x}",
                        sec.section_id, sec.offset, *pos
                    ));
                }
                if sec.payload.start < sec.offset || sec.payload.end < sec.payload.start {
                    return Err(format!(
                        "section {}: bad payload {:?}",
                        sec.section_id, sec.payload
                    ));
                }
                match sec.footer {
                    Some(f) if f != sec.payload.end || sec.end != f + 5 => {
                        return Err(format!(
                            "section {}: payload ends at {:#x}, footer at {f:#x}",
                            sec.section_id, sec.payload.end
                        ));
                    }
                    None if sec.end != sec.payload.end => {
                        return Err(format!("section {}: payload/end mismatch", sec.section_id));
                    }
                    _ => {}
                }
                *pos = sec.end;
            }
            Record::Command(c) => {
                if c.offset != *pos {
                    return Err(format!("command at {:#x}, expected {:#x}", c.offset, *pos));
                }
                if let Some(p) = &c.packaged {
                    let mut inner = p.start;
                    check_records(&p.records, &mut inner)?;
                    if p.eof_offset != inner || p.eof_offset + 1 != c.end {
                        return Err(format!(
                            "PACKAGED stream at {:#x} not consumed exactly",
                            p.start
                        ));
                    }
                }
                *pos = c.end;
            }
        }
    }
    Ok(())
}

/// The fuzz oracle of the `stream` target: parsing must not panic; when it
/// succeeds every section consumed exactly its bytes and the state renders.
pub fn stream_oracle(data: &[u8]) {
    if let Ok(s) = parse(data) {
        if let Err(e) = check_consumption(&s) {
            panic!("stream parsed but is not consumed exactly: {e}");
        }
        let _ = state_json(&s);
    }
}
