//! JSON in the shapes of analyze-migration.py: `-d state` and `-d desc`,
//! printed the way Python's `json` module prints with `indent=4`.
use super::command::Record;
use super::error::{Result, StreamError};
use super::loadvm::Stream;
use super::section::{Content, section_key};
use super::vmsd::{Entry, Fields, Value, hex};
use serde_json::{Map, Value as Json};

/// A scalar as the script renders it (ints as `0x..`, negative signed ints
/// as `0x.. (-n)`, raw bytes as `"0a 0b"`, NULL markers as `"nullptr"`).
pub fn render_scalar(v: &Value<'_>) -> String {
    match v {
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
        Value::Nullptr | Value::PtrMarker(false) => "nullptr".into(),
        Value::PtrMarker(true) => "ptr".into(),
        Value::Capability(c) => c.clone(),
        Value::Struct(_) => "{...}".into(),
    }
}

/// One value as JSON.
pub fn value_json(v: &Value<'_>) -> Json {
    match v {
        Value::Bool(b) => Json::Bool(*b),
        Value::Struct(f) => fields_json(f),
        other => Json::String(render_scalar(other)),
    }
}

/// A VMSD's fields as a JSON object (repeated names become lists).
pub fn fields_json(f: &Fields<'_>) -> Json {
    let mut m = Map::with_capacity(f.entries.len());
    for (name, e) in &f.entries {
        let v = match e {
            Entry::One(v) => value_json(v),
            Entry::List(l) => Json::Array(l.iter().map(value_json).collect()),
        };
        m.insert(name.clone(), v);
    }
    Json::Object(m)
}

fn collect_sections(
    records: &[Record<'_>],
    out: &mut Map<String, Json>,
    ids: &mut Vec<(u32, String)>,
) {
    for rec in records {
        match rec {
            Record::Section(s) => {
                // Keyed by section id, first START/FULL wins the position.
                let pos = ids.iter().position(|(id, _)| *id == s.section_id);
                let v = match &s.content {
                    Content::Vmsd(f) => Some(fields_json(f)),
                    Content::Ram => None,
                    Content::StorageAttributes(_) => Some(Json::String(String::new())),
                };
                match (pos, v) {
                    (None, v) => {
                        let key = section_key(&s.idstr, s.section_id);
                        ids.push((s.section_id, key.clone()));
                        out.insert(key, v.unwrap_or(Json::Null));
                    }
                    (Some(i), Some(v)) if matches!(s.content, Content::Vmsd(_)) => {
                        // A later FULL with the same id replaces the value.
                        let key = ids[i].1.clone();
                        out.insert(key, v);
                    }
                    _ => {}
                }
            }
            Record::Command(c) => {
                if let Some(p) = &c.packaged {
                    collect_sections(&p.records, out, ids);
                }
            }
        }
    }
}

/// The `-d state` object.
pub fn state_json(stream: &Stream<'_>) -> Json {
    let mut out = Map::new();
    let mut ids = Vec::new();
    collect_sections(&stream.records, &mut out, &mut ids);
    if let Some((id, ram)) = &stream.ram
        && let Some((_, key)) = ids.iter().find(|(i, _)| i == id)
    {
        let mut sizes = Map::new();
        for (name, len) in &ram.sizes {
            sizes.insert(name.clone(), Json::String(format!("0x{len:016x}")));
        }
        let mut m = Map::new();
        m.insert("section sizes".into(), Json::Object(sizes));
        out.insert(key.clone(), Json::Object(m));
    }
    Json::Object(out)
}

/// The `-d desc` object: the vmdesc JSON itself, key order kept.
pub fn desc_json(stream: &Stream<'_>) -> Result<Json> {
    let Some(v) = &stream.vmdesc else {
        return Err(StreamError::Vmdesc {
            offset: stream.eof_offset,
            path: "vmdesc".into(),
            message: "the stream has no vmdesc".into(),
        });
    };
    serde_json::from_slice(v.json).map_err(|e| StreamError::Vmdesc {
        offset: v.offset + 5,
        path: "vmdesc".into(),
        message: e.to_string(),
    })
}

/// Print like Python's `json.dumps(v, indent=4, separators=(',', ': '))`
/// (`ensure_ascii` on).
pub fn to_python_json(v: &Json) -> String {
    let mut s = String::new();
    write_py(v, 0, &mut s);
    s
}

fn write_py(v: &Json, indent: usize, out: &mut String) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(true) => out.push_str("true"),
        Json::Bool(false) => out.push_str("false"),
        Json::Number(n) => out.push_str(&n.to_string()),
        Json::String(s) => write_py_str(s, out),
        Json::Array(a) if a.is_empty() => out.push_str("[]"),
        Json::Object(o) if o.is_empty() => out.push_str("{}"),
        Json::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(indent + 4, out);
                write_py(x, indent + 4, out);
            }
            newline(indent, out);
            out.push(']');
        }
        Json::Object(o) => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(indent + 4, out);
                write_py_str(k, out);
                out.push_str(": ");
                write_py(x, indent + 4, out);
            }
            newline(indent, out);
            out.push('}');
        }
    }
}

fn newline(indent: usize, out: &mut String) {
    const SPACES: &str = "                                                                ";
    out.push('\n');
    let mut left = indent;
    while left > 0 {
        let n = left.min(SPACES.len());
        out.push_str(&SPACES[..n]);
        left -= n;
    }
}

fn write_py_str(s: &str, out: &mut String) {
    out.push('"');
    if s.bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
}
