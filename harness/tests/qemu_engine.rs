//! QEMU's own vmstate.c against the reference model, through the engine
//! built by harness/qemu/build.sh. Runs only when VMSTATE_QEMU_ENGINE names
//! the engine executable.

use std::path::PathBuf;
use vmstate_harness::engine::qemu::{
    QemuEngine, QemuRun,
    protocol::{EventKind, Lsan},
};
use vmstate_reference::{
    Addr, Allocator, Dialect, Dynamic, Field, Flag, Heap, Indirect, Info, Origin, VmsAlloc, Vmsd,
    load_state, save_state,
};

fn engine() -> Option<QemuEngine> {
    let Some(path) = std::env::var_os("VMSTATE_QEMU_ENGINE") else {
        eprintln!("qemu_engine: VMSTATE_QEMU_ENGINE is not set; skipping");
        return None;
    };
    Some(QemuEngine::spawn(&PathBuf::from(path)).expect("engine starts"))
}

fn bit(d: Dialect, f: Flag) -> u32 {
    d.bit(f).unwrap_or_else(|| panic!("{f:?} missing in {d:?}"))
}

fn vmsd(d: Dialect, name: &str, fields: Vec<Field>) -> Vmsd {
    Vmsd {
        name: name.into(),
        version_id: 1,
        minimum_version_id: 1,
        fields,
        terminator: bit(d, Flag::End),
        subsections: vec![],
        needed: None,
    }
}

fn scalar(name: &str, offset: u64, info: Info) -> Field {
    let mut f = Field::new(name, offset, 0x1);
    f.info = Some(info);
    f.size = info.scalar_width().unwrap();
    f
}

/// A count member of one byte at `offset`, in the dialect's spelling.
fn varray_u8(d: Dialect, mut f: Field, count_at: u64) -> Field {
    f.num_indirect = Indirect {
        offset: count_at,
        size: 1,
    };
    // qemu-master has one VMS_VARRAY; qemu-10.x and qemu-11.1 the four typed
    // flags (11.1 reads the width from num_indirect.size either way).
    f.flags |= d
        .bit(Flag::Varray)
        .unwrap_or_else(|| bit(d, Flag::VarrayUint8));
    f
}

/// struct { u32 a; u8 n; u16 arr[3] @8; u16 *p @16 }
fn case_varray(d: Dialect) -> (Vmsd, Heap, Addr) {
    let mut arr = scalar("arr", 8, Info::Uint16);
    arr.flags = 0;
    let arr = varray_u8(d, arr, 4);
    let mut p = scalar("p", 16, Info::Uint16);
    p.flags = bit(d, Flag::Pointer);
    let p = varray_u8(d, p, 4);
    let v = vmsd(d, "dev", vec![scalar("a", 0, Info::Uint32), arr, p]);
    let mut heap = Heap::default();
    let target = heap
        .alloc_prepared(vec![0xa1, 0xa2, 0xb1, 0xb2, 0xc1, 0xc2])
        .unwrap();
    let mut root = vec![0u8; 24];
    root[..4].copy_from_slice(&0x1122_3344u32.to_le_bytes());
    root[4] = 3;
    root[8..14].copy_from_slice(&[1, 0, 2, 0, 3, 0]);
    root[16..24].copy_from_slice(&target.to_le_bytes());
    let opaque = heap.alloc_prepared(root).unwrap();
    (v, heap, opaque)
}

/// uint32 *ptrs[4] = { &x, NULL, NULL, &y }
fn case_pointers(d: Dialect) -> (Vmsd, Heap, Addr) {
    let mut f = Field::new(
        "ptrs",
        0,
        bit(d, Flag::Array) | bit(d, Flag::ArrayOfPointer),
    );
    f.num = 4;
    f.size = 8;
    f.info = Some(Info::Uint32);
    let v = vmsd(d, "ptrs", vec![f]);
    let mut heap = Heap::default();
    let x = heap.alloc_prepared(0xdead_beefu32.to_le_bytes()).unwrap();
    let y = heap.alloc_prepared(1u32.to_le_bytes()).unwrap();
    let mut root = vec![0u8; 32];
    root[..8].copy_from_slice(&x.to_le_bytes());
    root[24..].copy_from_slice(&y.to_le_bytes());
    let opaque = heap.alloc_prepared(root).unwrap();
    (v, heap, opaque)
}

