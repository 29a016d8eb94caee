//! Strict-mode loads (`Compiled::load_strict`) into destinations whose
//! `VMS_ALLOC` pointer slots hold something other than a live buffer of
//! the wanted size: an interior pointer, a freed pointer, one buffer shared
//! by two slots. Strict mode replaces such a slot with a fresh buffer and,
//! once the load succeeded, frees the old value only if it is the start of
//! a live allocation that no slot still holds, and only once. Expected
//! values are worked out by hand from the descriptions below (spec 3.2,
//! `vmstate_handle_alloc`; strict mode as documented on `load_strict`).

use vmstate_harness::case::{ctype::Types, run::prepare, spec::CaseFile};
use vmstate_harness::codec::Compiled;
use vmstate_reference::{Dialect, ErrorKind, Heap};

/// `len` (uint32 at 0), then two `VBUFFER|ALLOC` buffers of `len` bytes:
/// `a` at offset 8, `b` at offset 16.
const TWO_BUFFERS: &str = r#"{
  "source": "strict-mode commit",
  "structs": {"B": "uint32_t len; uint8_t *a; uint8_t *b;"},
  "vmsds": [
    {"name": "bb", "struct": "B", "fields": [
      {"member": "len", "info": "uint32"},
      {"member": "a", "info": "buffer", "size_from": "len", "flags": "POINTER|VBUFFER|ALLOC"},
      {"member": "b", "info": "buffer", "size_from": "len", "flags": "POINTER|VBUFFER|ALLOC"}]}
  ],
  "cases": [
    {"name": "two 5-byte buffers", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"],
     "dest": {"len": 0, "a": "ffffffffff", "b": "eeeeeeeeee"}}
  ]
}"#;

const SLOT_A: u64 = 8;
const SLOT_B: u64 = 16;

/// len = 3, a = 0a 0b 0c, b = 1a 1b 1c, then `QEMU_VM_EOF` (10 bytes of
/// payload: the load returns 10).
const STREAM: &[u8] = &[0, 0, 0, 3, 0x0a, 0x0b, 0x0c, 0x1a, 0x1b, 0x1c, 0x00];

/// The destination in `d`: its VMSD, heap and opaque, with `a` and `b`
/// pointing at two prepared 5-byte buffers.
fn dest(d: Dialect) -> (vmstate_reference::Vmsd, Heap, u64) {
    let file: CaseFile = serde_json::from_str(TWO_BUFFERS).unwrap();
    let types = Types::new(&file.structs).unwrap();
    let spec = &file.cases[0];
    let p = prepare(&file, &types, spec, d, spec.dest.as_ref().unwrap()).unwrap();
    (p.vmsd, p.heap, p.opaque)
}

/// Loads `STREAM` strictly and checks what every case here shares: the
/// load succeeds with 10 bytes consumed, nothing was freed badly, and the
/// two slots hold fresh 3-byte buffers with the loaded bytes.
fn load_ok(d: Dialect, vmsd: &vmstate_reference::Vmsd, heap: &mut Heap, opaque: u64) {
    let r = Compiled::new(d, vmsd).load_strict(heap, opaque, 1, STREAM);
    assert_eq!(r, Ok(10), "{d}");
    assert_eq!(heap.bad_frees(), &[] as &[u64], "{d}");
    let a = heap.read_ptr(opaque + SLOT_A).unwrap();
    let b = heap.read_ptr(opaque + SLOT_B).unwrap();
    assert_eq!(heap.read(a, 3).unwrap(), [0x0a, 0x0b, 0x0c], "{d}");
    assert_eq!(heap.read(b, 3).unwrap(), [0x1a, 0x1b, 0x1c], "{d}");
    assert_eq!(heap.allocation_at(a).unwrap().size(), 3, "{d}");
    assert_eq!(heap.allocation_at(b).unwrap().size(), 3, "{d}");
}

fn is_live(heap: &Heap, base: u64) -> bool {
    heap.allocation_at(base)
        .is_some_and(|a| a.base == base && !a.freed)
}

