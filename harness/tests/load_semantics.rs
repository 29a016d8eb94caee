//! Load behaviour that the case files in corpus/vectors cannot state
//! (they run with the default limits), checked on both codecs: the
//! reference model (`vmstate_reference::load_state_with`) and the
//! optimized one (`Compiled::load`). Every expected value is worked out by
//! hand from the description and the stream, never taken from a codec.

use vmstate_harness::case::{ctype::Types, run::prepare, spec::CaseFile};
use vmstate_harness::codec::Compiled;
use vmstate_reference::{Dialect, Error, ErrorKind, Heap, HeapError, Limits, Vmsd};

/// A prepared destination: VMSD, heap, opaque.
fn dest(json: &str, d: Dialect) -> (Vmsd, Heap, u64) {
    let file: CaseFile = serde_json::from_str(json).unwrap();
    let types = Types::new(&file.structs).unwrap();
    let spec = &file.cases[0];
    let p = prepare(&file, &types, spec, d, spec.dest.as_ref().unwrap()).unwrap();
    (p.vmsd, p.heap, p.opaque)
}

/// Loads `stream` with `limits` on both codecs; returns both results and
/// heaps (reference first).
fn both(
    json: &str,
    d: Dialect,
    stream: &[u8],
    limits: Limits,
) -> [(Result<usize, Error>, Heap, u64); 2] {
    let (vmsd, heap, o) = dest(json, d);
    both_on(&vmsd, heap, o, d, stream, limits)
}

/// [`both`] on a prepared destination.
fn both_on(
    vmsd: &Vmsd,
    heap: Heap,
    o: u64,
    d: Dialect,
    stream: &[u8],
    limits: Limits,
) -> [(Result<usize, Error>, Heap, u64); 2] {
    let mut h1 = heap.clone();
    let r1 = vmstate_reference::load_state_with(d, vmsd, &mut h1, o, 1, stream, &limits);
    let mut h2 = heap;
    let r2 = Compiled::with_limits(d, vmsd, limits).load(&mut h2, o, 1, stream);
    [(r1, h1, o), (r2, h2, o)]
}

/// For each (limit, offset, path): both codecs stop with `ElementLimit`
/// at that offset and field path.
fn stops_at(json: &str, d: Dialect, stream: &[u8], cases: &[(u64, usize, &str)]) {
    for &(max, offset, path) in cases {
        for (i, (r, _, _)) in both(json, d, stream, limits(max)).into_iter().enumerate() {
            let e = r.unwrap_err();
            assert_eq!(
                e.kind,
                ErrorKind::ElementLimit(max),
                "{d} codec {i} max {max}"
            );
            assert_eq!(
                (e.offset, e.path.as_str()),
                (offset, path),
                "{d} codec {i} max {max}"
            );
        }
    }
}

fn limits(max_elements: u64) -> Limits {
    Limits {
        max_elements,
        ..Limits::default()
    }
}