/// struct { u32 len; u8 *buf @8 } with VMSTATE_VBUFFER_ALLOC_UINT32.
fn case_alloc(d: Dialect) -> (Vmsd, Heap, Addr) {
    let mut buf = Field::new(
        "buf",
        8,
        bit(d, Flag::Vbuffer) | bit(d, Flag::Pointer) | bit(d, Flag::Alloc),
    );
    buf.info = Some(Info::Buffer);
    buf.size_indirect = Indirect { offset: 0, size: 4 };
    let v = vmsd(d, "vbuf", vec![scalar("len", 0, Info::Uint32), buf]);
    let mut heap = Heap::default();
    let data = heap.alloc_prepared(b"hello").unwrap();
    let mut root = vec![0u8; 16];
    root[..4].copy_from_slice(&5u32.to_le_bytes());
    root[8..].copy_from_slice(&data.to_le_bytes());
    let opaque = heap.alloc_prepared(root).unwrap();
    (v, heap, opaque)
}

/// struct Elem { u32 x; u8 y; } (8 bytes)
fn elem_vmsd(d: Dialect) -> Vmsd {
    vmsd(
        d,
        "elem",
        vec![scalar("x", 0, Info::Uint32), scalar("y", 4, Info::Uint8)],
    )
}

/// struct { u8 n; Elem **q @8 } with q = { &e0, NULL, &e1 } and n = 3, `q`
/// described like NVMe's aer_reqs: POINTER | STRUCT | ARRAY_OF_POINTER |
/// VARRAY_UINT8 | ARRAY_OF_POINTER_AUTO_ALLOC, size = sizeof(Elem).
/// Returns the address of the table too.
fn case_auto_alloc(d: Dialect) -> (Vmsd, Heap, Addr, Addr) {
    let mut q = Field::new(
        "q",
        8,
        bit(d, Flag::Pointer)
            | bit(d, Flag::Struct)
            | bit(d, Flag::ArrayOfPointer)
            | bit(d, Flag::ArrayOfPointerAutoAlloc),
    );
    q.size = 8;
    q.vmsd = Some(Box::new(elem_vmsd(d)));
    let q = varray_u8(d, q, 0);
    let v = vmsd(d, "aer", vec![q]);
    let mut heap = Heap::default();
    let mut e0 = vec![0u8; 8];
    e0[..4].copy_from_slice(&0xa0u32.to_le_bytes());
    e0[4] = 1;
    let mut e1 = vec![0u8; 8];
    e1[..4].copy_from_slice(&0xb2u32.to_le_bytes());
    e1[4] = 6;
    let e0 = heap.alloc_prepared(e0).unwrap();
    let e1 = heap.alloc_prepared(e1).unwrap();
    let mut table = vec![0u8; 24];
    table[..8].copy_from_slice(&e0.to_le_bytes());
    table[16..].copy_from_slice(&e1.to_le_bytes());
    let table = heap.alloc_prepared(table).unwrap();
    let mut root = vec![0u8; 16];
    root[0] = 3;
    root[8..].copy_from_slice(&table.to_le_bytes());
    let opaque = heap.alloc_prepared(root).unwrap();
    (v, heap, opaque, table)
}

/// The 8-byte elements the table at `table` points to (None for NULL).
fn elems(heap: &Heap, table: Addr) -> Vec<Option<Vec<u8>>> {
    (0..3)
        .map(|i| {
            let p = heap.read_ptr(table + 8 * i).unwrap();
            (p != 0).then(|| heap.read(p, 8).unwrap().to_vec())
        })
        .collect()
}

