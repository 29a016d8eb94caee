//! Object states as JSON values, typed by C declarations: written onto the
//! simulated heap (caller-prepared memory) and read back for comparison.
//!
//! - integers: JSON numbers; `bool`: true/false (or 0/1);
//! - arrays: JSON arrays (shorter ones are zero-filled), `uint8_t` arrays
//!   also as hex strings;
//! - structs: objects (missing members are zero);
//! - pointers: `null` for NULL; otherwise the pointee, or an array of
//!   pointees for a pointer to the first of several objects.

use super::ctype::{CType, Types};
use serde_json::{Map, Value, json};
use vmstate_reference::{Addr, Heap};

/// Where a value sits in the state (`dev.arr[3].a`): the reference's
/// field path, rendered only when an error names it.
pub use vmstate_reference::Path;

/// Writes `v` as a `ty` at `addr`, allocating pointees as prepared memory.
/// Members `v` leaves out keep their bytes. The object is assembled as one
/// image and written once; pointees are allocated in the order the members
/// come, so the addresses are those of writing member by member.
pub fn write(
    heap: &mut Heap,
    types: &Types,
    ty: &CType,
    addr: Addr,
    v: &Value,
    path: &Path,
) -> Result<(), String> {
    let size = types.size_of(ty)?;
    let mut image = heap
        .read(addr, size)
        .map_err(|e| format!("{path}: {e}"))?
        .to_vec();
    fill(heap, types, ty, &mut image, v, path)?;
    heap.write(addr, &image).map_err(|e| format!("{path}: {e}"))
}

/// Fills `image`, the bytes of one `ty`, with `v`.
fn fill(
    heap: &mut Heap,
    types: &Types,
    ty: &CType,
    image: &mut [u8],
    v: &Value,
    path: &Path,
) -> Result<(), String> {
    let mut put = |bytes: &[u8]| match image.get_mut(..bytes.len()) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            Ok(())
        }
        None => Err(format!(
            "{path}: {} bytes do not fit the object",
            bytes.len()
        )),
    };
    match ty {
        CType::Bool => {
            let b = match v {
                Value::Bool(b) => *b as u8,
                Value::Number(n) => {
                    n.as_u64().ok_or_else(|| format!("{path}: bad bool {v}"))? as u8
                }
                _ => return Err(format!("{path}: expected bool, got {v}")),
            };
            put(&[b])
        }
        CType::Int { width, signed } => {
            let raw = int_bits(v, *width, *signed)
                .ok_or_else(|| format!("{path}: {v} is not a {}", type_name(ty)))?;
            put(&raw.to_le_bytes()[..*width as usize])
        }
        CType::Array(elem, n) => {
            if let (Value::String(s), CType::Int { width: 1, .. }) = (v, elem.as_ref()) {
                let bytes = parse_hex(s).map_err(|e| format!("{path}: {e}"))?;
                if bytes.len() as u64 > *n {
                    return Err(format!("{path}: {} bytes for a [{n}] array", bytes.len()));
                }
                return put(&bytes);
            }
            let items = v
                .as_array()
                .ok_or_else(|| format!("{path}: expected an array, got {v}"))?;
            if items.len() as u64 > *n {
                return Err(format!("{path}: {} values for a [{n}] array", items.len()));
            }
            let stride = types.size_of(elem)? as usize;
            for (i, item) in items.iter().enumerate() {
                let at = member(image, stride * i, stride, path)?;
                fill(heap, types, elem, at, item, &Path::Element(path, i as i64))?;
            }
            Ok(())
        }
        CType::Struct(name) => {
            let layout = types.get(name)?;
            let obj = v
                .as_object()
                .ok_or_else(|| format!("{path}: expected an object, got {v}"))?;
            for (key, item) in obj {
                let m = layout
                    .member(key)
                    .ok_or_else(|| format!("{path}: {name} has no member {key}"))?;
                let size = types.size_of(&m.ty)? as usize;
                let at = member(image, m.offset as usize, size, path)?;
                fill(heap, types, &m.ty, at, item, &Path::Field(path, key))?;
            }
            Ok(())
        }
        CType::Pointer(pointee) => {
            let target = match v {
                Value::Null => 0,
                _ => alloc_pointee(heap, types, pointee, v, path)?,
            };
            put(&target.to_le_bytes())
        }
    }
}

/// The `len` bytes at `offset` of an object's image.
fn member<'i>(
    image: &'i mut [u8],
    offset: usize,
    len: usize,
    path: &Path,
) -> Result<&'i mut [u8], String> {
    let end = offset.checked_add(len);
    end.and_then(|end| image.get_mut(offset..end))
        .ok_or_else(|| format!("{path}: member outside its object"))
}

