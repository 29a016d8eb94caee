//! What save and load share: the field path kept as a stack and rendered
//! only when an error needs it, and the per-field count, size and
//! existence answers read from the heap.

use std::fmt::Write;

use super::plan::{Count, Exists, FieldPlan, SizeRule};
use vmstate_reference::{Addr, Error, ErrorKind, Heap};

/// One step of a field path.
#[derive(Debug, Clone, Copy)]
pub enum Seg<'p> {
    Field(&'p str),
    Index(i64),
    Suffix(&'p str),
}

/// The path under construction, rendered lazily.
#[derive(Debug)]
pub struct Path<'p> {
    root: &'p str,
    segs: Vec<Seg<'p>>,
}

impl<'p> Path<'p> {
    pub fn new(root: &'p str) -> Self {
        Path {
            root,
            segs: Vec::with_capacity(16),
        }
    }
    pub fn push(&mut self, s: Seg<'p>) {
        self.segs.push(s);
    }
    /// Replaces the index of the innermost `Seg::Index`.
    pub fn set_index(&mut self, i: i64) {
        if let Some(Seg::Index(last)) = self.segs.last_mut() {
            *last = i;
        }
    }
    pub fn pop(&mut self) {
        self.segs.pop();
    }
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.root.len() + 12 * self.segs.len());
        out.push_str(self.root);
        for s in &self.segs {
            match s {
                Seg::Field(n) => {
                    out.push('.');
                    out.push_str(n);
                }
                Seg::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
                Seg::Suffix(s) => out.push_str(s),
            }
        }
        out
    }
    pub fn error(&self, kind: ErrorKind, offset: usize) -> Error {
        Error::new(kind, offset, self.render())
    }
}

/// `vmstate_field_exists`
pub fn exists(
    field: &FieldPlan,
    heap: &Heap,
    opaque: Addr,
    version_id: i32,
) -> Result<bool, ErrorKind> {
    match &field.exists {
        Exists::FromVersion(v) => Ok(*v <= version_id),
        Exists::Test(t) => t.eval(heap, opaque, version_id).map_err(ErrorKind::Memory),
    }
}

/// `vmstate_n_elems`, widened to `i64` (saturating, as the reference does).
pub fn n_elems(field: &FieldPlan, heap: &Heap, opaque: Addr) -> Result<i64, ErrorKind> {
    let raw = match field.count {
        Count::Fixed(n) => return Ok(n),
        Count::IntMember { offset, width } => {
            let v = read_le(heap, opaque.wrapping_add(offset), width)?;
            let n = if width == 4 {
                v as u32 as i32
            } else {
                v as i32
            };
            return Ok(match field.multiply_elements {
                Some(m) => n.wrapping_mul(m) as i64,
                None => n as i64,
            });
        }
        Count::UnsignedMember { offset, width } => {
            if !matches!(width, 1 | 2 | 4 | 8) {
                return Err(ErrorKind::BadIndirectWidth(width));
            }
            read_le(heap, opaque.wrapping_add(offset), width)?
        }
    };
    let n = match field.multiply_elements {
        Some(m) => raw.wrapping_mul(m as i64 as u64),
        None => raw,
    };
    Ok(n.min(i64::MAX as u64) as i64)
}

/// `vmstate_size`, widened to `i64`.
pub fn size(field: &FieldPlan, heap: &Heap, opaque: Addr) -> Result<i64, ErrorKind> {
    match field.size {
        SizeRule::Fixed(s) => Ok(s),
        SizeRule::LegacyMember { offset, multiply } => {
            let v = read_le(heap, opaque.wrapping_add(offset), 4)? as u32 as i32;
            Ok(multiply.map_or(v, |m| v.wrapping_mul(m)) as i64)
        }
        SizeRule::UnsignedMember {
            offset,
            width,
            multiply,
            checked,
        } => {
            if !matches!(width, 1 | 2 | 4 | 8) {
                return Err(ErrorKind::BadIndirectWidth(width));
            }
            let mut v = read_le(heap, opaque.wrapping_add(offset), width)?;
            if let Some(m) = multiply {
                v = if checked {
                    v.checked_mul(m).ok_or(ErrorKind::SizeOverflow)?
                } else {
                    v.wrapping_mul(m)
                };
            }
            Ok(v.min(i64::MAX as u64) as i64)
        }
    }
}

fn read_le(heap: &Heap, addr: Addr, width: u8) -> Result<u64, ErrorKind> {
    let b = heap.read(addr, width as u64).map_err(ErrorKind::Memory)?;
    let mut buf = [0u8; 8];
    buf[..b.len()].copy_from_slice(b);
    Ok(u64::from_le_bytes(buf))
}

/// The element count as a loop bound, and the stride, with the checks
/// both directions make before the element loop.
pub fn stride_at(base: Addr, size: i64, i: i64) -> Addr {
    base.wrapping_add((size as u64).wrapping_mul(i as u64))
}