/// The payload followed by QEMU_VM_EOF, as on a real stream: the loader
/// peeks one byte past the payload for a subsection.
fn stream(payload: &[u8]) -> Vec<u8> {
    let mut s = payload.to_vec();
    s.push(0);
    s
}

fn ok<T: std::fmt::Debug>(r: QemuRun<T>) -> T {
    match r {
        QemuRun::Ok(v) => v,
        other => panic!("engine: {other:?}"),
    }
}

/// Zeroes every non-pointer byte of the root (keeps the 8-byte slots at `ptrs`).
fn zero_root(heap: &mut Heap, opaque: Addr, len: u64, ptrs: &[u64]) {
    for i in 0..len {
        if !ptrs.iter().any(|&p| (p..p + 8).contains(&i)) {
            heap.write(opaque + i, &[0]).unwrap();
        }
    }
}

#[test]
fn qemu_engine_matches_the_reference() {
    let Some(e) = engine() else { return };
    let d = e.dialect();
    eprintln!(
        "engine: QEMU {} ({d:?}, sanitized: {})",
        e.version(),
        e.sanitized()
    );

    // 1. uint32 + VARRAY_UINT8 of uint16 (inline and through a pointer).
    let (v, heap, opaque) = case_varray(d);
    let want = save_state(d, &v, &heap, opaque).unwrap();
    let got = ok(e.save(&v, &heap, opaque));
    assert_eq!(hex::encode(&got), hex::encode(&want));
    assert_eq!(hex::encode(&got), "11223344000100020003a2a1b2b1c2c1");
    let mut back = heap.clone();
    zero_root(&mut back, opaque, 24, &[16]);
    back.write(opaque + 4, &[3]).unwrap(); // the count is not on the wire
    back.write(heap.read_ptr(opaque + 16).unwrap(), &[0; 6])
        .unwrap();
    assert_eq!(
        ok(e.load(&v, &mut back, opaque, 1, &stream(&got))),
        got.len()
    );
    assert_eq!(
        back.read(opaque, 24).unwrap(),
        heap.read(opaque, 24).unwrap()
    );
    let t = heap.read_ptr(opaque + 16).unwrap();
    assert_eq!(back.read(t, 6).unwrap(), heap.read(t, 6).unwrap());

    // 2. An array of pointers with NULLs: markers 0x30 in qemu-10.x.
    let (v, heap, opaque) = case_pointers(d);
    let want = save_state(d, &v, &heap, opaque).unwrap();
    let got = ok(e.save(&v, &heap, opaque));
    assert_eq!(got, want);
    if d == Dialect::Qemu10 {
        assert_eq!(hex::encode(&got), "deadbeef303000000001");
    }
    let mut back = heap.clone();
    for p in [
        heap.read_ptr(opaque).unwrap(),
        heap.read_ptr(opaque + 24).unwrap(),
    ] {
        back.write(p, &[0; 4]).unwrap();
    }
    assert_eq!(
        ok(e.load(&v, &mut back, opaque, 1, &stream(&got))),
        got.len()
    );
    let mut reference = back.clone();
    for p in [
        heap.read_ptr(opaque).unwrap(),
        heap.read_ptr(opaque + 24).unwrap(),
    ] {
        reference.write(p, &[0; 4]).unwrap();
    }
    assert_eq!(
        load_state(d, &v, &mut reference, opaque, 1, &stream(&got)).unwrap(),
        got.len()
    );
    for a in heap.allocations() {
        assert_eq!(back.read(a.base, a.size()).unwrap(), a.bytes);
        assert_eq!(reference.read(a.base, a.size()).unwrap(), a.bytes);
    }

    // 3. VMS_ALLOC: QEMU's g_malloc shows up in the heap and the ledger.
    let (v, heap, opaque) = case_alloc(d);
    let want = save_state(d, &v, &heap, opaque).unwrap();
    let got = ok(e.save(&v, &heap, opaque));
    assert_eq!(got, want);
    assert_eq!(
        hex::encode(&got),
        format!("00000005{}", hex::encode("hello"))
    );
    let mut back = heap.clone();
    back.write(opaque, &[0; 16]).unwrap();
    assert_eq!(
        ok(e.load(&v, &mut back, opaque, 1, &stream(&got))),
        got.len()
    );
    let p = back.read_ptr(opaque + 8).unwrap();
    let a = back
        .allocation_at(p)
        .expect("QEMU's allocation is in the heap");
    assert_eq!(a.bytes, b"hello");
    assert!(matches!(
        a.origin,
        Origin::Load {
            allocator: Allocator::GMalloc,
            ..
        }
    ));
    let events = e.last_events();
    assert!(
        events
            .iter()
            .any(|ev| ev.kind == EventKind::GMalloc && ev.size == 5 && ev.addr == p),
        "{events:?}"
    );
    let mut reference = heap.clone();
    reference.write(opaque, &[0; 16]).unwrap();
    assert_eq!(
        load_state(d, &v, &mut reference, opaque, 1, &stream(&got)).unwrap(),
        got.len()
    );
    let rp = reference.read_ptr(opaque + 8).unwrap();
    assert_eq!(reference.read(rp, 5).unwrap(), b"hello");

    // 3b. Sanitize builds: loading VMS_ALLOC over a live buffer loses it
    // (QEMU overwrites the pointer without a free): LeakSanitizer says so.
    if e.sanitized() {
        let mut live = heap.clone();
        assert_eq!(
            ok(e.load(&v, &mut live, opaque, 1, &stream(&got))),
            got.len()
        );
        match e.last_run().lsan {
            Some(Lsan::Leaks(text)) => {
                assert!(text.contains("Direct leak of 5 byte(s)"), "{text}")
            }
            other => panic!("expected a leak report, got {other:?}"),
        }
        // Into a fresh destination nothing of ours leaks.
        let mut fresh = heap.clone();
        fresh.write(opaque, &[0; 16]).unwrap();
        assert_eq!(
            ok(e.load(&v, &mut fresh, opaque, 1, &stream(&got))),
            got.len()
        );
        match e.last_run().lsan {
            Some(Lsan::Clean) => {}
            Some(Lsan::Leaks(text)) => {
                assert!(!text.contains("Direct leak of 5 byte(s)"), "{text}")
            }
            other => panic!("{other:?}"),
        }
    }

    // 3c. AUTO_ALLOC arrays of pointers (qemu-11.1, qemu-master): markers
    // 0x30/0x31 on save; the load g_malloc0's an element per 0x31.
    if d.facts().dynamic == Dynamic::AutoAllocFlag {
        let (v, heap, opaque, table) = case_auto_alloc(d);
        let want = save_state(d, &v, &heap, opaque).unwrap();
        let got = ok(e.save(&v, &heap, opaque));
        assert_eq!(hex::encode(&got), hex::encode(&want));
        assert_eq!(hex::encode(&got), "31000000a0013031000000b206");
        let mut back = heap.clone();
        back.write(table, &[0; 24]).unwrap();
        assert_eq!(
            ok(e.load(&v, &mut back, opaque, 1, &stream(&got))),
            got.len()
        );
        assert_eq!(elems(&back, table), elems(&heap, table));
        for i in [0, 2] {
            let p = back.read_ptr(table + 8 * i).unwrap();
            let a = back
                .allocation_at(p)
                .expect("QEMU's element is in the heap");
            assert!(
                matches!(
                    a.origin,
                    Origin::Load {
                        allocator: Allocator::GMalloc0,
                        ..
                    }
                ),
                "{:?}",
                a.origin
            );
            assert_eq!(a.size(), 8);
        }
        let n = e
            .last_events()
            .iter()
            .filter(|ev| ev.kind == EventKind::GMalloc0 && ev.size == 8)
            .count();
        assert_eq!(n, 2, "{:?}", e.last_events());
        let mut reference = heap.clone();
        reference.write(table, &[0; 24]).unwrap();
        assert_eq!(
            load_state(d, &v, &mut reference, opaque, 1, &stream(&got)).unwrap(),
            got.len()
        );
        assert_eq!(elems(&reference, table), elems(&heap, table));

        // A non-NULL destination slot: assert(!auto_alloc || *pptr == NULL).
        let mut stale = heap.clone();
        stale.write(table, &[0; 16]).unwrap(); // slot 2 keeps &e1
        match e.load(&v, &mut stale, opaque, 1, &stream(&got)) {
            QemuRun::Aborted { assertion } => {
                assert!(
                    assertion.contains("!auto_alloc || *pptr == NULL"),
                    "{assertion}"
                );
            }
            other => panic!("{other:?}"),
        }
        let mut stale_ref = heap.clone();
        stale_ref.write(table, &[0; 16]).unwrap();
        assert!(load_state(d, &v, &mut stale_ref, opaque, 1, &stream(&got)).is_err());
    }

    // 4. Clean failures: a too-new version and a truncated stream.
    let (v, heap, opaque) = case_varray(d);
    let saved = stream(&ok(e.save(&v, &heap, opaque)));
    let mut back = heap.clone();
    match e.load(&v, &mut back, opaque, 2, &saved) {
        QemuRun::Failed { ret, message } => {
            assert_eq!(ret, -22, "{message}");
        }
        other => panic!("{other:?}"),
    }
    let mut back = heap.clone();
    match e.load(&v, &mut back, opaque, 1, &saved[..5]) {
        // qemu-10.x returns the file's -EIO; 11.1.3's vmstate_load_state
        // returns -EINVAL whenever the bool vmstate_load_vmsd fails, with the
        // stream error in the message.
        QemuRun::Failed { ret, message } if d == Dialect::Qemu11_1 => {
            assert_eq!(ret, -22, "{message}");
            assert!(message.contains("stream error: -5"), "{message}");
        }
        QemuRun::Failed { ret, .. } => assert_eq!(ret, -5),
        other => panic!("{other:?}"),
    }
}

