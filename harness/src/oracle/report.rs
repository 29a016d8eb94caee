//! Failure reports: annotated hex, hex and heap diffs.

use vmstate_reference::{Heap, Span, SpanKind};

/// Bytes as annotated hex: one line per span (offset, bytes, field path).
pub fn annotate(bytes: &[u8], spans: &[Span]) -> String {
    let mut out = String::new();
    let mut at = 0;
    let line = |from: usize, to: usize, what: &str, out: &mut String| {
        for chunk_start in (from..to).step_by(16) {
            let chunk = &bytes[chunk_start..to.min(chunk_start + 16)];
            let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            out.push_str(&format!(
                "{chunk_start:06x}  {:<48}  {what}\n",
                hex.join(" ")
            ));
        }
    };
    for s in spans.iter().filter(|s| s.end <= bytes.len()) {
        if s.start > at {
            line(at, s.start, "", &mut out);
        }
        if s.start >= at {
            let what = match s.kind {
                SpanKind::Marker => format!("{} (marker)", s.path),
                SpanKind::Value => s.path.clone(),
                SpanKind::SubsectionHeader => format!("{} (subsection)", s.path),
            };
            line(s.start, s.end, &what, &mut out);
            at = s.end;
        }
    }
    if at < bytes.len() {
        line(at, bytes.len(), "", &mut out);
    }
    out
}

/// A pretty_assertions diff of two annotated hex dumps.
pub fn hex_diff(left: &[u8], right: &[u8], spans: &[Span]) -> String {
    let l = annotate(left, spans);
    let r = annotate(right, spans);
    format!("left: reference, right: other\n{}", text_diff(&l, &r))
}

/// The allocations that differ between two heaps: a header line per
/// allocation and its bytes 32 to a line.
pub fn heap_diff(a: &Heap, b: &Heap) -> String {
    text_diff(&heap_dump(a), &heap_dump(b))
}

fn heap_dump(h: &Heap) -> String {
    let mut out = String::new();
    for a in h.allocations() {
        out.push_str(&format!(
            "{:#x} {} bytes {:?}{}\n",
            a.base,
            a.size(),
            a.origin,
            if a.freed { " freed" } else { "" }
        ));
        for (i, chunk) in a.bytes.chunks(32).enumerate() {
            out.push_str(&format!("  +{:<5} {}\n", i * 32, hex::encode(chunk)));
        }
    }
    out
}

/// A pretty_assertions diff, cut to 40 lines around the first difference
/// (the diff is quadratic in the line count).
pub fn text_diff(left: &str, right: &str) -> String {
    let (l, r): (Vec<&str>, Vec<&str>) = (left.lines().collect(), right.lines().collect());
    let first = l
        .iter()
        .zip(&r)
        .position(|(a, b)| a != b)
        .unwrap_or(l.len().min(r.len()));
    let from = first.saturating_sub(10);
    let (l, r) = (
        &l[from..l.len().min(from + 40)],
        &r[from..r.len().min(from + 40)],
    );
    let note = if from > 0 {
        format!("(from line {from})\n")
    } else {
        String::new()
    };
    format!(
        "{note}{}",
        pretty_assertions::StrComparison::new(&l.join("\n"), &r.join("\n"))
    )
}