/// Allocates one pointee, or an array of them when `v` is an array (or a
/// hex string for bytes) and the pointee is not itself an array.
fn alloc_pointee(
    heap: &mut Heap,
    types: &Types,
    pointee: &CType,
    v: &Value,
    path: &Path,
) -> Result<Addr, String> {
    let size = types.size_of(pointee)?;
    let alloc = |heap: &mut Heap, n: usize| {
        let total = size
            .checked_mul(n as u64)
            .filter(|&t| t <= 1 << 30)
            .ok_or("pointee too large")?;
        heap.alloc_prepared(vec![0; total as usize])
            .map_err(|e| format!("{path}: {e}"))
    };
    let items: &[Value] = match (v, pointee) {
        (Value::String(s), CType::Int { width: 1, .. }) => {
            let bytes = parse_hex(s).map_err(|e| format!("{path}: {e}"))?;
            let base = alloc(heap, bytes.len())?;
            heap.write(base, &bytes)
                .map_err(|e| format!("{path}: {e}"))?;
            return Ok(base);
        }
        (Value::Array(a), t) if t.array_elem().is_none() => a,
        _ => std::slice::from_ref(v),
    };
    // The allocation comes first (its address is below its pointees'),
    // then its image is filled and written once.
    let base = alloc(heap, items.len())?;
    let mut image = vec![0; size as usize * items.len()];
    for (i, item) in items.iter().enumerate() {
        let at = member(&mut image, size as usize * i, size as usize, path)?;
        fill(
            heap,
            types,
            pointee,
            at,
            item,
            &Path::Element(path, i as i64),
        )?;
    }
    heap.write(base, &image)
        .map_err(|e| format!("{path}: {e}"))?;
    Ok(base)
}

/// Reads a `ty` at `addr` as JSON, shaped like `hint` where it has one.
/// Pointers are followed: the pointee is an array of every object up to the
/// allocation's end when the hint is an array (or there is no hint and the
/// allocation does not hold exactly one), else a single value.
pub fn read(
    heap: &Heap,
    types: &Types,
    ty: &CType,
    addr: Addr,
    hint: Option<&Value>,
) -> Result<Value, String> {
    read_at(heap, types, ty, addr, hint, 0)
}

fn read_at(
    heap: &Heap,
    types: &Types,
    ty: &CType,
    addr: Addr,
    hint: Option<&Value>,
    depth: usize,
) -> Result<Value, String> {
    if depth > 64 {
        return Err("pointer chain too deep".into());
    }
    let mem = |e: vmstate_reference::HeapError| e.to_string();
    let item_hint = |i: usize| hint.and_then(|h| h.as_array()).and_then(|a| a.get(i));
    Ok(match ty {
        CType::Bool => Value::Bool(heap.read(addr, 1).map_err(mem)?[0] != 0),
        CType::Int { width, signed } => {
            let raw = heap.read_uint(addr, *width).map_err(mem)?;
            if *signed {
                let shift = 64 - 8 * width;
                json!(((raw << shift) as i64) >> shift)
            } else {
                json!(raw)
            }
        }
        CType::Array(elem, n)
            if matches!(
                (elem.as_ref(), hint),
                (CType::Int { width: 1, .. }, Some(Value::String(_)))
            ) =>
        {
            Value::String(hex::encode(heap.read(addr, *n).map_err(mem)?))
        }
        CType::Array(elem, n) => {
            let stride = types.size_of(elem)?;
            let items: Result<Vec<Value>, String> = (0..*n)
                .map(|i| {
                    read_at(
                        heap,
                        types,
                        elem,
                        addr + stride * i,
                        item_hint(i as usize),
                        depth,
                    )
                })
                .collect();
            Value::Array(items?)
        }
        CType::Struct(name) => {
            let layout = types.get(name)?;
            let mut obj = Map::new();
            for m in &layout.members {
                let h = hint.and_then(|h| h.get(&m.name));
                obj.insert(
                    m.name.clone(),
                    read_at(heap, types, &m.ty, addr + m.offset, h, depth)?,
                );
            }
            Value::Object(obj)
        }
        CType::Pointer(pointee) => {
            let target = heap.read_ptr(addr).map_err(mem)?;
            if target == 0 {
                return Ok(Value::Null);
            }
            let alloc = heap
                .allocation_at(target)
                .ok_or_else(|| format!("dangling pointer {target:#x}"))?;
            let size = types.size_of(pointee)?.max(1);
            let count = (alloc.end().saturating_sub(target)) / size;
            let as_array = match hint {
                Some(Value::Array(_)) => true,
                Some(Value::String(_)) => true,
                Some(Value::Null) | None => count != 1,
                Some(_) => false,
            };
            if let (Some(Value::String(_)), CType::Int { width: 1, .. }) = (hint, pointee.as_ref())
            {
                return Ok(Value::String(hex::encode(
                    heap.read(target, count).map_err(mem)?,
                )));
            }
            let count = if as_array { count } else { 1 };
            let items: Result<Vec<Value>, String> = (0..count)
                .map(|i| {
                    let h = if as_array {
                        item_hint(i as usize)
                    } else {
                        hint
                    };
                    read_at(heap, types, pointee, target + size * i, h, depth + 1)
                })
                .collect();
            let mut items = items?;
            if as_array {
                Value::Array(items)
            } else {
                items.pop().unwrap_or(Value::Null)
            }
        }
    })
}

