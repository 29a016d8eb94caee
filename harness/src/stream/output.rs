//! JSON in the shapes of analyze-migration.py: `-d state` and `-d desc`,
//! printed the way Python's `json` module prints with `indent=4`.
use super::command::Record;
use super::error::{Result, StreamError};
use super::loadvm::Stream;
use super::section::{Content, section_key};
use super::vmsd::{Entry, Fields, Value};
use serde_json::{Map, Value as Json};

/// A scalar as the script renders it (ints as `0x..`, negative signed ints
/// as `0x.. (-n)`, raw bytes as `"0a 0b"`, NULL markers as `"nullptr"`).
pub fn render_scalar(v: &Value<'_>) -> String {
    v.render()
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

/// Write the `-d state` JSON straight from the parsed stream, byte for
/// byte what `to_python_json(&state_json(stream))` gives, without building
/// a JSON tree (the CLI's fast path).
pub fn write_state(stream: &Stream<'_>, out: &mut String) {
    let mut order: Vec<(u32, String, Option<&Fields<'_>>, bool)> = Vec::new();
    fn walk<'s, 'a>(
        records: &'s [Record<'a>],
        order: &mut Vec<(u32, String, Option<&'s Fields<'a>>, bool)>,
    ) {
        for rec in records {
            match rec {
                Record::Section(s) => {
                    let pos = order.iter().position(|(id, ..)| *id == s.section_id);
                    let (f, stattr) = match &s.content {
                        Content::Vmsd(f) => (Some(f), false),
                        Content::Ram => (None, false),
                        Content::StorageAttributes(_) => (None, true),
                    };
                    match pos {
                        None => order.push((
                            s.section_id,
                            section_key(&s.idstr, s.section_id),
                            f,
                            stattr,
                        )),
                        Some(i) if f.is_some() => order[i].2 = f,
                        Some(_) => {}
                    }
                }
                Record::Command(c) => {
                    if let Some(p) = &c.packaged {
                        walk(&p.records, order);
                    }
                }
            }
        }
    }
    walk(&stream.records, &mut order);
    if order.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push('{');
    for (i, (id, key, fields, stattr)) in order.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(4, out);
        write_py_str(key, out);
        out.push_str(": ");
        match (fields, &stream.ram) {
            (Some(f), _) => write_fields(f, 4, out),
            (None, Some((ram_id, ram))) if ram_id == id => {
                out.push('{');
                newline(8, out);
                out.push_str("\"section sizes\": ");
                if ram.sizes.is_empty() {
                    out.push_str("{}");
                } else {
                    out.push('{');
                    for (j, (name, len)) in ram.sizes.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        newline(12, out);
                        write_py_str(name, out);
                        out.push_str(&format!(": \"0x{len:016x}\""));
                    }
                    newline(8, out);
                    out.push('}');
                }
                newline(4, out);
                out.push('}');
            }
            _ if *stattr => out.push_str("\"\""),
            _ => out.push_str("null"),
        }
    }
    newline(0, out);
    out.push('}');
}

fn write_value(v: &Value<'_>, indent: usize, out: &mut String) {
    match v {
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Struct(f) => write_fields(f, indent, out),
        Value::Int { .. } | Value::Bytes(_) => {
            // Hex digits and spaces only: no escaping needed.
            out.push('"');
            push_scalar(v, out);
            out.push('"');
        }
        other => write_py_str(&render_scalar(other), out),
    }
}

fn write_fields(f: &Fields<'_>, indent: usize, out: &mut String) {
    if f.entries.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push('{');
    for (i, (name, e)) in f.entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(indent + 4, out);
        write_py_str(name, out);
        out.push_str(": ");
        match e {
            Entry::One(v) => write_value(v, indent + 4, out),
            Entry::List(l) if l.is_empty() => out.push_str("[]"),
            Entry::List(l) => {
                out.push('[');
                for (j, v) in l.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    newline(indent + 8, out);
                    write_value(v, indent + 8, out);
                }
                newline(indent + 4, out);
                out.push(']');
            }
        }
    }
    newline(indent, out);
    out.push('}');
}

/// Append the rendering of an `Int` or `Bytes` value.
fn push_scalar(v: &Value<'_>, out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    match v {
        Value::Bytes(b) => {
            for (i, &x) in b.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push(char::from(DIGITS[usize::from(x >> 4)]));
                out.push(char::from(DIGITS[usize::from(x & 15)]));
            }
        }
        Value::Int { bytes, signed } if !*signed || bytes[0] & 0x80 == 0 => {
            out.push_str("0x");
            for &x in bytes.iter() {
                out.push(char::from(DIGITS[usize::from(x >> 4)]));
                out.push(char::from(DIGITS[usize::from(x & 15)]));
            }
        }
        other => out.push_str(&render_scalar(other)),
    }
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