/// `a`: 3 uint32 (ARRAY), then `s`: one struct of two uint32. The load
/// visits 3 + 1 + 2 = 6 elements: a[0..3], s, s.x, s.y.
const SIX_ELEMENTS: &str = r#"{
  "source": "element limit",
  "structs": {"S": "uint32_t x; uint32_t y;", "T": "uint32_t a[3]; S s;"},
  "vmsds": [
    {"name": "s", "struct": "S", "fields": [{"member": "x", "info": "uint32"}, {"member": "y", "info": "uint32"}]},
    {"name": "t", "struct": "T", "fields": [
      {"member": "a", "info": "uint32", "flags": "ARRAY"},
      {"member": "s", "vmsd": "s", "flags": "STRUCT"}]}
  ],
  "cases": [{"name": "zero", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"], "root": "t", "dest": {}}]
}"#;

/// a = 1 2 3, s = {4, 5}, then `QEMU_VM_EOF`: 20 bytes of payload.
const SIX_STREAM: &[u8] = &[
    0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0,
];

/// `Limits::max_elements` counts every element visited, across fields and
/// nesting: a limit of 6 lets the 6-element load through, 5 stops it at
/// the sixth element (s.y, offset 16), 2 at the third (a[2], offset 8).
#[test]
fn the_element_limit_counts_every_element_and_stops_at_the_first_past_it() {
    for d in Dialect::ALL {
        for (i, (r, heap, o)) in both(SIX_ELEMENTS, d, SIX_STREAM, limits(6))
            .into_iter()
            .enumerate()
        {
            assert_eq!(r, Ok(20), "{d} codec {i}");
            assert_eq!(
                heap.read(o, 20).unwrap()[..4],
                [1, 0, 0, 0],
                "{d} codec {i}"
            );
            assert_eq!(heap.read_uint(o + 16, 4).unwrap(), 5, "{d} codec {i}");
        }
        stops_at(
            SIX_ELEMENTS,
            d,
            SIX_STREAM,
            &[(5, 16, "t.s.y"), (2, 8, "t.a[2]"), (0, 0, "t.a[0]")],
        );
    }
}

/// One struct field `s` of two uint32: the load visits 1 + 2 = 3 elements
/// (s, s.x, s.y).
const STRUCT_FIRST: &str = r#"{
  "source": "element limit, struct first",
  "structs": {"S": "uint32_t x; uint32_t y;", "U": "S s;"},
  "vmsds": [
    {"name": "s", "struct": "S", "fields": [{"member": "x", "info": "uint32"}, {"member": "y", "info": "uint32"}]},
    {"name": "u", "struct": "U", "fields": [{"member": "s", "vmsd": "s", "flags": "STRUCT"}]}
  ],
  "cases": [{"name": "zero", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"], "root": "u", "dest": {}}]
}"#;

/// The limit binds inside a struct that is the first thing loaded: 3
/// passes, 2 stops at s.y (offset 4), 1 at s.x (offset 0).
#[test]
fn the_element_limit_binds_inside_the_first_struct() {
    let stream = [0, 0, 0, 4, 0, 0, 0, 5, 0];
    for d in Dialect::ALL {
        for (i, (r, heap, o)) in both(STRUCT_FIRST, d, &stream, limits(3))
            .into_iter()
            .enumerate()
        {
            assert_eq!(r, Ok(8), "{d} codec {i}");
            assert_eq!(heap.read_uint(o + 4, 4).unwrap(), 5, "{d} codec {i}");
        }
        stops_at(
            STRUCT_FIRST,
            d,
            &stream,
            &[(2, 4, "u.s.y"), (1, 0, "u.s.x")],
        );
    }
}

/// `v`: 3 bools (ARRAY), then `s`: a struct of two bools.
const BOOLS: &str = r#"{
  "source": "bool bytes",
  "structs": {"B": "bool a; bool b;", "T": "bool v[3]; B s;"},
  "vmsds": [
    {"name": "b", "struct": "B", "fields": [{"member": "a", "info": "bool"}, {"member": "b", "info": "bool"}]},
    {"name": "t", "struct": "T", "fields": [
      {"member": "v", "info": "bool", "flags": "ARRAY"},
      {"member": "s", "vmsd": "b", "flags": "STRUCT"}]}
  ],
  "cases": [{"name": "zero", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"], "root": "t", "dest": {}}]
}"#;

/// `ar`: an array of 2 pointers to bool (`ARRAY|ARRAY_OF_POINTER`), each
/// pointing at a prepared bool: loaded one element at a time.
const BOOL_POINTERS: &str = r#"{
  "source": "bool bytes through pointers",
  "structs": {"T": "bool *ar[2];"},
  "vmsds": [{"name": "t", "struct": "T", "fields": [{"member": "ar", "info": "bool", "flags": "ARRAY|ARRAY_OF_POINTER"}]}],
  "cases": [{"name": "two", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"], "root": "t", "dest": {"ar": [false, false]}}]
}"#;

/// get_bool: `*v = qemu_get_byte(f)` into a C `bool`, so any non-zero
/// byte is stored as 1: in arrays, in nested structs, through pointers.
#[test]
fn a_bool_stores_one_for_any_non_zero_byte() {
    let stream = [0x02, 0xff, 0x00, 0x02, 0x80, 0x00];
    for d in Dialect::ALL {
        for (i, (r, heap, o)) in both(BOOLS, d, &stream, Limits::default())
            .into_iter()
            .enumerate()
        {
            assert_eq!(r, Ok(5), "{d} codec {i}");
            assert_eq!(heap.read(o, 5).unwrap(), [1, 1, 0, 1, 1], "{d} codec {i}");
        }
        for (i, (r, heap, o)) in both(BOOL_POINTERS, d, &[0x02, 0x80, 0x00], Limits::default())
            .into_iter()
            .enumerate()
        {
            assert_eq!(r, Ok(2), "{d} codec {i}");
            for k in 0..2 {
                let p = heap.read_ptr(o + 8 * k).unwrap();
                assert_eq!(heap.read(p, 1).unwrap(), [1], "{d} codec {i} ar[{k}]");
            }
        }
    }
}

/// `v`: an ARRAY of 2 elements of 4 bytes (uint32_t), loaded with the
/// 1-byte `uint8` info: the stride is the field's size (4), not the info's
/// width, so each byte lands at the start of its element.
const WIDE_STRIDE: &str = r#"{
  "source": "stride is field size",
  "structs": {"T": "uint32_t v[2];"},
  "vmsds": [{"name": "t", "struct": "T", "fields": [{"member": "v", "info": "uint8", "flags": "ARRAY"}]}],
  "cases": [{"name": "zero", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"], "root": "t", "dest": {}}]
}"#;

#[test]
fn scalar_elements_are_a_field_size_apart() {
    let stream = [0x01, 0x02, 0x00];
    for d in Dialect::ALL {
        for (i, (r, heap, o)) in both(WIDE_STRIDE, d, &stream, Limits::default())
            .into_iter()
            .enumerate()
        {
            assert_eq!(r, Ok(2), "{d} codec {i}");
            assert_eq!(
                heap.read(o, 8).unwrap(),
                [1, 0, 0, 0, 2, 0, 0, 0],
                "{d} codec {i}"
            );
        }
    }
}

/// `p`: an array of 5 pointers to uint32, all NULL in the destination, so
/// every element is one 0x30 byte (the optimized codec consumes such runs
/// in one scan).
const NULL_POINTERS: &str = r#"{
  "source": "a run of NULL entries",
  "structs": {"T": "uint32_t *p[5];"},
  "vmsds": [{"name": "t", "struct": "T", "fields": [{"member": "p", "info": "uint32", "flags": "ARRAY|ARRAY_OF_POINTER"}]}],
  "cases": [{"name": "null", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"], "root": "t", "dest": {}}]
}"#;

/// Each NULL entry is still an element: a limit of 5 lets the five 0x30
/// bytes through, 3 stops at p[3] (offset 3), 0 at p[0]. A byte that is
/// not 0x30 ends the run where it stands: p[2], offset 2.
#[test]
fn a_run_of_null_entries_counts_each_element_and_stops_at_a_bad_byte() {
    let stream = [0x30, 0x30, 0x30, 0x30, 0x30, 0x00];
    for d in Dialect::ALL {
        for (i, (r, heap, o)) in both(NULL_POINTERS, d, &stream, limits(5))
            .into_iter()
            .enumerate()
        {
            assert_eq!(r, Ok(5), "{d} codec {i}");
            assert_eq!(heap.read(o, 40).unwrap(), [0; 40], "{d} codec {i}");
        }
        stops_at(
            NULL_POINTERS,
            d,
            &stream,
            &[(3, 3, "t.p[3]"), (0, 0, "t.p[0]")],
        );
        let bad = [0x30, 0x30, 0x32, 0x30, 0x30, 0x00];
        for (i, (r, _, _)) in both(NULL_POINTERS, d, &bad, Limits::default())
            .into_iter()
            .enumerate()
        {
            let e = r.unwrap_err();
            let kind = if d == Dialect::Qemu10 {
                ErrorKind::NullptrMarkerExpected(0x32)
            } else {
                ErrorKind::UnexpectedPtrMarker(0x32)
            };
            assert_eq!(
                (e.kind, e.offset, e.path.as_str()),
                (kind, 2, "t.p[2]"),
                "{d} codec {i}"
            );
        }
    }
}

/// Both codecs fail `stream` into `heap` with `kind` at element `path`,
/// with the same error.
fn both_fail(
    vmsd: &Vmsd,
    heap: Heap,
    o: u64,
    d: Dialect,
    stream: &[u8],
    kind: ErrorKind,
    path: &str,
) {
    let [(r1, _, _), (r2, _, _)] = both_on(vmsd, heap, o, d, stream, Limits::default());
    let e = r1.unwrap_err();
    assert_eq!((&e.kind, e.path.as_str()), (&kind, path), "{d} reference");
    assert_eq!(r2, Err(e), "{d} optimized");
}

/// `s`: an ARRAY of 2 structs of one uint64: 8-byte elements in place,
/// not slots, so a leading 0x30 byte is data (x[0] = 0x3030303030303030).
const EIGHT_BYTE_STRUCTS: &str = r#"{
  "source": "8-byte elements that are not pointers",
  "structs": {"S": "uint64_t x;", "T": "S s[2];"},
  "vmsds": [
    {"name": "s", "struct": "S", "fields": [{"member": "x", "info": "uint64"}]},
    {"name": "t", "struct": "T", "fields": [{"member": "s", "vmsd": "s", "flags": "ARRAY|STRUCT"}]}
  ],
  "cases": [{"name": "zero", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"], "root": "t", "dest": {}}]
}"#;

/// Only slots of host pointers read as NULL entries: a zeroed 8-byte
/// struct followed by 0x30 bytes loads them as its value.
#[test]
fn zeroed_eight_byte_elements_are_not_null_entries() {
    let mut stream = vec![0x30; 8];
    stream.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0]);
    for d in Dialect::ALL {
        for (i, (r, heap, o)) in both(EIGHT_BYTE_STRUCTS, d, &stream, Limits::default())
            .into_iter()
            .enumerate()
        {
            assert_eq!(r, Ok(16), "{d} codec {i}");
            assert_eq!(
                heap.read_uint(o, 8).unwrap(),
                0x3030_3030_3030_3030,
                "{d} codec {i}"
            );
            assert_eq!(heap.read_uint(o + 8, 8).unwrap(), 1, "{d} codec {i}");
        }
    }
}

/// qemu-10.x `.size = 0` on an array of pointers: every element is slot
/// 0 (`first_elem + size * i`), and `!curr_elem && size` is false, so a
/// NULL slot is no placeholder: `get_uint32` stores through NULL.
#[test]
fn a_null_slot_of_size_zero_is_no_placeholder() {
    let json = NULL_POINTERS.replace(
        r#""flags": "ARRAY|ARRAY_OF_POINTER"}"#,
        r#""flags": "ARRAY|ARRAY_OF_POINTER", "size": 0}"#,
    );
    let d = Dialect::Qemu10;
    let (vmsd, heap, o) = dest(&json, d);
    assert_eq!(vmsd.fields[0].size, 0);
    let kind = ErrorKind::Memory(HeapError::NullDeref { addr: 0 });
    both_fail(&vmsd, heap, o, d, &[0x30, 0x30, 0x00], kind, "t.p[0]");
}

/// `p`: a pointer to a table of 3 pointers to uint32, all NULL.
const POINTER_TO_TABLE: &str = r#"{
  "source": "a table behind a pointer",
  "structs": {"T": "uint32_t **p;"},
  "vmsds": [{"name": "t", "struct": "T", "fields": [{"member": "p", "info": "uint32", "num": 3, "flags": "POINTER|ARRAY|ARRAY_OF_POINTER"}]}],
  "cases": [{"name": "null", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"], "root": "t", "dest": {"p": [null, null, null]}}]
}"#;

/// A table that was freed holds no NULL entries: reading slot 0 is a use
/// after free (undefined behaviour in C), however NULL its bytes look.
#[test]
fn a_freed_table_is_read_as_freed_memory() {
    for d in Dialect::ALL {
        let (vmsd, mut heap, o) = dest(POINTER_TO_TABLE, d);
        let table = heap.read_ptr(o).unwrap();
        assert_eq!(heap.read(table, 24).unwrap(), [0; 24]);
        heap.free(table).unwrap();
        let kind = ErrorKind::Memory(HeapError::UseAfterFree { addr: table });
        both_fail(&vmsd, heap, o, d, &[0x30, 0x30, 0x30, 0x00], kind, "t.p[0]");
    }
}

/// A slot whose every byte is non-zero (here 0x31 x 8, as a stray value
/// would be) is a pointer, not a NULL entry, even before a 0x30 byte: the
/// element loads through it.
#[test]
fn a_slot_of_non_zero_bytes_is_followed() {
    let wild = 0x3131_3131_3131_3131;
    for d in Dialect::ALL {
        let (vmsd, mut heap, o) = dest(NULL_POINTERS, d);
        heap.write_ptr(o, wild).unwrap();
        let kind = ErrorKind::Memory(HeapError::OutOfBounds { addr: wild, len: 4 });
        both_fail(&vmsd, heap, o, d, &[0x30; 9], kind, "t.p[0]");
    }
}

/// `s`: an ARRAY of 2 structs whose one field is `uint32 equal`.
const EQUAL_STRUCTS: &str = r#"{
  "source": "structs that only compare",
  "structs": {"S": "uint32_t x;", "T": "S s[2];"},
  "vmsds": [
    {"name": "s", "struct": "S", "fields": [{"member": "x", "info": "uint32 equal"}]},
    {"name": "t", "struct": "T", "fields": [{"member": "s", "vmsd": "s", "flags": "ARRAY|STRUCT"}]}
  ],
  "cases": [{"name": "five", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"], "root": "t", "dest": {"s": [{"x": 5}, {"x": 5}]}}]
}"#;

/// A struct of nothing but `*_equal` fields is no flat struct to store in
/// one pass: `get_uint32_equal` compares 6 with the 5 in memory and fails.
#[test]
fn a_struct_of_equal_fields_compares_each_element() {
    let stream = [0, 0, 0, 5, 0, 0, 0, 6, 0];
    for d in Dialect::ALL {
        let (vmsd, heap, o) = dest(EQUAL_STRUCTS, d);
        let kind = ErrorKind::NotEqual {
            info: "uint32 equal",
            local: 5,
            incoming: 6,
        };
        both_fail(&vmsd, heap, o, d, &stream, kind, "t.s[1].x");
    }
}

/// `p`: the first 3 of 4 pointers (ARRAY, `num` 3), then `b`: one byte.
/// p[0] points at a uint32; p[1..4] are NULL.
const THREE_OF_FOUR: &str = r#"{
  "source": "a run of NULL entries ends with the field",
  "structs": {"T": "uint32_t *p[4]; uint8_t b;"},
  "vmsds": [{"name": "t", "struct": "T", "fields": [
    {"member": "p", "info": "uint32", "num": 3, "flags": "ARRAY|ARRAY_OF_POINTER"},
    {"member": "b", "info": "uint8"}]}],
  "cases": [{"name": "one", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"], "root": "t", "dest": {"p": [0, null, null, null]}}]
}"#;

/// p[0] loads 7 in place (no marker before a non-NULL slot), p[1] and
/// p[2] are one `30` each, and the third `30` is `b`'s value, although
/// the table's slot 3 is NULL too.
#[test]
fn a_run_of_null_entries_stops_at_the_fields_count() {
    let stream = [0, 0, 0, 7, 0x30, 0x30, 0x30, 0];
    for d in Dialect::ALL {
        for (i, (r, heap, o)) in both(THREE_OF_FOUR, d, &stream, Limits::default())
            .into_iter()
            .enumerate()
        {
            assert_eq!(r, Ok(7), "{d} codec {i}");
            let p0 = heap.read_ptr(o).unwrap();
            assert_eq!(heap.read_uint(p0, 4).unwrap(), 7, "{d} codec {i}");
            assert_eq!(heap.read(o + 32, 1).unwrap(), [0x30], "{d} codec {i}");
        }
    }
}

/// `a`: 2 uint32 (ARRAY). The stream ends 2 bytes into a[1].
const TWO_UINT32: &str = r#"{
  "source": "a truncated scalar array",
  "structs": {"T": "uint32_t a[2];"},
  "vmsds": [{"name": "t", "struct": "T", "fields": [{"member": "a", "info": "uint32", "flags": "ARRAY"}]}],
  "cases": [{"name": "zero", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"], "root": "t", "dest": {}}]
}"#;

/// `qemu_get_be32` past the end reads the bytes there then zeros: a[1]
/// is stored as 0xaabb0000 before the sticky error is noticed (EOF at
/// offset 6, path t.a[1]).
#[test]
fn a_truncated_element_is_stored_with_zeros_before_the_error() {
    let stream = [0, 0, 0, 1, 0xaa, 0xbb];
    for d in Dialect::ALL {
        for (i, (r, heap, o)) in both(TWO_UINT32, d, &stream, Limits::default())
            .into_iter()
            .enumerate()
        {
            let e = r.unwrap_err();
            assert_eq!(
                (e.kind, e.offset, e.path.as_str()),
                (ErrorKind::Eof, 6, "t.a[1]"),
                "{d} codec {i}"
            );
            assert_eq!(heap.read_uint(o, 4).unwrap(), 1, "{d} codec {i}");
            assert_eq!(
                heap.read_uint(o + 4, 4).unwrap(),
                0xaabb_0000,
                "{d} codec {i}"
            );
        }
    }
}