#[test]
fn qemu_engine_abort_then_respawn() {
    let Some(e) = engine() else { return };
    let d = e.dialect();
    let (mut v, heap, opaque) = case_varray(d);
    v.terminator = 0;
    match e.save(&v, &heap, opaque) {
        QemuRun::Aborted { assertion } => {
            assert!(assertion.contains("Assertion"), "{assertion}");
            assert!(assertion.contains("VMS_END"), "{assertion}");
        }
        other => panic!("{other:?}"),
    }
    // Sanitize builds: reading past the object is an ASan report.
    if e.sanitized() {
        let (mut v, heap, opaque) = case_varray(d);
        v.fields[0].offset = 24; // just past the 24-byte root
        match e.save(&v, &heap, opaque) {
            QemuRun::Crashed { report } => {
                assert!(report.contains("AddressSanitizer"), "{report}");
                eprintln!("ASan: {report}");
            }
            other => panic!("{other:?}"),
        }
    }
    // VMS_ALLOC of 2 GiB - 1 with g_malloc: over the engine's 1 GiB cap,
    // which aborts as GLib would on a failed g_malloc (PROTOCOL.md).
    if d.facts().vms_alloc == VmsAlloc::GMalloc {
        let (v, heap, opaque) = case_alloc(d);
        let mut back = heap.clone();
        back.write(opaque, &[0; 16]).unwrap();
        back.write(opaque, &0x7fff_ffffu32.to_le_bytes()).unwrap();
        match e.load(&v, &mut back, opaque, 1, &stream(&[0x7f, 0xff, 0xff, 0xff])) {
            QemuRun::Aborted { assertion } => {
                assert!(
                    assertion.contains("g_malloc: failed to allocate 2147483647 bytes"),
                    "{assertion}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    // The next request gets a fresh engine.
    let (v, heap, opaque) = case_varray(d);
    assert_eq!(
        ok(e.save(&v, &heap, opaque)),
        save_state(d, &v, &heap, opaque).unwrap()
    );
}