/// The same shape with every scalar zero: the default destination.
pub fn zeroed(v: &Value) -> Value {
    match v {
        Value::Bool(_) => Value::Bool(false),
        Value::Number(_) => json!(0),
        Value::String(s) => Value::String("00".repeat(parse_hex(s).map(|b| b.len()).unwrap_or(0))),
        Value::Array(a) => Value::Array(a.iter().map(zeroed).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), zeroed(v))).collect()),
        Value::Null => Value::Null,
    }
}

/// The two's-complement bits of an integer JSON value that fits `width`.
fn int_bits(v: &Value, width: u64, signed: bool) -> Option<u64> {
    let bits = 8 * width as u32;
    if let Some(u) = v.as_u64() {
        let max = if signed {
            (1u128 << (bits - 1)) - 1
        } else {
            (1u128 << bits) - 1
        };
        return ((u as u128) <= max).then_some(u);
    }
    let i = v.as_i64()?;
    let min = -(1i128 << (bits - 1));
    (signed && (i as i128) >= min).then_some(i as u64 & (u64::MAX >> (64 - bits)))
}

fn type_name(ty: &CType) -> String {
    match ty {
        CType::Int { width, signed } => {
            format!("{}int{}_t", if *signed { "" } else { "u" }, width * 8)
        }
        other => format!("{other:?}"),
    }
}

/// Hex bytes, ignoring white space and `|` separators.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let spaced = |c: char| c.is_whitespace() || c == '|';
    let decoded = if s.contains(spaced) {
        hex::decode(s.replace(spaced, ""))
    } else {
        hex::decode(s) // generated states: no separators to remove
    };
    decoded.map_err(|e| format!("bad hex {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn write_then_read_round_trips() {
        let decls = BTreeMap::from([
            ("S".to_string(), "uint32_t a; uint16_t b;".to_string()),
            (
                "P".to_string(),
                "int8_t x; S **arr; int32_t *ar[3]; uint8_t buf[4];".to_string(),
            ),
        ]);
        let types = Types::new(&decls).unwrap();
        let state = json!({
            "x": -65,
            "arr": [{"a": 1, "b": 2}, null],
            "ar": [7, null, -1],
            "buf": [1, 2, 3, 4]
        });
        let mut heap = Heap::default();
        let p = heap
            .alloc_prepared(vec![0; types.get("P").unwrap().size as usize])
            .unwrap();
        let ty = CType::Struct("P".into());
        write(&mut heap, &types, &ty, p, &state, &Path::Root("p")).unwrap();
        assert_eq!(read(&heap, &types, &ty, p, Some(&state)).unwrap(), state);
        assert_eq!(
            zeroed(&json!({"a": [1, null], "h": "0102"})),
            json!({"a": [0, null], "h": "0000"})
        );
    }

    #[test]
    fn integers_must_fit() {
        assert_eq!(int_bits(&json!(255), 1, false), Some(255));
        assert_eq!(int_bits(&json!(256), 1, false), None);
        assert_eq!(int_bits(&json!(-1), 2, true), Some(0xffff));
        assert_eq!(int_bits(&json!(-1), 2, false), None);
        assert_eq!(int_bits(&json!(-129), 1, true), None);
    }

    #[test]
    fn hex_may_be_spaced_and_separated() {
        assert_eq!(parse_hex("0a0B"), Ok(vec![0x0a, 0x0b]));
        assert_eq!(parse_hex(" 0a |\n0b\t"), Ok(vec![0x0a, 0x0b]));
        assert!(parse_hex("0a 0").is_err());
        assert!(parse_hex("0g").is_err());
    }
}