/// `a` points one byte into its 5-byte buffer: not a buffer strict mode
/// may free. The load replaces it and leaves the buffer alone; `b`'s old
/// buffer (a live base of another size) is freed.
#[test]
fn strict_alloc_over_an_interior_pointer_frees_only_live_bases() {
    for d in Dialect::ALL {
        let (vmsd, mut heap, o) = dest(d);
        let old_a = heap.read_ptr(o + SLOT_A).unwrap();
        let old_b = heap.read_ptr(o + SLOT_B).unwrap();
        heap.write_ptr(o + SLOT_A, old_a + 1).unwrap();
        let live = heap.live_bytes();
        load_ok(d, &vmsd, &mut heap, o);
        assert!(
            is_live(&heap, old_a),
            "{d}: the interior pointer's buffer was freed"
        );
        assert!(!is_live(&heap, old_b), "{d}: b's old buffer is not freed");
        // + 3 + 3 new, - 5 for b's old buffer.
        assert_eq!(heap.live_bytes(), live + 3 + 3 - 5, "{d}");
    }
}

/// `a` holds a pointer to a buffer that is already freed: strict mode must
/// not free it again.
#[test]
fn strict_alloc_over_a_freed_pointer_does_not_free_it_again() {
    for d in Dialect::ALL {
        let (vmsd, mut heap, o) = dest(d);
        let old_a = heap.read_ptr(o + SLOT_A).unwrap();
        heap.free(old_a).unwrap();
        let live = heap.live_bytes();
        load_ok(d, &vmsd, &mut heap, o);
        assert_eq!(heap.live_bytes(), live + 3 + 3 - 5, "{d}");
    }
}

/// `a` and `b` share one 5-byte buffer: both slots are replaced, and the
/// shared buffer is freed exactly once.
#[test]
fn strict_alloc_over_a_shared_buffer_frees_it_once() {
    for d in Dialect::ALL {
        let (vmsd, mut heap, o) = dest(d);
        let old_a = heap.read_ptr(o + SLOT_A).unwrap();
        let old_b = heap.read_ptr(o + SLOT_B).unwrap();
        heap.write_ptr(o + SLOT_B, old_a).unwrap();
        heap.free(old_b).unwrap(); // nothing holds it any more
        let live = heap.live_bytes();
        load_ok(d, &vmsd, &mut heap, o);
        assert!(
            !is_live(&heap, old_a),
            "{d}: the shared buffer is not freed"
        );
        assert_eq!(heap.live_bytes(), live + 3 + 3 - 5, "{d}");
    }
}

/// The same destinations with a stream cut inside `b`: the failed load puts
/// both slots back and frees nothing it did not make.
#[test]
fn failed_strict_load_over_odd_slots_restores_them() {
    for d in Dialect::ALL {
        for interior in [false, true] {
            let (vmsd, mut heap, o) = dest(d);
            let old_a = heap.read_ptr(o + SLOT_A).unwrap();
            let want_a = if interior { old_a + 1 } else { old_a };
            heap.write_ptr(o + SLOT_A, want_a).unwrap();
            heap.write_ptr(o + SLOT_B, want_a).unwrap();
            let live = heap.live_bytes();
            let r = Compiled::new(d, &vmsd).load_strict(&mut heap, o, 1, &STREAM[..8]);
            // 8 bytes: the stream ends inside `b`; the error is the Eof at 8.
            let e = r.unwrap_err();
            assert_eq!(e.kind, ErrorKind::Eof, "{d}");
            assert_eq!(heap.bad_frees(), &[] as &[u64], "{d}");
            assert_eq!(heap.read_ptr(o + SLOT_A).unwrap(), want_a, "{d}");
            assert_eq!(heap.read_ptr(o + SLOT_B).unwrap(), want_a, "{d}");
            assert_eq!(heap.live_bytes(), live, "{d}");
        }
    }
}

/// len = 5, a = 0a..0e, b = 1a..1e, then `QEMU_VM_EOF` (14 bytes of payload).
const STREAM5: &[u8] = &[
    0, 0, 0, 5, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x00,
];

