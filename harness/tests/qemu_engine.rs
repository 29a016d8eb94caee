//! QEMU's own vmstate.c against the reference model, through the engine
//! built by harness/qemu/build.sh. Runs only when VMSTATE_QEMU_ENGINE names
//! the engine executable.

use std::path::PathBuf;
use vmstate_harness::engine::qemu::{
    QemuEngine, QemuRun,
    protocol::{EventKind, Lsan},
};
use vmstate_reference::{
    Addr, Allocator, Dialect, Field, Flag, Heap, Indirect, Info, Origin, Vmsd, load_state,
    save_state,
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
    f.flags |= match d {
        Dialect::Qemu10 => bit(d, Flag::VarrayUint8),
        _ => bit(d, Flag::Varray),
    };
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
    let x = heap
        .alloc_prepared(0xdead_beefu32.to_le_bytes().to_vec())
        .unwrap();
    let y = heap.alloc_prepared(1u32.to_le_bytes().to_vec()).unwrap();
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
    let data = heap.alloc_prepared(b"hello".to_vec()).unwrap();
    let mut root = vec![0u8; 16];
    root[..4].copy_from_slice(&5u32.to_le_bytes());
    root[8..].copy_from_slice(&data.to_le_bytes());
    let opaque = heap.alloc_prepared(root).unwrap();
    (v, heap, opaque)
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
        assert_eq!(back.read(a.base, a.size()).unwrap(), &a.bytes[..]);
        assert_eq!(reference.read(a.base, a.size()).unwrap(), &a.bytes[..]);
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
    // The next request gets a fresh engine.
    let (v, heap, opaque) = case_varray(d);
    assert_eq!(
        ok(e.save(&v, &heap, opaque)),
        save_state(d, &v, &heap, opaque).unwrap()
    );
}
