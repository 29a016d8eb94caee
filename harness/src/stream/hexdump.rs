//! Annotated hex dump of one section: offset, bytes, field path, value.
use super::command::Record;
use super::loadvm::Stream;
use super::section::section_key;
use super::vmsd::hex;

/// Section ids matching `selector`: a section id (`"4"`), an idstr
/// (`"cpu"`, every instance) or the script's key (`"cpu (4)"`).
pub fn select(stream: &Stream<'_>, selector: &str) -> Vec<u32> {
    let mut ids = Vec::new();
    let visit = |records: &[Record<'_>], ids: &mut Vec<u32>| {
        for rec in records {
            if let Record::Section(s) = rec {
                let hit = selector == s.idstr
                    || selector == section_key(&s.idstr, s.section_id)
                    || selector.parse::<u32>().ok() == Some(s.section_id);
                if hit && !ids.contains(&s.section_id) {
                    ids.push(s.section_id);
                }
            }
        }
    };
    visit(&stream.records, &mut ids);
    for rec in &stream.records {
        if let Record::Command(c) = rec
            && let Some(p) = &c.packaged
        {
            visit(&p.records, &mut ids);
        }
    }
    ids
}

/// Lines `offset  bytes  path = value` for the annotated items of the
/// given sections (needs a stream parsed with `annotate`). At most 16
/// bytes are shown per item; longer items say how long they are.
pub fn dump(stream: &Stream<'_>, ids: &[u32]) -> String {
    let mut out = String::new();
    for a in &stream.annotations {
        if !a.section.is_some_and(|s| ids.contains(&s)) {
            continue;
        }
        let shown = a.len.min(16);
        let bytes = &stream.data[a.offset..a.offset + shown];
        let more = if a.len > shown {
            format!(" ..+{}", a.len - shown)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{:08x}  {:<47}{:<8}  {} = {}\n",
            a.offset,
            hex(bytes),
            more,
            a.path,
            a.value
        ));
    }
    out
}