/// Both slots hold live 5-byte buffers and the stream wants 5 bytes each:
/// strict mode loads into the old buffers (no allocation, no free, the
/// pointers stay).
#[test]
fn strict_alloc_reuses_a_live_buffer_of_the_exact_size() {
    for d in Dialect::ALL {
        let (vmsd, mut heap, o) = dest(d);
        let old_a = heap.read_ptr(o + SLOT_A).unwrap();
        let old_b = heap.read_ptr(o + SLOT_B).unwrap();
        let (live, count) = (heap.live_bytes(), heap.allocations().count());
        let r = Compiled::new(d, &vmsd).load_strict(&mut heap, o, 1, STREAM5);
        assert_eq!(r, Ok(14), "{d}");
        assert_eq!(heap.read_ptr(o + SLOT_A).unwrap(), old_a, "{d}");
        assert_eq!(heap.read_ptr(o + SLOT_B).unwrap(), old_b, "{d}");
        assert_eq!(heap.read(old_a, 5).unwrap(), [0x0a, 0x0b, 0x0c, 0x0d, 0x0e]);
        assert_eq!(heap.read(old_b, 5).unwrap(), [0x1a, 0x1b, 0x1c, 0x1d, 0x1e]);
        assert_eq!(heap.live_bytes(), live, "{d}");
        assert_eq!(heap.allocations().count(), count, "{d}: allocated");
        assert_eq!(heap.bad_frees(), &[] as &[u64], "{d}");

        // Cut inside b: a's reused buffer gets its old bytes back.
        let (vmsd, mut heap, o) = dest(d);
        let r = Compiled::new(d, &vmsd).load_strict(&mut heap, o, 1, &STREAM5[..11]);
        assert_eq!(r.unwrap_err().kind, ErrorKind::Eof, "{d}");
        assert_eq!(heap.read_ptr(o + SLOT_A).unwrap(), old_a, "{d}");
        assert_eq!(heap.read(old_a, 5).unwrap(), [0xff; 5], "{d}");
        assert_eq!(heap.read(old_b, 5).unwrap(), [0xee; 5], "{d}");
        assert_eq!(heap.live_bytes(), live, "{d}");
    }
}

/// alloc-combo, `ARRAY_OF_POINTER|AUTO_ALLOC` over a non-NULL slot (the
/// ComboAllocOverNonNull finding): QEMU allocates `field->size` = 8 bytes
/// over it; strict mode loads into the old object when it has at least
/// 8 bytes, else allocates and frees the old one once the load succeeded.
const COMBO: &str = r#"{
  "source": "strict element reuse",
  "structs": {"S": "uint32_t a; uint16_t b;", "P": "uint8_t n; S **arr;"},
  "vmsds": [
    {"name": "p", "struct": "P", "fields": [
      {"member": "n", "info": "uint8"},
      {"member": "arr", "vmsd": "s", "count": "n", "flags": "POINTER|VARRAY|ARRAY_OF_POINTER|STRUCT|AUTO_ALLOC"}]},
    {"name": "s", "struct": "S", "fields": [
      {"member": "a", "info": "uint32"}, {"member": "b", "info": "uint16"}]}
  ],
  "cases": [
    {"name": "one element", "dialects": ["alloc-combo"], "dest": {"n": 1, "arr": [{"a": 9, "b": 9}]}}
  ]
}"#;

/// n = 1, 0x31, a = 1, b = 2, then `QEMU_VM_EOF` (8 bytes of payload).
const COMBO_STREAM: &[u8] = &[0x01, 0x31, 0, 0, 0, 1, 0, 2, 0x00];

#[test]
fn strict_element_reuses_an_old_object_of_at_least_field_size() {
    let d = Dialect::AllocCombo;
    // (size of the object in the slot, reused?)
    for (size, reused) in [(None, true), (Some(12), true), (Some(4), false)] {
        let file: CaseFile = serde_json::from_str(COMBO).unwrap();
        let types = Types::new(&file.structs).unwrap();
        let spec = &file.cases[0];
        let p = prepare(&file, &types, spec, d, spec.dest.as_ref().unwrap()).unwrap();
        let (vmsd, mut heap, o) = (p.vmsd, p.heap, p.opaque);
        let table = heap.read_ptr(o + 8).unwrap();
        if let Some(size) = size {
            let obj = heap.alloc_prepared(vec![0x99; size]).unwrap();
            heap.write_ptr(table, obj).unwrap();
        }
        let old = heap.read_ptr(table).unwrap();
        let r = Compiled::new(d, &vmsd).load_strict(&mut heap, o, 1, COMBO_STREAM);
        assert_eq!(r, Ok(8), "{size:?}");
        assert_eq!(heap.bad_frees(), &[] as &[u64], "{size:?}");
        let new = heap.read_ptr(table).unwrap();
        assert_eq!(new == old, reused, "{size:?}");
        assert_eq!(heap.read(new, 6).unwrap(), [1, 0, 0, 0, 2, 0], "{size:?}");
        assert_eq!(is_live(&heap, old), reused, "{size:?}");
        if reused {
            // The element (field->size = 8 bytes) is zeroed before the
            // load, as g_malloc0(field->size) would be: bytes 6..8 are the
            // padding after b.
            assert_eq!(heap.read(old + 6, 2).unwrap(), [0, 0], "{size:?}");
        }
    }
}

/// Strict mode must not refuse a well-formed load whose allocations the
/// documented budget covers (`load_strict`: at most
/// `alloc_ratio * input.len() + 16 KiB`, `alloc_ratio` summing, per
/// allocating field, `field->size` for a dynamic element and `size` per
/// element for a `VMS_ALLOC` buffer of structs). `Big` is 4096 bytes with one
/// byte on the wire; `Empty` is 16 bytes with none.
const BUDGET: &str = r#"{
  "source": "strict budget",
  "structs": {
    "Big": "uint8_t a; uint8_t pad[4095];",
    "Empty": "uint8_t pad[16];",
    "D": "uint8_t n; Big **arr;",
    "A": "uint8_t n; Big *buf;",
    "Z": "uint8_t n; Empty *buf;",
    "T": "uint16_t n; uint8_t **tab;"
  },
  "vmsds": [
    {"name": "big", "struct": "Big", "fields": [{"member": "a", "info": "uint8"}]},
    {"name": "empty", "struct": "Empty", "fields": []},
    {"name": "d", "struct": "D", "fields": [
      {"member": "n", "info": "uint8"},
      {"member": "arr", "vmsd": "big", "count": "n", "flags": "POINTER|VARRAY|ARRAY_OF_POINTER|STRUCT|AUTO_ALLOC"}]},
    {"name": "a", "struct": "A", "fields": [
      {"member": "n", "info": "uint8"},
      {"member": "buf", "vmsd": "big", "count": "n", "flags": "POINTER|VARRAY|STRUCT|ALLOC"}]},
    {"name": "z", "struct": "Z", "fields": [
      {"member": "n", "info": "uint8"},
      {"member": "buf", "vmsd": "empty", "count": "n", "flags": "POINTER|VARRAY|STRUCT|ALLOC"}]},
    {"name": "t", "struct": "T", "fields": [
      {"member": "n", "info": "uint16"},
      {"member": "tab", "info": "uint8", "count": "n", "flags": "POINTER|VARRAY|ARRAY_OF_POINTER|ALLOC"}]}
  ],
  "cases": [
    {"name": "d", "dialects": ["qemu-11.1", "alloc-combo"], "root": "d",
     "dest": {"n": 10, "arr": [null, null, null, null, null, null, null, null, null, null]}},
    {"name": "a", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"], "root": "a",
     "dest": {"n": 0, "buf": null}},
    {"name": "z", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"], "root": "z",
     "dest": {"n": 0, "buf": null}},
    {"name": "t", "dialects": ["qemu-master", "qemu-11.1"], "root": "t",
     "dest": {"n": 0, "tab": null}}
  ]
}"#;

fn budget_dest(case: usize, d: Dialect) -> (vmstate_reference::Vmsd, Heap, u64) {
    let file: CaseFile = serde_json::from_str(BUDGET).unwrap();
    let types = Types::new(&file.structs).unwrap();
    let spec = &file.cases[case];
    let p = prepare(&file, &types, spec, d, spec.dest.as_ref().unwrap()).unwrap();
    (p.vmsd, p.heap, p.opaque)
}

/// 10 auto-allocated 4096-byte elements from 22 input bytes (n, then
/// 0x31 + `a` ten times, then `QEMU_VM_EOF`): 40960 bytes, more than
/// 22 + 16 KiB, within 4096 * 22 + 16 KiB.
#[test]
fn strict_budget_covers_auto_allocated_elements() {
    let mut stream = vec![10];
    for i in 0..10 {
        stream.extend_from_slice(&[0x31, i]);
    }
    stream.push(0);
    for d in [Dialect::Qemu11_1, Dialect::AllocCombo] {
        let (vmsd, mut heap, o) = budget_dest(0, d);
        let live = heap.live_bytes();
        let r = Compiled::new(d, &vmsd).load_strict(&mut heap, o, 1, &stream);
        assert_eq!(r, Ok(21), "{d}");
        assert_eq!(heap.live_bytes(), live + 10 * 4096, "{d}");
        let table = heap.read_ptr(o + 8).unwrap();
        let last = heap.read_ptr(table + 9 * 8).unwrap();
        assert_eq!(heap.read(last, 1).unwrap(), [9], "{d}");
    }
}

/// A `VMS_ALLOC` buffer of 10 `Big` from 12 input bytes (n, ten `a` =
/// 0x10.., none of them the 0x05 of a subsection the loader peeks for after
/// each struct, `QEMU_VM_EOF`): 40960 bytes, more than 12 + 16 KiB, within
/// 4096 * 12 + 16 KiB.
#[test]
fn strict_budget_covers_an_allocated_buffer_of_structs() {
    let mut stream = vec![10];
    stream.extend(0x10..0x1a);
    stream.push(0);
    for d in Dialect::ALL {
        let (vmsd, mut heap, o) = budget_dest(1, d);
        let live = heap.live_bytes();
        let r = Compiled::new(d, &vmsd).load_strict(&mut heap, o, 1, &stream);
        assert_eq!(r, Ok(11), "{d}");
        assert_eq!(heap.live_bytes(), live + 10 * 4096, "{d}");
        let buf = heap.read_ptr(o + 8).unwrap();
        assert_eq!(heap.read(buf + 9 * 4096, 1).unwrap(), [0x19], "{d}");
    }
}

/// 200 empty 16-byte structs from 2 input bytes (n = 200, `QEMU_VM_EOF`):
/// 3200 bytes with nothing on the wire, which only the 16 KiB slack covers.
#[test]
fn strict_budget_slack_covers_elements_with_nothing_on_the_wire() {
    for d in Dialect::ALL {
        let (vmsd, mut heap, o) = budget_dest(2, d);
        let live = heap.live_bytes();
        let r = Compiled::new(d, &vmsd).load_strict(&mut heap, o, 1, &[200, 0]);
        assert_eq!(r, Ok(1), "{d}");
        assert_eq!(heap.live_bytes(), live + 200 * 16, "{d}");
    }
}

/// A `VMS_ALLOC` table of 3000 pointers (8 bytes each, the host pointer
/// stride of qemu-master and qemu-11.1) to 1-byte objects, every slot
/// NULL in the fresh table, so each element is one 0x30 marker: 24000
/// bytes from 3003 input bytes (n = 0x0bb8, 3000 markers, `QEMU_VM_EOF`),
/// more than 1 * 3003 + 16 KiB (the object size as the ratio), within
/// 8 * 3003 + 16 KiB.
#[test]
fn strict_budget_counts_a_pointer_table_at_the_pointer_stride() {
    let mut stream = vec![0x0b, 0xb8];
    stream.extend(std::iter::repeat_n(0x30, 3000));
    stream.push(0);
    for d in [Dialect::QemuMaster, Dialect::Qemu11_1] {
        let (vmsd, mut heap, o) = budget_dest(3, d);
        let live = heap.live_bytes();
        let r = Compiled::new(d, &vmsd).load_strict(&mut heap, o, 1, &stream);
        assert_eq!(r, Ok(3002), "{d}");
        assert_eq!(heap.live_bytes(), live + 3000 * 8, "{d}");
    }
}
